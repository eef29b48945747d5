/* What the agent waits on: the ring buffer, the fanotify queues of the protected trees
 * and of /proc, and signals (loop.h); what it does when one is ready; the periodic
 * work of each pass; and the policy reload that swaps the trees' watcher. */
#include <stdio.h>
#include <string.h>

#include "agent/agent_int.h"
#include "base/clock.h"
#include "base/log.h"

#define STATS_INTERVAL_NS (10 * NSEC_PER_SEC)
#define POLL_MS 100
/* A runner service that restarts gets a new cgroup id: its build roots are found
 * again within this long (until then its execs are not the build: the safe side). */
#define ROOT_CGROUPS_INTERVAL_NS (1 * NSEC_PER_SEC)

static void sources__on_ring(void *ctx)
{
	struct agent *a = ctx;

	sensor__drain(a->sensor);
}

static void sources__on_procmem(void *ctx)
{
	struct agent *a = ctx;

	procmem__process(a->pm, dispatch__proc_mem_write, a);
}

static void sources__on_fanotify(void *ctx)
{
	struct agent *a = ctx;

	/* What the kernel recorded before this change (the exec of its actor, say) is in
	 * the ring buffer already: emit it first, so seq follows time. */
	sensor__drain(a->sensor);
	fanwatch__process(a->ps.fw, dispatch__file_change, a);
}

/* `buildwarden enroll`: the process becomes a build root in the kernel's table. */
static int sources__enroll_pid(void *ctx, pid_t pid, pid_t peer)
{
	struct agent *a = ctx;

	(void)peer;
	return sensor__enroll(a->sensor, pid);
}

/* Every request, done or refused, is an event of the run and counted: the security
 * team sees who designated a build root, and who tried to. */
static void sources__enroll_report(void *ctx, const struct enroll_outcome *o)
{
	struct agent *a = ctx;
	struct enroll_info i = { .pid = o->pid, .caller_pid = o->caller_pid,
				 .caller_uid = (uint32_t)o->caller_uid, .caller_exe = o->caller_exe,
				 .refused = o->err != 0,
				 .reason = o->msg };
	Buildwarden__V1__Event ev;
	struct event_ctx c = dispatch__ctx(a);

	if (o->err)
		a->tally.enrollments_refused++;
	else
		a->tally.enrollments++;
	buildwarden__v1__event__init(&ev);
	event_build__enroll(&c, &i, &ev);
	agent__emit(a, &ev, false, 0);
}

static void sources__on_enroll(void *ctx)
{
	struct agent *a = ctx;

	/* What the process did before this moment is in the ring: read as it was. */
	sensor__drain(a->sensor);
	enroll_server__serve(a->enroll, sources__enroll_pid, sources__enroll_report, a);
}

int sources__add_enroll(struct agent *a)
{
	return loop__add(a->loop, enroll_server__fd(a->enroll), sources__on_enroll, a);
}

int sources__add(struct agent *a)
{
	int e = loop__add(a->loop, sensor__ring_fd(a->sensor), sources__on_ring, a);

	if (!e)
		e = loop__add(a->loop, procmem__fd(a->pm), sources__on_procmem, a);
	if (!e && a->ps.fw)
		e = loop__add(a->loop, fanwatch__fd(a->ps.fw), sources__on_fanotify, a);
	if (!e && a->perm)
		e = loop__add(a->loop, permwatch__fd(a->perm), perm__on_ready, a);
	return e;
}

unsigned sources__poll(struct agent *a)
{
	unsigned sigs = loop__wait(a->loop, POLL_MS);

	/* Records submitted without a wake-up (the common, batched case) are read here. */
	sensor__drain(a->sensor);
	/* At most one pass (100 ms) of events sits in a buffer if the agent is killed. */
	emitter__flush(&a->em);
	if (clock__mono_ns() - a->last_stats_ns >= STATS_INTERVAL_NS)
		run_emit__stats(a);
	if (!a->argv && clock__mono_ns() - a->last_rootcg_ns >= ROOT_CGROUPS_INTERVAL_NS) {
		a->last_rootcg_ns = clock__mono_ns();
		sensor__refresh_root_cgroups(a->sensor);
	}
	return sigs;
}

void sources__drain_all(struct agent *a)
{
	exec_guard__drain(a);
	sensor__drain(a->sensor);
	procmem__process(a->pm, dispatch__proc_mem_write, a);
	perm__on_ready(a);
	if (a->ps.fw)
		while (fanwatch__process(a->ps.fw, dispatch__file_change, a) > 0)
			;
	/* A file change may have been attributed to a process whose exec is still in the
	 * ring buffer: one more pass keeps both. */
	sensor__drain(a->sensor);
}

/* ---- SIGHUP ---- */

/* A link()'s new name is recorded at syscall entry, before the change fanotify reports:
 * draining the ring after each fanotify read makes it known before the LINK is built. */
static void sources__sync_ring(void *ctx)
{
	struct agent *a = ctx;

	sensor__drain_sync(a->sensor);
}

int sources__watch_trees(void *ctx, const struct bw_policy *p, struct fanwatch **out)
{
	struct agent *a = ctx;
	const char *paths[BW_POLICY_MAX_TREES];
	size_t n = p->n_protect < BW_POLICY_MAX_TREES ? p->n_protect : BW_POLICY_MAX_TREES;
	int err;

	*out = NULL;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		paths[i] = p->protect[i].path;
	/* enforce mode with permission events: the trees also get the permission group */
	err = fanwatch__new_perm(paths, n, agent_opts__enforce(&a->opts, p) && a->feat.fanotify_perm,
				 out);
	if (!err)
		fanwatch__set_sync(*out, sources__sync_ring, ctx);
	return err;
}

static int sources__apply(void *ctx, const struct bw_policy *p, bool enforce, char *err,
			  size_t errlen)
{
	struct agent *a = ctx;
	struct resolver *started = NULL;
	int e;

	/* the first name rule: the resolver starts before the kernel has the new policy */
	if (p->n_net_allow_names && !a->resolver &&
	    (e = resolver__start(a->sensor, p, a->opts.dns_upstream, &started, err, errlen)))
		return e;
	e = sensor__apply_policy(a->sensor, p, enforce, err, errlen);
	if (e) {
		resolver__stop(started);
		return e;
	}
	if (started)
		a->resolver = started;
	else if (a->resolver && resolver__set_policy(a->resolver, p))
		/* cannot happen but for memory: the old names go on, reported */
		log__line(stderr, "buildwarden: ", "warning: the resolver keeps the old name rules: out of memory");
	a->guard_enforce = enforce;
	if (!e && (e = exec_guard__apply(a, p, enforce)))
		snprintf(err, errlen, "cannot guard the exec of scripts in exec.deny: %s",
			 strerror(-e));
	return e;
}

static void sources__switch_watch(void *ctx, struct fanwatch *old, struct fanwatch *nfw)
{
	struct agent *a = ctx;

	write_guard__detach(old);
	/* The new marks replace the old set; between the two, nothing is guarded. */
	write_guard__attach(a, nfw, a->guard_enforce);
	/* Both groups ask until the old one closes: the new answers start first. */
	perm__on_ready(a);
	perm__stop(a);
	perm__start(a, nfw);
	if (old) {
		fanwatch__process(old, dispatch__file_change, a);
		loop__del(a->loop, fanwatch__fd(old));
		fanwatch__free(old);
	}
	if (nfw)
		loop__add(a->loop, fanwatch__fd(nfw), sources__on_fanotify, a);
}

void sources__reload(struct agent *a)
{
	const struct reload_ops ops = {
		.watch = sources__watch_trees,
		.apply = sources__apply,
		.switch_watch = sources__switch_watch,
		.ctx = a,
	};

	reload__policy(&a->ps, &a->opts, &ops);
}
