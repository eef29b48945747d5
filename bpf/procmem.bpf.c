/* A write to /proc/PID/mem of a build process by a process outside the build, stopped
 * before it lands (enforce mode): at sys_enter of each write-family syscall the
 * descriptor is resolved to its struct file in the kernel and, if it is a build
 * process's mem file opened for writing, the writer is sent SIGKILL. The write then
 * finds a fatal signal pending before it touches the target's pages (get_user_pages
 * checks for one before each page) and writes nothing. In audit mode these programs
 * return at the first test: the write is reported after the fact by the agent's
 * fanotify mark on /proc (user/sensor/procmem.c).
 *
 * proc_mem_operations is not in kallsyms on our kernels (no CONFIG_KALLSYMS_ALL), so
 * the file is recognised by what procfs gives it: the proc super block, the name
 * "mem", and a proc inode bound to a pid (sysctl and /proc/net entries have none).
 *
 * Not covered: a descriptor swapped by another thread (dup2) between this check and
 * the syscall's own lookup; io_uring writes (no syscall tracepoint). Both are still
 * reported after the fact by the fanotify mark. */
#include "lib/access.bpf.h"

#define PROC_SUPER_MAGIC 0x9fa0
#define FMODE_WRITE 0x2

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* The tgid of the process whose memory a /proc mem file writes, or 0 if file is not
 * one. The inode is bound to the struct pid of the task it was opened for (a thread's
 * under task/TID/mem), so the thread group comes from that task, not the number. */
static __always_inline __u32 mem_file_target(struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct hlist_node *first;
	struct task_struct *t;
	struct proc_inode *ei;
	const unsigned char *name;
	char buf[4] = {};
	struct pid *pid;

	if (!inode || BPF_CORE_READ(inode, i_sb, s_magic) != PROC_SUPER_MAGIC)
		return 0;
	if (!(BPF_CORE_READ(file, f_mode) & FMODE_WRITE))
		return 0;
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel(buf, sizeof(buf), name) ||
	    buf[0] != 'm' || buf[1] != 'e' || buf[2] != 'm' || buf[3] != 0)
		return 0;
	ei = (void *)inode - bpf_core_field_offset(struct proc_inode, vfs_inode);
	pid = BPF_CORE_READ(ei, pid);
	if (!pid)
		return 0;
	first = BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first);
	if (!first)
		return 0; /* the task is gone: its mm is written to no one's harm */
	t = (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
	return BPF_CORE_READ(t, tgid);
}

static __always_inline void check_write(int fd)
{
	const struct bw_config *cfg = config_get();
	struct file *file;
	__u32 tgid, target;

	/* Every write on the host comes here: audit mode pays one array lookup. */
	if (!cfg || !(cfg->flags & BW_CFG_ENFORCE_ACCESS))
		return;
	/* A build process may write anything here: one map lookup spares the build's
	 * writes the descriptor walk (about ten kernel reads; docs/PERFORMANCE.md). */
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (in_build(tgid))
		return;
	file = fd_file(fd);
	if (!file)
		return;
	target = mem_file_target(file);
	if (!target || target == tgid || !in_build(target))
		return;
	access_violation(tgid, target, BW_ACCESS_PROC_MEM, true);
}

SEC("tracepoint/syscalls/sys_enter_write")
int bw_guard_mem_write(struct trace_event_raw_sys_enter *ctx)
{
	check_write((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int bw_guard_mem_pwrite64(struct trace_event_raw_sys_enter *ctx)
{
	check_write((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int bw_guard_mem_writev(struct trace_event_raw_sys_enter *ctx)
{
	check_write((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev")
int bw_guard_mem_pwritev(struct trace_event_raw_sys_enter *ctx)
{
	check_write((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int bw_guard_mem_pwritev2(struct trace_event_raw_sys_enter *ctx)
{
	check_write((int)ctx->args[0]);
	return 0;
}
