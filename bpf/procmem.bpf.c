/* A write to /proc/PID/mem of a build process by a process outside the build, stopped
 * before it lands (enforce mode): at sys_enter of each write-family syscall the
 * descriptor is resolved to its struct file in the kernel and, if it is a build
 * process's mem file opened for writing, the writer is sent SIGKILL. The write then
 * finds a fatal signal pending before it touches the target's pages (get_user_pages
 * checks for one before each page) and writes nothing. In audit mode these programs
 * return at the first test: the write is reported after the fact by the agent's
 * fanotify mark on /proc's super block (user/sensor/procmem.c), and the open for writing
 * through any other procfs by access.bpf.c. The file is recognised on any procfs by
 * mem_file_target (lib/access.bpf.h).
 *
 * Not covered: a descriptor swapped by another thread (dup2) between this check and
 * the syscall's own lookup; io_uring writes (no syscall tracepoint). Both are still
 * reported after the fact by the fanotify mark. */
#include "lib/access.bpf.h"

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
