/* Enforce mode, issue 7: a write into a protected file through a descriptor opened
 * earlier (before the run, or inherited) never passes an open the agent could refuse.
 * At the write-like syscall's entry the descriptor is resolved to its inode in the
 * kernel (never a path string) and compared with the protected set; an outside
 * process that is not a listed writer is sent SIGKILL, which the write paths check
 * before they copy a byte (measured per syscall: tests/integration/test_enforce_write.c).
 * In audit mode nothing runs past the first flag test: fanotify reports the change. */
#include "lib/writer.bpf.h"

#define SIGKILL 9

/* Filled by the agent from fanwatch's marks (user/agent/write_guard.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_MAX_PROTECTED_INODES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_inode_key);
	__type(value, __u32);
} protected_inodes SEC(".maps");

/* Entries in protected_inodes: 0 spares every write on the host the descriptor walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} protected_count SEC(".maps");

/* A listed writer: by the table (set at exec, inherited at fork), or for a process
 * whose start the sensor did not see (no fork, no exec: it predates the sensor), by its
 * executable and the entry's conditions, as the agent does for events
 * (pipeline/event_build.c writer_by_exe). */
static __always_inline bool may_write(const struct bw_config *cfg, struct task_struct *task,
				      const struct bw_proc *p, __u32 tree)
{
	struct bw_inode_key exe = {};
	struct bw_writer *w;

	if (tree >= 64)
		return false;
	if (p && (p->writer_mask & (1ull << tree)))
		return true;
	if ((p && (p->flags & (BW_PROC_FROM_FORK | BW_PROC_FROM_EXEC))) ||
	    !(cfg->flags & BW_CFG_HAVE_WRITERS))
		return false;
	exe.ino = BPF_CORE_READ(task, mm, exe_file, f_inode, i_ino);
	exe.dev = BPF_CORE_READ(task, mm, exe_file, f_inode, i_sb, s_dev);
	exe.gen = cfg->gen;
	w = bpf_map_lookup_elem(&writer_exes, &exe);
	return w && (w->mask & (1ull << tree)) && writer_conditions_hold(w, task);
}

static __always_inline void guard(int fd, __u32 kind)
{
	const struct bw_config *cfg = config_get();
	struct bw_write_kill_event *e;
	struct bw_inode_key key = {};
	struct task_struct *task;
	struct file **fds, *file;
	__u32 zero = 0, tgid, *n, *tree;
	struct fdtable *fdt;
	struct bw_proc *p;
	bool killed;

	if (!cfg || !(cfg->flags & BW_CFG_ENFORCE_WRITE))
		return;
	n = bpf_map_lookup_elem(&protected_count, &zero);
	if (!n || !*n || fd < 0)
		return;
	task = (struct task_struct *)bpf_get_current_task();
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return;
	key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	tree = bpf_map_lookup_elem(&protected_inodes, &key);
	if (!tree)
		return;
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = proc_lookup(tgid);
	if ((p && (p->flags & BW_PROC_IN_BUILD)) || may_write(cfg, task, p, *tree))
		return;
	killed = bpf_send_signal(SIGKILL) == 0;
	e = event_reserve(sizeof(*e), BW_EV_WRITE_KILL);
	if (!e)
		return;
	e->ino = key.ino;
	e->dev = key.dev;
	e->pid = tgid;
	e->tree = *tree;
	e->kind = kind;
	e->fd = fd;
	e->killed = killed;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	event_submit(e, true);
}

/* One program per syscall, never raw sys_enter (see bpf/access.bpf.c). */
SEC("tracepoint/syscalls/sys_enter_write")
int bw_guard_write(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int bw_guard_pwrite64(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int bw_guard_writev(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev")
int bw_guard_pwritev(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int bw_guard_pwritev2(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int bw_guard_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_TRUNCATE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fallocate")
int bw_guard_fallocate(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_TRUNCATE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_copy_file_range")
int bw_guard_copy_file_range(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[2], BW_WRITE_DATA); /* fd_out */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_splice")
int bw_guard_splice(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[2], BW_WRITE_DATA); /* fd_out */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int bw_guard_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA); /* out_fd */
	return 0;
}
