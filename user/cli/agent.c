#include "cli/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/exitcodes.h"
#include "pipeline/event_build.h"
#include "pipeline/records.h"
#include "sensor/fanwatch.h"
#include "sensor/features.h"
#include "sensor/loader.h"
#include "sensor/procmem.h"
#include "transport/sink_collector.h"
#include "transport/sink_file.h"

#define STATS_INTERVAL_NS (10ull * 1000000000ull)
#define MAX_RULES_COUNTED 64

struct rule_count {
	char rule[160];
	uint64_t n;
};

struct agent {
	struct agent_opts opts;
	struct bw_policy *policy;
	char policy_sha256[65];
	bool enforce;
	struct features feat;
	struct sensor *sensor;
	struct fanwatch *fw;
	struct procmem *pm;
	struct procinfo *pi;
	struct linknames *links;
	struct sink_file *file;
	struct sink file_sink;
	bool have_file_sink;
	struct sink_collector *collector;
	struct sink collector_sink;
	uint64_t collector_write_errors;
	struct arena *arena;
	int sigfd, epfd;
	char host[256];
	char run_id[33];
	uint64_t seq;
	uint64_t events, violations, unattributed, bad_records, sink_errors;
	uint64_t by_kind[4]; /* exec, file, connect, process access */
	struct rule_count rules[MAX_RULES_COUNTED];
	size_t n_rules;
	uint64_t last_stats_ns;
	int64_t mono_to_real_ns; /* added to a kernel timestamp (CLOCK_MONOTONIC) */
	char **argv;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int agent__load_policy(const char *path, struct bw_policy **out)
{
	static const char builtin[] = "version: 1\n";
	struct bw_diags diags;
	int err;

	memset(&diags, 0, sizeof(diags));
	if (path)
		err = policy__load_file(path, 0, out, &diags);
	else
		err = policy__parse(builtin, sizeof(builtin) - 1, "<built-in>", "/", 0, out, &diags);
	if (err) {
		policy__print_diags(&diags, path ? path : "<built-in>", stderr);
		if (diags.n == 0)
			fprintf(stderr, "%s: cannot load the policy: %s\n", path ? path : "<built-in>",
				strerror(-err));
		return EXIT_POLICY;
	}
	return 0;
}

static void sha256_file(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[8192];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (!path || !(f = fopen(path, "rbe")))
		return;
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			EVP_DigestUpdate(ctx, buf, n);
		if (EVP_DigestFinal_ex(ctx, md, &mdlen))
			for (unsigned i = 0; i < mdlen && i < 32; i++)
				snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	EVP_MD_CTX_free(ctx);
	fclose(f);
}

static void count_rule(struct agent *a, const char *rule)
{
	for (size_t i = 0; i < a->n_rules; i++) {
		if (strcmp(a->rules[i].rule, rule) == 0) {
			a->rules[i].n++;
			return;
		}
	}
	if (a->n_rules < MAX_RULES_COUNTED) {
		snprintf(a->rules[a->n_rules].rule, sizeof(a->rules[0].rule), "%s", rule);
		a->rules[a->n_rules++].n = 1;
	}
}

/* The one place events get their seq: gap-free, in the order they are written.
 * ktime is when the kernel saw it (CLOCK_MONOTONIC), 0 for "now": events carry the time
 * they happened, not the time the agent got to them. */
static void emit(struct agent *a, Buildwarden__V1__Event *ev, bool violation, uint64_t ktime)
{
	ev->seq = ++a->seq;
	ev->time_ns = ktime ? (uint64_t)((int64_t)ktime + a->mono_to_real_ns) : now_ns(CLOCK_REALTIME);
	ev->host = a->host;
	ev->run_id = a->run_id;
	a->events++;
	if (violation) {
		a->violations++;
		if (ev->verdict && ev->verdict->rule)
			count_rule(a, ev->verdict->rule);
	}
	if (ev->process && !ev->process->attributed)
		a->unattributed++;
	if (a->have_file_sink && sink__write(&a->file_sink, ev))
		a->sink_errors++;
	/* The collector sink counts what it drops and tells the collector (Skip). */
	if (a->collector && sink__write(&a->collector_sink, ev))
		a->collector_write_errors++;
}

static struct event_ctx ctx_of(struct agent *a)
{
	struct event_ctx c = {
		.policy = a->policy,
		.pi = a->pi,
		.arena = a->arena,
		.links = a->links,
	};

	arena__reset(a->arena);
	return c;
}

static int on_record(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;
	Buildwarden__V1__Event ev;
	struct event_ctx c;
	bool violation;
	int type = records__check(data, size);

	if (type < 0) {
		a->bad_records++;
		return 0;
	}
	if (type == BW_EV_LINK_NAME) {
		linknames__note(a->links, data);
		return 0;
	}
	buildwarden__v1__event__init(&ev);
	c = ctx_of(a);
	switch (type) {
	case BW_EV_EXEC:
		violation = event_build__exec(&c, data, &ev);
		a->by_kind[0]++;
		break;
	case BW_EV_CONNECT:
		violation = event_build__connect(&c, data, &ev);
		a->by_kind[2]++;
		break;
	default:
		violation = event_build__proc_access(&c, data, &ev);
		a->by_kind[3]++;
		break;
	}
	emit(a, &ev, violation, ((const struct bw_event_hdr *)data)->ktime);
	return 0;
}

static Buildwarden__V1__FileOp file_op(enum fw_op op)
{
	switch (op) {
	case FW_WRITE:
		return BUILDWARDEN__V1__FILE_OP__WRITE;
	case FW_CREATE:
		return BUILDWARDEN__V1__FILE_OP__CREATE;
	case FW_UNLINK:
		return BUILDWARDEN__V1__FILE_OP__UNLINK;
	case FW_RENAME:
		return BUILDWARDEN__V1__FILE_OP__RENAME;
	case FW_ATTRIB:
		return BUILDWARDEN__V1__FILE_OP__ATTRIB;
	case FW_MKDIR:
		return BUILDWARDEN__V1__FILE_OP__MKDIR;
	case FW_RMDIR:
		return BUILDWARDEN__V1__FILE_OP__RMDIR;
	case FW_LINK_COUNT:
		return BUILDWARDEN__V1__FILE_OP__LINK;
	case FW_CLOSE_WRITE:
		return BUILDWARDEN__V1__FILE_OP__OPEN_WRITE;
	}
	return BUILDWARDEN__V1__FILE_OP__FILE_OP_UNSPECIFIED;
}

static void on_file_change(const struct fw_event *fe, void *ctx)
{
	struct agent *a = ctx;
	struct file_change fc = {
		.op = file_op(fe->op),
		.pid = fe->pid,
		.tree = fe->tree,
		.path = fe->path,
		.new_path = fe->new_path ? fe->new_path : fe->outside_path,
	};
	Buildwarden__V1__Event ev;
	struct event_ctx c = ctx_of(a);
	bool violation;

	buildwarden__v1__event__init(&ev);
	violation = event_build__file(&c, &fc, &ev);
	a->by_kind[1]++;
	emit(a, &ev, violation, 0);
}

/* A write to a build process's /proc/PID/mem by a process outside the build: the same
 * verdict the kernel gives ptrace and process_vm_writev (bpf/access.bpf.c). */
static void on_proc_mem_write(pid_t writer, pid_t target, void *ctx)
{
	struct agent *a = ctx;
	struct bw_proc_access_event r;
	struct bw_proc wp, tp;
	Buildwarden__V1__Event ev;
	struct event_ctx c;

	if (writer == target || sensor__proc_lookup(a->sensor, target, &tp) ||
	    !(tp.flags & BW_PROC_IN_BUILD))
		return;
	if (sensor__proc_lookup(a->sensor, writer, &wp) == 0 && (wp.flags & BW_PROC_IN_BUILD))
		return;
	memset(&r, 0, sizeof(r));
	r.hdr.type = BW_EV_PROC_ACCESS;
	r.hdr.version = BW_ABI_VERSION;
	r.hdr.size = sizeof(r);
	r.pid = (uint32_t)writer;
	r.target_pid = (uint32_t)target;
	r.kind = BW_ACCESS_PROC_MEM;
	buildwarden__v1__event__init(&ev);
	c = ctx_of(a);
	event_build__proc_access(&c, &r, &ev);
	a->by_kind[3]++;
	emit(a, &ev, true, 0);
}

static uint64_t ringbuf_drops(struct agent *a, struct sensor_counters *cnt)
{
	if (sensor__read_counters(a->sensor, cnt))
		return 0;
	return cnt->total[BW_CNT_RINGBUF_DROPS];
}

static void emit_stats(struct agent *a)
{
	struct sensor_counters cnt;
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Stats st;

	buildwarden__v1__event__init(&ev);
	buildwarden__v1__stats__init(&st);
	st.ringbuf_drops = ringbuf_drops(a, &cnt);
	st.ringbuf_drops_per_cpu = cnt.ringbuf_drops_per_cpu;
	st.n_ringbuf_drops_per_cpu = cnt.ncpu;
	st.events = a->events;
	st.fanotify_overflows = (a->fw ? fanwatch__overflows(a->fw) : 0) +
				(a->pm ? procmem__overflows(a->pm) : 0);
	st.proc_table_failures = cnt.total[BW_CNT_PROC_TABLE_FAIL];
	st.unattributed = a->unattributed;
	st.args_read_failures = cnt.total[BW_CNT_ARGS_READ_FAIL];
	st.depth_exceeded = cnt.total[BW_CNT_DEPTH_EXCEEDED] + (a->fw ? fanwatch__skipped(a->fw) : 0);
	if (a->collector) {
		struct sink_collector_stats cs;

		sink_collector__stats(a->collector, &cs);
		st.spool_full = cs.spool_full_drops + cs.other_drops;
	}
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_STATS;
	ev.stats = &st;
	emit(a, &ev, false, 0);
	a->last_stats_ns = now_ns(CLOCK_MONOTONIC);
}

/* A link()'s new name is recorded at syscall entry, before the change fanotify reports:
 * draining the ring after each fanotify read makes it known before the LINK is built. */
static void sync_ring(void *ctx)
{
	struct agent *a = ctx;

	sensor__drain_sync(a->sensor);
}

static int open_trees(struct agent *a, const struct bw_policy *p, struct fanwatch **out)
{
	const char *paths[BW_POLICY_MAX_TREES];
	size_t n = p->n_protect < BW_POLICY_MAX_TREES ? p->n_protect : BW_POLICY_MAX_TREES;
	int err;

	*out = NULL;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		paths[i] = p->protect[i].path;
	err = fanwatch__new(paths, n, out);
	if (!err)
		fanwatch__set_sync(*out, sync_ring, a);
	return err;
}

static int proc_lookup(void *ctx, pid_t pid, struct bw_proc *out)
{
	return sensor__proc_lookup(ctx, pid, out);
}

static void make_run_id(char out[33])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		uint64_t t = now_ns(CLOCK_REALTIME) ^ (uint64_t)getpid();

		memcpy(r, &t, 8);
		memcpy(r + 8, &t, 8);
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static int epoll_add(int epfd, int fd, uint32_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

enum { TAG_RING = 1, TAG_FANOTIFY, TAG_SIGNAL, TAG_PROCMEM };

int agent__start(const struct agent_opts *opts, struct agent **out)
{
	struct proc_source src;
	struct agent *a;
	sigset_t mask;
	char err[512];
	int e, rc;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return EXIT_SOFTWARE;
	a->opts = *opts;
	a->sigfd = a->epfd = -1;
	rc = agent__load_policy(opts->policy_path, &a->policy);
	if (rc)
		goto fail;
	sha256_file(opts->policy_path, a->policy_sha256);
	a->enforce = (opts->mode >= 0 ? (enum bw_mode)opts->mode : a->policy->mode) == BW_MODE_ENFORCE;
	gethostname(a->host, sizeof(a->host) - 1);
	make_run_id(a->run_id);
	a->last_stats_ns = now_ns(CLOCK_MONOTONIC);
	a->mono_to_real_ns = (int64_t)now_ns(CLOCK_REALTIME) - (int64_t)now_ns(CLOCK_MONOTONIC);
	a->arena = malloc(sizeof(*a->arena));
	if (!a->arena) {
		rc = EXIT_SOFTWARE;
		goto fail;
	}

	features__probe(&a->feat);
	e = sensor__open(&a->feat, a->policy, on_record, a, &a->sensor, err,
			 sizeof(err));
	if (e) {
		fprintf(stderr, "buildwarden: cannot start the sensor: %s\n", err);
		rc = EXIT_SENSOR;
		goto fail;
	}
	e = open_trees(a, a->policy, &a->fw);
	if (e) {
		fprintf(stderr, "buildwarden: cannot watch the protected trees: %s\n", strerror(-e));
		rc = EXIT_SENSOR;
		goto fail;
	}
	e = procmem__new("/proc", &a->pm);
	if (e) {
		fprintf(stderr, "buildwarden: cannot watch writes to /proc/PID/mem: %s\n", strerror(-e));
		rc = EXIT_SENSOR;
		goto fail;
	}
	src.lookup = proc_lookup;
	src.ctx = a->sensor;
	a->pi = procinfo__new(&src);
	a->links = linknames__new();
	if (!a->pi || !a->links) {
		rc = EXIT_SOFTWARE;
		goto fail;
	}
	if (opts->events_path) {
		a->file = sink_file__open(opts->events_path, &e);
		if (!a->file) {
			fprintf(stderr, "buildwarden: cannot create the events file '%s': %s\n",
				opts->events_path, strerror(e < 0 ? -e : e));
			rc = EXIT_CANTCREAT;
			goto fail;
		}
		sink_file__as_sink(a->file, &a->file_sink);
		a->have_file_sink = true;
	}
	if (opts->collector) {
		struct collector_client_opts co = {
			.address = opts->collector,
			.spool_dir = opts->spool_dir ? opts->spool_dir : "/var/lib/buildwarden/spool",
			.tls_cert = opts->tls_cert,
			.tls_key = opts->tls_key,
			.tls_ca = opts->tls_ca,
			.insecure = opts->insecure,
			.agent_id = opts->agent_id,
			.host = a->host,
			.run_id = a->run_id,
			.chain_key_path = opts->chain_key,
			.spool_max_bytes = opts->spool_max,
			.drain_timeout_ms = opts->drain_timeout_ms,
		};

		a->collector = sink_collector__open(&co, err, sizeof(err));
		if (!a->collector) {
			fprintf(stderr, "buildwarden: cannot set up the collector transport: %s\n", err);
			rc = EXIT_USAGE;
			goto fail;
		}
		sink_collector__as_sink(a->collector, &a->collector_sink);
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->sigfd < 0 || a->epfd < 0 || epoll_add(a->epfd, sensor__ring_fd(a->sensor), TAG_RING) ||
	    epoll_add(a->epfd, a->sigfd, TAG_SIGNAL) ||
	    epoll_add(a->epfd, procmem__fd(a->pm), TAG_PROCMEM) ||
	    (a->fw && epoll_add(a->epfd, fanwatch__fd(a->fw), TAG_FANOTIFY))) {
		fprintf(stderr, "buildwarden: cannot set up the event loop: %s\n", strerror(errno));
		rc = EXIT_SOFTWARE;
		goto fail;
	}
	*out = a;
	return 0;
fail:
	agent__free(a);
	return rc;
}

static void emit_run_start(struct agent *a, char *const argv[])
{
	const char *layers[16];
	size_t n_layers = features__layers(&a->feat, a->enforce, layers, 16);
	Buildwarden__V1__RunStart rs;
	Buildwarden__V1__Event ev;
	size_t argc = 0;

	while (argv && argv[argc])
		argc++;
	buildwarden__v1__event__init(&ev);
	buildwarden__v1__run_start__init(&rs);
	rs.argv = (char **)argv;
	rs.n_argv = argc;
	rs.policy_path = (char *)(a->opts.policy_path ? a->opts.policy_path : "<built-in>");
	rs.policy_sha256 = a->policy_sha256;
	rs.mode = (char *)(a->enforce ? "enforce" : "audit");
	rs.agent_version = (char *)BW_VERSION;
	rs.schema_version = 1;
	rs.layers = (char **)layers;
	rs.n_layers = n_layers;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
	ev.run_start = &rs;
	emit(a, &ev, false, 0);
}

static uint64_t emit_run_end(struct agent *a, int exit_status)
{
	struct sensor_counters cnt;
	Buildwarden__V1__RunEnd re;
	Buildwarden__V1__Event ev;

	buildwarden__v1__event__init(&ev);
	buildwarden__v1__run_end__init(&re);
	re.exit_status = exit_status;
	re.events = a->events;
	re.violations = a->violations;
	re.drops = ringbuf_drops(a, &cnt) + (a->fw ? fanwatch__overflows(a->fw) : 0) +
		   (a->pm ? procmem__overflows(a->pm) : 0);
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &re;
	emit(a, &ev, false, 0);
	return re.drops;
}

static void drain_all(struct agent *a)
{
	sensor__drain(a->sensor);
	procmem__process(a->pm, on_proc_mem_write, a);
	if (a->fw)
		while (fanwatch__process(a->fw, on_file_change, a) > 0)
			;
	/* A file change may have been attributed to a process whose exec is still in the
	 * ring buffer: one more pass keeps both. */
	sensor__drain(a->sensor);
}

/* Handles ready descriptors once; returns the signals seen as a bit set. */
static unsigned poll_once(struct agent *a, int timeout_ms)
{
	struct epoll_event evs[8];
	unsigned sigs = 0;
	int n = epoll_wait(a->epfd, evs, 8, timeout_ms);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == TAG_RING) {
			sensor__drain(a->sensor);
		} else if (evs[i].data.u32 == TAG_PROCMEM) {
			procmem__process(a->pm, on_proc_mem_write, a);
		} else if (evs[i].data.u32 == TAG_FANOTIFY) {
			/* What the kernel recorded before this change (the exec of its actor, say)
			 * is in the ring buffer already: emit it first, so seq follows time. */
			sensor__drain(a->sensor);
			fanwatch__process(a->fw, on_file_change, a);
		} else {
			struct signalfd_siginfo si;

			while (read(a->sigfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo < 32)
					sigs |= 1u << si.ssi_signo;
		}
	}
	/* Records submitted without a wake-up (the common, batched case) are read here. */
	sensor__drain(a->sensor);
	/* At most one pass (100 ms) of events sits in the buffer if the agent is killed. */
	if (a->have_file_sink && sink__flush(&a->file_sink))
		a->sink_errors++;
	if (now_ns(CLOCK_MONOTONIC) - a->last_stats_ns >= STATS_INTERVAL_NS)
		emit_stats(a);
	return sigs;
}

static void print_summary(struct agent *a, const char *what, int status, uint64_t drops)
{
	const char *layers[16];
	size_t n = features__layers(&a->feat, a->enforce, layers, 16);

	if (a->opts.quiet && !a->violations && !drops)
		return;
	fprintf(stderr, "buildwarden: %s (run %s, mode %s)\n", what, a->run_id,
		a->enforce ? "enforce" : "audit");
	fprintf(stderr, "  events: %llu (exec %llu, file %llu, connect %llu, process %llu)\n",
		(unsigned long long)a->events, (unsigned long long)a->by_kind[0],
		(unsigned long long)a->by_kind[1], (unsigned long long)a->by_kind[2],
		(unsigned long long)a->by_kind[3]);
	{
		struct rusage ru;

		/* the agent's own threads only: what the sensor's user space cost this host */
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			fprintf(stderr, "  agent cpu: %.2f s user, %.2f s system\n",
				ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
				ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	fprintf(stderr, "  violations: %llu\n", (unsigned long long)a->violations);
	for (size_t i = 0; i < a->n_rules; i++)
		fprintf(stderr, "    %6llu  %s\n", (unsigned long long)a->rules[i].n, a->rules[i].rule);
	fprintf(stderr, "  lost: %llu (kernel ring buffer and fanotify queue), unattributed: %llu, "
			"bad records: %llu, events not written: %llu\n",
		(unsigned long long)drops, (unsigned long long)a->unattributed,
		(unsigned long long)a->bad_records, (unsigned long long)a->sink_errors);
	if (a->fw && fanwatch__skipped(a->fw))
		fprintf(stderr, "  not watched: %llu objects under the protected trees\n",
			(unsigned long long)fanwatch__skipped(a->fw));
	if (a->collector) {
		struct sink_collector_stats cs;

		sink_collector__stats(a->collector, &cs);
		fprintf(stderr,
			"  collector %s: %llu spooled, %llu acknowledged, %llu dropped (spool full), "
			"%llu left in the spool for the next start%s%s\n",
			a->opts.collector, (unsigned long long)cs.spooled, (unsigned long long)cs.acked,
			(unsigned long long)(cs.spool_full_drops + cs.other_drops),
			(unsigned long long)cs.unacked, cs.last_error[0] ? "; last error: " : "",
			cs.last_error);
	}
	fprintf(stderr, "  guards on this host:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "    %s\n", layers[i]);
	if (a->violations)
		fprintf(stderr, "buildwarden: %llu policy violation(s): exit %d\n",
			(unsigned long long)a->violations, status);
}

static int finish(struct agent *a, int status)
{
	uint64_t drops;
	int flush_err = 0;

	drain_all(a);
	emit_stats(a);
	drops = emit_run_end(a, status);
	if (a->have_file_sink)
		flush_err = sink__flush(&a->file_sink);
	/* Bounded: the build is over, delivery gets drain_timeout_ms; what is not
	 * acknowledged by then stays in the spool for the next start. */
	if (a->collector)
		sink_collector__drain(a->collector, a->opts.drain_timeout_ms);
	if (a->violations)
		status = EXIT_VIOLATION;
	print_summary(a, a->argv ? "build finished" : "agent stopped", status, drops);
	if (flush_err || a->sink_errors) {
		fprintf(stderr, "buildwarden: events file '%s' is incomplete: %llu events not written\n",
			a->opts.events_path, (unsigned long long)a->sink_errors);
		if (status == 0)
			status = EXIT_CANTCREAT;
	}
	return status;
}

int agent__run_command(struct agent *a, char *const argv[])
{
	int sync_pipe[2], status = 0, e;
	bool child_done = false;
	sigset_t empty;
	pid_t child;
	char go = 1;

	a->argv = (char **)argv;
	/* Orphaned descendants (a daemonizing build step) come back to us, so waitpid tells
	 * us when the last one is gone. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe2(sync_pipe, O_CLOEXEC)) {
		perror("buildwarden: pipe");
		return EXIT_SOFTWARE;
	}
	emit_run_start(a, argv);
	child = fork();
	if (child < 0) {
		perror("buildwarden: fork");
		return EXIT_SOFTWARE;
	}
	if (child == 0) {
		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		close(sync_pipe[1]);
		/* Wait until the kernel knows this process is the build's root. */
		if (read(sync_pipe[0], &go, 1) != 1)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "buildwarden: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(sync_pipe[0]);
	e = sensor__add_build_root(a->sensor, child);
	if (e) {
		fprintf(stderr, "buildwarden: cannot enter the build in the process table: %s\n",
			strerror(-e));
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return EXIT_SENSOR;
	}
	if (write(sync_pipe[1], &go, 1) != 1) {
		perror("buildwarden: start the build");
		return EXIT_SOFTWARE;
	}
	close(sync_pipe[1]);

	for (;;) {
		unsigned sigs = poll_once(a, 100);
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
	return finish(a, status);
}

static void reload(struct agent *a)
{
	struct bw_policy *np = NULL;
	struct fanwatch *nfw = NULL;
	char err[512];
	int e;

	fprintf(stderr, "buildwarden: SIGHUP: reloading '%s'\n", a->opts.policy_path);
	if (agent__load_policy(a->opts.policy_path, &np)) {
		fprintf(stderr, "buildwarden: the new policy is bad: keeping the old one\n");
		return;
	}
	e = open_trees(a, np, &nfw);
	if (e) {
		fprintf(stderr, "buildwarden: cannot watch the new protected trees (%s): keeping "
				"the old policy\n",
			strerror(-e));
		policy__free(np);
		return;
	}
	e = sensor__apply_policy(a->sensor, np, err, sizeof(err));
	if (e) {
		fprintf(stderr, "buildwarden: %s: keeping the old policy\n", err);
		fanwatch__free(nfw);
		policy__free(np);
		return;
	}
	if (a->fw) {
		fanwatch__process(a->fw, on_file_change, a);
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, fanwatch__fd(a->fw), NULL);
		fanwatch__free(a->fw);
	}
	a->fw = nfw;
	if (a->fw)
		epoll_add(a->epfd, fanwatch__fd(a->fw), TAG_FANOTIFY);
	policy__free(a->policy);
	a->policy = np;
	a->enforce = (a->opts.mode >= 0 ? (enum bw_mode)a->opts.mode : np->mode) == BW_MODE_ENFORCE;
	sha256_file(a->opts.policy_path, a->policy_sha256);
	fprintf(stderr, "buildwarden: policy reloaded\n");
}

int agent__serve(struct agent *a)
{
	emit_run_start(a, NULL);
	fprintf(stderr, "buildwarden: agent running (run %s); SIGHUP reloads, SIGTERM stops\n",
		a->run_id);
	for (;;) {
		unsigned sigs = poll_once(a, 100);

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (sigs & (1u << SIGHUP))
			reload(a);
		if (sigs & ((1u << SIGINT) | (1u << SIGTERM)))
			break;
	}
	return finish(a, 0);
}

void agent__free(struct agent *a)
{
	if (!a)
		return;
	if (a->have_file_sink)
		sink__close(&a->file_sink);
	else if (a->file)
		sink_file__close(a->file);
	if (a->collector)
		sink__close(&a->collector_sink);
	fanwatch__free(a->fw);
	procmem__free(a->pm);
	sensor__close(a->sensor);
	procinfo__free(a->pi);
	linknames__free(a->links);
	policy__free(a->policy);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->epfd >= 0)
		close(a->epfd);
	free(a->arena);
	free(a);
}
