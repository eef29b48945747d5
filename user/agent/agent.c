/* The agent's lifecycle: start everything in order, loop, finish the run, free. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/guard.h"
#include "agent/losses.h"
#include "agent/notify.h"
#include "agent/policy_load.h"
#include "base/clock.h"
#include "base/hex.h"
#include "base/log.h"
#include "transport/sink_file.h"

#define DEFAULT_SPOOL_DIR "/var/lib/buildwarden/spool"


/* ---- start and stop ---- */

static void agent__make_run_id(char out[33])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		uint64_t t = (uint64_t)clock__real_ns() ^ (uint64_t)getpid();

		memcpy(r, &t, 8);
		memcpy(r + 8, &t, 8);
	}
	hex__encode(r, sizeof(r), out);
}

static void agent__free(struct agent *a)
{
	if (!a)
		return;
	run_guard__finish(a->guard);
	enroll_server__close(a->enroll);
	perm__stop(a);
	emitter__close(&a->em);
	fanwatch__free(a->ps.fw);
	procmem__free(a->pm);
	execguard__free(a->xg); /* before the sensor: its thread looks processes up */
	resolver__stop(a->resolver); /* before the sensor: it writes the sensor's maps */
	if (a->opts.detach_after_exit)
		sensor__close_after_exit(a->sensor);
	else
		sensor__close(a->sensor);
	procinfo__free(a->pi);
	linknames__free(a->links);
	policy__free(a->ps.policy);
	loop__free(a->loop);
	free(a->arena);
	free(a);
}

static int agent__proc_lookup(void *ctx, pid_t pid, struct bw_proc *out)
{
	return sensor__proc_lookup(ctx, pid, out);
}

static int agent__proc_lookup_exited(void *ctx, pid_t pid, struct bw_proc *out)
{
	return sensor__proc_lookup_exited(ctx, pid, out);
}

static int agent__open_sinks(struct agent *a, struct agent_result *res)
{
	const struct agent_opts *o = &a->opts;
	char err[512];
	int e;

	if (o->events_path) {
		const struct sink_file_rotation rot = {
			.max_size = o->events_max_size,
			.max_files = o->events_max_files,
		};
		/* "-" (stdout) cannot be renamed or reopened */
		struct sink_file *f = strcmp(o->events_path, "-") == 0 ? sink_file__open(o->events_path, &e)
					: sink_file__open_rotating(o->events_path, &rot, &e);

		if (!f) {
			log__line(stderr, "buildwarden: ", "cannot create the events file '%s': %s", o->events_path,
				  sink_file__error(e));
			res->failure = AGENT_FAIL_EVENTS_FILE;
			return e < 0 ? e : -e;
		}
		a->file_sink = emitter__add(&a->em, sink_file__sink(f));
		a->events_file = f;
	}
	if (o->collector) {
		struct collector_client_opts co = {
			.address = o->collector,
			.spool_dir = o->spool_dir ? o->spool_dir : DEFAULT_SPOOL_DIR,
			.tls_cert = o->tls_cert,
			.tls_key = o->tls_key,
			.tls_ca = o->tls_ca,
			.insecure = o->insecure,
			.agent_id = o->agent_id,
			.host = a->em.host,
			.run_id = a->em.run_id,
			.chain_key_path = o->chain_key,
			.spool_max_bytes = o->spool_max,
			.drain_timeout_ms = o->drain_timeout_ms,
		};

		a->collector = sink_collector__open(&co, err, sizeof(err));
		if (!a->collector) {
			log__line(stderr, "buildwarden: ", "cannot set up the collector transport: %s", err);
			res->failure = AGENT_FAIL_TRANSPORT;
			return -EINVAL;
		}
		emitter__add(&a->em, sink_collector__sink(a->collector));
	}
	return 0;
}

static int agent__start(const struct agent_opts *o, struct agent **out, struct agent_result *res)
{
	struct proc_source src;
	struct agent *a;
	sigset_t mask;
	char host[256] = "", run_id[33], err[512];
	int e;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a) {
		res->failure = AGENT_FAIL_INTERNAL;
		return -ENOMEM;
	}
	a->opts = *o;
	a->file_sink = -1;
	e = policy_load__file(o->policy_path, &a->ps.policy, a->ps.sha256);
	if (e) {
		res->failure = AGENT_FAIL_POLICY;
		goto fail;
	}
	a->ps.enforce = agent_opts__enforce(o, a->ps.policy);
	gethostname(host, sizeof(host) - 1);
	agent__make_run_id(run_id);
	emitter__init(&a->em, host, run_id);
	a->last_stats_ns = clock__mono_ns();
	a->arena = malloc(sizeof(*a->arena));
	if (!a->arena) {
		res->failure = AGENT_FAIL_INTERNAL;
		e = -ENOMEM;
		goto fail;
	}

	features__probe(&a->feat);
	res->failure = AGENT_FAIL_SENSOR;
	e = sensor__open(&a->feat, a->ps.policy, a->ps.enforce, dispatch__record, a,
			 &a->sensor, err, sizeof(err));
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot start the sensor: %s", err);
		goto fail;
	}
	if (a->ps.policy->n_net_allow_names) {
		e = resolver__start(a->sensor, a->ps.policy, o->dns_upstream, &a->resolver, err,
				    sizeof(err));
		if (e) {
			log__line(stderr, "buildwarden: ", "cannot resolve the build's names: %s", err);
			goto fail;
		}
	}
	e = sources__watch_trees(a, a->ps.policy, &a->ps.fw);
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot watch the protected trees: %s", strerror(-e));
		goto fail;
	}
	a->guard_enforce = a->ps.enforce;
	write_guard__attach(a, a->ps.fw, a->ps.enforce);
	perm__start(a, a->ps.fw);
	e = procmem__new("/proc", &a->pm);
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot watch writes to /proc/PID/mem: %s", strerror(-e));
		goto fail;
	}
	/* Writes through that procfs are the mark's; opens through any other (mounted
	 * later) stay the kernel's to report. */
	{
		struct stat pst;

		if (stat("/proc", &pst) == 0)
			e = sensor__procfs_watched(a->sensor, pst.st_dev, procmem__whole_fs(a->pm));
		else
			e = -errno;
		if (e) {
			log__line(stderr, "buildwarden: ", "cannot tell the sensor which procfs is watched: %s",
				  strerror(-e));
			goto fail;
		}
	}
	res->failure = AGENT_FAIL_INTERNAL;
	src.lookup = agent__proc_lookup;
	src.lookup_exited = agent__proc_lookup_exited;
	src.ctx = a->sensor;
	a->pi = procinfo__new(&src);
	a->links = linknames__new();
	if (!a->pi || !a->links) {
		e = -ENOMEM;
		goto fail;
	}
	e = agent__open_sinks(a, res);
	if (e)
		goto fail;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	e = loop__new(&mask, &a->loop);
	if (!e)
		e = sources__add(a);
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot set up the event loop: %s", strerror(-e));
		goto fail;
	}
	e = exec_guard__apply(a, a->ps.policy, a->ps.enforce);
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot guard the exec of scripts in exec.deny: %s",
			  strerror(-e));
		goto fail;
	}
	/* Last: a client that can enroll finds an agent whose guards are all up. */
	if (o->enroll_socket) {
		res->failure = AGENT_FAIL_SENSOR;
		e = enroll_server__open(o->enroll_socket, &a->enroll, err, sizeof(err));
		if (!e)
			e = sources__add_enroll(a);
		if (e) {
			log__line(stderr, "buildwarden: ", "cannot serve enrolment: %s", e == -ENOSPC ? "no loop slot" : err);
			goto fail;
		}
	}
	res->failure = AGENT_OK;
	*out = a;
	return 0;
fail:
	agent__free(a);
	return e;
}

static void agent__summary(struct agent *a, uint64_t drops, uint64_t not_written,
			   const struct run_losses *losses)
{
	const char *layers[MAX_LAYERS];
	struct sink_collector_stats cs;
	struct permwatch_stats ps;
	struct rusage ru;
	struct tally_summary s = {
		.what = a->argv ? "build finished" : "agent stopped",
		.run_id = a->em.run_id,
		.enforce = a->ps.enforce,
		.drops = drops,
		.not_written = not_written,
		.not_watched = a->ps.fw ? fanwatch__skipped(a->ps.fw) : 0,
		.collector = a->collector ? a->opts.collector : NULL,
		.collector_stats = &cs,
		.layers = layers,
		.n_layers = run_emit__layers(a, layers, MAX_LAYERS),
		.losses = losses,
	};

	if (a->opts.quiet && !a->tally.violations && !drops && !losses__any(losses))
		return;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		s.have_cpu = true;
		s.cpu_user_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		s.cpu_system_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	if (a->collector)
		sink_collector__stats(a->collector, &cs);
	if (a->perm) {
		permwatch__stats(a->perm, &ps);
		s.perm = &ps;
	}
	if (a->xg) {
		s.exec_guard = true;
		s.exec_guard_asked = execguard__answered(a->xg);
	}
	tally__print_summary(&a->tally, &s, stderr);
}

/* A person at a terminal waits on the final upload (a slow or unreachable collector):
 * say where it is, on one line rewritten in place, and end it when done. */
static void agent__drain_progress(const struct sink_collector_progress *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "\rbuildwarden: sending to the collector (%s): %" PRIu64 " of %" PRIu64
		" events acknowledged, %u earlier run%s waiting, %u s\033[K",
		p->connected ? "connected" : "not connected", p->acked_seq, p->last_seq,
		p->pending_runs, p->pending_runs == 1 ? "" : "s", p->waited_ms / 1000);
	if (p->done)
		fputs(p->acked_seq >= p->last_seq ? ", done\n" : ", out of time: the rest stays in the spool\n", stderr);
	fflush(stderr);
}

static void agent__finish(struct agent *a, int status, struct agent_result *res)
{
	struct run_losses losses;
	uint64_t drops, not_written;

	sources__drain_all(a);
	run_emit__stats(a);
	drops = run_emit__run_end(a, status);
	/* the events the writes lost; a failed last flush is reported on its own */
	not_written = emitter__errors(&a->em, a->file_sink);
	emitter__flush(&a->em);
	/* Bounded: the build is over, delivery gets drain_timeout_ms; what is not
	 * acknowledged by then stays in the spool for the next start. */
	if (a->collector)
		sink_collector__drain_progress(a->collector, a->opts.drain_timeout_ms,
					       a->opts.progress ? agent__drain_progress : NULL, NULL);
	/* after the drain: the spool may have dropped what the collector did not take */
	run_emit__losses(a, &losses);
	agent__summary(a, drops, not_written, &losses);
	res->status = status;
	res->violations = a->tally.violations;
	res->incomplete = losses__any(&losses);
	res->not_written = not_written;
	/* the file sink's own count: a write or the last flush failed */
	res->events_incomplete = a->file_sink >= 0 && emitter__errors(&a->em, a->file_sink) > 0;
}

/* ---- the two ways to run ---- */

static int agent__follow_build(struct agent *a, const struct agent_build *b,
			       struct agent_result *res)
{
	bool child_done = false;
	int status = 0, e;
	pid_t child;

	a->argv = b->argv;
	/* Before the subreaper bit: the guard's watchdog must not be one of our children. */
	{
		char why[256];

		a->guard = run_guard__start(a->feat.cgroup2_path, a->em.run_id, why, sizeof(why));
		if (!a->guard)
			log__line(stderr, "buildwarden: ", "warning: the build is not killed if the agent dies: %s", why);
	}
	/* Orphaned descendants (a daemonizing build step) come back to us, so waitpid tells
	 * us when the last one is gone. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	run_emit__run_start(a);
	res->failure = AGENT_FAIL_INTERNAL;
	child = b->spawn(b->ctx);
	if (child < 0)
		return (int)child;
	if (a->guard && (e = run_guard__enter(a->guard, child))) {
		log__line(stderr, "buildwarden: ", "warning: the build is not killed if the agent dies: cannot enter its cgroup: %s",
			  strerror(-e));
		run_guard__finish(a->guard);
		a->guard = NULL;
	}
	e = sensor__add_build_root(a->sensor, child);
	if (e) {
		log__line(stderr, "buildwarden: ", "cannot enter the build in the process table: %s", strerror(-e));
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		res->failure = AGENT_FAIL_SENSOR;
		return e;
	}
	e = b->release(b->ctx);
	if (e)
		return e;
	res->failure = AGENT_OK;

	for (;;) {
		unsigned sigs = sources__poll(a);
		int st;
		pid_t p;

		if (sigs & ((1u << SIGINT) | (1u << SIGTERM) | (1u << SIGHUP)))
			kill(child, (sigs & (1u << SIGINT)) ? SIGINT : SIGTERM);
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == child) {
				child_done = true;
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			}
		}
		if (p < 0 && errno == ECHILD && child_done)
			break;
	}
	/* every build process is reaped: the guard's cgroup is empty */
	run_guard__finish(a->guard);
	a->guard = NULL;
	agent__finish(a, status, res);
	return 0;
}

/* SIGHUP: the events file at its path again, so logrotate (or anyone moving the file
 * away) needs no restart. Events go on into the old file when the new one fails. */
static void agent__reopen_events(struct agent *a)
{
	int e;

	if (!a->events_file)
		return;
	e = sink_file__reopen(a->events_file);
	if (e)
		log__line(stderr, "buildwarden: ", "SIGHUP: cannot reopen the events file '%s': %s", a->opts.events_path,
			  strerror(-e));
	else
		log__line(stderr, "buildwarden: ", "SIGHUP: events file '%s' reopened", a->opts.events_path);
}

static int agent__serve(struct agent *a, struct agent_result *res)
{
	int e;

	run_emit__run_start(a);
	log__line(stderr, "buildwarden: ", "agent running (run %s); SIGHUP reloads, SIGTERM stops", a->em.run_id);
	/* everything is attached: a Type=notify unit is started now, not at exec */
	e = notify__send("READY=1");
	if (e)
		log__line(stderr, "buildwarden: ", "cannot tell systemd the agent is ready: %s", strerror(-e));
	for (;;) {
		unsigned sigs = sources__poll(a);

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (sigs & (1u << SIGHUP)) {
			/* what happened before the signal goes into the file being rotated away */
			sources__drain_all(a);
			agent__reopen_events(a);
			sources__reload(a);
		}
		if (sigs & ((1u << SIGINT) | (1u << SIGTERM)))
			break;
	}
	agent__finish(a, 0, res);
	return 0;
}

int agent__run(const struct agent_opts *o, const struct agent_build *build,
	       struct agent_result *res)
{
	struct agent *a;
	int e;

	memset(res, 0, sizeof(*res));
	e = agent__start(o, &a, res);
	if (e)
		return e;
	e = build ? agent__follow_build(a, build, res) : agent__serve(a, res);
	agent__free(a);
	return e;
}
