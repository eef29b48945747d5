/* Run events: see run_events.h. */
#include "agent/losses.h"
#include "agent/run_events.h"
#include "base/version.h"

uint64_t run_events__drops(const struct run_counters *c)
{
	return c->ringbuf_drops + c->fanwatch_overflows + c->procmem_overflows +
	       c->fanwatch_unresolved;
}

void run_events__stats(const struct run_counters *c, Buildwarden__V1__Stats *st,
		       Buildwarden__V1__Event *ev)
{
	buildwarden__v1__event__init(ev);
	buildwarden__v1__stats__init(st);
	st->events = c->events;
	st->ringbuf_drops = c->ringbuf_drops;
	st->ringbuf_drops_per_cpu = (uint64_t *)c->ringbuf_drops_per_cpu;
	st->n_ringbuf_drops_per_cpu = c->ncpu;
	st->fanotify_overflows = c->fanwatch_overflows + c->procmem_overflows;
	st->proc_table_failures = c->proc_table_failures;
	st->unattributed = c->unattributed;
	st->args_read_failures = c->args_read_failures;
	/* both say "a change under the trees may not be seen": the kernel's walk stopped,
	 * or fanotify has no mark on the object */
	st->depth_exceeded = c->depth_exceeded + c->fanwatch_skipped;
	st->spool_full = c->spool_drops;
	st->fanotify_unresolved = c->fanwatch_unresolved;
	st->link_names_missing = c->link_names_missing;
	st->link_names_shed = c->link_names_shed;
	st->perm_asked = c->perm_asked;
	st->perm_denied = c->perm_denied;
	st->perm_fail_safe = c->perm_fail_safe;
	st->perm_answer_p50_ns = c->perm_p50_ns;
	st->perm_answer_p99_ns = c->perm_p99_ns;
	st->perm_answer_max_ns = c->perm_max_ns;
	st->perm_wait_p50_ns = c->perm_wait_p50_ns;
	st->perm_wait_p99_ns = c->perm_wait_p99_ns;
	st->perm_wait_max_ns = c->perm_wait_max_ns;
	st->enrollments = c->enrollments;
	st->enrollments_refused = c->enrollments_refused;
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_STATS;
	ev->stats = st;
}

void run_events__run_end(const struct run_counters *c, int exit_status,
			 Buildwarden__V1__RunEnd *re, Buildwarden__V1__Incomplete *inc,
			 Buildwarden__V1__Event *ev)
{
	struct run_losses l;

	buildwarden__v1__event__init(ev);
	buildwarden__v1__run_end__init(re);
	re->exit_status = exit_status;
	re->events = c->events;
	re->violations = c->violations;
	re->drops = run_events__drops(c);
	losses__from_counters(c, &l);
	re->incomplete = losses__to_proto(&l, inc);
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev->run_end = re;
}

void run_events__run_start(const struct run_start_info *i, Buildwarden__V1__RunStart *rs,
			   Buildwarden__V1__Event *ev)
{
	size_t argc = 0;

	while (i->argv && i->argv[argc])
		argc++;
	buildwarden__v1__event__init(ev);
	buildwarden__v1__run_start__init(rs);
	rs->argv = (char **)i->argv;
	rs->n_argv = argc;
	rs->policy_path = (char *)(i->policy_path ? i->policy_path : "<built-in>");
	rs->policy_sha256 = (char *)i->policy_sha256;
	rs->mode = (char *)(i->enforce ? "enforce" : "audit");
	rs->agent_version = (char *)BW_VERSION;
	rs->schema_version = BW_SCHEMA_VERSION;
	rs->layers = (char **)i->layers;
	rs->n_layers = i->n_layers;
	rs->ci = i->ci;
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
	ev->run_start = rs;
}
