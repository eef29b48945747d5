/* Enforce mode, issue 7: the intent of an open, for the agent's answer to FAN_OPEN_PERM.
 * The listener's descriptor carries fanotify's flags, not the opener's, so a read-only
 * open and an O_TRUNC open look the same to it. Here each thread outside the build
 * records the flags of the open it is entering, and the entry is deleted when the
 * syscall returns: an entry exists only while its thread is inside an open, so a stale
 * record cannot describe a later open that passed no tracepoint (io_uring, kernel
 * internal). Such an open finds no entry and the agent applies its default for it
 * (docs/architecture.md). Build processes record nothing: the agent allows them
 * whatever they ask. Named bw_guard_*: attached only once enforce mode is on. */
#include "lib/common.bpf.h"

#define BW_O_WRONLY 01
#define BW_O_CREAT 0100
#define BW_O_TRUNC 01000

/* LRU: a thread killed inside an open still leaves through sys_exit, but one whose
 * entry is evicted under pressure only loses its intent, which the agent treats as
 * unknown (refused for an outsider), never as read-only. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct bw_open_intent);
} open_intent SEC(".maps");

static __always_inline void record(__u32 open_flags, __u32 intent_flags)
{
	const struct bw_config *cfg = config_get();
	__u64 id = bpf_get_current_pid_tgid();
	struct bw_open_intent in = {};
	__u32 tid = (__u32)id;
	struct bw_proc *p;

	if (!cfg || !(cfg->flags & BW_CFG_ENFORCE_OPEN))
		return;
	in.tgid = id >> 32;
	p = proc_lookup(in.tgid);
	if (p && (p->flags & BW_PROC_IN_BUILD))
		return;
	in.ktime = bpf_ktime_get_boot_ns();
	in.open_flags = open_flags;
	in.intent_flags = intent_flags;
	bpf_map_update_elem(&open_intent, &tid, &in, BPF_ANY);
}

/* Most threads leaving an open have no entry (the build records none): a lookup, which
 * takes no lock, spares them the delete, which takes the bucket's lock even for a key
 * that is not there. */
static __always_inline void forget(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_lookup_elem(&open_intent, &tid))
		bpf_map_delete_elem(&open_intent, &tid);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int bw_guard_intent_openat(struct trace_event_raw_sys_enter *ctx)
{
	record((__u32)ctx->args[2], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int bw_guard_intent_open(struct trace_event_raw_sys_enter *ctx)
{
	record((__u32)ctx->args[1], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_creat")
int bw_guard_intent_creat(struct trace_event_raw_sys_enter *ctx)
{
	record(BW_O_CREAT | BW_O_WRONLY | BW_O_TRUNC, 0);
	return 0;
}

/* struct open_how starts with __u64 flags; a struct the kernel can't read yet (not
 * faulted in) is recorded as unknown, never as read-only. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int bw_guard_intent_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	if (bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]))
		record(0, BW_INTENT_FLAGS_UNKNOWN);
	else
		record((__u32)flags, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open_by_handle_at")
int bw_guard_intent_open_by_handle_at(struct trace_event_raw_sys_enter *ctx)
{
	record((__u32)ctx->args[2], 0);
	return 0;
}

/* An exec opens its image read-only: without this an outsider running a script that
 * lives in a protected tree would find no intent and be refused. */
SEC("tracepoint/syscalls/sys_enter_execve")
int bw_guard_intent_execve(struct trace_event_raw_sys_enter *ctx)
{
	record(0, BW_INTENT_EXEC);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int bw_guard_intent_execveat(struct trace_event_raw_sys_enter *ctx)
{
	record(0, BW_INTENT_EXEC);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int bw_guard_intent_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int bw_guard_intent_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int bw_guard_intent_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int bw_guard_intent_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open_by_handle_at")
int bw_guard_intent_open_by_handle_at_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int bw_guard_intent_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int bw_guard_intent_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	forget();
	return 0;
}
