// SPDX-License-Identifier: GPL-2.0
/* `buildwarden query` over a store filled through ingest: violations as proto3 JSON
 * with the agent in front, findings including the computed no_run_end, a run's history
 * in seq order, the filters, and duration parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "collector/ingest.h"
#include "collector/query.h"
#include "collector/query_event.h"
#include "collector/store.h"
#include "transport/chain.h"
#include "transport/frame.h"

static char dbpath[64];

static void feed(struct ingest *ig, struct ingest_conn *ic, const Buildwarden__V1__AgentMessage *m)
{
	uint8_t buf[2048];
	size_t len = buildwarden__v1__agent_message__get_packed_size(m);
	size_t hl = frame__encode_len(len, buf);
	enum feed_status st;

	buildwarden__v1__agent_message__pack(m, buf + hl);
	assert_int_equal(ingest__feed(ig, ic, buf, hl + len, &st), hl + len);
}

/* One run: runStart, execs, a violation every 'every' seqs, runEnd unless open;
 * skip_from > 0 leaves a gap at that seq. */
static void run(struct ingest *ig, const char *agent, const char *host, const char *runid,
		int n, bool open, int gap_at)
{
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__Hello h = BUILDWARDEN__V1__HELLO__INIT;
	struct ingest_conn ic;
	uint8_t chain[32] = { 0 };

	ingest__conn_init(&ic, NULL);
	h.agent_id = (char *)agent;
	h.host = (char *)host;
	h.run_id = (char *)runid;
	h.schema_version = BW_SCHEMA_VERSION;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	feed(ig, &ic, &m);
	assert_int_equal(chain__init(runid, NULL, 0, chain), 0);
	for (int s = 1; s <= n; s++) {
		Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		Buildwarden__V1__RunStart rs = BUILDWARDEN__V1__RUN_START__INIT;
		Buildwarden__V1__RunEnd re = BUILDWARDEN__V1__RUN_END__INIT;
		Buildwarden__V1__ConnectBody cb = BUILDWARDEN__V1__CONNECT_BODY__INIT;
		Buildwarden__V1__FileBody fb = BUILDWARDEN__V1__FILE_BODY__INIT;
		Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
		Buildwarden__V1__Verdict vd = BUILDWARDEN__V1__VERDICT__INIT;
		Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;
		char *rs_argv[] = { (char *)"make", (char *)"release" };
		uint8_t evb[512];
		size_t el;

		ev.seq = (uint64_t)s;
		/* wall clock "now" minus (n - s) minutes: the last event is the newest */
		ev.time_ns = (uint64_t)(time(NULL) - (n - s) * 60) * 1000000000ull;
		ev.host = (char *)host;
		ev.run_id = (char *)runid;
		if (s == 1) {
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
			rs.argv = rs_argv;
			rs.n_argv = 2;
			rs.mode = (char *)"audit";
			ev.run_start = &rs;
		} else if (s == n && !open) {
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
			ev.run_end = &re;
		} else if (s == 6) {
			/* enforce mode's after-the-fact verdict on a file change */
			fb.op = BUILDWARDEN__V1__FILE_OP__RENAME;
			fb.path = (char *)"/src/a.c";
			fb.new_path = (char *)"/src/b.c";
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
			ev.file = &fb;
			vd.violation = true;
			vd.rule = (char *)"protect[0]: /src";
			vd.action = BUILDWARDEN__V1__ACTION__TAINTED;
			vd.actor_killed = true;
			ev.verdict = &vd;
			/* run-a: the SUNSPOT case, a process outside the build; run-b: the build */
			pr.pid = 4242;
			pr.attributed = true;
			pr.in_build = strcmp(runid, "run-a") != 0;
			pr.exe = (char *)(pr.in_build ? "/usr/bin/make" : "/tmp/sunspot");
			ev.process = &pr;
		} else if (s % 3 == 0) {
			cb.address = (char *)"203.0.113.9";
			cb.port = 443;
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
			ev.connect = &cb;
			vd.violation = true;
			vd.rule = (char *)(s % 2 ? "network.default: deny" : "network.deny[0]: 203.0.113.0/24");
			vd.action = BUILDWARDEN__V1__ACTION__DENIED;
			ev.verdict = &vd;
		} else {
			ex.filename = (char *)"/usr/bin/cc";
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
			ev.exec = &ex;
			pr.pid = 100 + (uint32_t)s;
			pr.attributed = true;
			pr.in_build = true;
			pr.exe = (char *)"/usr/bin/cc";
			ev.process = &pr;
		}
		el = buildwarden__v1__event__pack(&ev, evb);
		chain__next(chain, (uint64_t)s, evb, el, NULL, 0, chain);
		if (s == gap_at)
			continue;
		f.seq = (uint64_t)s;
		f.event.data = evb;
		f.event.len = el;
		f.chain.data = chain;
		f.chain.len = 32;
		m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
		m.event = &f;
		feed(ig, &ic, &m);
	}
	ingest__conn_close(ig, &ic);
}

static int setup(void **state)
{
	struct ingest_cfg cfg = { .insecure = true };
	struct ingest *ig;
	struct store *st;
	struct batch *b;
	char err[256];

	snprintf(dbpath, sizeof(dbpath), "/tmp/bw-query-%d.db", (int)getpid());
	if (store__open(dbpath, STORE_WRITE, &st, err, sizeof(err)) || ingest__new(&cfg, st, &ig))
		return -1;
	run(ig, "agent-a", "host-a", "run-a", 10, false, 0);  /* complete, violations at 3, 6, 9 */
	run(ig, "agent-b", "host-b", "run-b", 7, true, 5);    /* no runEnd, gap at 5 */
	b = ingest__seal(ig);
	if (!b || store__apply(st, b, err, sizeof(err)))
		return -1;
	ingest__done(ig, b, true);
	ingest__free(ig);
	store__close(st);
	return 0;
}

static int teardown(void **state)
{
	char p[96];

	unlink(dbpath);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s.lock", dbpath);
	unlink(p);
	return 0;
}

/* Runs a query; returns the output (caller frees) and its line count. */
static char *q(const struct query_opts *o, int *lines)
{
	struct store *st;
	char err[256], *out = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(store__open(dbpath, STORE_READ, &st, err, sizeof(err)), 0);
	f = open_memstream(&out, &len);
	assert_int_equal(query__run(st, o, f, err, sizeof(err)), 0);
	fclose(f);
	store__close(st);
	*lines = 0;
	for (char *p = out; p && *p; p++)
		*lines += *p == '\n';
	return out;
}

static void test_collector_query__violations(void **state)
{
	struct query_opts o = { .violations = true };
	int n;
	char *out = q(&o, &n);

	/* run-a: 3, 6, 9; run-b: 3, 6 */
	assert_int_equal(n, 5);
	assert_non_null(strstr(out, "{\"agent\":\"agent-a\",\"seq\":\"3\""));
	assert_non_null(strstr(out, "\"rule\":\"network.default: deny\""));
	assert_non_null(strstr(out, "\"action\":\"DENIED\""));
	assert_non_null(strstr(out, "\"action\":\"TAINTED\",\"actorKilled\":true"));
	assert_non_null(strstr(out, "\"address\":\"203.0.113.9\""));
	free(out);

	o.host = "host-b";
	out = q(&o, &n);
	assert_int_equal(n, 2);
	free(out);
	o.host = NULL;
	o.rule = "network.default: deny"; /* odd seqs: 3 and 9 in run-a, 3 in run-b */
	out = q(&o, &n);
	assert_int_equal(n, 3);
	free(out);
	/* a prefix picks the rules under it (issue 10): "network.default" is those three */
	o.rule = "network.default";
	out = q(&o, &n);
	assert_int_equal(n, 3);
	free(out);
	o.rule = "network.default: deny and more";
	out = q(&o, &n);
	assert_int_equal(n, 0);
	free(out);
	o.rule = NULL;
	o.run = "run-a";
	o.limit = 2; /* the two most recent, oldest first */
	out = q(&o, &n);
	assert_int_equal(n, 2);
	assert_true(strstr(out, "\"seq\":\"6\"") < strstr(out, "\"seq\":\"9\""));
	assert_null(strstr(out, "\"seq\":\"3\""));
	free(out);
	o.run = NULL;
	o.limit = 0;
	o.since_ns = ((int64_t)time(NULL) - 150) * 1000000000; /* the last 2.5 minutes */
	out = q(&o, &n);
	/* --since is by when the collector received a row, not by the agent's timeNs
	 * (which dates most of these minutes back): every violation arrived just now */
	assert_int_equal(n, 5);
	free(out);
}

static void test_collector_query__findings(void **state)
{
	struct query_opts o = { .findings = true };
	int n;
	char *out = q(&o, &n);

	/* run-b: the gap at 5 (stored) and no runEnd (computed); run-a is complete */
	assert_int_equal(n, 2);
	assert_non_null(strstr(out, "\"kind\":\"gap\",\"agent\":\"agent-b\",\"host\":\"host-b\","
				    "\"runId\":\"run-b\""));
	assert_non_null(strstr(out, "\"firstSeq\":\"5\",\"lastSeq\":\"5\""));
	assert_non_null(strstr(out, "\"kind\":\"no_run_end\""));
	assert_null(strstr(out, "run-a"));
	free(out);
	o.host = "host-a";
	out = q(&o, &n);
	assert_int_equal(n, 0);
	free(out);
}

static void test_collector_query__run_history(void **state)
{
	struct query_opts o = { .run = "run-b" };
	int n;
	char *out = q(&o, &n);
	char *p = out;

	assert_int_equal(n, 6); /* 1-4, 6, 7 */
	for (int s = 1; s <= 7; s++) {
		char want[32];

		if (s == 5)
			continue;
		snprintf(want, sizeof(want), "\"seq\":\"%d\"", s);
		p = strstr(p, want);
		assert_non_null(p);
	}
	/* after the gap there is nothing to verify seq 6 against */
	assert_non_null(strstr(out, "\"integrity\":[\"chain_unverified\"],\"seq\":\"6\""));
	free(out);
}

static void test_collector_query__runs(void **state)
{
	struct query_opts o = { .runs = true };
	int n;
	char *out = q(&o, &n);

	assert_int_equal(n, 2);
	/* run-a: complete, violations at 3, 6, 9, its runStart (the CI job's command) */
	assert_non_null(strstr(out, "{\"agent\":\"agent-a\",\"host\":\"host-a\",\"runId\":\"run-a\""));
	assert_non_null(strstr(out, "\"complete\":true,\"violations\":3,\"findings\":0"));
	assert_non_null(strstr(out, "\"runStart\":{\"argv\":[\"make\",\"release\"],\"mode\":\"audit\"}"));
	assert_non_null(strstr(out, "\"runEnd\":{"));
	/* run-b: no runEnd, a gap; violations at 3 and 6 */
	assert_non_null(strstr(out, "\"runId\":\"run-b\""));
	assert_non_null(strstr(out, "\"complete\":false,\"violations\":2,\"findings\":1"));
	free(out);
	o.format = QUERY_TEXT;
	o.limit = 1;
	out = q(&o, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(out, "run run-b: no runEnd yet, 7 events, 2 violations, 1 findings mode audit: make release"));
	free(out);
}

/* "Which runs produced an artifact written by a process outside the build?" */
static void test_collector_query__outside_writes(void **state)
{
	struct query_opts o = { .runs = true, .outside_writes = true };
	int n;
	char *out = q(&o, &n);

	/* both runs renamed /src/a.c at seq 6; only run-a's actor was outside the build */
	assert_int_equal(n, 1);
	assert_non_null(strstr(out, "\"runId\":\"run-a\""));
	assert_non_null(strstr(out, "\"outsideWrites\":1,\"outsideWriters\":[\"/tmp/sunspot\"]"));
	free(out);
	o.path = "/out"; /* nothing outside the build wrote there */
	out = q(&o, &n);
	assert_int_equal(n, 0);
	free(out);
	o.path = "/src";
	out = q(&o, &n);
	assert_int_equal(n, 1);
	free(out);
	/* the events themselves */
	o = (struct query_opts){ .outside_writes = true, .format = QUERY_TEXT };
	out = q(&o, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(out, " agent-a/host-a run run-a #6 file RENAME /src/a.c -> /src/b.c by /tmp/sunspot pid 4242 (outside the build) VIOLATION protect[0]: /src TAINTED"));
	free(out);
	/* an actor the sensor could not name is not shown to be the build */
	{
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		Buildwarden__V1__FileBody fb = BUILDWARDEN__V1__FILE_BODY__INIT;
		Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;

		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev.file = &fb;
		assert_true(query_event__outside_write(&ev)); /* no process at all */
		ev.process = &pr;
		pr.in_build = true;
		assert_true(query_event__outside_write(&ev)); /* unattributed */
		pr.attributed = true;
		assert_false(query_event__outside_write(&ev));
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC; /* not a file change */
		pr.in_build = false;
		assert_false(query_event__outside_write(&ev));
	}
}

static void test_collector_query__event_filters(void **state)
{
	struct query_opts o = { .kind = "exec" };
	int n;
	char *out = q(&o, &n);

	/* run-a: 2 4 5 7 8; run-b: 2 4 7 (5 is the gap) */
	assert_int_equal(n, 8);
	free(out);
	o.run = "run-a";
	out = q(&o, &n); /* a run's history, filtered */
	assert_int_equal(n, 5);
	free(out);
	o.limit = 2; /* its first two */
	out = q(&o, &n);
	assert_int_equal(n, 2);
	assert_non_null(strstr(out, "\"seq\":\"2\""));
	assert_non_null(strstr(out, "\"seq\":\"4\""));
	free(out);
	o = (struct query_opts){ .exe = "/usr/bin/cc", .limit = 3 }; /* the newest three */
	out = q(&o, &n);
	assert_int_equal(n, 3);
	assert_null(strstr(out, "run-a"));
	free(out);
	o = (struct query_opts){ .exe = "/usr/bin/c" }; /* exact, not a prefix */
	out = q(&o, &n);
	assert_int_equal(n, 0);
	free(out);
	o = (struct query_opts){ .path = "/src" };
	out = q(&o, &n);
	assert_int_equal(n, 2); /* the renames of both runs */
	free(out);
	o.path = "/sr"; /* a prefix of path components, not of characters */
	out = q(&o, &n);
	assert_int_equal(n, 0);
	free(out);
	o = (struct query_opts){ .path = "/usr/bin", .violations = true };
	out = q(&o, &n);
	assert_int_equal(n, 0); /* the execs are not violations */
	free(out);
	o = (struct query_opts){ .violations = true, .kind = "connect", .format = QUERY_TEXT };
	out = q(&o, &n);
	assert_int_equal(n, 3); /* 3 and 9 in run-a, 3 in run-b (6 is the rename) */
	assert_non_null(strstr(out, "connect 203.0.113.9:443"));
	free(out);
}

static void test_collector_query__duration(void **state)
{
	int64_t ns;

	assert_int_equal(query__duration("30s", &ns), 0);
	assert_true(ns == 30000000000ll);
	assert_int_equal(query__duration("15m", &ns), 0);
	assert_true(ns == 900000000000ll);
	assert_int_equal(query__duration("2d", &ns), 0);
	assert_true(ns == 2 * 86400000000000ll);
	assert_int_equal(query__duration("1h", &ns), 0);
	assert_int_equal(query__duration("1", &ns), -EINVAL);
	assert_int_equal(query__duration("h", &ns), -EINVAL);
	assert_int_equal(query__duration("-1h", &ns), -EINVAL);
	assert_int_equal(query__duration("1hh", &ns), -EINVAL);
	assert_int_equal(query__duration("99999999999999999999d", &ns), -EINVAL);
	assert_int_equal(query__duration("", &ns), -EINVAL);
}

static void test_collector_query__not_a_collector_db(void **state)
{
	char p[64], err[256];
	struct store *st;
	FILE *f;

	snprintf(p, sizeof(p), "/tmp/bw-notdb-%d", (int)getpid());
	f = fopen(p, "w");
	fputs("this is not sqlite at all, just text that is long enough to look like a header", f);
	fclose(f);
	assert_int_equal(store__open(p, STORE_READ, &st, err, sizeof(err)), -EINVAL);
	unlink(p);
	assert_int_equal(store__open("/nonexistent/x.db", STORE_READ, &st, err, sizeof(err)), -ENOENT);
}

static long long count(struct store *st, const char *sql)
{
	sqlite3_stmt *q;
	long long n = -1;

	assert_int_equal(sqlite3_prepare_v2(store__db(st), sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

/* --retention on SQLite: runs last active before the cutoff go, in steps of at most
 * max_rows events (so a commit never waits long), then their findings and run rows;
 * newer runs stay whole. */
static void test_collector_query__retention_sqlite(void **state)
{
	struct store *st;
	char err[256];
	bool more = true;
	int steps = 0;

	assert_int_equal(store__open(":memory:", STORE_WRITE, &st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_exec(store__db(st),
		"INSERT INTO runs (id, agent, host, run_id, first_seen, last_seen, last_seq, last_chain,"
		" has_run_start, has_run_end, run_end_seq, kernel_drops, chain_ok, complete) VALUES"
		" (1, 'a', 'h', 'old', 10, 100, 2500, x'00', 1, 1, 2500, 0, 1, 1),"
		" (2, 'a', 'h', 'new', 10, 5000, 30, x'00', 1, 1, 30, 0, 1, 1);"
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
		" INSERT INTO events (run, seq, violation, flags, chain, event) SELECT 1, i, 0, 0, x'', x'' FROM n;"
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)"
		" INSERT INTO events (run, seq, violation, flags, chain, event) SELECT 2, i, 0, 0, x'', x'' FROM n;"
		"INSERT INTO findings (run, time, kind) VALUES (1, 50, 'gap'), (2, 50, 'gap');",
		NULL, NULL, NULL), SQLITE_OK);
	while (more) {
		long long before = count(st, "SELECT count(*) FROM events");

		assert_int_equal(store__retain(st, 1000, 1000, &more, err, sizeof(err)), 0);
		/* bounded: never more than max_rows events in one step */
		assert_true(before - count(st, "SELECT count(*) FROM events") <= 1000);
		assert_true(++steps < 10);
	}
	assert_int_equal(steps, 3);
	assert_int_equal(count(st, "SELECT count(*) FROM events"), 30);
	assert_int_equal(count(st, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(count(st, "SELECT count(*) FROM runs WHERE run_id = 'new'"), 1);
	assert_int_equal(count(st, "SELECT count(*) FROM findings"), 1);
	store__close(st);
}

/* --db picks the engine: URIs and conninfo strings are PostgreSQL, anything else a path */
static void test_collector_query__engine_of(void **state)
{
	assert_int_equal(store__engine_of("postgresql://bw@db/x"), STORE_PG);
	assert_int_equal(store__engine_of("postgres://db/x?sslmode=require"), STORE_PG);
	assert_int_equal(store__engine_of("host=/run/pg dbname=bw"), STORE_PG);
	assert_int_equal(store__engine_of("dbname=bw"), STORE_PG);
	assert_int_equal(store__engine_of("events.db"), STORE_SQLITE);
	assert_int_equal(store__engine_of("/var/lib/bw/events.db"), STORE_SQLITE);
	assert_int_equal(store__engine_of("./host=x"), STORE_SQLITE);
	assert_int_equal(store__engine_of("=x"), STORE_SQLITE);
	assert_int_equal(store__engine_of("Host=x"), STORE_SQLITE);
	assert_int_equal(store__engine_of(":memory:"), STORE_SQLITE);
	assert_int_equal(store__engine_of("postgresql:/x"), STORE_SQLITE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_query__violations),
		cmocka_unit_test(test_collector_query__findings),
		cmocka_unit_test(test_collector_query__run_history),
		cmocka_unit_test(test_collector_query__runs),
		cmocka_unit_test(test_collector_query__outside_writes),
		cmocka_unit_test(test_collector_query__event_filters),
		cmocka_unit_test(test_collector_query__duration),
		cmocka_unit_test(test_collector_query__not_a_collector_db),
		cmocka_unit_test(test_collector_query__retention_sqlite),
		cmocka_unit_test(test_collector_query__engine_of),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
