/* SIGHUP: the policy file is read again and replaces the running policy as a whole,
 * or not at all. A policy that does not load, trees that cannot be watched or maps
 * the kernel refuses leave everything as it was: the old policy, its hash, its mode
 * and its watcher. */
#ifndef BUILDWARDEN_AGENT_RELOAD_H
#define BUILDWARDEN_AGENT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/agent.h"
#include "policy/policy.h"

struct fanwatch;

/* What the policy decides in a running agent. */
struct policy_state {
	struct bw_policy *policy;
	char sha256[65];
	bool enforce;
	struct fanwatch *fw; /* NULL: the policy protects no tree */
};

/* The steps that touch the sensor and the loop, so that the all-or-nothing logic is
 * testable without them. */
struct reload_ops {
	/* a watcher for p's protected trees (NULL when it has none): 0 or -errno */
	int (*watch)(void *ctx, const struct bw_policy *p, struct fanwatch **out);
	/* the kernel switches to p, in enforce mode or not: 0, or -errno with the reason
	 * in err */
	int (*apply)(void *ctx, const struct bw_policy *p, bool enforce, char *err,
		     size_t errlen);
	/* called while the old policy still rules: the old watcher's pending events are
	 * handled, then it is freed and nfw takes its place in the loop */
	void (*switch_watch)(void *ctx, struct fanwatch *old, struct fanwatch *nfw);
	void *ctx;
};

/* Reloads o->policy_path into st, saying on stderr what happened. 0 when the new
 * policy is in force, else -errno and st is unchanged. */
int reload__policy(struct policy_state *st, const struct agent_opts *o,
		   const struct reload_ops *ops);

#endif /* BUILDWARDEN_AGENT_RELOAD_H */
