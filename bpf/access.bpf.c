/* An outside process reaching into a build process could make the build write for it:
 * ptrace attach or process_vm_writev (writes to /proc/PID/mem: procmem.bpf.c, and
 * user/sensor/procmem.c after the fact in audit mode). Only the syscall tracepoints see
 * those on a host without kprobes or LSM; in enforce mode they kill the actor. Also here:
 * the name a link() creates, which fanotify cannot report for a link made outside the
 * protected trees. */
#include "lib/access.bpf.h"

#define PTRACE_TRACEME 0
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

static __always_inline bool enforce_access(void)
{
	const struct bw_config *cfg = config_get();

	return cfg && (cfg->flags & BW_CFG_ENFORCE_ACCESS);
}

/* Audit mode reports the attach (what a later PEEK/POKE needs); enforce mode kills the
 * actor on any request naming a build process, so a tracer that attached before the
 * process joined the build (it can only have attached to the pre-exec image of the
 * build's first process) cannot POKE or SETREGS it either. */
static __always_inline void report(__u32 target, __u32 kind, bool attach)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bool enforce;

	if (target == tgid || in_build(tgid) || !in_build(target))
		return;
	enforce = enforce_access();
	if (!attach && !enforce)
		return;
	access_violation(tgid, target, kind, enforce);
}

/* Every process on the host can call link() as fast as it likes: unchecked, its name
 * records would fill the ring and crowd out the build's events and the violations.
 * They may use half of it at most; past that they are shed and counted (the LINK
 * event still comes from fanotify, only without newPath). */
static __always_inline void record_link_name(const char *newpath, int dirfd, const char *oldpath,
					     int olddirfd, __u32 kind)
{
	struct bw_link_name_event *e;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > RINGBUF_BYTES / 2) {
		count(BW_CNT_LINK_NAMES_SHED);
		return;
	}
	e = event_reserve(sizeof(*e), BW_EV_LINK_NAME);
	if (!e)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->dirfd = dirfd;
	e->olddirfd = olddirfd;
	e->kind = kind;
	if (bpf_probe_read_user_str(e->newpath, sizeof(e->newpath), newpath) < 0)
		e->newpath[0] = 0;
	e->oldpath[0] = 0;
	if (oldpath && bpf_probe_read_user_str(e->oldpath, sizeof(e->oldpath), oldpath) < 0)
		e->oldpath[0] = 0;
	event_submit(e, false);
}

/* [BW_PROCFS_WATCHED_DEV]: the kdev of the procfs super block the agent's fanotify mark
 * covers whole (0: none). Writes through it are reported by the mark, with the write
 * itself (any route, io_uring too). Any other procfs is one mounted after the agent
 * started (`unshare -m` then `mount -t proc`: every proc mount is a super block of its
 * own since 5.8), which no mark of the agent's covers.
 * [BW_PROCFS_OTHERS]: non-zero once such a procfs may exist: a proc mount since the
 * sensor started, or a mark the kernel refused on the file system (set by the agent).
 * Until then an open costs one program run and this lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BW_PROCFS_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} procfs_watched SEC(".maps");

static __always_inline void procfs_others_set(void)
{
	__u32 k = BW_PROCFS_OTHERS, one = 1;

	bpf_map_update_elem(&procfs_watched, &k, &one, BPF_ANY);
}

/* A file system type named by a mount: "proc", or unreadable (not faulted in yet:
 * taken as proc, never as something else). */
static __always_inline void note_mount_type(const char *type)
{
	char t[5] = {};

	if (!type)
		return;
	if (bpf_probe_read_user_str(t, sizeof(t), type) < 0 ||
	    (t[0] == 'p' && t[1] == 'r' && t[2] == 'o' && t[3] == 'c' && t[4] == 0))
		procfs_others_set();
}

/* mount(2) and the new mount API's fsopen(2): rare syscalls, so these cost the host
 * nothing. */
SEC("tracepoint/syscalls/sys_enter_mount")
int bw_enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	note_mount_type((const char *)ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fsopen")
int bw_enter_fsopen(struct trace_event_raw_sys_enter *ctx)
{
	note_mount_type((const char *)ctx->args[0]);
	return 0;
}

/* Audit mode: an outsider opened a build process's /proc/PID/mem for writing (ret: the
 * new descriptor) through a procfs the fanotify mark does not cover: reported at the
 * open, the last moment a syscall tracepoint sees it. Enforce mode needs nothing here:
 * the write guard (procmem.bpf.c) kills a write to a mem file of any procfs. Every open
 * on the host comes here: until another procfs may exist it returns after one lookup;
 * then a build process after two, an outsider after reading its file's super block
 * magic (docs/PERFORMANCE.md). */
static __always_inline void check_mem_open(long ret)
{
	__u32 tgid, target, *watched, *others, kw = BW_PROCFS_WATCHED_DEV, ko = BW_PROCFS_OTHERS;
	struct file *file;

	others = bpf_map_lookup_elem(&procfs_watched, &ko);
	if (!others || !*others || ret < 0 || enforce_access())
		return;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (in_build(tgid))
		return;
	file = fd_file((int)ret);
	if (!file)
		return;
	target = mem_file_target(file);
	if (!target || target == tgid || !in_build(target))
		return;
	watched = bpf_map_lookup_elem(&procfs_watched, &kw);
	if (watched && *watched && *watched == BPF_CORE_READ(file, f_inode, i_sb, s_dev))
		return;
	access_violation(tgid, target, BW_ACCESS_PROC_MEM, false);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int bw_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	check_mem_open(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int bw_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	check_mem_open(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int bw_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	check_mem_open(ctx->ret);
	return 0;
}

/* One program per syscall tracepoint, not one on raw sys_enter: other syscalls then pay
 * only the kernel's bitmap test, not a BPF program run (docs/PERFORMANCE.md). Writes to
 * /proc/PID/mem through /proc are seen by the agent's fanotify mark; through any other
 * procfs, at the open (check_mem_open), which every open on the host pays with one
 * program run. */
SEC("tracepoint/syscalls/sys_enter_ptrace")
int bw_enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = (long)ctx->args[0];

	/* PTRACE_TRACEME names no target: the caller asks its parent to trace it. */
	if (req != PTRACE_TRACEME)
		report((__u32)ctx->args[1], BW_ACCESS_PTRACE,
		       req == PTRACE_ATTACH || req == PTRACE_SEIZE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int bw_enter_vm_writev(struct trace_event_raw_sys_enter *ctx)
{
	report((__u32)ctx->args[0], BW_ACCESS_VM_WRITEV, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_link")
int bw_enter_link(struct trace_event_raw_sys_enter *ctx)
{
	record_link_name((const char *)ctx->args[1], BW_AT_FDCWD, (const char *)ctx->args[0],
			 BW_AT_FDCWD, BW_NAME_LINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_linkat")
int bw_enter_linkat(struct trace_event_raw_sys_enter *ctx)
{
	record_link_name((const char *)ctx->args[3], (int)ctx->args[2], (const char *)ctx->args[1],
			 (int)ctx->args[0], BW_NAME_LINK);
	return 0;
}

/* truncate(2) names a path; fanotify reports it as FAN_MODIFY, like a write. The name
 * lets the agent call it TRUNCATE (ftruncate and O_TRUNC are told apart elsewhere). */
SEC("tracepoint/syscalls/sys_enter_truncate")
int bw_enter_truncate(struct trace_event_raw_sys_enter *ctx)
{
	record_link_name((const char *)ctx->args[0], BW_AT_FDCWD, NULL, BW_AT_FDCWD,
			 BW_NAME_TRUNCATE);
	return 0;
}
