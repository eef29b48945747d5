// SPDX-License-Identifier: GPL-2.0
/* Load generator for the collector benchmark (bench/collector/run.sh). It speaks through
 * the product's own agent transport (transport/client.c for TLS and framing,
 * transport/chain.c for the hash chain, transport/sink_collector.c for spooling), so
 * what it measures is what a real agent costs and sees.
 *
 *   loadgen ingest ADDR TLS... [--agents 8] [--events N] [--events-file F]
 *	8 agents (threads), one connection and one run each, send N pre-built frames each
 *	as fast as the collector takes them; time from the first byte sent to the last Ack.
 *	Frames are built before the clock starts: the figure is the collector's rate.
 *   loadgen spool ADDR TLS... --spool DIR [--events N] [--events-file F]
 *	the agent side: N sink_collector__write() calls (pack, chain, append to the spool)
 *	while the sender thread streams to the collector; µs per write on the caller's
 *	thread, and the whole process's CPU per event (sender thread and TLS included).
 *   loadgen latency --db FILE --count K [--timeout S]
 *	polls the collector's database every millisecond for new violation rows and prints
 *	(time the row was first seen - Event.timeNs) for each: kernel time to a committed,
 *	queryable row. Ends after K rows.
 *
 * TLS... is --cert FILE --key FILE --ca FILE, or --insecure. Events come from an events file (as
 * written by `buildwarden run --events`; cycled, with seq and run id rewritten), or are
 * synthesized to look like a C build's: file writes and execs with a full process,
 * argv and three ancestors, a connect now and then, one violation in a hundred. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "transport/chain.h"
#include "transport/client.h"
#include "transport/frame.h"
#include "transport/sink_collector.h"

struct lg_opts {
	const char *addr, *cert, *key, *ca, *events_file, *spool, *db;
	bool insecure;
	unsigned agents;
	uint64_t events;
	unsigned count;
	double timeout;
};

static struct lg_opts lg;

/* Template events: decoded from a file, or synthesized. */
static Buildwarden__V1__Event **lg_tpl;
static size_t lg_ntpl;

static int64_t lg__ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void __attribute__((noreturn, format(printf, 1, 2))) lg__die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- events ------------------------------------------------------------- */

static char *lg__strdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		lg__die("out of memory");
	return d;
}

static void *lg__zalloc(size_t n)
{
	void *p = calloc(1, n);

	if (!p)
		lg__die("out of memory");
	return p;
}

/* One event of a C build, by position i: file writes, execs, and a connect in ten. */
static Buildwarden__V1__Event *lg__synth(unsigned i)
{
	static const char *const units[] = { "core/ngx_palloc", "core/ngx_array", "event/ngx_event",
					     "http/ngx_http_parse", "os/unix/ngx_files",
					     "http/modules/ngx_http_gzip_filter_module" };
	Buildwarden__V1__Event *ev = lg__zalloc(sizeof(*ev));
	Buildwarden__V1__Process *pr = lg__zalloc(sizeof(*pr));
	const char *unit = units[i % 6];
	char buf[256];

	buildwarden__v1__event__init(ev);
	buildwarden__v1__process__init(pr);
	ev->host = lg__strdup("ci-runner-042.build.example.net");
	ev->process = pr;
	pr->pid = 20000 + i % 5000;
	pr->ppid = 19990 + i % 5000;
	pr->uid = 1000;
	pr->exe = lg__strdup("/usr/lib/gcc/x86_64-linux-gnu/12/cc1");
	pr->comm = lg__strdup("cc1");
	pr->in_build = true;
	pr->attributed = true;
	pr->exe_dev = 0x803;
	pr->exe_ino = 1311042 + i % 7;
	pr->n_argv = 8;
	pr->argv = lg__zalloc(8 * sizeof(char *));
	pr->argv[0] = lg__strdup("/usr/lib/gcc/x86_64-linux-gnu/12/cc1");
	pr->argv[1] = lg__strdup("-quiet");
	pr->argv[2] = lg__strdup("-Isrc/core");
	snprintf(buf, sizeof(buf), "src/%s.c", unit);
	pr->argv[3] = lg__strdup(buf);
	pr->argv[4] = lg__strdup("-O2");
	pr->argv[5] = lg__strdup("-g");
	pr->argv[6] = lg__strdup("-o");
	snprintf(buf, sizeof(buf), "/tmp/cc%06u.s", i * 7919 % 1000000);
	pr->argv[7] = lg__strdup(buf);
	pr->n_ancestors = 3;
	pr->ancestors = lg__zalloc(3 * sizeof(*pr->ancestors));
	for (int a = 0; a < 3; a++) {
		static const char *const exes[] = { "/usr/bin/x86_64-linux-gnu-gcc-12", "/usr/bin/make",
						    "/usr/bin/dash" };

		pr->ancestors[a] = lg__zalloc(sizeof(**pr->ancestors));
		buildwarden__v1__ancestor__init(pr->ancestors[a]);
		pr->ancestors[a]->pid = pr->ppid - (unsigned)a * 3;
		pr->ancestors[a]->exe = lg__strdup(exes[a]);
		pr->ancestors[a]->in_build = true;
	}
	if (i % 10 < 6) {
		Buildwarden__V1__FileBody *fb = lg__zalloc(sizeof(*fb));

		buildwarden__v1__file_body__init(fb);
		fb->op = BUILDWARDEN__V1__FILE_OP__WRITE;
		snprintf(buf, sizeof(buf), "/build/nginx-1.22.1/objs/src/%s.o", unit);
		fb->path = lg__strdup(buf);
		fb->tree = lg__strdup("/build/nginx-1.22.1");
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev->file = fb;
	} else if (i % 10 < 9) {
		Buildwarden__V1__ExecBody *ex = lg__zalloc(sizeof(*ex));

		buildwarden__v1__exec_body__init(ex);
		ex->filename = lg__strdup("/usr/lib/gcc/x86_64-linux-gnu/12/cc1");
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
		ev->exec = ex;
	} else {
		Buildwarden__V1__ConnectBody *cb = lg__zalloc(sizeof(*cb));

		buildwarden__v1__connect_body__init(cb);
		cb->address = lg__strdup("151.101.2.132");
		cb->port = 443;
		cb->protocol = BUILDWARDEN__V1__PROTOCOL__TCP;
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
		ev->connect = cb;
	}
	if (i % 100 == 42) {
		Buildwarden__V1__Verdict *vd = lg__zalloc(sizeof(*vd));

		buildwarden__v1__verdict__init(vd);
		vd->violation = true;
		vd->rule = lg__strdup("protect[0]: /build/nginx-1.22.1/src");
		vd->action = BUILDWARDEN__V1__ACTION__AUDITED;
		ev->verdict = vd;
	}
	return ev;
}

/* Reads every Event of a varint-delimited events file (not gzip). */
static void lg__load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, off = 0;
	const uint8_t *p;
	size_t plen;

	if (!f)
		lg__die("%s: %s", path, strerror(errno));
	for (;;) {
		size_t n;

		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			buf = realloc(buf, cap);
			if (!buf)
				lg__die("out of memory");
		}
		n = fread(buf + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	fclose(f);
	while (frame__next(buf, len, &off, 0, &p, &plen) == 1) {
		Buildwarden__V1__Event *ev = buildwarden__v1__event__unpack(NULL, plen, p);

		if (!ev)
			lg__die("%s: an event does not unpack", path);
		/* runStart/runEnd/stats only make sense once per run */
		if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START ||
		    ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_END ||
		    ev->body_case == BUILDWARDEN__V1__EVENT__BODY_STATS) {
			buildwarden__v1__event__free_unpacked(ev, NULL);
			continue;
		}
		lg_tpl = realloc(lg_tpl, (lg_ntpl + 1) * sizeof(*lg_tpl));
		if (!lg_tpl)
			lg__die("out of memory");
		lg_tpl[lg_ntpl++] = ev;
	}
	free(buf);
	if (!lg_ntpl)
		lg__die("%s: no exec/file/connect events", path);
}

static void lg__templates(void)
{
	if (lg.events_file) {
		lg__load_file(lg.events_file);
		return;
	}
	lg_ntpl = 1000;
	lg_tpl = lg__zalloc(lg_ntpl * sizeof(*lg_tpl));
	for (unsigned i = 0; i < lg_ntpl; i++)
		lg_tpl[i] = lg__synth(i);
}

/* Event seq of run run_id, from template seq-1: seq, run id and time set. */
static Buildwarden__V1__Event *lg__event(uint64_t seq, const char *run_id)
{
	Buildwarden__V1__Event *ev = lg_tpl[(seq - 1) % lg_ntpl];

	ev->seq = seq;
	ev->run_id = (char *)run_id;
	ev->time_ns = (uint64_t)lg__ns(CLOCK_REALTIME);
	return ev;
}

/* ---- ingest ------------------------------------------------------------- */

struct lg_agent {
	pthread_t th;
	unsigned idx;
	char run_id[64];
	uint8_t *frames;      /* every AgentMessage of the run, framed */
	size_t len;
	int64_t t_first, t_last;
	uint64_t acked;
	char err[256];
};

static pthread_barrier_t lg_start;

static struct client *lg__client(char *err, size_t errlen)
{
	struct client_opts o = {
		.address = lg.addr, .tls_cert = lg.cert, .tls_key = lg.key, .tls_ca = lg.ca,
		.insecure = lg.insecure, .connect_timeout_ms = 10000,
	};

	return client__new(&o, err, errlen);
}

/* Frames 1..events of a run, chained, packed back to back. */
static void lg__build(struct lg_agent *a)
{
	uint8_t chain[CHAIN_LEN] = { 0 }, *ev = NULL;
	size_t cap = 0, evcap = 0;

	/* protocol v2: seq 1 chains from the value bound to the run id */
	if (chain__init(a->run_id, NULL, 0, chain))
		lg__die("chain failed");

	for (uint64_t s = 1; s <= lg.events; s++) {
		Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
		Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
		Buildwarden__V1__Event *e = lg__event(s, a->run_id);
		size_t el = buildwarden__v1__event__get_packed_size(e), ml;

		if (el > evcap) {
			evcap = el * 2;
			ev = realloc(ev, evcap);
			if (!ev)
				lg__die("out of memory");
		}
		buildwarden__v1__event__pack(e, ev);
		if (chain__next(chain, s, ev, el, NULL, 0, chain))
			lg__die("chain failed");
		f.seq = s;
		f.event.data = ev;
		f.event.len = el;
		f.chain.data = chain;
		f.chain.len = CHAIN_LEN;
		m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
		m.event = &f;
		ml = buildwarden__v1__agent_message__get_packed_size(&m);
		if (a->len + ml + FRAME_VARINT_MAX > cap) {
			cap = cap ? cap * 2 : (size_t)lg.events * 400;
			a->frames = realloc(a->frames, cap);
			if (!a->frames)
				lg__die("out of memory");
		}
		a->len += frame__encode_len(ml, a->frames + a->len);
		a->len += buildwarden__v1__agent_message__pack(&m, a->frames + a->len);
	}
	free(ev);
}

static void *lg__agent_main(void *arg)
{
	Buildwarden__V1__Hello hello = BUILDWARDEN__V1__HELLO__INIT;
	Buildwarden__V1__Welcome *w = NULL;
	struct lg_agent *a = arg;
	struct client *c;
	char agent[32];
	size_t off = 0;
	int stop = eventfd(0, EFD_CLOEXEC), rc;

	c = lg__client(a->err, sizeof(a->err));
	if (!c || client__connect(c, stop, a->err, sizeof(a->err))) {
		pthread_barrier_wait(&lg_start);
		return NULL;
	}
	snprintf(agent, sizeof(agent), "bench-agent-%u", a->idx);
	hello.agent_id = agent;
	hello.host = (char *)"ci-runner-042.build.example.net";
	hello.run_id = a->run_id;
	hello.schema_version = BW_SCHEMA_VERSION;
	rc = client__hello(c, &hello, stop, 10000, &w, a->err, sizeof(a->err));
	if (!rc && w->last_seq)
		snprintf(a->err, sizeof(a->err), "run %s exists (last_seq %llu)", a->run_id,
			 (unsigned long long)w->last_seq);
	if (w)
		buildwarden__v1__welcome__free_unpacked(w, NULL);
	pthread_barrier_wait(&lg_start);
	if (rc || a->err[0])
		goto out;

	a->t_first = lg__ns(CLOCK_MONOTONIC);
	while (a->acked < lg.events) {
		Buildwarden__V1__CollectorMessage *m;
		struct pollfd pfd = { .fd = client__fd(c), .events = POLLIN };

		/* keep the socket full: queue up to the client's 1 MiB bound */
		while (off < a->len) {
			size_t n = a->len - off > 256 * 1024 ? 256 * 1024 : a->len - off;

			/* whole frames only do not matter here: the stream is one byte string */
			if (client__queue(c, a->frames + off, n))
				break;
			off += n;
		}
		rc = client__flush(c);
		if (rc) {
			snprintf(a->err, sizeof(a->err), "send: %s", strerror(-rc));
			goto out;
		}
		while ((rc = client__recv(c, &m)) == 1) {
			if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK)
				a->acked = m->ack->seq;
			else if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL)
				snprintf(a->err, sizeof(a->err), "refused: %s", m->refusal->reason);
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
			if (a->err[0])
				goto out;
		}
		if (rc < 0) {
			snprintf(a->err, sizeof(a->err), "receive: %s", strerror(-rc));
			goto out;
		}
		if (a->acked >= lg.events)
			break;
		if (client__want_pollout(c) || client__pending(c))
			pfd.events |= POLLOUT;
		poll(&pfd, 1, 100);
	}
	a->t_last = lg__ns(CLOCK_MONOTONIC);
out:
	client__free(c);
	close(stop);
	return NULL;
}

static int lg__ingest(void)
{
	struct lg_agent *ag = lg__zalloc(lg.agents * sizeof(*ag));
	int64_t t0 = INT64_MAX, t1 = 0, tag = lg__ns(CLOCK_REALTIME);
	struct rusage ru0, ru1;
	double secs;
	int bad = 0;

	lg__templates();
	for (unsigned i = 0; i < lg.agents; i++) {
		ag[i].idx = i;
		snprintf(ag[i].run_id, sizeof(ag[i].run_id), "bench-%llx-%u", (unsigned long long)tag, i);
		lg__build(&ag[i]);
	}
	pthread_barrier_init(&lg_start, NULL, lg.agents);
	getrusage(RUSAGE_SELF, &ru0);
	for (unsigned i = 0; i < lg.agents; i++)
		if (pthread_create(&ag[i].th, NULL, lg__agent_main, &ag[i]))
			lg__die("cannot start a thread");
	for (unsigned i = 0; i < lg.agents; i++) {
		pthread_join(ag[i].th, NULL);
		if (ag[i].err[0]) {
			fprintf(stderr, "loadgen: agent %u: %s\n", i, ag[i].err);
			bad = 1;
			continue;
		}
		if (ag[i].t_first < t0)
			t0 = ag[i].t_first;
		if (ag[i].t_last > t1)
			t1 = ag[i].t_last;
	}
	getrusage(RUSAGE_SELF, &ru1);
	if (bad)
		return 1;
	secs = (double)(t1 - t0) / 1e9;
	printf("ingest agents=%u events=%llu bytes_per_frame=%.0f seconds=%.3f events_per_s=%.0f "
	       "loadgen_cpu_s=%.2f\n",
	       lg.agents, (unsigned long long)lg.events * lg.agents, (double)ag[0].len / (double)lg.events,
	       secs, (double)lg.events * lg.agents / secs,
	       (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
				ru0.ru_stime.tv_usec) / 1e6);
	for (unsigned i = 0; i < lg.agents; i++)
		free(ag[i].frames);
	free(ag);
	return 0;
}

/* ---- spool -------------------------------------------------------------- */

static double lg__cpu_s(const struct rusage *a, const struct rusage *b)
{
	return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec + b->ru_stime.tv_sec - a->ru_stime.tv_sec) +
	       (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec + b->ru_stime.tv_usec -
			a->ru_stime.tv_usec) / 1e6;
}

static int lg__spool(void)
{
	struct collector_client_opts o = {
		.address = lg.addr, .spool_dir = lg.spool, .tls_cert = lg.cert, .tls_key = lg.key,
		.tls_ca = lg.ca, .insecure = lg.insecure, .agent_id = "bench-spool",
		.host = "ci-runner-042.build.example.net", .drain_timeout_ms = 60000,
	};
	struct sink_collector_stats st;
	struct sink_collector *sc;
	struct rusage ru0, ru1;
	int64_t t0, t1, t2, c0, c1;
	char err[512], run_id[64];

	lg__templates();
	snprintf(run_id, sizeof(run_id), "bench-spool-%llx", (unsigned long long)lg__ns(CLOCK_REALTIME));
	o.run_id = run_id;
	sc = sink_collector__open(&o, err, sizeof(err));
	if (!sc)
		lg__die("%s", err);
	getrusage(RUSAGE_SELF, &ru0);
	c0 = lg__ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = lg__ns(CLOCK_MONOTONIC);
	for (uint64_t s = 1; s <= lg.events; s++) {
		int rc = sink_collector__write(sc, lg__event(s, run_id));

		if (rc)
			lg__die("write %llu: %s", (unsigned long long)s, strerror(-rc));
	}
	t1 = lg__ns(CLOCK_MONOTONIC);
	c1 = lg__ns(CLOCK_THREAD_CPUTIME_ID);
	if (sink_collector__drain(sc, 60000))
		lg__die("the collector did not acknowledge everything within 60 s");
	t2 = lg__ns(CLOCK_MONOTONIC);
	getrusage(RUSAGE_SELF, &ru1);
	sink_collector__stats(sc, &st);
	sink_collector__close(sc);
	printf("spool events=%llu write_us_per_event=%.2f write_cpu_us_per_event=%.2f "
	       "process_cpu_us_per_event=%.2f drain_s=%.3f acked=%llu\n",
	       (unsigned long long)lg.events, (double)(t1 - t0) / 1e3 / (double)lg.events,
	       (double)(c1 - c0) / 1e3 / (double)lg.events,
	       lg__cpu_s(&ru0, &ru1) * 1e6 / (double)lg.events, (double)(t2 - t1) / 1e9,
	       (unsigned long long)st.acked);
	return 0;
}

/* ---- latency ------------------------------------------------------------ */

static int lg__cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int lg__latency(void)
{
	int64_t *lat = lg__zalloc(lg.count * sizeof(*lat)), end;
	sqlite3_int64 last = 0;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	unsigned n = 0;

	end = lg__ns(CLOCK_MONOTONIC) + (int64_t)(lg.timeout * 1e9);
	while (n < lg.count && lg__ns(CLOCK_MONOTONIC) < end) {
		int rc;

		if (!st) {
			/* the collector creates the database: wait for it */
			if (access(lg.db, F_OK) ||
			    sqlite3_open_v2(lg.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
			    sqlite3_prepare_v2(db,
					       "SELECT rowid, time_ns FROM events WHERE rowid > ?1"
					       " AND violation = 1 ORDER BY rowid",
					       -1, &st, NULL) != SQLITE_OK) {
				sqlite3_close(db);
				db = NULL;
				usleep(10000);
				continue;
			}
		}
		sqlite3_bind_int64(st, 1, last);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t now = lg__ns(CLOCK_REALTIME);

			last = sqlite3_column_int64(st, 0);
			if (n < lg.count)
				lat[n++] = now - sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		usleep(1000);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (!n)
		lg__die("no violation row appeared");
	qsort(lat, n, sizeof(*lat), lg__cmp_i64);
	printf("latency rows=%u p50_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f\n", n,
	       (double)lat[n / 2] / 1e6, (double)lat[(n * 99 + 99) / 100 - 1] / 1e6,
	       (double)lat[n - 1] / 1e6, (double)lat[0] / 1e6);
	free(lat);
	return n < lg.count;
}

/* ---- main --------------------------------------------------------------- */

static void lg__usage(void)
{
	fputs("usage: loadgen ingest|spool ADDR (--cert F --key F --ca F | --insecure) [--agents N]\n"
	      "           [--events N] [--events-file F] [--spool DIR]\n"
	      "       loadgen latency --db FILE --count K [--timeout S]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "insecure", no_argument, NULL, 'i' },
		{ "agents", required_argument, NULL, 'a' },
		{ "events", required_argument, NULL, 'n' },
		{ "events-file", required_argument, NULL, 'f' },
		{ "spool", required_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode;
	int c;

	if (argc < 2)
		lg__usage();
	mode = argv[1];
	lg.agents = 8;
	lg.events = 50000;
	lg.timeout = 60;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'C':
			lg.cert = optarg;
			break;
		case 'K':
			lg.key = optarg;
			break;
		case 'A':
			lg.ca = optarg;
			break;
		case 'i':
			lg.insecure = true;
			break;
		case 'a':
			lg.agents = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			lg.events = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			lg.events_file = optarg;
			break;
		case 's':
			lg.spool = optarg;
			break;
		case 'd':
			lg.db = optarg;
			break;
		case 'c':
			lg.count = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'T':
			lg.timeout = strtod(optarg, NULL);
			break;
		default:
			lg__usage();
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "latency")) {
		if (!lg.db || !lg.count)
			lg__usage();
		return lg__latency();
	}
	if (optind >= argc)
		lg__usage();
	lg.addr = argv[optind];
	if (!lg.insecure && (!lg.cert || !lg.key || !lg.ca))
		lg__usage();
	if (!lg.agents || !lg.events)
		lg__usage();
	if (!strcmp(mode, "ingest"))
		return lg__ingest();
	if (!strcmp(mode, "spool")) {
		if (!lg.spool)
			lg__usage();
		return lg__spool();
	}
	lg__usage();
}
