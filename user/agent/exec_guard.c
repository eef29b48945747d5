/* Enforce mode's exec guard for #! scripts (sensor/execguard.h): started when the policy
 * has exec.deny trees and the mode is enforce, switched with every reload; its refusals
 * become Exec events with the verdict DENIED, through the kernel records' own path. */
#include <stdio.h>
#include <string.h>

#include "agent/agent_int.h"
#include "base/log.h"

static bool exec_guard__in_build(void *ctx, pid_t pid)
{
	struct bw_proc p;

	return sensor__proc_lookup(ctx, pid, &p) == 0 && (p.flags & BW_PROC_IN_BUILD);
}

static void exec_guard__refused(const struct bw_exec_event *r, void *ctx)
{
	dispatch__record(ctx, r, sizeof(*r));
}

static void exec_guard__on_ready(void *ctx)
{
	struct agent *a = ctx;

	execguard__process(a->xg, exec_guard__refused, a);
}

int exec_guard__apply(struct agent *a, const struct bw_policy *p, bool enforce)
{
	int e;

	if (a->xg)
		return execguard__set_policy(a->xg, p, enforce);
	/* Nothing to guard: no mark, so no exec on the host waits for us. Without
	 * permission events, runStart.layers says scripts are reported, not stopped. */
	if (!enforce || p->n_exec_deny == 0 || !a->feat.fanotify_perm)
		return 0;
	e = execguard__new(p, exec_guard__in_build, a->sensor, &a->xg);
	if (e)
		return e;
	e = loop__add(a->loop, execguard__fd(a->xg), exec_guard__on_ready, a);
	if (e) {
		execguard__free(a->xg);
		a->xg = NULL;
	}
	return e;
}

void exec_guard__drain(struct agent *a)
{
	if (a->xg)
		execguard__process(a->xg, exec_guard__refused, a);
}

uint64_t exec_guard__lost(const struct agent *a)
{
	return a->xg ? execguard__lost(a->xg) : 0;
}
