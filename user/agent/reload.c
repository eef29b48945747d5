/* Policy reload: see reload.h. */
#include <string.h>

#include "agent/policy_load.h"
#include "agent/reload.h"
#include "base/log.h"
#include "sensor/fanwatch.h"

int reload__policy(struct policy_state *st, const struct agent_opts *o,
		   const struct reload_ops *ops)
{
	struct bw_policy *np = NULL;
	struct fanwatch *nfw = NULL;
	char err[512], sha256[65];
	bool enforce;
	int e;

	log__line(stderr, "buildwarden: ", "SIGHUP: reloading '%s'", o->policy_path);
	e = policy_load__file(o->policy_path, &np, sha256);
	if (e) {
		log__line(stderr, "buildwarden: ", "the new policy is bad: keeping the old one");
		return e;
	}
	e = ops->watch(ops->ctx, np, &nfw);
	if (e) {
		log__line(stderr, "buildwarden: ",
			  "cannot watch the new protected trees (%s): keeping the old policy",
			  strerror(-e));
		policy__free(np);
		return e;
	}
	err[0] = '\0';
	/* the new policy's mode: a reload may switch between audit and enforce */
	enforce = agent_opts__enforce(o, np);
	e = ops->apply(ops->ctx, np, enforce, err, sizeof(err));
	if (e) {
		log__line(stderr, "buildwarden: ", "%s: keeping the old policy", err);
		fanwatch__free(nfw);
		policy__free(np);
		return e;
	}
	/* From here on nothing fails: the kernel has the new policy already. */
	ops->switch_watch(ops->ctx, st->fw, nfw);
	st->fw = nfw;
	policy__free(st->policy);
	st->policy = np;
	st->enforce = enforce;
	memcpy(st->sha256, sha256, sizeof(st->sha256));
	log__line(stderr, "buildwarden: ", "policy reloaded");
	return 0;
}
