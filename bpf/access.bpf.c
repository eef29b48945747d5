/* An outside process reaching into a build process could make the build write for it:
 * ptrace attach or process_vm_writev (writes to /proc/PID/mem: user/sensor/procmem.c).
 * Only the syscall tracepoints see those on a host without kprobes or LSM. Also here:
 * the name a link() creates, which fanotify cannot report for a link made outside the
 * protected trees. */
#include "lib/common.bpf.h"

#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

static __always_inline bool in_build(__u32 tgid)
{
	struct bw_proc *p = proc_lookup(tgid);

	return p && (p->flags & BW_PROC_IN_BUILD);
}

static __always_inline void report(__u32 target, __u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct bw_proc_access_event *e;

	if (target == tgid || in_build(tgid) || !in_build(target))
		return;
	e = event_reserve(sizeof(*e), BW_EV_PROC_ACCESS);
	if (!e)
		return;
	e->pid = tgid;
	e->target_pid = target;
	e->kind = kind;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	event_submit(e, true);
}

/* Every process on the host can call link() as fast as it likes: unchecked, its name
 * records would fill the ring and crowd out the build's events and the violations.
 * They may use half of it at most; past that they are shed and counted (the LINK
 * event still comes from fanotify, only without newPath). */
static __always_inline void record_link_name(const char *newpath, int dirfd)
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
	if (bpf_probe_read_user_str(e->newpath, sizeof(e->newpath), newpath) < 0)
		e->newpath[0] = 0;
	event_submit(e, false);
}

/* One program per syscall tracepoint, not one on raw sys_enter: other syscalls then pay
 * only the kernel's bitmap test, not a BPF program run (docs/PERFORMANCE.md). Writes to
 * /proc/PID/mem are seen by the agent's fanotify mark on /proc, so opens pay nothing. */
SEC("tracepoint/syscalls/sys_enter_ptrace")
int bw_enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = (long)ctx->args[0];

	if (req == PTRACE_ATTACH || req == PTRACE_SEIZE)
		report((__u32)ctx->args[1], BW_ACCESS_PTRACE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int bw_enter_vm_writev(struct trace_event_raw_sys_enter *ctx)
{
	report((__u32)ctx->args[0], BW_ACCESS_VM_WRITEV);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_link")
int bw_enter_link(struct trace_event_raw_sys_enter *ctx)
{
	record_link_name((const char *)ctx->args[1], BW_AT_FDCWD);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_linkat")
int bw_enter_linkat(struct trace_event_raw_sys_enter *ctx)
{
	record_link_name((const char *)ctx->args[3], (int)ctx->args[2]);
	return 0;
}
