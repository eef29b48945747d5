/* The agent's own events, RunStart, Stats and RunEnd, from a snapshot of every
 * counter taken here, in one place (run_events.h builds them). */
#include <stdlib.h>

#include "agent/agent_int.h"
#include "agent/ci_context.h"
#include "agent/losses.h"
#include "agent/run_events.h"
#include "base/clock.h"

/* cnt holds the per-CPU array the snapshot points to. */
static void run_emit__counters(struct agent *a, struct sensor_counters *cnt,
			    struct run_counters *rc)
{
	/* zeroed when the map cannot be read: nothing counted is better than garbage */
	sensor__read_counters(a->sensor, cnt);
	*rc = (struct run_counters){
		.events = a->tally.events,
		.violations = a->tally.violations,
		.unattributed = a->tally.unattributed,
		.bad_records = a->tally.bad_records,
		.ringbuf_drops = cnt->total[BW_CNT_RINGBUF_DROPS],
		.ringbuf_drops_per_cpu = cnt->ringbuf_drops_per_cpu,
		.ncpu = cnt->ncpu,
		.proc_table_failures = cnt->total[BW_CNT_PROC_TABLE_FAIL],
		.args_read_failures = cnt->total[BW_CNT_ARGS_READ_FAIL],
		.depth_exceeded = cnt->total[BW_CNT_DEPTH_EXCEEDED],
		.link_names_shed = cnt->total[BW_CNT_LINK_NAMES_SHED],
		.fanwatch_overflows = a->ps.fw ? fanwatch__overflows(a->ps.fw) : 0,
		/* a refused exec whose report was lost is lost like an overflowed one */
		.procmem_overflows = (a->pm ? procmem__overflows(a->pm) : 0) + exec_guard__lost(a),
		.fanwatch_skipped = a->ps.fw ? fanwatch__skipped(a->ps.fw) : 0,
		.fanwatch_unresolved = a->ps.fw ? fanwatch__unresolved(a->ps.fw) : 0,
		.link_names_missing = a->links ? linknames__misses(a->links) : 0,
		.enrollments = a->tally.enrollments,
		.enrollments_refused = a->tally.enrollments_refused,
	};
	rc->fanwatch_unresolved += a->perm_lost_before;
	if (a->perm) {
		struct permwatch_stats ps;

		permwatch__stats(a->perm, &ps);
		rc->perm_asked = ps.asked;
		rc->perm_denied = ps.denied;
		rc->perm_fail_safe = ps.fail_safe;
		rc->perm_p50_ns = ps.answer_p50_ns;
		rc->perm_p99_ns = ps.answer_p99_ns;
		rc->perm_max_ns = ps.answer_max_ns;
		rc->perm_wait_p50_ns = ps.entry_p50_ns;
		rc->perm_wait_p99_ns = ps.entry_p99_ns;
		rc->perm_wait_max_ns = ps.entry_max_ns;
		rc->fanwatch_unresolved += ps.lost;
	}
	if (a->collector) {
		struct sink_collector_stats cs;

		sink_collector__stats(a->collector, &cs);
		rc->spool_drops = cs.spool_full_drops + cs.other_drops;
	}
}

void run_emit__stats(struct agent *a)
{
	struct sensor_counters cnt;
	struct run_counters rc;
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Stats st;

	run_emit__counters(a, &cnt, &rc);
	run_events__stats(&rc, &st, &ev);
	agent__emit(a, &ev, false, 0);
	a->last_stats_ns = clock__mono_ns();
}

uint64_t run_emit__run_end(struct agent *a, int exit_status)
{
	struct sensor_counters cnt;
	struct run_counters rc;
	Buildwarden__V1__Event ev;
	Buildwarden__V1__RunEnd re;
	Buildwarden__V1__Incomplete inc;

	run_emit__counters(a, &cnt, &rc);
	run_events__run_end(&rc, exit_status, &re, &inc, &ev);
	agent__emit(a, &ev, false, 0);
	return re.drops;
}

void run_emit__losses(struct agent *a, struct run_losses *out)
{
	struct sensor_counters cnt;
	struct run_counters rc;

	run_emit__counters(a, &cnt, &rc);
	losses__from_counters(&rc, out);
}

size_t run_emit__layers(const struct agent *a, const char **lines, size_t max)
{
	size_t n = features__layers(&a->feat, a->ps.enforce, lines, max);

	/* What the watchers got from this kernel is known once they are set up. */
	if (a->ps.fw && n < max)
		lines[n++] = fanwatch__reports_pidfd(a->ps.fw)
				     ? "file changes: an actor gone before the read is not confused with its pid's next owner (FAN_REPORT_PIDFD)"
				     : "file changes: an actor gone before the read may be confused with its pid's next owner (no FAN_REPORT_PIDFD)";
	if (a->pm && n < max)
		lines[n++] = procmem__whole_fs(a->pm)
				     ? "/proc/PID/mem writes: seen on every mount of /proc's procfs (fanotify filesystem mark)"
				     : "/proc/PID/mem writes: seen on the /proc mount only (the kernel refused a filesystem mark)";
	return n;
}

static const char *run_emit__getenv(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

void run_emit__run_start(struct agent *a)
{
	const char *layers[MAX_LAYERS];
	struct ci_context ci;
	Buildwarden__V1__CiContext ci_pb;
	bool in_ci = ci_context__read(run_emit__getenv, NULL, &ci);
	struct run_start_info i = {
		.argv = a->argv,
		.policy_path = a->opts.policy_path,
		.policy_sha256 = a->ps.sha256,
		.enforce = a->ps.enforce,
		.layers = layers,
		.n_layers = run_emit__layers(a, layers, MAX_LAYERS),
		.ci = in_ci ? &ci_pb : NULL,
	};
	Buildwarden__V1__RunStart rs;
	Buildwarden__V1__Event ev;

	if (in_ci)
		ci_context__to_proto(&ci, &ci_pb);
	run_events__run_start(&i, &rs, &ev);
	agent__emit(a, &ev, false, 0);
}
