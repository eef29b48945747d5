// SPDX-License-Identifier: MIT
/* Issue 12, "PostgreSQL as the shared store": collectors writing into a real
 * PostgreSQL cluster (tests/lib/bwpg.c: Debian's initdb and pg_ctl in a temp dir, on a
 * Unix socket), fed by hand-written agents (plain TCP, --insecure), so no eBPF is needed.
 *
 * - parity: the same runs sent to a SQLite collector and a PostgreSQL one; every query
 *   (history, --runs, --findings, --violations, --kind, --exe, --path, --outside-writes,
 *   --rule, --format text) prints the same lines from both, times aside,
 *   and the CI context filters (--repo, --commit, --job, issue 11) select the same runs;
 * - two collectors racing for one run (an agent that moved before its frames were
 *   committed): every seq once, the run's state not set back, the loser says so; the
 *   loser leaves out only that run: another agent of its batch is stored and acked;
 * - a seq stored behind the collectors' back: the COPY falls back to the staging table,
 *   the rest is stored and the odd row is a duplicate_mismatch;
 * - migrations: a fresh database gets schema versions 1 to 3; a second start changes
 *   nothing; a password in the conninfo never reaches the log;
 *   a database of a newer schema is refused (non-zero exit, clear message) and left as
 *   it was; a bad conninfo or a server that is not there: clear error, exit non-zero;
 * - export (docs/collector.md, "Export from PostgreSQL"): events stored before the
 *   export's schema (version 3) are exported first; a batch whose transaction begins
 *   before the others and commits after many were exported is exported (last); three
 *   collectors with the same
 *   --export syslog (a real rsyslog: tests/lib/rsyslog_fixture.c) and jsonl, 8 agents
 *   switching between them, the exporting collector killed with SIGKILL mid-run:
 *   another takes over; every event reaches rsyslog, with exportIds exactly 1..N, each
 *   once except repeats after the cursor the killed one had saved (counted, and each
 *   repeat is the same event); jsonl has each exactly once, in order;
 * - a server that does not answer (its processes SIGSTOPped): a Hello is refused within
 *   ~2 s instead of waiting for it, and agents get in again once it runs;
 * - retention: a run whose day partition is older than --retention is dropped with its
 *   partition, findings and run row; today's is kept; the same on SQLite (by last
 *   activity), and a bad --retention is a usage error;
 * - faults: three collectors on one database, 8 agents spread over them (switching
 *   collectors now and then without waiting for Acks, resuming where Welcome says), one
 *   collector killed
 *   with SIGKILL mid-run and PostgreSQL restarted mid-run: every seq of every run is
 *   stored exactly once, no finding, every run's chain intact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/bwpg.h"
#include "lib/bwtest.h"
#include "lib/collector_fixture.h"
#include "lib/rsyslog_fixture.h"

struct pgt {
	struct bw_ws ws;
	struct bwpg pg;
	bool pg_ok;
	char skip[512];
	struct cf_collector col[3];
	struct rsf rs;
	bool pg_stopped;     /* SIGSTOPped by test_collector_pg__outage_hello */
	int dbn;
};

static struct pgt T;

static void diag(void)
{
	for (int i = 0; i < 3; i++) {
		char *t;

		if (!T.col[i].log[0])
			continue;
		t = cf_read_from(T.col[i].log, 0);
		printf("---- collector %d: %s\n---- its log (last 2000 bytes):\n%s\n", i,
		       T.col[i].cmdline, strlen(t) > 2000 ? t + strlen(t) - 2000 : t);
		free(t);
	}
	if (T.pg.log[0]) {
		char *t = cf_read_from(T.pg.log, 0);

		printf("---- PostgreSQL log (last 1500 bytes):\n%s\n",
		       strlen(t) > 1500 ? t + strlen(t) - 1500 : t);
		free(t);
	}
	fflush(stdout);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&T.ws, rel);
}

/* A fresh database per test: its conninfo into out. */
static void new_db(char *out, size_t len)
{
	char name[32], err[512];

	snprintf(name, sizeof(name), "bw%d", ++T.dbn);
	CHECK(bwpg_createdb(&T.pg, name, out, len, err, sizeof(err)) == 0, "createdb: %s", err);
}

static void col_start(int i, const char *db, const char *extra0, const char *extra1)
{
	char err[2048], rel[32];

	memset(&T.col[i], 0, sizeof(T.col[i]));
	snprintf(T.col[i].db, sizeof(T.col[i].db), "%s", db);
	snprintf(rel, sizeof(rel), "collector-%d.log", i);
	snprintf(T.col[i].log, sizeof(T.col[i].log), "%s", wsp(rel));
	T.col[i].extra[0] = extra0;
	T.col[i].extra[1] = extra0 ? extra1 : NULL;
	CHECK(cf_collector_start(&T.col[i], err, sizeof(err)) == 0, "collector %d: %s", i, err);
}

static void col_stop_all(void)
{
	for (int i = 0; i < 3; i++)
		if (T.col[i].pid > 0)
			cf_collector_stop(&T.col[i]);
}

/* ---- events ---------------------------------------------------------------- */

/* Seq s of a run: runStart, execs, connects denied by policy, a protected file changed
 * by a process outside the build, runEnd at last. Deterministic: a re-send is the
 * same bytes. Caller frees. */
static uint8_t *mk_event(uint64_t s, uint64_t last, const char *host, const char *run_id,
			 size_t *len)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunStart rs = BUILDWARDEN__V1__RUN_START__INIT;
	Buildwarden__V1__RunEnd re = BUILDWARDEN__V1__RUN_END__INIT;
	Buildwarden__V1__ConnectBody cb = BUILDWARDEN__V1__CONNECT_BODY__INIT;
	Buildwarden__V1__FileBody fb = BUILDWARDEN__V1__FILE_BODY__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
	Buildwarden__V1__Verdict vd = BUILDWARDEN__V1__VERDICT__INIT;
	Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;
	Buildwarden__V1__CiContext ci = BUILDWARDEN__V1__CI_CONTEXT__INIT;
	char *rs_argv[] = { (char *)"make", (char *)"release" };
	char repo[64], commit[64];
	uint8_t *buf;

	ev.seq = s;
	ev.time_ns = 1700000000000000000ull + s * 1000;
	ev.host = (char *)host;
	ev.run_id = (char *)run_id;
	if (s == 1) {
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
		rs.argv = rs_argv;
		rs.n_argv = 2;
		rs.mode = (char *)"audit";
		/* issue 11: the CI context becomes run columns that query filters on */
		snprintf(repo, sizeof(repo), "acme/%s", host);
		snprintf(commit, sizeof(commit), "c0ffee-%s", host);
		ci.provider = (char *)"github";
		ci.repository = repo;
		ci.commit_sha = commit;
		ci.job = (char *)(strcmp(host, "host-0") ? "build" : "test");
		rs.ci = &ci;
		ev.run_start = &rs;
	} else if (s == last) {
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
		ev.run_end = &re;
	} else if (s % 50 == 7) {
		fb.op = BUILDWARDEN__V1__FILE_OP__WRITE;
		fb.path = (char *)"/out/release.tar";
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev.file = &fb;
		vd.violation = true;
		vd.rule = (char *)"protect[0]: /out";
		vd.action = BUILDWARDEN__V1__ACTION__TAINTED;
		ev.verdict = &vd;
		pr.pid = 4242;
		pr.attributed = true;
		pr.in_build = false;
		pr.exe = (char *)"/tmp/sunspot";
		ev.process = &pr;
	} else if (s % 10 == 3) {
		cb.address = (char *)"203.0.113.9";
		cb.port = 443;
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
		ev.connect = &cb;
		vd.violation = true;
		vd.rule = (char *)(s % 20 == 3 ? "network.default: deny" : "network.deny[0]: 203.0.113.0/24");
		vd.action = BUILDWARDEN__V1__ACTION__DENIED;
		ev.verdict = &vd;
	} else {
		ex.filename = (char *)(s % 2 ? "/usr/bin/cc" : "/usr/bin/ld");
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
		ev.exec = &ex;
		pr.pid = 100 + (uint32_t)s;
		pr.attributed = true;
		pr.in_build = true;
		pr.exe = ex.filename;
		ev.process = &pr;
	}
	*len = buildwarden__v1__event__get_packed_size(&ev);
	buf = malloc(*len ? *len : 1);
	if (buf)
		buildwarden__v1__event__pack(&ev, buf);
	return buf;
}

/* ---- an agent-like sender ---------------------------------------------------- */

struct sender {
	char agent[32], host[32], run_id[48];
	uint64_t n;                /* events 1..n */
	uint64_t last;             /* the runEnd's seq (above n: the run stays open) */
	uint8_t (*chains)[CF_CHAIN_LEN]; /* [s]: chain after seq s; [0] from Welcome */
	int start;                 /* first collector */
	int switch_every;          /* 0: stay; else change collector after this many */
	unsigned pace_ms;          /* sleep after every 64 events (0: 2 ms) */
	uint64_t sent_to;          /* highest seq sent */
	unsigned reconnects;
	bool done;
	char err[256];
};

static volatile int fault_stage; /* the test's progress, read by senders */

/* Hello to the first collector (from c on) that answers; 0 or -1. */
static int sender_connect(struct sender *s, struct cf_peer *p, int *c, long long deadline)
{
	while (cf_now_ms() < deadline) {
		int port = T.col[*c % 3].port;

		cf_peer_close(p);
		memset(p, 0, sizeof(*p));
		p->fd = -1;
		if (T.col[*c % 3].pid > 0 && cf_peer_connect(p, port, NULL, NULL, NULL) == 0 &&
		    cf_peer_hello(p, s->agent, s->host, s->run_id, NULL) == 0)
			return 0;
		(*c)++;
		cf_sleep_ms(50);
	}
	snprintf(s->err, sizeof(s->err), "no collector took the Hello: %.200s", p->err);
	return -1;
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct cf_peer p = { .fd = -1 };
	long long deadline = cf_now_ms() + 60000;
	int c = s->start, since = 0;

	while (cf_now_ms() < deadline) {
		uint64_t from;

		if (sender_connect(s, &p, &c, deadline))
			break;
		s->reconnects++;
		/* Welcome says what is durable. Once all is, the run is done. */
		if (p.next_seq > s->n) {
			s->done = true;
			break;
		}
		memcpy(s->chains[p.next_seq - 1], p.chain, CF_CHAIN_LEN);
		/* as an agent does: from what Welcome says is durable */
		from = p.next_seq;
		since = 0;
		for (uint64_t q = from; q <= s->n; q++) {
			size_t len;
			uint8_t *ev = mk_event(q, s->last, s->host, s->run_id, &len);
			int rc = cf_peer_send_event(&p, q, ev, len, true);

			free(ev);
			if (rc)
				break;
			memcpy(s->chains[q], p.chain, CF_CHAIN_LEN);
			if (q > s->sent_to)
				s->sent_to = q;
			if (s->switch_every && ++since >= s->switch_every) {
				c++;
				break;
			}
			if (q % 64 == 0)
				cf_sleep_ms(s->pace_ms ? s->pace_ms : 2); /* agents are not infinitely fast */
		}
		/* all sent (or cut): give the collector a moment to commit, then ask */
		cf_sleep_ms(100);
	}
	cf_peer_close(&p);
	if (!s->done && !s->err[0])
		snprintf(s->err, sizeof(s->err), "not all durable after 60 s (sent up to %llu)",
			 (unsigned long long)s->sent_to);
	return NULL;
}

static void sender_init(struct sender *s, int i, uint64_t n, const char *tag)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->agent, sizeof(s->agent), "agent-%d", i);
	snprintf(s->host, sizeof(s->host), "host-%d", i);
	snprintf(s->run_id, sizeof(s->run_id), "%s-run-%d", tag, i);
	s->n = n;
	s->last = n;
	s->chains = calloc(n + 1, CF_CHAIN_LEN);
	s->start = i % 3;
}

/* One sender, synchronously, to collector index c; open: no runEnd. */
static void send_run(int c, int i, uint64_t n, const char *tag, bool open)
{
	struct sender s;

	sender_init(&s, i, n, tag);
	s.start = c;
	if (open)
		s.last = n + 1;
	sender_main(&s);
	CHECK(s.done, "%s: %s", s.run_id, s.err);
	free(s.chains);
}

/* ---- query output ---------------------------------------------------------- */

/* `buildwarden query --db DB ARGS...` stdout, with the times (which differ between
 * two collectors) replaced by T. Caller frees. */
static char *query_norm(const char *db, const char *const args[], int *code)
{
	const char *argv[24] = { "query", "--db", db };
	struct bw_result r;
	regex_t re;
	regmatch_t m;
	char *out, *o, *p;
	int n = 3;

	for (int i = 0; args[i] && n < 22; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	CHECK(bw_run(argv, 60, &r) == 0, "cannot run query");
	*code = r.exit_code;
	CHECK(regcomp(&re, "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z", REG_EXTENDED) == 0, "regcomp");
	p = r.out ? r.out : (char *)"";
	out = o = malloc(strlen(p) + 1);
	while (regexec(&re, p, 1, &m, 0) == 0) {
		memcpy(o, p, (size_t)m.rm_so);
		o += m.rm_so;
		*o++ = 'T';
		p += m.rm_eo;
	}
	strcpy(o, p);
	regfree(&re);
	bw_result_free(&r);
	return out;
}

/* ---- fixtures -------------------------------------------------------------- */

static int group_setup(void **state)
{
	char err[1024];

	bw_install_alarm();
	if (bw_ws_create(&T.ws))
		return -1;
	if (!bwpg_available()) {
		snprintf(T.skip, sizeof(T.skip), "PostgreSQL 15 server binaries not installed");
		return 0;
	}
	if (bwpg_start(&T.pg, err, sizeof(err))) {
		printf("cannot start PostgreSQL: %s\n", err);
		return -1;
	}
	T.pg_ok = true;
	return 0;
}

static int group_teardown(void **state)
{
	col_stop_all();
	cf_cleanup();
	bwpg_destroy(&T.pg);
	bw_ws_destroy(&T.ws);
	bw_cleanup_all();
	return 0;
}

static void pg_signal_all(int sig);

static int case_teardown(void **state)
{
	if (T.pg_stopped)
		pg_signal_all(SIGCONT);
	col_stop_all();
	rsf_stop(&T.rs);
	for (int i = 0; i < 3; i++)
		memset(&T.col[i], 0, sizeof(T.col[i]));
	return 0;
}

#define NEED_PG()                                   \
	do {                                        \
		if (!T.pg_ok) {                     \
			printf("skipped: %s\n", T.skip); \
			skip();                     \
		}                                   \
	} while (0)

/* ---- tests ----------------------------------------------------------------- */

static void test_collector_pg__parity(void **state)
{
	char db[512], sqlite_db[PATH_MAX];
	static const char *const queries[][8] = {
		{ "--run", "par-run-1", NULL },
		{ "--run", "par-run-2", "--limit", "7", NULL },
		{ "--runs", NULL },
		{ "--runs", "--format", "text", NULL },
		{ "--findings", NULL },
		{ "--violations", NULL },
		{ "--violations", "--limit", "5", "--format", "text", NULL },
		{ "--violations", "--rule", "network.default: deny", NULL },
		{ "--violations", "--rule", "network.de", NULL }, /* a prefix: both network rules */
		{ "--violations", "--agent", "agent-2", "--host", "host-2", NULL },
		{ "--kind", "connect", NULL },
		{ "--exe", "/usr/bin/ld", "--limit", "4", NULL },
		{ "--path", "/out/", NULL },
		{ "--outside-writes", NULL },
		{ "--runs", "--outside-writes", NULL },
		{ "--runs", "--outside-writes", "--path", "/out", "--format", "text", NULL },
		{ "--run", "par-run-0", "--kind", "exec", "--format", "text", NULL },
		{ "--runs", "--repo", "acme/host-1", NULL },
		{ "--runs", "--job", "build", "--format", "text", NULL },
		{ "--violations", "--commit", "c0ffee-host-2", "--limit", "3", NULL },
		{ "--kind", "connect", "--repo", "acme/host-0", "--job", "test", NULL },
	};

	NEED_PG();
	new_db(db, sizeof(db));
	snprintf(sqlite_db, sizeof(sqlite_db), "%s", wsp("parity.db"));
	/* the same runs, in the same order, into each store: run 2 is left open (no
	 * runEnd yet) by sending fewer events than its "last" */
	for (int k = 0; k < 2; k++) {
		col_start(0, k ? db : sqlite_db, NULL, NULL);
		for (int i = 0; i < 3; i++)
			send_run(0, i, 300 + 50 * (uint64_t)i, "par", i == 2);
		cf_collector_stop(&T.col[0]);
	}
	for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
		int c1, c2;
		char *a = query_norm(sqlite_db, queries[q], &c1);
		char *b = query_norm(db, queries[q], &c2);

		CHECK(c1 == 0 && c2 == 0, "query %s %s: exit %d (SQLite), %d (PostgreSQL)",
		      queries[q][0], queries[q][1] ? queries[q][1] : "", c1, c2);
		CHECK(*a, "query %s printed nothing: the parity check would prove nothing",
		      queries[q][0]);
		if (strcmp(a, b))
			printf("---- SQLite:\n%.3000s\n---- PostgreSQL:\n%.3000s\n", a, b);
		CHECK(strcmp(a, b) == 0, "query %s %s differs between SQLite and PostgreSQL",
		      queries[q][0], queries[q][1] ? queries[q][1] : "");
		free(a);
		free(b);
	}
	/* the CI filters select: one run of repo acme/host-1, two of job "build", none of
	 * a repo nobody sent */
	{
		static const char *const one[] = { "--runs", "--repo", "acme/host-1", NULL };
		static const char *const two[] = { "--runs", "--job", "build", NULL };
		static const char *const none[] = { "--runs", "--commit", "nope", NULL };
		int c;
		char *o1 = query_norm(db, one, &c), *o2 = query_norm(db, two, &c),
		     *o3 = query_norm(db, none, &c);
		size_t n1 = 0, n2 = 0;

		for (char *p = o1; (p = strchr(p, '\n')); p++)
			n1++;
		for (char *p = o2; (p = strchr(p, '\n')); p++)
			n2++;
		CHECK(n1 == 1 && strstr(o1, "par-run-1"), "--repo selected %zu runs:\n%s", n1, o1);
		CHECK(n2 == 2 && !strstr(o2, "par-run-0"), "--job selected %zu runs:\n%s", n2, o2);
		CHECK(!*o3, "--commit nope selected:\n%s", o3);
		free(o1);
		free(o2);
		free(o3);
	}
}

/* An agent sends frames to collector 0, which holds them for a slow commit, and
 * reconnects to collector 1 before that: Welcome there says nothing is durable, so it
 * sends them all again. Both collectors hold the same seqs of one run; whichever commits
 * second finds the run advanced (its guard), rolls back and makes its agents re-sync. */
static void test_collector_pg__dedupe_resend(void **state)
{
	char db[512];
	struct cf_findings f;
	struct cf_peer p = { .fd = -1 };
	const char *const needle[] = { "advanced by another collector", NULL };

	NEED_PG();
	new_db(db, sizeof(db));
	col_start(0, db, "--commit-ms", "1500");
	col_start(1, db, "--commit-ms", "20");
	CHECK(cf_peer_connect(&p, T.col[0].port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-5", "host-5", "dup-run-5", NULL) == 0, "hello: %s", p.err);
	for (uint64_t q = 1; q <= 200; q++) {
		size_t len;
		uint8_t *ev = mk_event(q, 400, "host-5", "dup-run-5", &len);

		CHECK(cf_peer_send_event(&p, q, ev, len, true) == 0, "send");
		free(ev);
	}
	cf_sleep_ms(100);
	cf_peer_close(&p);
	/* to collector 1, from what it says is durable (nothing yet), up to 400 */
	send_run(1, 5, 400, "dup", false);
	cf_sleep_ms(2000);
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == 400,
	      "events stored: %lld, want 400", bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0));
	CHECK(bwpg_scalar(db, "SELECT count(DISTINCT seq) FROM events", NULL, 0) == 400,
	      "distinct seqs");
	/* the run's state is the newest: a collector that lost the race must not set it
	 * back to what it had (seq 200, no runEnd) */
	CHECK(bwpg_scalar(db, "SELECT last_seq FROM runs", NULL, 0) == 400,
	      "the run's last_seq went back to %lld", bwpg_scalar(db, "SELECT last_seq FROM runs", NULL, 0));
	CHECK(bwpg_scalar(db, "SELECT min(chain_ok * complete * has_run_end) FROM runs", NULL, 0) == 1,
	      "the run is not complete and intact");
	CHECK(cf_query_findings(db, NULL, &f) == 0, "query --findings: %s", f.err);
	CHECK(f.n == 0, "findings after re-sends: %zu (%s)", f.n, f.raw ? f.raw : "");
	cf_findings_free(&f);
	/* collector 0 commits last unless the machine is slow enough for collector 1 to
	 * lose instead: either way one of them saw the run advanced and said so */
	CHECK(cf_log_has_line(T.col[0].log, 0, needle, NULL, NULL, 0) ||
		      cf_log_has_line(T.col[1].log, 0, needle, NULL, NULL, 0),
	      "neither collector reported the race it lost");
}

/* Issue 12, gap (3): a collector that loses the last_seq race for one run left out only
 * that run. Collector 0 (a long --commit-ms) holds seqs 1-200 of run A and 1-100 of run B
 * (another agent, still connected) in one batch while collector 1 stores run A to 400:
 * collector 0's batch finds A advanced. Before, the whole batch was rolled back and
 * every agent of collector 0 refused (B's events not stored until B reconnected); now B's
 * events are committed and acknowledged on B's connection, and only A's agent is told. */
static void test_collector_pg__race_spares_others(void **state)
{
	char db[512];
	struct cf_peer a = { .fd = -1 }, b = { .fd = -1 };
	const char *const needle[] = { "advanced by another collector", NULL };

	NEED_PG();
	new_db(db, sizeof(db));
	col_start(0, db, "--commit-ms", "5000");
	col_start(1, db, "--commit-ms", "20");
	CHECK(cf_peer_connect(&a, T.col[0].port, NULL, NULL, NULL) == 0, "connect: %s", a.err);
	CHECK(cf_peer_hello(&a, "agent-5", "host-5", "race-run-5", NULL) == 0, "hello: %s", a.err);
	CHECK(cf_peer_connect(&b, T.col[0].port, NULL, NULL, NULL) == 0, "connect: %s", b.err);
	CHECK(cf_peer_hello(&b, "agent-6", "host-6", "race-run-6", NULL) == 0, "hello: %s", b.err);
	for (uint64_t q = 1; q <= 200; q++) {
		size_t len;
		uint8_t *ev = mk_event(q, 400, "host-5", "race-run-5", &len);

		CHECK(cf_peer_send_event(&a, q, ev, len, true) == 0, "send A");
		free(ev);
		if (q <= 100) {
			ev = mk_event(q, 100, "host-6", "race-run-6", &len);
			CHECK(cf_peer_send_event(&b, q, ev, len, true) == 0, "send B");
			free(ev);
		}
	}
	cf_sleep_ms(100);
	cf_peer_close(&a);
	/* run A to collector 1, all of it, while collector 0 still holds its batch */
	send_run(1, 5, 400, "race", false);
	/* collector 0 commits (5 s after its batch began), finds A advanced */
	for (long long end = cf_now_ms() + 15000; cf_now_ms() < end &&
	     bwpg_scalar(db, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
			     " WHERE r.run_id = 'race-run-6'", NULL, 0) < 100;)
		cf_sleep_ms(50);
	CHECK(cf_log_has_line(T.col[0].log, 0, needle, NULL, NULL, 0),
	      "collector 0 did not lose the race for run A (the machine too slow for this test?)");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
			      " WHERE r.run_id = 'race-run-6'", NULL, 0) == 100,
	      "run B (same batch, not contested): %lld of 100 events stored without a reconnect",
	      bwpg_scalar(db, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
			      " WHERE r.run_id = 'race-run-6'", NULL, 0));
	/* B's connection is alive and acknowledged (an Ack for 100, no refusal) */
	{
		Buildwarden__V1__CollectorMessage *cm = NULL;
		uint64_t acked = 0;

		while (cf_peer_recv(&b, 500, &cm) == 1) {
			if (cm->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK)
				acked = cm->ack->seq;
			buildwarden__v1__collector_message__free_unpacked(cm, NULL);
			cm = NULL;
		}
		CHECK(!b.refusal[0] && acked == 100, "agent B: acked %llu, refusal '%s'",
		      (unsigned long long)acked, b.refusal);
	}
	cf_peer_close(&b);
	CHECK(bwpg_scalar(db, "SELECT last_seq FROM runs WHERE run_id = 'race-run-5'", NULL, 0) == 400,
	      "run A set back to %lld", bwpg_scalar(db, "SELECT last_seq FROM runs WHERE run_id = 'race-run-5'", NULL, 0));
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == 500, "events: %lld",
	      bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0));
}

/* A seq above the run's resume point that is in the table already (written behind the
 * collectors' back): the COPY fails on the key, the batch goes through the staging table,
 * every other row is stored and the odd one is a duplicate_mismatch that taints the run. */
static void test_collector_pg__stored_behind_our_back(void **state)
{
	char db[512], err[1024];
	struct cf_findings f;
	struct sender s;

	NEED_PG();
	new_db(db, sizeof(db));
	col_start(0, db, NULL, NULL);
	send_run(0, 7, 100, "mm", true);
	CHECK(bwpg_exec(db,
			"INSERT INTO events (run, seq, day, violation, flags, chain, event)"
			" SELECT id, 101, day, 0, 0, '\\x00', '\\x0102' FROM runs"
			" WHERE run_id = 'mm-run-7'",
			err, sizeof(err)) == 0, "planting seq 101: %s", err);
	sender_init(&s, 7, 150, "mm");
	s.last = 151;
	sender_main(&s);
	free(s.chains);
	CHECK(s.done, "%s", s.err);
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == 150, "events: %lld",
	      bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0));
	CHECK(bwpg_scalar(db, "SELECT length(event) FROM events WHERE seq = 101", NULL, 0) == 2,
	      "the planted row was replaced");
	CHECK(cf_query_findings(db, "mm-run-7", &f) == 0, "query --findings: %s", f.err);
	CHECK(cf_findings_count(&f, "duplicate_mismatch") == 1, "findings:\n%s",
	      f.raw ? f.raw : "");
	cf_findings_free(&f);
	CHECK(bwpg_scalar(db, "SELECT chain_ok FROM runs", NULL, 0) == 0, "the run is not tainted");
}

static void test_collector_pg__migrations(void **state)
{
	char db[512], err[2048], bad[PATH_MAX + 64];
	struct bw_result r;
	long long tables;

	NEED_PG();
	new_db(db, sizeof(db));
	/* fresh: version 1 */
	col_start(0, db, NULL, NULL);
	cf_collector_stop(&T.col[0]);
	CHECK(bwpg_scalar(db, "SELECT max(version) FROM schema_version", err, sizeof(err)) == 3,
	      "schema_version after a fresh start: %s", err);
	/* again: nothing to do, nothing recorded twice; a password in the conninfo (trust
	 * authentication ignores it) never reaches the log */
	{
		char withpw[600];
		char *log;

		snprintf(withpw, sizeof(withpw), "%s password=sekrit", db);
		col_start(0, withpw, NULL, NULL);
		cf_collector_stop(&T.col[0]);
		log = cf_read_from(T.col[0].log, 0);
		CHECK(!strstr(log, "sekrit") && strstr(log, "database PostgreSQL bw@"),
		      "the start-up line shows the password or no database:\n%s", log);
		free(log);
	}
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM schema_version", NULL, 0) == 3,
	      "a second start recorded a migration again");
	/* a newer schema: refused, nothing changed */
	CHECK(bwpg_exec(db, "INSERT INTO schema_version (version, applied_by) VALUES (99, 'future');"
			    "DROP TABLE findings CASCADE", err, sizeof(err)) == 0, "%s", err);
	tables = bwpg_scalar(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
			     NULL, 0);
	CHECK(bw_run((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
					    "--insecure", NULL }, 30, &r) == 0, "run");
	CHECK(r.exit_code != 0, "a database of schema 99 was accepted");
	CHECK(r.err && strstr(r.err, "schema version 99") && strstr(r.err, "newer"),
	      "no clear message: %s", r.err ? r.err : "");
	bw_result_free(&r);
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", NULL,
			  0) == tables, "the refused start changed the tables");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'findings'", NULL,
			  0) == 0, "the refused start re-created findings (a migration ran)");
	/* query refuses it too */
	CHECK(bw_run((const char *const[]){ "query", "--db", db, "--runs", NULL }, 30, &r) == 0,
	      "run");
	CHECK(r.exit_code != 0 && r.err && strstr(r.err, "newer"), "query on schema 99: exit %d: %s",
	      r.exit_code, r.err ? r.err : "");
	bw_result_free(&r);
	/* a server that is not there, a database that does not exist: clear, non-zero */
	snprintf(bad, sizeof(bad), "host=%s port=1 user=bw dbname=x", T.pg.dir);
	CHECK(bw_run((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", bad,
					    "--insecure", NULL }, 30, &r) == 0, "run");
	CHECK(r.exit_code != 0 && r.err && strstr(r.err, "cannot connect to PostgreSQL"),
	      "unreachable server: exit %d: %s", r.exit_code, r.err ? r.err : "");
	bw_result_free(&r);
	bwpg_conninfo(&T.pg, "no_such_db", bad, sizeof(bad));
	CHECK(bw_run((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", bad,
					    "--insecure", NULL }, 30, &r) == 0, "run");
	CHECK(r.exit_code != 0 && r.err && strstr(r.err, "no_such_db"),
	      "missing database: exit %d: %s", r.exit_code, r.err ? r.err : "");
	bw_result_free(&r);
	CHECK(bw_run((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db",
					    "postgresql://bw@127.0.0.1:1/x?connect_timeout=2",
					    "--insecure", NULL }, 30, &r) == 0, "run");
	CHECK(r.exit_code != 0 && r.err && strstr(r.err, "cannot connect to PostgreSQL"),
	      "refused TCP: exit %d: %s", r.exit_code, r.err ? r.err : "");
	bw_result_free(&r);
}

static void test_collector_pg__retention(void **state)
{
	char db[512], err[1024];

	NEED_PG();
	new_db(db, sizeof(db));
	col_start(0, db, NULL, NULL);
	send_run(0, 1, 120, "old", 0);
	send_run(0, 2, 120, "new", 0);
	cf_collector_stop(&T.col[0]);
	/* make "old" a run of 40 days ago: its rows move to that day's partition */
	CHECK(bwpg_exec(db,
			"CREATE TABLE events_p20000101 PARTITION OF events FOR VALUES FROM"
			" ('2000-01-01') TO ('2000-01-02');"
			"UPDATE events SET day = '2000-01-01' WHERE run = (SELECT id FROM runs"
			" WHERE run_id = 'old-run-1');"
			"UPDATE runs SET day = '2000-01-01', first_seen = 946684800000000000,"
			" last_seen = 946684800000000000 WHERE run_id = 'old-run-1';"
			"INSERT INTO findings (run, time, kind) SELECT id, 0, 'test' FROM runs"
			" WHERE run_id = 'old-run-1'",
			err, sizeof(err)) == 0, "backdating: %s", err);
	col_start(0, db, "--retention", "30d");
	for (long long end = cf_now_ms() + 15000;
	     cf_now_ms() < end && bwpg_scalar(db, "SELECT count(*) FROM runs", NULL, 0) != 1;)
		cf_sleep_ms(100);
	cf_collector_stop(&T.col[0]);
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'events_p20000101'",
			  NULL, 0) == 0, "the old day's partition is still there");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM runs WHERE run_id = 'old-run-1'", NULL, 0) == 0,
	      "the old run is still there");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM findings", NULL, 0) == 0,
	      "the old run's finding is still there");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == 120,
	      "today's run lost rows: %lld", bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0));
}

static long long sqlite_count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);

		if (rc == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		else if (rc == SQLITE_DONE)
			n = 0;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

/* --retention on the SQLite store, end to end: a run last active 40 days ago is deleted
 * (events, findings, run row) by a collector started with --retention 30d; a new one is
 * kept. A bad duration is a usage error. */
static void test_collector_pg__retention_sqlite(void **state)
{
	char path[PATH_MAX];
	struct bw_result r;

	snprintf(path, sizeof(path), "%s", wsp("retention.db"));
	col_start(0, path, NULL, NULL);
	send_run(0, 1, 150, "sqold", false);
	send_run(0, 2, 50, "sqnew", false);
	cf_collector_stop(&T.col[0]);
	CHECK(sqlite_count(path, "UPDATE runs SET last_seen = 946684800000000000 WHERE run_id ="
				 " 'sqold-run-1' RETURNING 1") == 1, "backdating");
	CHECK(sqlite_count(path, "INSERT INTO findings (run, time, kind) SELECT id, 0, 'test'"
				 " FROM runs WHERE run_id = 'sqold-run-1' RETURNING 1") == 1, "finding");
	col_start(0, path, "--retention", "30d");
	for (long long end = cf_now_ms() + 15000;
	     cf_now_ms() < end && sqlite_count(path, "SELECT count(*) FROM runs") != 1;)
		cf_sleep_ms(100);
	cf_collector_stop(&T.col[0]);
	CHECK(sqlite_count(path, "SELECT count(*) FROM runs WHERE run_id = 'sqnew-run-2'") == 1 &&
		      sqlite_count(path, "SELECT count(*) FROM runs") == 1,
	      "runs after retention: %lld", sqlite_count(path, "SELECT count(*) FROM runs"));
	CHECK(sqlite_count(path, "SELECT count(*) FROM events") == 50, "events after retention: %lld",
	      sqlite_count(path, "SELECT count(*) FROM events"));
	CHECK(sqlite_count(path, "SELECT count(*) FROM findings") == 0, "findings after retention");
	CHECK(bw_run((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", path,
					    "--insecure", "--retention", "30 days", NULL }, 30, &r) == 0,
	      "run");
	CHECK(r.exit_code == 64 && r.err && strstr(r.err, "--retention"),
	      "--retention '30 days': exit %d: %s", r.exit_code, r.err ? r.err : "");
	bw_result_free(&r);
}

static void test_collector_pg__faults(void **state)
{
	enum { AGENTS = 8, EVENTS = 3000 };
	struct sender s[AGENTS];
	pthread_t th[AGENTS];
	char db[512], err[1024];
	struct cf_findings f;
	long long t0;

	NEED_PG();
	new_db(db, sizeof(db));
	for (int i = 0; i < 3; i++)
		col_start(i, db, "--commit-ms", "20");
	for (int i = 0; i < AGENTS; i++) {
		sender_init(&s[i], i, EVENTS, "fault");
		/* every agent changes collector now and then (as behind a load balancer)
		 * without waiting for its Acks: the collectors race for runs */
		s[i].switch_every = EVENTS / 4 + 7 * i;
		CHECK(pthread_create(&th[i], NULL, sender_main, &s[i]) == 0, "thread");
	}
	t0 = cf_now_ms();
	/* a third in: kill -9 collector 1; two thirds in: restart PostgreSQL */
	for (;;) {
		uint64_t min = EVENTS;

		for (int i = 0; i < AGENTS; i++)
			if (s[i].sent_to < min)
				min = s[i].sent_to;
		if (fault_stage == 0 && min >= EVENTS / 3) {
			cf_collector_kill9(&T.col[1]);
			printf("killed collector 1 at %lld ms\n", cf_now_ms() - t0);
			fault_stage = 1;
		} else if (fault_stage == 1 && min >= EVENTS * 2 / 3) {
			CHECK(bwpg_restart_server(&T.pg, err, sizeof(err)) == 0, "restart: %s", err);
			printf("restarted PostgreSQL at %lld ms\n", cf_now_ms() - t0);
			fault_stage = 2;
			break;
		}
		if (cf_now_ms() - t0 > 45000)
			break;
		cf_sleep_ms(20);
	}
	for (int i = 0; i < AGENTS; i++)
		pthread_join(th[i], NULL);
	printf("faults: %lld ms, reconnects:", cf_now_ms() - t0);
	for (int i = 0; i < AGENTS; i++)
		printf(" %u", s[i].reconnects);
	printf("\n");
	CHECK(fault_stage == 2, "the faults were not injected (stage %d)", fault_stage);
	for (int i = 0; i < AGENTS; i++) {
		char sql[256];
		struct cf_stored st;

		CHECK(s[i].done, "%s: %s", s[i].run_id, s[i].err);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
			 " WHERE r.run_id = '%s'", s[i].run_id);
		CHECK(bwpg_scalar(db, sql, NULL, 0) == EVENTS, "%s: %lld rows, want %d",
		      s[i].run_id, bwpg_scalar(db, sql, NULL, 0), EVENTS);
		/* and through query: seqs 1..N, each once, in order */
		CHECK(cf_query_run(db, s[i].run_id, &st) == 0, "query: %s", st.err);
		CHECK(st.n == EVENTS, "%s: query lists %zu seqs", s[i].run_id, st.n);
		for (size_t k = 0; k < st.n; k++)
			CHECK(st.seq[k] == k + 1, "%s: seq %llu at %zu", s[i].run_id,
			      (unsigned long long)st.seq[k], k);
		cf_stored_free(&st);
		free(s[i].chains);
	}
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM runs", NULL, 0) == AGENTS, "runs");
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM runs WHERE chain_ok = 1 AND complete = 1", NULL,
			  0) == AGENTS, "a run is not complete and intact");
	CHECK(cf_query_findings(db, NULL, &f) == 0, "query --findings: %s", f.err);
	CHECK(f.n == 0, "false findings: %zu:\n%.3000s", f.n, f.raw ? f.raw : "");
	cf_findings_free(&f);
}


/* ---- export ---------------------------------------------------------------- */

/* What one line says: its exportId, and the run index and seq of the event. */
struct exported {
	long long id;
	int run;      /* i of "exp-run-<i>", -1 for the run stored before the export */
	long long seq;
};

/* From a line holding idkey"N", runkey"...-run-I" and seqkey"S" (rsyslog's structured
 * data or a JSON line); false when one is missing. */
static bool exported_parse(const char *line, const char *idkey, const char *runkey,
			   const char *seqkey, struct exported *e)
{
	const char *i = strstr(line, idkey), *r = strstr(line, runkey), *q = strstr(line, seqkey);

	if (!i || !r || !q)
		return false;
	e->id = atoll(i + strlen(idkey));
	r += strlen(runkey);
	e->run = !strncmp(r, "pre-run", 7) ? -1 : !strncmp(r, "exp-run-", 8) ? atoi(r + 8) : -2;
	e->seq = atoll(q + strlen(seqkey));
	return e->run > -2;
}

struct exported_list {
	struct exported *v;
	size_t n, cap;
};

static void exported_file(struct exported_list *l, const char *path, bool json)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	struct exported e;

	while (f && getline(&line, &cap, f) > 0) {
		bool ok = json ? exported_parse(line, "\"exportId\":\"", "\"runId\":\"", "\"seq\":\"", &e)
			       : exported_parse(line, "exportId=\"", "runId=\"", "seq=\"", &e);

		if (!ok)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 4096;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
			CHECK(l->v, "out of memory");
		}
		l->v[l->n++] = e;
	}
	free(line);
	if (f)
		fclose(f);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every line of every DIR/events-*.jsonl, in file order. */
static struct exported_list exported_jsonl(const char *dir)
{
	struct exported_list l = { 0 };
	char *names[256], path[PATH_MAX + 300];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	CHECK(d, "cannot open %s", dir);
	while ((de = readdir(d)) && n < 256)
		if (!strncmp(de->d_name, "events-", 7) && strstr(de->d_name, ".jsonl"))
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		exported_file(&l, path, true);
		free(names[i]);
	}
	return l;
}

/* Index of the collector whose log (this instance) says it exports spec; -1: none. */
static int exporting_collector(const char *spec)
{
	for (int i = 0; i < 3; i++)
		if (T.col[i].pid > 0 &&
		    cf_log_has_line(T.col[i].log, T.col[i].log_start,
				    (const char *const[]){ "export ", spec, "exporting '", NULL }, NULL,
				    NULL, 0))
			return i;
	return -1;
}

/* A batch as a collector writes it (a runs row, its events, its export_log row), in a
 * transaction of a session of ours that is left open: it began before the collectors'
 * batches and commits after them. Run index AGENTS, seqs 1..LATE. */
static struct bwpg_session *late_batch_begin(const char *db, int run, int events)
{
	char err[1024], *sql = malloc(1 << 20), run_id[48];
	struct bwpg_session *ps = bwpg_session_open(db, err, sizeof(err));
	size_t o = 0;

	CHECK(ps && sql, "session: %s", err);
	snprintf(run_id, sizeof(run_id), "exp-run-%d", run);
	o += (size_t)snprintf(sql + o, (1 << 20) - o,
			      "BEGIN; SELECT pg_current_xact_id();"
			      " INSERT INTO runs (agent, host, run_id, first_seen, last_seen, last_seq,"
			      " last_chain, has_run_start, has_run_end, kernel_drops, chain_ok, complete, day)"
			      " VALUES ('agent-late', 'host-late', '%s', %lld, %lld, %d, '\\x00', 1, 0, 0, 1, 0,"
			      " current_date);",
			      run_id, (long long)time(NULL) * 1000000000LL, (long long)time(NULL) * 1000000000LL,
			      events);
	for (int q = 1; q <= events; q++) {
		size_t len;
		uint8_t *ev = mk_event((uint64_t)q, (uint64_t)events + 1, "host-late", run_id, &len);

		o += (size_t)snprintf(sql + o, (1 << 20) - o,
				      "INSERT INTO events (run, seq, day, kind, violation, flags, chain, event)"
				      " SELECT id, %d, day, 'exec', 0, 0, '\\x00', '\\x", q);
		for (size_t k = 0; k < len && o + 8 < (1 << 20); k++)
			o += (size_t)snprintf(sql + o, (1 << 20) - o, "%02x", ev[k]);
		o += (size_t)snprintf(sql + o, (1 << 20) - o,
				      "' FROM runs WHERE run_id = '%s';", run_id);
		free(ev);
	}
	snprintf(sql + o, (1 << 20) - o,
		 "INSERT INTO export_log (xact, run, day, first_seq, last_seq)"
		 " SELECT pg_current_xact_id(), id, day, 1, %d FROM runs WHERE run_id = '%s'",
		 events, run_id);
	CHECK(bwpg_session_exec(ps, sql, err, sizeof(err)) == 0, "the late batch: %s", err);
	free(sql);
	return ps;
}

static void test_collector_pg__export(void **state)
{
	enum { AGENTS = 8, EVENTS = 2000, PRE = 300, LATE = 50 };
	const long long n = PRE + (long long)AGENTS * EVENTS + LATE;
	struct bwpg_session *late;
	static char rsx[128], jx[PATH_MAX + 8];
	char db[512], err[8192], sql[512], jdir[PATH_MAX];
	struct rsf *rs = &T.rs;
	struct sender s[AGENTS];
	pthread_t th[AGENTS];
	unsigned *count = calloc((size_t)n + 1, sizeof(unsigned));
	struct exported *first = calloc((size_t)n + 1, sizeof(*first));
	struct rsf_ids ids;
	struct exported_list el;
	long long cur = -1, got_at_kill = 0, repeats = 0, t0;
	int victim = -1;

	NEED_PG();
	if (!rsf_available()) {
		printf("skipped: no %s (make deps installs rsyslog)\n", RSF_RSYSLOGD);
		skip();
	}
	new_db(db, sizeof(db));
	/* a database of schema 2 with events in it (the export's migration is undone by
	 * hand): what a fleet had before; they are exported first */
	col_start(0, db, NULL, NULL);
	send_run(0, 0, PRE, "pre", false);
	cf_collector_stop(&T.col[0]);
	CHECK(bwpg_exec(db,
			"DROP TABLE IF EXISTS export_log, export_next, export_cursors;"
			" ALTER TABLE events DROP COLUMN IF EXISTS xact;"
			" DELETE FROM schema_version WHERE version = 3",
			err, sizeof(err)) == 0, "back to schema 2: %s", err);
	snprintf(rs->dir, sizeof(rs->dir), "%s", wsp("rs"));
	CHECK(rsf_start(rs, err, sizeof(err)) == 0, "%s", err);
	snprintf(jdir, sizeof(jdir), "%s", wsp("jsonl"));
	CHECK(mkdir(jdir, 0700) == 0, "mkdir %s", jdir);
	snprintf(rsx, sizeof(rsx), "syslog:tcp://127.0.0.1:%d", rs->port);
	snprintf(jx, sizeof(jx), "jsonl:%s", jdir);
	/* three collectors, each with the same two --export: one exports each, the others
	 * stand by (before this change: exit 64, "--export needs the SQLite store") */
	for (int i = 0; i < 3; i++) {
		char rel[32];

		memset(&T.col[i], 0, sizeof(T.col[i]));
		snprintf(T.col[i].db, sizeof(T.col[i].db), "%s", db);
		snprintf(rel, sizeof(rel), "collector-%d.log", i);
		snprintf(T.col[i].log, sizeof(T.col[i].log), "%s", wsp(rel));
		T.col[i].extra[0] = "--export";
		T.col[i].extra[1] = rsx;
		T.col[i].extra[2] = "--export";
		T.col[i].extra[3] = jx;
		T.col[i].extra[4] = "--export-settle";
		T.col[i].extra[5] = "0.3";
		CHECK(cf_collector_start(&T.col[i], err, sizeof(err)) == 0, "collector %d: %s", i, err);
	}
	/* a batch that begins before the others and commits after many of them were
	 * exported: an id given at insert time would be below the cursor by then */
	late = late_batch_begin(db, AGENTS, LATE);
	for (int i = 0; i < AGENTS; i++) {
		sender_init(&s[i], i, EVENTS, "exp");
		s[i].switch_every = EVENTS / 3 + 7 * i;
		s[i].pace_ms = 40; /* ~2 s of ingest: the kill lands in the middle of it */
		CHECK(pthread_create(&th[i], NULL, sender_main, &s[i]) == 0, "thread");
	}
	t0 = cf_now_ms();
	/* kill -9 the exporting collector once rsyslog holds more than its saved cursor */
	snprintf(sql, sizeof(sql), "SELECT coalesce(max(pos), 0) FROM export_cursors WHERE name = '%s'",
		 rsx);
	for (long long end = cf_now_ms() + 45000; cf_now_ms() < end; cf_sleep_ms(20)) {
		long long c = bwpg_scalar(db, sql, NULL, 0);

		victim = exporting_collector(rsx);
		ids = rsf_ids(rs);
		got_at_kill = (long long)ids.n;
		free(ids.v);
		if (getenv("BW_TEST_VERBOSE"))
			printf("     %lld ms: exporter %d, cursor %lld, rsyslog %lld\n", cf_now_ms() - t0,
			       victim, c, got_at_kill);
		uint64_t min = EVENTS;

		for (int k = 0; k < AGENTS; k++)
			if (s[k].sent_to < min)
				min = s[k].sent_to;
		if (victim >= 0 && c >= PRE && got_at_kill > c + 100 && min >= EVENTS / 3) {
			cf_collector_kill9(&T.col[victim]);
			cur = c; /* the killed one saved at least this */
			break;
		}
	}
	CHECK(cur > 0, "no kill between the cursor and what rsyslog got (exporter %d, %lld messages)",
	      victim, got_at_kill);
	printf("     killed collector %d at %lld ms with %lld messages in rsyslog, cursor at %lld\n",
	       victim, cf_now_ms() - t0, got_at_kill, cur);
	for (int i = 0; i < AGENTS; i++) {
		pthread_join(th[i], NULL);
		CHECK(s[i].done, "%s: %s", s[i].run_id, s[i].err);
		free(s[i].chains);
	}
	{
		const char *given = "SELECT next - 1 FROM export_next";
		long long c;

		/* every agent's event numbered first: a sequencer run that saw the late batch
		 * and a batch committed just before it would number both in xact order, the
		 * late one (the older xact) first, and "the late batch last" below would
		 * depend on when the exporter last polled */
		for (long long end = cf_now_ms() + 30000;
		     cf_now_ms() < end && bwpg_scalar(db, given, NULL, 0) < n - LATE;)
			cf_sleep_ms(50);
		CHECK(bwpg_scalar(db, given, NULL, 0) == n - LATE,
		      "positions given before the late batch: %lld, want %lld",
		      bwpg_scalar(db, given, NULL, 0), n - LATE);
		c = bwpg_scalar(db, sql, NULL, 0);
		CHECK(bwpg_session_exec(late, "COMMIT", err, sizeof(err)) == 0, "commit: %s", err);
		bwpg_session_close(late);
		printf("     the late batch committed with the cursor at %lld\n", c);
	}
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == n, "%lld events stored, want %lld",
	      bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0), n);
	ids = rsf_wait_all(rs, n, 60000);
	free(ids.v);
	/* and the new exporter's cursor reaches the end (the settle time after the last) */
	for (long long end = cf_now_ms() + 30000; cf_now_ms() < end && bwpg_scalar(db, sql, NULL, 0) < n;)
		cf_sleep_ms(50);
	CHECK(bwpg_scalar(db, sql, NULL, 0) == n, "the cursor stays at %lld of %lld",
	      bwpg_scalar(db, sql, NULL, 0), n);
	{
		int takeover = exporting_collector(rsx);

		CHECK(takeover >= 0 && takeover != victim, "no other collector took the export over");
		printf("     collector %d took over; all exported at %lld ms\n", takeover, cf_now_ms() - t0);
	}
	/* idle now: the exporters' polls (two exports, every 0.5 s) number nothing and write
	 * nothing; export_next keeps its row version (before: an UPDATE ... + 0 per poll) */
	{
		const char *q = "SELECT xmin::text::bigint FROM export_next";
		long long before = bwpg_scalar(db, q, NULL, 0), after;

		cf_sleep_ms(1500);
		after = bwpg_scalar(db, q, NULL, 0);
		CHECK(before > 0 && after == before,
		      "export_next written by idle polls (its xmin %lld, then %lld)", before, after);
	}
	for (int i = 0; i < 3; i++)
		if (T.col[i].pid > 0)
			CHECK(cf_collector_stop(&T.col[i]) == 0, "collector %d did not stop cleanly", i);
	rsf_stop(rs);
	CHECK(bwpg_scalar(db, "SELECT next - 1 FROM export_next", NULL, 0) == n,
	      "positions given: %lld, events: %lld", bwpg_scalar(db, "SELECT next - 1 FROM export_next", NULL, 0), n);

	/* rsyslog: every position 1..n, nothing else; a repeat only after the cursor the
	 * killed collector had saved, and always the same event */
	el = (struct exported_list){ 0 };
	exported_file(&el, rs->out, false);
	for (size_t i = 0; i < el.n; i++) {
		const struct exported *e = &el.v[i];

		CHECK(e->id >= 1 && e->id <= n, "rsyslog: exportId %lld outside 1..%lld", e->id, n);
		if (count[e->id]++) {
			CHECK(e->id > cur, "rsyslog: exportId %lld repeated, at or below the cursor %lld",
			      e->id, cur);
			CHECK(first[e->id].run == e->run && first[e->id].seq == e->seq,
			      "exportId %lld names run %d seq %lld, and before run %d seq %lld", e->id,
			      e->run, e->seq, first[e->id].run, first[e->id].seq);
			repeats++;
		} else {
			first[e->id] = *e;
		}
	}
	for (long long id = 1; id <= n; id++)
		CHECK(count[id] >= 1, "rsyslog: exportId %lld never arrived (%zu messages)", id, el.n);
	/* each event once: (run, seq) to id is one to one */
	{
		unsigned char *have = calloc((size_t)(AGENTS + 2) * (EVENTS + PRE + 1), 1);

		for (long long id = 1; id <= n; id++) {
			size_t k = (size_t)(first[id].run + 1) * (EVENTS + PRE + 1) + (size_t)first[id].seq;

			CHECK(first[id].seq >= 1 &&
			      first[id].seq <= (first[id].run < 0 ? PRE : first[id].run == AGENTS ? LATE : EVENTS) &&
			      !have[k],
			      "exportId %lld: run %d seq %lld out of range or exported under two ids", id,
			      first[id].run, first[id].seq);
			have[k] = 1;
			/* what was stored before the export's schema comes first, the late batch
			 * last (it committed after everything else) */
			CHECK((id <= PRE) == (first[id].run < 0), "exportId %lld is run %d", id, first[id].run);
			CHECK((id > n - LATE) == (first[id].run == AGENTS), "exportId %lld is run %d", id,
			      first[id].run);
		}
		free(have);
	}
	printf("     rsyslog: %zu messages for %lld events, %lld repeats, all after the cursor\n", el.n,
	       n, repeats);
	free(el.v);
	/* jsonl: the newest file's last line says what was written: nothing twice, in order */
	el = exported_jsonl(jdir);
	CHECK(el.n == (size_t)n, "jsonl: %zu lines for %lld events", el.n, n);
	for (size_t i = 0; i < el.n; i++)
		CHECK(el.v[i].id == (long long)i + 1 && el.v[i].run == first[i + 1].run &&
		      el.v[i].seq == first[i + 1].seq,
		      "jsonl: line %zu is exportId %lld (run %d seq %lld)", i, el.v[i].id, el.v[i].run,
		      el.v[i].seq);
	free(el.v);
	free(count);
	free(first);
}

/* ---- a server that does not answer ------------------------------------------ */

/* sig to the postmaster and every process it started (backends, WAL writer, ...). */
static void pg_signal_all(int sig)
{
	char path[PATH_MAX + 32], *t;
	long pm;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/postmaster.pid", T.pg.data);
	t = cf_read_from(path, 0);
	pm = atol(t);
	free(t);
	if (pm <= 1)
		return;
	kill((pid_t)pm, sig);
	d = opendir("/proc");
	while (d && (de = readdir(d))) {
		char stat[300], *st, *p;
		long ppid = 0;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(stat, sizeof(stat), "/proc/%s/stat", de->d_name);
		st = cf_read_from(stat, 0);
		p = strrchr(st, ')');
		if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == pm)
			kill((pid_t)atol(de->d_name), sig);
		free(st);
	}
	if (d)
		closedir(d);
	T.pg_stopped = sig == SIGSTOP;
}

/* Issue 12, gap (4): the Hello's run lookup runs on the collector's event loop. With the
 * server stopped (SIGSTOP: connections open, nothing answers, as behind a network that
 * drops packets), a Hello was held until the server came back (and every other
 * connection with it); now it is refused within the lookup's 2 s, later ones at once
 * or after one 2 s reconnect try, and once the server is back agents get in again. */
static void test_collector_pg__outage_hello(void **state)
{
	char db[512];
	long long worst = 0;

	NEED_PG();
	new_db(db, sizeof(db));
	col_start(0, db, NULL, NULL);
	send_run(0, 1, 50, "outage", false);
	pg_signal_all(SIGSTOP);
	for (int i = 0; i < 4; i++) {
		struct cf_peer p = { .fd = -1 };
		char run_id[32];
		long long t0 = cf_now_ms(), took;
		int rc;

		snprintf(run_id, sizeof(run_id), "outage-new-%d", i);
		CHECK(cf_peer_connect(&p, T.col[0].port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
		rc = cf_peer_hello(&p, "agent-2", "host-2", run_id, NULL);
		took = cf_now_ms() - t0;
		printf("     Hello %d with the server stopped: %lld ms: %s\n", i, took,
		       rc ? p.err : "welcomed");
		CHECK(rc != 0 && strstr(p.err, "cannot read the store"),
		      "Hello %d with the server stopped: not refused as a store error: %s", i, p.err);
		CHECK(took < 3500, "Hello %d waited %lld ms for a server that does not answer", i, took);
		if (took > worst)
			worst = took;
		cf_peer_close(&p);
	}
	pg_signal_all(SIGCONT);
	/* back: a new run gets in (after at most one backoff) and is stored */
	send_run(0, 2, 50, "outage", false);
	CHECK(bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0) == 100,
	      "%lld events stored", bwpg_scalar(db, "SELECT count(*) FROM events", NULL, 0));
	printf("     longest refused Hello: %lld ms\n", worst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_collector_pg__parity, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__dedupe_resend, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__race_spares_others, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__stored_behind_our_back, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__migrations, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__retention, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__retention_sqlite, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__faults, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__export, case_teardown),
		cmocka_unit_test_teardown(test_collector_pg__outage_hello, case_teardown),
	};

	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
