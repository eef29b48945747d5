/* An outside process reaching into a build process: the record, and in enforce mode the
 * kill. Shared by the ptrace/process_vm_writev tracepoints (access.bpf.c) and the
 * /proc/PID/mem write tracepoints (procmem.bpf.c). */
#ifndef BW_ACCESS_BPF_H
#define BW_ACCESS_BPF_H

#include "lib/common.bpf.h"

#ifndef SIGKILL
#define SIGKILL 9
#endif

static __always_inline bool in_build(__u32 tgid)
{
	struct bw_proc *p = proc_lookup(tgid);

	return p && (p->flags & BW_PROC_IN_BUILD);
}

/* The actor is the current process; the caller has checked that target is a build
 * process and the actor is not. At sys_enter the syscall has not run yet: SIGKILL sent
 * here is pending when it does. process_vm_writev and a /proc/PID/mem write then write
 * nothing (get_user_pages checks for a fatal signal before each page). ptrace_attach
 * does not check and completes, queueing SIGSTOP at the target; the tracer dies before
 * any further request, and the agent resumes the target (user/agent/resume.c). */
static __always_inline void access_violation(__u32 tgid, __u32 target, __u32 kind, bool kill)
{
	struct bw_proc_access_event *e;
	bool killed = false;

	if (kill)
		killed = bpf_send_signal(SIGKILL) == 0;
	e = event_reserve(sizeof(*e), BW_EV_PROC_ACCESS);
	if (!e)
		return;
	e->pid = tgid;
	e->target_pid = target;
	e->kind = kind;
	e->killed = killed;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	event_submit(e, true);
}

#define PROC_SUPER_MAGIC 0x9fa0
#define FMODE_WRITE 0x2

/* A /proc/PID/mem file is recognised by what procfs gives it, on any procfs super block
 * (every proc mount since 5.8 is its own): the proc super block magic, the name "mem",
 * and a proc inode bound to a pid (sysctl and /proc/net entries have none).
 * proc_mem_operations is not in kallsyms on our kernels (no CONFIG_KALLSYMS_ALL). */
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

#endif
