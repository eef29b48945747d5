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

#endif
