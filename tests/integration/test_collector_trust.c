// SPDX-License-Identifier: MIT
/* The collector's trust in its agents (issue 8): an enrolled agent can only speak for
 * itself. Each case starts its own TLS collector and talks to it with the hand-written
 * protocol client under the test CA's agent certificates (agent-<n> may claim the host
 * host-<n>, see cf_pki_create), then checks what `buildwarden query` and the files on
 * disk show. No eBPF: it runs wherever the collector runs, as root or not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/collector_fixture.h"

struct tx {
	struct bw_ws ws;
	struct cf_pki pki;
	bool pki_ok;
	struct cf_collector col;
	struct bw_result q;     /* the last query */
	char qcmd[1024];
	bool dumped;
};

static struct tx T;

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&T.ws, rel);
}

static void diag(void)
{
	char *t;

	if (T.dumped)
		return;
	T.dumped = true;
	if (T.qcmd[0])
		bw_result_print(T.qcmd, &T.q);
	if (T.col.log[0]) {
		t = cf_read_from(T.col.log, 0);
		printf("---- collector log (%s):\n%.4000s\n", T.col.cmdline, t);
		free(t);
	}
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int group_setup(void **state)
{
	char err[1024];

	signal(SIGPIPE, SIG_IGN);
	memset(&T, 0, sizeof(T));
	if (bw_case_setup(&T.ws))
		return -1;
	if (cf_pki_create(&T.pki, wsp("pki"), err, sizeof(err))) {
		printf("certificates: %s\n", err);
		return -1;
	}
	T.pki_ok = true;
	return 0;
}

static int group_teardown(void **state)
{
	cf_cleanup();
	bw_cleanup_all();
	return 0;
}

static int test_setup(void **state)
{
	T.dumped = false;
	T.qcmd[0] = 0;
	memset(&T.col, 0, sizeof(T.col));
	alarm(60);
	return T.pki_ok ? 0 : -1;
}

static int test_teardown(void **state)
{
	alarm(0);
	if (T.col.pid > 0)
		cf_collector_kill9(&T.col);
	bw_result_free(&T.q);
	return 0;
}

/* A collector on db NAME.db with extra flags (NULL-terminated). */
static void start_collector(const char *name, const char *const extra[])
{
	char err[1024], rel[64];

	snprintf(rel, sizeof(rel), "%s.db", name);
	snprintf(T.col.db, sizeof(T.col.db), "%s", wsp(rel));
	snprintf(rel, sizeof(rel), "%s.log", name);
	snprintf(T.col.log, sizeof(T.col.log), "%s", wsp(rel));
	T.col.pki = &T.pki;
	for (size_t i = 0; extra && extra[i] && i < 7; i++)
		T.col.extra[i] = extra[i];
	CHECK(cf_collector_start(&T.col, err, sizeof(err)) == 0, "collector: %s", err);
}

/* `buildwarden query --db DB ARGS...` into T.q; returns its exit code. */
static int query(const char *const args[])
{
	const char *argv[24] = { bw_bin(), "query", "--db", T.col.db };
	size_t n = 4, off;

	off = (size_t)snprintf(T.qcmd, sizeof(T.qcmd), "buildwarden query --db %s", T.col.db);
	for (size_t i = 0; args[i] && n < 23; i++) {
		argv[n++] = args[i];
		off += (size_t)snprintf(T.qcmd + off, off < sizeof(T.qcmd) ? sizeof(T.qcmd) - off : 0,
					" %s", args[i]);
	}
	argv[n] = NULL;
	bw_result_free(&T.q);
	CHECK(bw_spawn(argv, 30, 0, &T.q) == 0, "cannot run %s", T.qcmd);
	return T.q.exit_code;
}

static size_t count_lines(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *l = text; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);

		if (len && (!needle || memmem(l, len, needle, strlen(needle))))
			n++;
		l = e ? e + 1 : l + len;
	}
	return n;
}

/* A violation (an audited exec) at time_ns, with argv. Caller frees. */
static uint8_t *violation(uint64_t seq, const char *host, const char *run_id, uint64_t time_ns,
			  const char *const argv[], size_t *len)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;
	Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;
	char fn[64];
	size_t n = 0;
	uint8_t *out;

	while (argv && argv[n])
		n++;
	snprintf(fn, sizeof(fn), "/usr/bin/tool-%llu", (unsigned long long)seq);
	ev.seq = seq;
	ev.time_ns = time_ns;
	ev.host = (char *)host;
	ev.run_id = (char *)run_id;
	ex.filename = fn;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev.exec = &ex;
	v.violation = true;
	v.rule = (char *)"exec[0]: /usr/bin";
	v.action = BUILDWARDEN__V1__ACTION__AUDITED;
	ev.verdict = &v;
	pr.pid = 4242;
	pr.exe = fn;
	pr.argv = (char **)argv;
	pr.n_argv = n;
	ev.process = &pr;
	*len = buildwarden__v1__event__get_packed_size(&ev);
	out = malloc(*len + 1);
	if (out)
		buildwarden__v1__event__pack(&ev, out);
	return out;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* agent-<n> says Hello{host, run_id} and sends count violations from seq 1. */
static void send_run(int agent, const char *host, const char *run_id, int count)
{
	struct cf_peer p = { .fd = -1 };
	char id[32];

	snprintf(id, sizeof(id), "agent-%d", agent);
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[agent], T.pki.agent_key[agent],
			      T.pki.ca) == 0, "%s cannot connect: %s", id, p.err);
	CHECK(cf_peer_hello(&p, id, host, run_id, NULL) == 0, "%s Hello: %s", id, p.err);
	for (int i = 0; i < count; i++) {
		size_t len;
		uint8_t *ev = violation(p.next_seq, host, run_id, now_ns(), NULL, &len);

		CHECK(ev && cf_peer_send_event(&p, p.next_seq, ev, len, true) == 0, "%s: send", id);
		free(ev);
	}
	CHECK(cf_db_wait_count(T.col.db, run_id, 1, 10000) >= 1, "%s: nothing stored", id);
	cf_peer_close(&p);
}

/* ---- 1. the host is bound to the certificate ------------------------------ */

static void test_host_bound_to_certificate(void **state)
{
	long long n;

	start_collector("host", NULL);
	send_run(1, "host-1", "run-shared", 3);
	/* agent-2 claims agent-1's host and run id */
	send_run(2, "host-1", "run-shared", 2);
	for (long long end = cf_now_ms() + 10000; cf_now_ms() < end;) {
		n = cf_db_count(T.col.db, "run-shared");
		if (n >= 5)
			break;
		cf_sleep_ms(100);
	}

	CHECK(query((const char *const[]){ "--violations", "--host", "host-1", NULL }) == 0,
	      "query --host failed");
	CHECK(count_lines(T.q.out, NULL) == 3 && count_lines(T.q.out, "\"agent\":\"agent-1\"") == 3,
	      "--host host-1 shows %zu rows, %zu of agent-1: agent-2 could file events under a host its certificate does not name",
	      count_lines(T.q.out, NULL), count_lines(T.q.out, "\"agent\":\"agent-1\""));
	CHECK(query((const char *const[]){ "--violations", "--host", "agent-2", NULL }) == 0,
	      "query --host agent-2 failed");
	CHECK(count_lines(T.q.out, "\"agent\":\"agent-2\"") == 2,
	      "agent-2's events are not under its certificate's name");
	CHECK(query((const char *const[]){ "--findings", "--agent", "agent-2", NULL }) == 0,
	      "query --findings failed");
	CHECK(count_lines(T.q.out, "\"kind\":\"host_mismatch\"") == 1,
	      "no host_mismatch finding for agent-2's false Hello.host");
	CHECK(query((const char *const[]){ "--findings", "--agent", "agent-1", NULL }) == 0,
	      "query --findings failed");
	CHECK(count_lines(T.q.out, "host_mismatch") == 0, "agent-1 got a host_mismatch finding");

	/* one run id, two agents: --run alone would mix them */
	CHECK(query((const char *const[]){ "--run", "run-shared", NULL }) == 64,
	      "--run of a run id two agents used exited %d, not 64", T.q.exit_code);
	CHECK(strstr(T.q.err, "agent-1") && strstr(T.q.err, "agent-2") && strstr(T.q.err, "--agent"),
	      "the refusal does not name the agents");
	CHECK(query((const char *const[]){ "--run", "run-shared", "--agent", "agent-1", NULL }) == 0,
	      "--run --agent failed");
	CHECK(count_lines(T.q.out, NULL) == 3 && count_lines(T.q.out, "\"agent\":\"agent-1\"") == 3,
	      "--run run-shared --agent agent-1 shows %zu rows", count_lines(T.q.out, NULL));
}

/* ---- 2. keys are required --------------------------------------------------- */

static void test_require_keys(void **state)
{
	struct cf_peer p = { .fd = -1 };
	char key[PATH_MAX];

	bw_ws_mkdir(&T.ws, "keys");
	snprintf(key, sizeof(key), "%s/agent-1.key", wsp("keys"));
	CHECK(bw_write_file(key, "a secret chain key of agent-1", 0600) == 0, "write key");
	start_collector("keys", (const char *const[]){ "--agent-keys", wsp("keys"), "--require-keys",
						       NULL });
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[2], T.pki.agent_key[2], T.pki.ca) == 0,
	      "agent-2 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-2", "host-2", "run-nokey", NULL) != 0,
	      "agent-2, which has no key file, was welcomed");
	CHECK(strstr(p.refusal, "no chain key"), "refusal: '%s'", p.refusal);
	cf_peer_close(&p);

	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-1", "host-1", "run-key", NULL) == 0,
	      "agent-1, which has a key, was refused: %s", p.err);
	cf_peer_close(&p);

	/* removing the key revokes the agent */
	CHECK(unlink(key) == 0, "unlink");
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-1", "host-1", "run-key", NULL) != 0,
	      "agent-1 was welcomed after its key file was removed");
	cf_peer_close(&p);
}

/* ---- 3b. memory per identity ------------------------------------------------ */

/* Hello on a fresh connection of agent-<n> for run_id. */
static void open_run(struct cf_peer *p, int agent, const char *run_id)
{
	char id[32], host[32];

	snprintf(id, sizeof(id), "agent-%d", agent);
	snprintf(host, sizeof(host), "host-%d", agent);
	CHECK(cf_peer_connect(p, T.col.port, T.pki.agent_cert[agent], T.pki.agent_key[agent],
			      T.pki.ca) == 0, "%s cannot connect: %s", id, p->err);
	CHECK(cf_peer_hello(p, id, host, run_id, NULL) == 0, "%s Hello: %s", id, p->err);
}

/* Reads what the collector sent (Acks) until it is quiet for 200 ms: false when that
 * was a Refusal or the end of the connection. */
static bool peer_open(struct cf_peer *p)
{
	for (int i = 0; i < 1000 && !p->closed; i++) {
		Buildwarden__V1__CollectorMessage *m = NULL;
		int rc = cf_peer_recv(p, 200, &m);

		if (m)
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		if (rc <= 0 && rc != -EBADMSG)
			break;
	}
	return !p->closed && !p->refusal[0];
}

/* One identity floods the collector's memory, two ways: connections that each hold a
 * frame of almost --max-frame half sent (read buffers nothing will free: refused), and
 * a stream of whole frames faster than commits (throttled: not read until a commit
 * frees its share, never refused, every frame stored). Meanwhile another agent's run is
 * stored whole. Before --max-agent-bytes the collector held 1 MiB per connection, 64
 * connections per identity, and let one identity fill the shared batch. */
static void test_agent_memory_budget(void **state)
{
	enum { FLOOD_CONNS = 4, HONEST = 200, BIG = 500 };
	struct cf_peer f[FLOOD_CONNS], honest = { .fd = -1 }, stream = { .fd = -1 };
	static char filler[8000];
	const char *const big_argv[] = { filler, NULL };
	size_t refused = 0;
	uint8_t hdr[16];
	uint8_t *junk;
	size_t hl;

	start_collector("memory", (const char *const[]){ "--max-agent-bytes", "2097152",
							 "--commit-ms", "1000", NULL });
	/* agent-2: each connection announces a frame of 1,000,000 bytes and sends 900,000 */
	junk = calloc(1, 900000);
	CHECK(junk != NULL, "calloc");
	hl = cf_varint(1000000, hdr);
	for (int i = 0; i < FLOOD_CONNS; i++) {
		char run[32];

		f[i].fd = -1;
		snprintf(run, sizeof(run), "run-flood%d", i);
		open_run(&f[i], 2, run);
		/* a refused connection stops reading: its send may fail, that is the point */
		if (cf_peer_send(&f[i], hdr, hl) == 0)
			(void)cf_peer_send(&f[i], junk, 900000);
	}
	free(junk);
	for (int i = 0; i < FLOOD_CONNS; i++) {
		if (cf_peer_wait_closed(&f[i], i ? 5000 : 300) >= 0 &&
		    strstr(f[i].refusal, "--max-agent-bytes"))
			refused++;
	}
	CHECK(refused >= 1,
	      "agent-2 held %d half-sent frames of 1 MB under --max-agent-bytes 2097152 and none was refused",
	      FLOOD_CONNS);
	CHECK(refused < FLOOD_CONNS && peer_open(&f[0]),
	      "agent-2's first connection, within its budget, was refused too (%zu refused)", refused);
	CHECK(cf_log_has_line(T.col.log, T.col.log_start,
			      (const char *const[]){ "agent-2", "refused", "--max-agent-bytes", NULL },
			      NULL, NULL, 0),
	      "no log line for agent-2's refusal");

	/* agent-1 is not charged for agent-2: its run is stored whole while agent-2 holds
	 * its budget */
	open_run(&honest, 1, "run-honest");
	for (int i = 0; i < HONEST; i++) {
		size_t len;
		uint8_t *ev = violation(honest.next_seq, "host-1", "run-honest", now_ns(), NULL, &len);

		CHECK(ev && cf_peer_send_event(&honest, honest.next_seq, ev, len, true) == 0,
		      "agent-1: send %d", i);
		free(ev);
	}
	CHECK(cf_db_wait_count(T.col.db, "run-honest", HONEST, 20000) == HONEST,
	      "agent-1's run has %lld of %d events stored", cf_db_count(T.col.db, "run-honest"),
	      HONEST);
	CHECK(peer_open(&honest), "agent-1 was disconnected: '%s'", honest.refusal);

	/* agent-3 streams 500 frames of ~8 KB (4 MB) faster than commits of 1 s: throttled
	 * at its 2 MiB, never refused, every frame stored */
	memset(filler, 'x', sizeof(filler) - 1);
	open_run(&stream, 3, "run-stream");
	for (int i = 0; i < BIG; i++) {
		size_t len;
		uint8_t *ev = violation(stream.next_seq, "host-3", "run-stream", now_ns(), big_argv,
					&len);

		CHECK(ev && cf_peer_send_event(&stream, stream.next_seq, ev, len, true) == 0,
		      "agent-3: send %d (refusal '%s')", i, stream.refusal);
		free(ev);
	}
	CHECK(cf_db_wait_count(T.col.db, "run-stream", BIG, 30000) == BIG,
	      "agent-3's run has %lld of %d events stored", cf_db_count(T.col.db, "run-stream"), BIG);
	CHECK(peer_open(&stream), "agent-3 was disconnected: '%s'", stream.refusal);
	CHECK(cf_log_has_line(T.col.log, T.col.log_start,
			      (const char *const[]){ "agent-3", "throttled", "--max-agent-bytes", NULL },
			      NULL, NULL, 0),
	      "agent-3 sent 4 MB under a 2 MiB budget and was never throttled");
	for (int i = 0; i < FLOOD_CONNS; i++)
		cf_peer_close(&f[i]);
	cf_peer_close(&honest);
	cf_peer_close(&stream);
}

/* New runs per identity per minute: agent-1 may start 3; the 4th new run id is refused,
 * a reconnect to a run it has is not, and agent-2 is not charged for agent-1's. */
static void test_agent_new_runs_limited(void **state)
{
	struct cf_peer p = { .fd = -1 };

	start_collector("runs", (const char *const[]){ "--max-agent-runs", "3", NULL });
	for (int i = 0; i < 3; i++) {
		char run[32];

		snprintf(run, sizeof(run), "run-n%d", i);
		open_run(&p, 1, run);
		cf_peer_close(&p);
	}
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-1", "host-1", "run-n3", NULL) != 0 &&
		      strstr(p.refusal, "--max-agent-runs"),
	      "agent-1's 4th new run within a minute was let in (refusal '%s')", p.refusal);
	cf_peer_close(&p);
	CHECK(cf_log_has_line(T.col.log, T.col.log_start,
			      (const char *const[]){ "agent-1", "refused", "--max-agent-runs", NULL },
			      NULL, NULL, 0),
	      "no log line for the refused run");
	open_run(&p, 1, "run-n0"); /* a run it has: not new */
	cf_peer_close(&p);
	open_run(&p, 2, "run-other");
	cf_peer_close(&p);
}

/* ---- 4. --since and --limit go by the collector's clock --------------------- */

static void test_since_limit_by_received_time(void **state)
{
	static const uint64_t future = 4102444800ull * 1000000000ull; /* 2100-01-01 */
	struct cf_peer p = { .fd = -1 };
	uint64_t times[3] = { future, 1000000000ull /* 1970 */, 0 };

	start_collector("since", NULL);
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-1", "host-1", "run-time", NULL) == 0, "Hello: %s", p.err);
	for (int i = 0; i < 3; i++) {
		size_t len;
		uint8_t *ev = violation(p.next_seq, "host-1", "run-time", times[i] ? times[i] : now_ns(),
					NULL, &len);

		CHECK(ev && cf_peer_send_event(&p, p.next_seq, ev, len, true) == 0, "send");
		free(ev);
		/* received in this order, at distinct collector times */
		CHECK(cf_db_wait_count(T.col.db, "run-time", i + 1, 10000) == i + 1, "not stored");
		cf_sleep_ms(20);
	}
	cf_peer_close(&p);

	CHECK(query((const char *const[]){ "--violations", "--limit", "1", NULL }) == 0, "query");
	CHECK(count_lines(T.q.out, NULL) == 1 && strstr(T.q.out, "\"seq\":\"3\""),
	      "--limit 1 is not the last event received (seq 3): an agent's clock ordered it");
	CHECK(query((const char *const[]){ "--violations", "--since", "1h", NULL }) == 0, "query");
	CHECK(count_lines(T.q.out, NULL) == 3,
	      "--since 1h shows %zu of the 3 events received a moment ago", count_lines(T.q.out, NULL));
}

/* ---- 5. the database is private -------------------------------------------- */

static void expect_private(const char *path)
{
	struct stat st;

	CHECK(stat(path, &st) == 0, "%s is missing", path);
	CHECK((st.st_mode & 077) == 0, "%s has mode %04o: the events (argv, paths) are readable by others",
	      path, (unsigned)(st.st_mode & 07777));
}

static void test_db_private(void **state)
{
	char p[PATH_MAX + 8];
	int code;

	start_collector("private", NULL);
	send_run(1, "host-1", "run-private", 2);
	expect_private(T.col.db);
	snprintf(p, sizeof(p), "%s-wal", T.col.db);
	expect_private(p);
	snprintf(p, sizeof(p), "%s-shm", T.col.db);
	expect_private(p);
	snprintf(p, sizeof(p), "%s.lock", T.col.db);
	expect_private(p);
	CHECK(cf_collector_stop(&T.col) == 0, "collector did not stop cleanly");

	/* someone made it writable by others: refused */
	CHECK(chmod(T.col.db, 0666) == 0, "chmod");
	CHECK(cf_collector_start(&T.col, p, sizeof(p)) != 0, "a world-writable database was opened");
	CHECK(cf_wait_exit(T.col.pid, 10000, &code) || T.col.pid <= 0, "collector still running");
	T.col.pid = 0;
	CHECK(cf_log_has_line(T.col.log, T.col.log_start,
			      (const char *const[]){ "writable by group or others", NULL }, NULL, NULL, 0),
	      "no log line says why the database was refused");
	if (geteuid() == 0) {
		/* owned by another user: refused */
		CHECK(chmod(T.col.db, 0600) == 0 && chown(T.col.db, 65534, 65534) == 0, "chown");
		CHECK(cf_collector_start(&T.col, p, sizeof(p)) != 0,
		      "a database owned by another user was opened");
		T.col.pid = 0;
		CHECK(cf_log_has_line(T.col.log, T.col.log_start,
				      (const char *const[]){ "owned by uid 65534", NULL }, NULL, NULL, 0),
		      "no log line says whose the database is");
	}
}

/* ---- 5. secrets in argv are redacted before they are stored ----------------- */

static bool file_has(const char *path, const char *needle)
{
	size_t len = 0;
	char *t = bw_read_file(path, &len);
	bool has = t && memmem(t, len, needle, strlen(needle));

	free(t);
	return has;
}

static void test_argv_redacted(void **state)
{
	static const char *const argv[] = {
		"git", "clone", "https://x-access-token:ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/o/r",
		"--password=hunter2hunter2", "GITHUB_TOKEN=gho_tokentokentokentoken99", "--api",
		"sk-abcdefgh1234", "-Isrc", NULL,
	};
	static const char *const secrets[] = { "0123456789abcdefghijABCDEFGHIJ012345", "hunter2hunter2",
					       "tokentokentokentoken99", "abcdefgh1234" };
	struct cf_peer p = { .fd = -1 };
	char wal[PATH_MAX + 8];
	size_t len;
	uint8_t *ev;

	start_collector("redact", (const char *const[]){ "--redact", "sk-[a-z0-9]{8,}", NULL });
	CHECK(cf_peer_connect(&p, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-1", "host-1", "run-secret", NULL) == 0, "Hello: %s", p.err);
	ev = violation(p.next_seq, "host-1", "run-secret", now_ns(), argv, &len);
	CHECK(ev && cf_peer_send_event(&p, p.next_seq, ev, len, true) == 0, "send");
	free(ev);
	CHECK(cf_db_wait_count(T.col.db, "run-secret", 1, 10000) == 1, "not stored");
	cf_peer_close(&p);

	CHECK(query((const char *const[]){ "--run", "run-secret", NULL }) == 0, "query --run");
	CHECK(strstr(T.q.out, "ghp_[REDACTED]") || strstr(T.q.out, "x-access-token:[REDACTED]@"),
	      "the token in the clone URL is not redacted");
	CHECK(strstr(T.q.out, "--password=[REDACTED]"), "--password= is not redacted");
	CHECK(strstr(T.q.out, "GITHUB_TOKEN=[REDACTED]"), "GITHUB_TOKEN= is not redacted");
	CHECK(strstr(T.q.out, "\"[REDACTED]\""), "the --redact pattern's match is not redacted");
	CHECK(strstr(T.q.out, "\"-Isrc\"") && strstr(T.q.out, "\"git\""), "plain arguments changed");
	CHECK(strstr(T.q.out, "\"redacted\""), "the row is not marked redacted");
	CHECK(cf_collector_stop(&T.col) == 0, "collector did not stop cleanly");
	snprintf(wal, sizeof(wal), "%s-wal", T.col.db);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		CHECK(!strstr(T.q.out, secrets[i]), "query shows the secret '%s'", secrets[i]);
		CHECK(!file_has(T.col.db, secrets[i]) && !file_has(wal, secrets[i]),
		      "the database file holds the secret '%s'", secrets[i]);
	}
}

/* ---- 3. connection budgets ----------------------------------------------- */

/* A plain TCP connection from src that sends nothing. */
static void idle_from(struct cf_peer *p, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };

	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(p->fd >= 0, "socket");
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
	d.sin_port = htons((uint16_t)T.col.port);
	CHECK(bind(p->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s", src);
	CHECK(connect(p->fd, (struct sockaddr *)&d, sizeof(d)) == 0, "connect from %s", src);
}

static void test_connection_budgets(void **state)
{
	struct cf_peer idle[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };
	struct cf_peer a[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };
	struct cf_peer quiet = { .fd = -1 }, again = { .fd = -1 };
	long long t;

	start_collector("budgets", (const char *const[]){ "--max-per-addr", "2", "--max-agent-conns",
							  "2", "--idle-timeout", "1", NULL });
	/* per source address: the third silent socket from 127.0.0.5 is closed at once */
	for (int i = 0; i < 3; i++)
		idle_from(&idle[i], "127.0.0.5");
	t = cf_peer_wait_closed(&idle[2], 3000);
	CHECK(t >= 0, "a third handshake from one address was kept (--max-per-addr 2)");
	{
		char b;
		ssize_t n = recv(idle[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
		      "the first socket of the address was closed too");
	}
	CHECK(cf_log_has_line(T.col.log, T.col.log_start,
			      (const char *const[]){ "127.0.0.5", "--max-per-addr", NULL }, NULL, NULL, 0),
	      "no log line for the refused socket");
	for (int i = 0; i < 3; i++)
		cf_peer_close(&idle[i]);

	/* per identity: agent-2 holds two runs; a third is refused, a reconnect is not */
	for (int i = 0; i < 3; i++) {
		char run[32];

		snprintf(run, sizeof(run), "run-b%d", i);
		CHECK(cf_peer_connect(&a[i], T.col.port, T.pki.agent_cert[2], T.pki.agent_key[2],
				      T.pki.ca) == 0, "agent-2 cannot connect: %s", a[i].err);
		if (i < 2)
			CHECK(cf_peer_hello(&a[i], "agent-2", "host-2", run, NULL) == 0,
			      "agent-2's run %d refused: %s", i, a[i].err);
		else
			CHECK(cf_peer_hello(&a[i], "agent-2", "host-2", run, NULL) != 0 &&
				      strstr(a[i].refusal, "--max-agent-conns"),
			      "agent-2's third connection was let in (refusal '%s')", a[i].refusal);
	}
	CHECK(cf_peer_connect(&again, T.col.port, T.pki.agent_cert[2], T.pki.agent_key[2], T.pki.ca) == 0,
	      "agent-2 cannot connect: %s", again.err);
	CHECK(cf_peer_hello(&again, "agent-2", "host-2", "run-b0", NULL) == 0,
	      "a reconnect for a run agent-2 holds was refused: %s", again.err);
	/* another agent is not counted against agent-2 */
	CHECK(cf_peer_connect(&quiet, T.col.port, T.pki.agent_cert[1], T.pki.agent_key[1], T.pki.ca) == 0,
	      "agent-1 cannot connect: %s", quiet.err);
	CHECK(cf_peer_hello(&quiet, "agent-1", "host-1", "run-quiet", NULL) == 0, "agent-1: %s", quiet.err);

	/* idle after Hello: closed after --idle-timeout 1 (plus the 0.5 s sweep) */
	t = cf_peer_wait_closed(&quiet, 6000);
	CHECK(t >= 0, "a connection silent after its Hello was kept past --idle-timeout 1");
	CHECK(strstr(quiet.refusal, "idle"), "refusal '%s' does not say idle", quiet.refusal);
	printf("     silent after Hello: closed after %lld ms (%s)\n", t, quiet.refusal);
	for (int i = 0; i < 3; i++)
		cf_peer_close(&a[i]);
	cf_peer_close(&again);
	cf_peer_close(&quiet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bound_to_certificate, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_require_keys, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_connection_budgets, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_agent_memory_budget, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_agent_new_runs_limited, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_since_limit_by_received_time, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_db_private, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_argv_redacted, test_setup, test_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
