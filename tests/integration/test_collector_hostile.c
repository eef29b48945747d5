// SPDX-License-Identifier: MIT
/* Hostile peers against a running collector (issue 3, "Bad input and hostile
 * peers"). One TLS collector (--handshake-timeout 2) serves two good agents for the
 * whole group: a real `buildwarden run` (agent-1) whose build keeps making events,
 * and a hand-written well-behaved client (agent-2). Each test attacks the collector
 * while they stream, and checks that the attacker was refused or disconnected, that
 * the collector logged a reason naming the peer, and that both good agents still got
 * events stored. The last test stops the good agents and checks every one of their
 * events arrived exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/version.h"
#include "lib/bwtest.h"
#include "lib/collector_fixture.h"

#define HS_TIMEOUT_MS 2000

struct hx {
	struct bw_ws ws;
	struct cf_pki pki;
	struct cf_collector col;
	char policy[PATH_MAX];
	char run_log[PATH_MAX];
	char cmdline[4096];
	pid_t good_run;       /* buildwarden run, agent-1 */
	char good_run_id[80];
	pid_t good_peer;      /* hand-written client, agent-2 */
	char good_peer_run[80];
	long long log_off;    /* collector log size before the current attack */
	bool dumped;
	bool setup_ok;
};

static struct hx H;

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&H.ws, rel);
}

static void diag(void)
{
	char *t;

	if (H.dumped)
		return;
	H.dumped = true;
	t = cf_read_from(H.col.log, H.log_off);
	printf("---- collector: %s\n---- collector log since this test (last 3000 bytes):\n%s\n",
	       H.col.cmdline, strlen(t) > 3000 ? t + strlen(t) - 3000 : t);
	free(t);
	fflush(stdout);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

/* ---- the good agents ------------------------------------------------------ */

struct good_peer_arg {
	int port;
	const char *cert, *key, *ca;
	const char *run_id;
	const char *stop;    /* marker file: stop sending */
	const char *result;  /* written at the end: "sent N acked M reconnects R" */
	unsigned pace_us;    /* between frames; 0: as fast as it can */
	unsigned max_ms;     /* stop after this long anyway */
};

/* A well-behaved agent: Hello, frames from Welcome.last_seq + 1 on, reads every Ack,
 * reconnects (counted) if the collector drops it. Runs in a forked child. */
static int good_peer_main(void *argp)
{
	const struct good_peer_arg *a = argp;
	struct cf_peer p = { .fd = -1 };
	uint64_t acked = 0, sent = 0;
	unsigned reconnects = 0;
	long long end = cf_now_ms() + a->max_ms;
	char line[128];
	bool up = false;

	signal(SIGPIPE, SIG_IGN);
	while (cf_now_ms() < end && !cf_exists(a->stop)) {
		Buildwarden__V1__CollectorMessage *m = NULL;
		uint8_t *ev;
		size_t len;

		if (!up) {
			cf_peer_close(&p);
			if (cf_peer_connect(&p, a->port, a->cert, a->key, a->ca) ||
			    cf_peer_hello(&p, "", "cf-good-host", a->run_id, NULL)) {
				cf_peer_close(&p);
				cf_sleep_ms(100);
				reconnects++;
				continue;
			}
			if (sent)
				reconnects++;
			up = true;
		}
		ev = cf_event_bytes(p.next_seq, "cf-good-host", a->run_id, "/usr/bin/cc", 64, &len);
		if (!ev || cf_peer_send_event(&p, p.next_seq, ev, len, true)) {
			free(ev);
			up = false;
			continue;
		}
		free(ev);
		sent = p.next_seq - 1;
		while (cf_peer_recv(&p, 0, &m) == 1) {
			if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK && m->ack->seq > acked)
				acked = m->ack->seq;
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		}
		if (p.closed)
			up = false;
		if (a->pace_us)
			usleep(a->pace_us);
	}
	/* the final ack */
	for (long long fin = cf_now_ms() + 10000; up && acked < sent && cf_now_ms() < fin;) {
		Buildwarden__V1__CollectorMessage *m = NULL;
		int rc = cf_peer_recv(&p, 200, &m);

		if (rc == 1 && m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK && m->ack->seq > acked)
			acked = m->ack->seq;
		if (m)
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		if (rc < 0)
			break;
	}
	cf_peer_close(&p);
	snprintf(line, sizeof(line), "sent %llu acked %llu reconnects %u\n", (unsigned long long)sent,
		 (unsigned long long)acked, reconnects);
	bw_write_file(a->result, line, 0644);
	return acked == sent ? 0 : 2;
}

static void read_result(const char *path, uint64_t *sent, uint64_t *acked, unsigned *reconnects)
{
	char *t = bw_read_file(path, NULL);
	unsigned long long s = 0, a = 0;

	*reconnects = 0;
	if (t)
		sscanf(t, "sent %llu acked %llu reconnects %u", &s, &a, reconnects);
	free(t);
	*sent = s;
	*acked = a;
}

static struct good_peer_arg good_arg;

static long long good_run_count(void)
{
	if (!H.good_run_id[0]) {
		struct bw_events evs;

		bw_events_read(wsp("good-events.pb"), &evs);
		if (evs.n)
			snprintf(H.good_run_id, sizeof(H.good_run_id), "%s", cf_run_id(&evs));
		bw_events_free(&evs);
		if (!H.good_run_id[0])
			return -1;
	}
	return cf_db_count(H.col.db, H.good_run_id);
}

/* Both good agents get more events stored within 8 s of now. */
static void expect_good_agents_progress(const char *after)
{
	long long r0 = good_run_count(), p0 = cf_db_count(H.col.db, H.good_peer_run);
	long long end = cf_now_ms() + 8000, r1 = r0, p1 = p0;

	while (cf_now_ms() < end) {
		r1 = good_run_count();
		p1 = cf_db_count(H.col.db, H.good_peer_run);
		if (r1 > r0 && p1 > p0)
			break;
		cf_sleep_ms(100);
	}
	CHECK(cf_collector_alive(&H.col), "the collector died after %s", after);
	CHECK(p1 > p0, "after %s the hand-written good agent got nothing stored in 8 s (%lld)", after, p0);
	CHECK(r1 > r0, "after %s `buildwarden run` (agent-1) got nothing stored in 8 s (%lld)", after, r0);
}

/* The collector logged a line naming the attacker's connection (127.0.0.1:PORT) and one
 * of the reason words. */
static void expect_logged(const struct cf_peer *p, const char *const reasons[], const char *what)
{
	char peer[32], line[512] = "";
	long long end = cf_now_ms() + 2000;
	bool found = false;

	snprintf(peer, sizeof(peer), "127.0.0.1:%d", p->local_port);
	while (!found && cf_now_ms() < end) {
		found = cf_log_has_line(H.col.log, H.log_off, (const char *const[]){ peer, NULL }, reasons,
					line, sizeof(line));
		if (!found)
			cf_sleep_ms(50);
	}
	CHECK(found, "%s: the collector logged no reason naming the peer %s (expected one of \"%s\"...)",
	      what, peer, reasons[0]);
	printf("     logged: %s\n", line);
}

static int group_setup(void **state)
{
	static const char build[] =
		"W=%s\n"
		"i=0\n"
		"while [ ! -e $W/stop ] && [ $i -lt 3000 ]; do\n"
		"  i=$((i+1)); echo x > $W/out/f$i; /bin/true; sleep 0.05\n"
		"done\n";
	char err[1024], body[1024], addr[64];
	const char *argv[40];
	size_t n = 0, off = 0;

	signal(SIGPIPE, SIG_IGN);
	cf_cleanup();
	memset(&H, 0, sizeof(H));
	if (bw_case_setup(&H.ws))
		return -1;
	alarm(60);
	if (cf_pki_create(&H.pki, wsp("pki"), err, sizeof(err))) {
		printf("certificates: %s\n", err);
		return -1;
	}
	bw_ws_mkdir(&H.ws, "out");
	snprintf(H.policy, sizeof(H.policy), "%s", wsp("policy.yaml"));
	snprintf(H.run_log, sizeof(H.run_log), "%s", wsp("agent.log"));
	bw_write_policy(&H.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: %s\n", wsp("out"));
	snprintf(H.col.db, sizeof(H.col.db), "%s", wsp("events.db"));
	snprintf(H.col.log, sizeof(H.col.log), "%s", wsp("collector.log"));
	H.col.pki = &H.pki;
	H.col.extra[0] = "--handshake-timeout";
	H.col.extra[1] = "2";
	if (cf_collector_start(&H.col, err, sizeof(err))) {
		printf("collector: %s\n", err);
		return -1;
	}

	/* agent-2: the hand-written good agent */
	snprintf(H.good_peer_run, sizeof(H.good_peer_run), "cf-good-%d", (int)getpid());
	good_arg = (struct good_peer_arg){
		.port = H.col.port, .cert = H.pki.agent_cert[2], .key = H.pki.agent_key[2],
		.ca = H.pki.ca, .run_id = H.good_peer_run, .stop = strdup(wsp("stop")),
		.result = strdup(wsp("good-peer.result")), .pace_us = 10000, .max_ms = 150000,
	};
	H.good_peer = bw_fork_outsider(good_peer_main, &good_arg);

	/* agent-1: buildwarden run */
	snprintf(body, sizeof(body), build, H.ws.path);
	bw_ws_write(&H.ws, "build.sh", body, false);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", H.col.port);
	{
		const char *const a[] = { bw_bin(), "run", "--policy", H.policy, "--events",
					  wsp("good-events.pb"), "--collector", addr, "--spool",
					  wsp("spool"), "--tls-cert", H.pki.agent_cert[1],
					  "--tls-key", H.pki.agent_key[1], "--tls-ca", H.pki.ca,
					  "--", "/bin/sh", wsp("build.sh"), NULL };

		for (n = 0; a[n]; n++)
			argv[n] = a[n];
		argv[n] = NULL;
	}
	for (size_t i = 0; argv[i] && off < sizeof(H.cmdline); i++)
		off += (size_t)snprintf(H.cmdline + off, sizeof(H.cmdline) - off, "%s%s", i ? " " : "",
					argv[i]);
	H.good_run = cf_spawn_bg(argv, H.run_log);
	/* both stream before the first attack */
	cf_db_wait_count(H.col.db, H.good_peer_run, 20, 10000);
	for (long long end = cf_now_ms() + 15000; cf_now_ms() < end && good_run_count() < 20;)
		cf_sleep_ms(100);
	printf("good agents: agent-1 `%s`\n  stored %lld; agent-2 (hand-written, run %s) stored %lld\n",
	       H.cmdline, good_run_count(), H.good_peer_run, cf_db_count(H.col.db, H.good_peer_run));
	H.setup_ok = true;
	alarm(0);
	return 0;
}

static int group_teardown(void **state)
{
	alarm(0);
	cf_cleanup();
	bw_cleanup_all();
	return 0;
}

static int test_setup(void **state)
{
	H.log_off = cf_file_size(H.col.log);
	H.dumped = false;
	alarm(40);
	return 0;
}

static int test_teardown(void **state)
{
	alarm(0);
	return 0;
}

/* A TLS client as agent-3 that said Hello for run_id. */
static void evil_hello(struct cf_peer *p, const char *run_id)
{
	CHECK(cf_peer_connect(p, H.col.port, H.pki.agent_cert[3], H.pki.agent_key[3], H.pki.ca) == 0,
	      "agent-3 cannot connect: %s", p->err);
	CHECK(cf_peer_hello(p, "", "cf-x-host", run_id, NULL) == 0, "agent-3 Hello: %s", p->err);
}

static void expect_closed(struct cf_peer *p, unsigned within_ms, const char *what)
{
	long long t = cf_peer_wait_closed(p, within_ms);

	CHECK(t >= 0, "%s: the collector kept the connection open for %u ms", what, within_ms);
	printf("     %s: disconnected after %lld ms%s%s\n", what, t, p->refusal[0] ? ", refusal: " : "",
	       p->refusal);
}

/* ---- the preconditions ---------------------------------------------------- */

static void test_good_agents_streaming(void **state)
{
	CHECK(H.setup_ok, "group setup failed");
	CHECK(cf_db_count(H.col.db, H.good_peer_run) > 0, "the hand-written good agent got nothing stored");
	CHECK(good_run_count() > 0, "`buildwarden run` (agent-1) got nothing stored: %s", H.cmdline);
}

/* ---- frames --------------------------------------------------------------- */

static void test_oversized_frame(void **state)
{
	struct cf_peer p = { .fd = -1 };
	uint8_t hdr[10], junk[65536];
	size_t h;

	evil_hello(&p, "cf-x-a");
	/* a frame that says 2 MiB + 1, then bytes that never complete it */
	h = cf_varint((2u << 20) + 1, hdr);
	memset(junk, 0x41, sizeof(junk));
	CHECK(cf_peer_send(&p, hdr, h) == 0, "send header");
	cf_peer_send(&p, junk, sizeof(junk)); /* may fail: refused already */
	expect_closed(&p, 3000, "frame of 2 MiB");
	expect_logged(&p, (const char *const[]){ "limit", "large", "max", "size", NULL }, "frame of 2 MiB");
	cf_peer_close(&p);
	CHECK(cf_db_count(H.col.db, "cf-x-a") == 0, "something was stored for the oversized run");
	expect_good_agents_progress("an oversized frame");
}

/* A collector with --max-frame 4096: 3000 bytes pass, 5000 do not, and Welcome says
 * the limit. */
static void test_max_frame_flag(void **state)
{
	struct cf_collector c = { .pki = NULL, .extra = { "--max-frame", "4096" } };
	struct cf_peer p = { .fd = -1 };
	Buildwarden__V1__CollectorMessage *m = NULL;
	uint64_t maxf = 0, acked = 0;
	uint8_t *ev;
	size_t len;
	char err[1024];

	snprintf(c.db, sizeof(c.db), "%s", wsp("small.db"));
	snprintf(c.log, sizeof(c.log), "%s", wsp("small.log"));
	CHECK(cf_collector_start(&c, err, sizeof(err)) == 0, "collector --max-frame 4096: %s", err);
	CHECK(cf_peer_connect(&p, c.port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-small", "cf-host", "cf-small", &maxf) == 0, "Hello: %s", p.err);
	CHECK(maxf == 4096, "Welcome.max_frame is %llu with --max-frame 4096", (unsigned long long)maxf);
	ev = cf_event_bytes(1, "cf-host", "cf-small", "/bin/cc", 3000, &len);
	CHECK(cf_peer_send_event(&p, 1, ev, len, true) == 0, "send a 3000-byte frame");
	free(ev);
	for (long long end = cf_now_ms() + 3000; !acked && cf_now_ms() < end;) {
		if (cf_peer_recv(&p, 200, &m) == 1) {
			if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK)
				acked = m->ack->seq;
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		}
	}
	CHECK(acked == 1, "a 3000-byte frame under --max-frame 4096 was not acknowledged");
	ev = cf_event_bytes(2, "cf-host", "cf-small", "/bin/cc", 5000, &len);
	cf_peer_send_event(&p, 2, ev, len, true);
	free(ev);
	{
		long long t = cf_peer_wait_closed(&p, 3000);
		char peer[32], line[512] = "";

		CHECK(t >= 0, "a 5000-byte frame under --max-frame 4096: connection kept open");
		snprintf(peer, sizeof(peer), "127.0.0.1:%d", p.local_port);
		cf_sleep_ms(300);
		CHECK(cf_log_has_line(c.log, c.log_start, (const char *const[]){ peer, NULL },
				      (const char *const[]){ "limit", "large", "max", "size", NULL }, line,
				      sizeof(line)),
		      "--max-frame 4096: no reason logged for peer %s", peer);
		printf("     logged: %s\n", line);
	}
	cf_peer_close(&p);
	CHECK(cf_db_count(c.db, "cf-small") == 1, "--max-frame 4096: %lld events stored, expected 1",
	      cf_db_count(c.db, "cf-small"));
	/* and it still serves: the same run resumes at 2 */
	CHECK(cf_peer_connect(&p, c.port, NULL, NULL, NULL) == 0, "reconnect: %s", p.err);
	CHECK(cf_peer_hello(&p, "agent-small", "cf-host", "cf-small", NULL) == 0, "Hello: %s", p.err);
	CHECK(p.next_seq == 2, "Welcome after the refusal says last_seq %llu, expected 1",
	      (unsigned long long)p.next_seq - 1);
	cf_peer_close(&p);
	cf_collector_stop(&c);
}

static void test_truncated_frame_then_close(void **state)
{
	struct cf_peer p = { .fd = -1 };
	uint8_t hdr[10], part[100];
	size_t h;

	evil_hello(&p, "cf-x-b");
	for (uint64_t s = 1; s <= 3; s++) {
		size_t len;
		uint8_t *ev = cf_event_bytes(s, "cf-x-host", "cf-x-b", "/bin/ld", 0, &len);

		CHECK(cf_peer_send_event(&p, s, ev, len, true) == 0, "send event %llu", (unsigned long long)s);
		free(ev);
	}
	h = cf_varint(500, hdr);
	memset(part, 0x12, sizeof(part));
	CHECK(cf_peer_send(&p, hdr, h) == 0 && cf_peer_send(&p, part, sizeof(part)) == 0, "send the torn frame");
	cf_peer_close(&p); /* then close */
	CHECK(cf_db_wait_count(H.col.db, "cf-x-b", 3, 3000) == 3,
	      "the 3 whole frames before the torn one were not stored (%lld)",
	      cf_db_count(H.col.db, "cf-x-b"));
	cf_sleep_ms(300);
	expect_logged(&p, (const char *const[]){ "trunc", "incomplete", "eof", "torn", "partial", "mid-frame", "unfinished", NULL },
		      "torn frame then close");
	CHECK(cf_db_count(H.col.db, "cf-x-b") == 3, "the torn frame was stored");
	/* the run resumes after the last whole frame */
	evil_hello(&p, "cf-x-b");
	CHECK(p.next_seq == 4, "Welcome after a torn frame says last_seq %llu, expected 3",
	      (unsigned long long)p.next_seq - 1);
	cf_peer_close(&p);
	expect_good_agents_progress("a torn frame");
}

static void test_not_protobuf(void **state)
{
	struct cf_peer p = { .fd = -1 };
	uint8_t buf[80];
	size_t h;

	/* after the handshake */
	evil_hello(&p, "cf-x-c");
	h = cf_varint(64, buf);
	memset(buf + h, 0xff, 64);
	CHECK(cf_peer_send(&p, buf, h + 64) == 0, "send garbage");
	expect_closed(&p, 3000, "64 bytes of 0xff after Hello");
	expect_logged(&p, (const char *const[]){ "protobuf", "agentmessage", "decode", "parse", "not a", "malformed", NULL },
		      "garbage after Hello");
	cf_peer_close(&p);

	/* instead of Hello */
	CHECK(cf_peer_connect(&p, H.col.port, H.pki.agent_cert[3], H.pki.agent_key[3], H.pki.ca) == 0,
	      "connect: %s", p.err);
	CHECK(cf_peer_send(&p, buf, h + 64) == 0, "send garbage");
	expect_closed(&p, 3000, "64 bytes of 0xff instead of Hello");
	expect_logged(&p, (const char *const[]){ "protobuf", "agentmessage", "decode", "parse", "not a", "malformed", "hello", NULL },
		      "garbage instead of Hello");
	cf_peer_close(&p);
	CHECK(cf_db_count(H.col.db, "cf-x-c") == 0, "garbage was stored");
	expect_good_agents_progress("frames that are not protobuf");
}

/* seq 1..5, then seq 3 again with other bytes: refused, the stored seq 3 is the first
 * one, and an integrity finding says so. */
static void test_seq_backwards(void **state)
{
	struct cf_peer p = { .fd = -1 };
	Buildwarden__V1__CollectorMessage *m = NULL;
	struct cf_findings f;
	uint8_t saved_chain[CF_CHAIN_LEN], *ev;
	uint64_t acked = 0;
	size_t len, other = 0;
	long long closed_ms;

	evil_hello(&p, "cf-x-d");
	for (uint64_t s = 1; s <= 5; s++) {
		if (s == 3)
			memcpy(saved_chain, p.chain, CF_CHAIN_LEN);
		ev = cf_event_bytes(s, "cf-x-host", "cf-x-d", "/bin/as", 0, &len);
		CHECK(cf_peer_send_event(&p, s, ev, len, true) == 0, "send %llu", (unsigned long long)s);
		free(ev);
	}
	for (long long end = cf_now_ms() + 3000; acked < 5 && cf_now_ms() < end;) {
		if (cf_peer_recv(&p, 200, &m) == 1) {
			if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK)
				acked = m->ack->seq;
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		}
	}
	CHECK(acked == 5, "seqs 1..5 were not acknowledged (ack %llu)", (unsigned long long)acked);
	/* seq 3 again, other content, chained as a forger would */
	memcpy(p.chain, saved_chain, CF_CHAIN_LEN);
	ev = cf_event_bytes(3, "cf-x-host", "cf-x-d", "/tmp/evil", 0, &len);
	CHECK(cf_peer_send_event(&p, 3, ev, len, false) == 0, "send seq 3 again");
	free(ev);
	closed_ms = cf_peer_wait_closed(&p, 3000);
	cf_peer_close(&p);
	{
		struct cf_stored s;

		CHECK(cf_query_run(H.col.db, "cf-x-d", &s) == 0, "query: %s", s.err);
		CHECK(s.n == 5, "%zu events stored for the run, expected 5", s.n);
		cf_stored_free(&s);
	}
	{
		/* the stored seq 3 is the first one */
		struct bw_result r;

		CHECK(bw_run((const char *const[]){ "query", "--db", H.col.db, "--run", "cf-x-d",
						     NULL }, 20, &r) == 0, "query");
		CHECK(!strstr(r.out, "/tmp/evil"), "the second seq 3 replaced the stored one: %.400s", r.out);
		bw_result_free(&r);
	}
	/* The finding is in the collector's pending batch, committed within --commit-ms
	 * (50 ms) of the refusal: wait for it, bounded, rather than race the commit. */
	for (int tries = 0; tries < 40; tries++) {
		CHECK(cf_query_findings(H.col.db, "cf-x-d", &f) == 0, "findings: %s", f.err);
		other = 0;
		for (size_t i = 0; i < f.n; i++)
			other += strcmp(f.f[i].kind, "no_run_end") && strcmp(f.f[i].kind, "no_run_start");
		if (other || tries == 39)
			break;
		cf_findings_free(&f);
		usleep(50000);
	}
	for (size_t i = 0; i < f.n; i++)
		printf("     finding: %s\n", f.f[i].line);
	CHECK(other >= 1, "no integrity finding for a seq stored twice with different bytes: %.500s", f.raw);
	cf_findings_free(&f);
	CHECK(closed_ms >= 0,
	      "seq 3 (other bytes) after seq 5 on the same connection: the collector kept the "
	      "connection open (3 s) instead of refusing the peer");
	printf("     disconnected after %lld ms%s%s\n", closed_ms, p.refusal[0] ? ", refusal: " : "", p.refusal);
	expect_logged(&p, (const char *const[]){ "seq", "backward", "duplicate", "differ", NULL },
		      "seq going backwards");
	expect_good_agents_progress("a seq going backwards");
}

/* ---- slow and wrong handshakes -------------------------------------------- */

static void test_slowloris_silent(void **state)
{
	struct cf_peer p = { .fd = -1 };
	long long t;

	CHECK(cf_peer_connect(&p, H.col.port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
	t = cf_peer_wait_closed(&p, HS_TIMEOUT_MS + 2500);
	CHECK(t >= 0, "a silent connection was kept past --handshake-timeout 2 (+2.5 s)");
	printf("     silent connection closed after %lld ms\n", t);
	expect_logged(&p, (const char *const[]){ "handshake", "timeout", "within", "timed out", NULL },
		      "silent connection");
	cf_peer_close(&p);
	expect_good_agents_progress("a silent connection");
}

/* One byte a second of a TLS ClientHello that never completes. */
static void test_slowloris_dribble_tls(void **state)
{
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
	struct cf_peer p = { .fd = -1 };
	long long t0, closed = -1;

	CHECK(cf_peer_connect(&p, H.col.port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
	t0 = cf_now_ms();
	for (size_t i = 0; i < sizeof(hello) && cf_now_ms() - t0 < HS_TIMEOUT_MS + 3000; i++) {
		if (cf_peer_send(&p, hello + i, 1))
			break;
		if (cf_peer_wait_closed(&p, 1000) >= 0)
			break;
	}
	if (p.closed || cf_peer_wait_closed(&p, 500) >= 0)
		closed = cf_now_ms() - t0;
	CHECK(closed >= 0 && closed <= HS_TIMEOUT_MS + 2500,
	      "a TLS handshake dribbled at 1 byte/s was kept %lld ms (limit %d + 2500)",
	      closed < 0 ? cf_now_ms() - t0 : closed, HS_TIMEOUT_MS);
	printf("     dribbled TLS handshake closed after %lld ms\n", closed);
	expect_logged(&p, (const char *const[]){ "handshake", "timeout", "within", "timed out", NULL },
		      "dribbled TLS handshake");
	cf_peer_close(&p);
	expect_good_agents_progress("a dribbled TLS handshake");
}

/* TLS done, then the Hello frame at one byte a second. */
static void test_slowloris_dribble_hello(void **state)
{
	Buildwarden__V1__Hello h = BUILDWARDEN__V1__HELLO__INIT;
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	struct cf_peer p = { .fd = -1 };
	uint8_t buf[256];
	size_t n, hl;
	long long t0, closed = -1;

	h.host = (char *)"cf-x-host";
	h.run_id = (char *)"cf-x-e";
	h.schema_version = BW_SCHEMA_VERSION;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	n = buildwarden__v1__agent_message__get_packed_size(&m);
	hl = cf_varint(n, buf);
	buildwarden__v1__agent_message__pack(&m, buf + hl);
	n += hl;
	t0 = cf_now_ms();
	CHECK(cf_peer_connect(&p, H.col.port, H.pki.agent_cert[3], H.pki.agent_key[3], H.pki.ca) == 0,
	      "connect: %s", p.err);
	for (size_t i = 0; i + 1 < n && cf_now_ms() - t0 < HS_TIMEOUT_MS + 3000; i++) {
		if (cf_peer_send(&p, buf + i, 1))
			break;
		if (cf_peer_wait_closed(&p, 1000) >= 0)
			break;
	}
	if (p.closed || cf_peer_wait_closed(&p, 500) >= 0)
		closed = cf_now_ms() - t0;
	CHECK(closed >= 0 && closed <= HS_TIMEOUT_MS + 2500,
	      "a Hello dribbled at 1 byte/s was kept %lld ms (limit %d + 2500)",
	      closed < 0 ? cf_now_ms() - t0 : closed, HS_TIMEOUT_MS);
	printf("     dribbled Hello closed after %lld ms\n", closed);
	expect_logged(&p, (const char *const[]){ "hello", "handshake", "timeout", "within", NULL },
		      "dribbled Hello");
	cf_peer_close(&p);
	expect_good_agents_progress("a dribbled Hello");
}

static void test_other_ca_refused(void **state)
{
	struct cf_peer p = { .fd = -1 };
	bool welcomed = false;

	/* CN=agent-1, the name of a real agent, but from another CA */
	if (cf_peer_connect(&p, H.col.port, H.pki.other_cert, H.pki.other_key, H.pki.ca) == 0)
		welcomed = cf_peer_hello(&p, "", "cf-x-host", "cf-x-f", NULL) == 0;
	CHECK(!welcomed, "an agent certificate from another CA was welcomed");
	printf("     other CA: %s\n", p.err);
	expect_logged(&p, (const char *const[]){ "certificate", "verify", "unknown ca", "tls", NULL },
		      "certificate from another CA");
	cf_peer_close(&p);
	CHECK(cf_db_count(H.col.db, "cf-x-f") == 0, "events stored for the other CA's agent");
	expect_good_agents_progress("a certificate from another CA");
}

static void test_no_client_cert_refused(void **state)
{
	struct cf_peer p = { .fd = -1 };
	bool welcomed = false;

	if (cf_peer_connect(&p, H.col.port, NULL, NULL, H.pki.ca) == 0)
		welcomed = cf_peer_hello(&p, "agent-1", "cf-x-host", "cf-x-g", NULL) == 0;
	CHECK(!welcomed, "a TLS client without a certificate was welcomed");
	printf("     no client certificate: %s\n", p.err);
	expect_logged(&p, (const char *const[]){ "certificate", "verify", "tls", NULL },
		      "no client certificate");
	cf_peer_close(&p);
	expect_good_agents_progress("a client without a certificate");
}

static void test_plaintext_against_tls(void **state)
{
	struct cf_peer p = { .fd = -1 };
	bool welcomed;

	CHECK(cf_peer_connect(&p, H.col.port, NULL, NULL, NULL) == 0, "connect: %s", p.err);
	welcomed = cf_peer_hello(&p, "agent-1", "cf-x-host", "cf-x-h", NULL) == 0;
	CHECK(!welcomed, "a plaintext Hello was welcomed by the TLS listener");
	expect_closed(&p, 3000, "plaintext Hello on the TLS port");
	expect_logged(&p, (const char *const[]){ "tls", "ssl", "handshake", "wrong version", NULL },
		      "plaintext client");
	cf_peer_close(&p);
	CHECK(cf_db_count(H.col.db, "cf-x-h") == 0, "plaintext events stored");
	expect_good_agents_progress("a plaintext client");
}

/* ---- flood ---------------------------------------------------------------- */

static void test_flood_from_one_agent(void **state)
{
	struct good_peer_arg a = {
		.port = H.col.port, .cert = H.pki.agent_cert[4], .key = H.pki.agent_key[4], .ca = H.pki.ca,
		.run_id = "cf-flood", .stop = "/nonexistent/never", .result = NULL, .pace_us = 0,
		.max_ms = 5000,
	};
	char result[PATH_MAX];
	long long r0, p0, r1, p1;
	uint64_t sent = 0, acked = 0;
	unsigned rec = 0;
	pid_t pid;
	int st;

	snprintf(result, sizeof(result), "%s", wsp("flood.result"));
	a.result = result;
	r0 = good_run_count();
	p0 = cf_db_count(H.col.db, H.good_peer_run);
	pid = bw_fork_outsider(good_peer_main, &a);
	CHECK(pid > 0, "fork the flooder");
	cf_sleep_ms(4500); /* while it floods */
	r1 = good_run_count();
	p1 = cf_db_count(H.col.db, H.good_peer_run);
	st = bw_wait_bounded(pid, 20);
	read_result(result, &sent, &acked, &rec);
	printf("     flood: %llu frames sent, %llu acked, %u reconnects; during it agent-1 stored %lld, "
	       "agent-2 %lld\n", (unsigned long long)sent, (unsigned long long)acked, rec, r1 - r0, p1 - p0);
	CHECK(st >= 0, "the flooder did not end");
	CHECK(sent > 10000, "the flooder sent only %llu frames: no flood", (unsigned long long)sent);
	CHECK(p1 - p0 >= 50, "during a flood the paced good agent (100 frames/s) got only %lld stored in 4.5 s",
	      p1 - p0);
	CHECK(r1 > r0, "during a flood `buildwarden run` (agent-1) got nothing stored");
	expect_good_agents_progress("a flood");
}

/* ---- connection slots (issue 8) ------------------------------------------- */

#define IDLE_SOCKETS 1024

/* A TCP connection from src (a loopback address) to the collector that never sends a
 * byte: -1 when it could not be made. */
static int idle_socket(const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
	d.sin_port = htons((uint16_t)H.col.port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0 && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1,024 idle TCP sockets (no TLS byte) from 128 loopback addresses took every slot of
 * the collector, and an enrolled agent was refused three times in a row. Connections
 * that have not said Hello now have a budget of their own: the agent still gets in,
 * every time, and delivers. */
static void test_idle_sockets_leave_room_for_agents(void **state)
{
	static int fds[IDLE_SOCKETS];
	struct rlimit rl;
	int made = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < IDLE_SOCKETS + 256) {
		rl.rlim_cur = rl.rlim_max < IDLE_SOCKETS + 256 ? rl.rlim_max : IDLE_SOCKETS + 256;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < IDLE_SOCKETS; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.%d.%d", 1 + i / 8 / 200, 2 + (i / 8) % 200);
		fds[i] = idle_socket(src);
		if (fds[i] >= 0)
			made++;
	}
	printf("     %d idle sockets open\n", made);
	CHECK(made >= IDLE_SOCKETS - 8, "only %d of %d idle sockets could be opened", made,
	      IDLE_SOCKETS);
	cf_sleep_ms(1000); /* the collector accepts them */
	for (int attempt = 0; attempt < 3; attempt++) {
		struct cf_peer p = { .fd = -1 };
		char run[64];
		long long stored = 0;

		snprintf(run, sizeof(run), "cf-slots-%d-%d", (int)getpid(), attempt);
		CHECK(cf_peer_connect(&p, H.col.port, H.pki.agent_cert[3], H.pki.agent_key[3],
				      H.pki.ca) == 0,
		      "attempt %d: with %d idle sockets open an enrolled agent cannot connect: %s",
		      attempt + 1, made, p.err);
		CHECK(cf_peer_hello(&p, "", "cf-x-host", run, NULL) == 0,
		      "attempt %d: with %d idle sockets open an enrolled agent's Hello failed: %s",
		      attempt + 1, made, p.err);
		for (int i = 0; i < 5; i++) {
			size_t len;
			uint8_t *ev = cf_event_bytes(p.next_seq, "cf-x-host", run, "/bin/true", 0, &len);

			CHECK(ev && cf_peer_send_event(&p, p.next_seq, ev, len, true) == 0, "send");
			free(ev);
		}
		stored = cf_db_wait_count(H.col.db, run, 5, 10000);
		CHECK(stored == 5, "attempt %d: %lld of 5 events stored", attempt + 1, stored);
		cf_peer_close(&p);
	}
	for (int i = 0; i < IDLE_SOCKETS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	CHECK(cf_log_has_line(H.col.log, H.log_off, (const char *const[]){ "127.0.1.", NULL },
			      (const char *const[]){ "--max-handshakes", "--max-per-addr", NULL }, NULL, 0),
	      "the collector logged no line about closing idle handshakes");
	expect_good_agents_progress("1024 idle sockets");
}

/* ---- the end: the good agents lost nothing -------------------------------- */

static void test_good_agents_complete(void **state)
{
	struct bw_events evs;
	struct cf_stored s;
	struct cf_findings f;
	uint64_t sent = 0, acked = 0;
	unsigned rec = 0;
	char report[4096];
	int code = -1, st;

	alarm(60);
	CHECK(bw_ws_write(&H.ws, "stop", "", false) == 0, "write stop");
	st = bw_wait_bounded(H.good_peer, 20);
	read_result(good_arg.result, &sent, &acked, &rec);
	printf("     agent-2: sent %llu, acked %llu, reconnects %u\n", (unsigned long long)sent,
	       (unsigned long long)acked, rec);
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the hand-written good agent did not get its last frame acknowledged");
	CHECK(rec == 0, "the hand-written good agent was disconnected %u times by the attacks", rec);
	CHECK(cf_query_run(H.col.db, H.good_peer_run, &s) == 0, "query: %s", s.err);
	CHECK(s.n == sent, "agent-2 sent %llu frames, %zu stored", (unsigned long long)sent, s.n);
	for (size_t i = 0; i < s.n; i++)
		CHECK(s.seq[i] == i + 1, "agent-2: stored #%zu is seq %llu", i, (unsigned long long)s.seq[i]);
	CHECK(!strcmp(s.agent, "agent-2") && !s.agent_mixed, "agent-2's events stored as agent '%s'", s.agent);
	cf_stored_free(&s);

	CHECK(H.good_run > 0 && cf_wait_exit(H.good_run, 40000, &code) == 1,
	      "`buildwarden run` (agent-1) did not end after its build did");
	{
		char *t = cf_read_from(H.run_log, 0);

		if (code != 0)
			printf("---- agent-1 output:\n%.3000s\n", t);
		free(t);
	}
	CHECK(code == 0, "`buildwarden run` (agent-1) exited %d", code);
	CHECK(bw_events_read(wsp("good-events.pb"), &evs) == 0, "agent-1 events: %s", evs.err);
	CHECK(cf_compare(&evs, H.col.db, "agent-1", NULL, report, sizeof(report)),
	      "agent-1: %s", report);
	printf("     agent-1: %s\n", report);
	CHECK(cf_query_findings(H.col.db, cf_run_id(&evs), &f) == 0, "findings: %s", f.err);
	CHECK(f.n == 0, "agent-1's run has findings: %.600s", f.raw);
	cf_findings_free(&f);
	bw_events_free(&evs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_agents_streaming, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frame, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_max_frame_flag, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_frame_then_close, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_not_protobuf, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_seq_backwards, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_slowloris_silent, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_slowloris_dribble_tls, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_slowloris_dribble_hello, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_other_ca_refused, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_no_client_cert_refused, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_plaintext_against_tls, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_flood_from_one_agent, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_idle_sockets_leave_room_for_agents, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_good_agents_complete, test_setup, test_teardown),
	};

	if (geteuid() != 0) {
		printf("test_collector_hostile: needs root (eBPF)\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
