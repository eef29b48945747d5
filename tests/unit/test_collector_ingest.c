// SPDX-License-Identifier: GPL-2.0
/* Collector ingest state machine over an in-memory SQLite store: ordering, duplicates,
 * gaps, chain breaks, skips, keyed chains, completeness, and hostile framing. Frames are
 * chained with the agent's transport/chain.c, so the collector's verify.c is checked
 * against an independent implementation on every test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "collector/ingest.h"
#include "collector/store.h"
#include "collector/verify.h"
#include "transport/chain.h"
#include "transport/frame.h"

struct h {
	struct store *st;
	struct ingest *ig;
	struct ingest_conn ic;
	uint8_t chain[32];     /* agent side: chain of the last frame sent */
	char hello_run[64];    /* run of the last Hello: a new run chains from its start value */
	const uint8_t *key;
	size_t keylen;
	char keydir[64];
};

static struct h *h_new(const struct ingest_cfg *cfg_in)
{
	struct ingest_cfg cfg = { 0 };
	struct h *h = calloc(1, sizeof(*h));
	char err[256];

	assert_non_null(h);
	if (cfg_in)
		cfg = *cfg_in;
	cfg.insecure = true;
	assert_int_equal(store__open(":memory:", STORE_WRITE, &h->st, err, sizeof(err)), 0);
	assert_int_equal(ingest__new(&cfg, h->st, &h->ig), 0);
	ingest__conn_init(&h->ic, NULL);
	return h;
}

static void h_free(struct h *h)
{
	ingest__conn_close(h->ig, &h->ic);
	ingest__free(h->ig);
	store__close(h->st);
	if (h->keydir[0]) {
		char p[128];

		snprintf(p, sizeof(p), "%s/agent-1.key", h->keydir);
		unlink(p);
		rmdir(h->keydir);
	}
	free(h);
}

/* Commits whatever is pending, as the server's writer would. */
static void h_commit(struct h *h)
{
	struct batch *b = ingest__seal(h->ig);
	char err[256];

	if (!b)
		return;
	assert_int_equal(store__apply(h->st, b, err, sizeof(err)), 0);
	ingest__done(h->ig, b, true);
}

static enum feed_status h_feed_raw(struct h *h, struct ingest_conn *ic, const uint8_t *p,
				   size_t len, size_t *used)
{
	enum feed_status st;
	size_t u = ingest__feed(h->ig, ic, p, len, &st);

	if (used)
		*used = u;
	return st;
}

static enum feed_status h_send_on(struct h *h, struct ingest_conn *ic,
				  const Buildwarden__V1__AgentMessage *m)
{
	size_t len = buildwarden__v1__agent_message__get_packed_size(m);
	uint8_t *buf = malloc(len + FRAME_VARINT_MAX);
	size_t hl = frame__encode_len(len, buf), used;
	enum feed_status st;

	buildwarden__v1__agent_message__pack(m, buf + hl);
	st = h_feed_raw(h, ic, buf, hl + len, &used);
	if (st != FEED_DEAD)
		assert_int_equal(used, hl + len);
	free(buf);
	return st;
}

static enum feed_status h_hello_on(struct h *h, struct ingest_conn *ic, const char *run,
				   bool keyed)
{
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__Hello hello = BUILDWARDEN__V1__HELLO__INIT;

	if (strcmp(h->hello_run, run)) {
		/* a run this harness has not sent yet: seq 1 chains from its start value */
		snprintf(h->hello_run, sizeof(h->hello_run), "%s", run);
		assert_int_equal(chain__init(run, h->key, h->keylen, h->chain), 0);
	}
	hello.agent_id = (char *)"agent-1";
	hello.host = (char *)"runner-1";
	hello.run_id = (char *)run;
	hello.schema_version = BW_SCHEMA_VERSION;
	hello.keyed_chain = keyed;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &hello;
	return h_send_on(h, ic, &m);
}

/* Packs an Event; body: 's' runStart, 'e' runEnd (drops), 'x' exec, 'v' violating file. */
static size_t h_event(uint64_t seq, const char *run, char body, uint64_t drops, uint8_t *out,
		      size_t cap)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunStart rs = BUILDWARDEN__V1__RUN_START__INIT;
	Buildwarden__V1__RunEnd re = BUILDWARDEN__V1__RUN_END__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
	Buildwarden__V1__FileBody fb = BUILDWARDEN__V1__FILE_BODY__INIT;
	Buildwarden__V1__Verdict vd = BUILDWARDEN__V1__VERDICT__INIT;
	Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;
	size_t len;

	ev.seq = seq;
	ev.time_ns = 1700000000000000000ull + seq;
	ev.host = (char *)"runner-1";
	ev.run_id = (char *)run;
	pr.pid = 4242;
	pr.exe = (char *)"/usr/bin/cc";
	ev.process = &pr;
	switch (body) {
	case 's':
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
		ev.run_start = &rs;
		break;
	case 'e':
		re.drops = drops;
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
		ev.run_end = &re;
		break;
	case 'v':
		fb.op = BUILDWARDEN__V1__FILE_OP__WRITE;
		fb.path = (char *)"/srv/src/main.c";
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev.file = &fb;
		vd.violation = true;
		vd.rule = (char *)"protect[0]: /srv/src";
		vd.action = BUILDWARDEN__V1__ACTION__AUDITED;
		ev.verdict = &vd;
		break;
	default:
		ex.filename = (char *)"/usr/bin/cc";
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
		ev.exec = &ex;
		break;
	}
	len = buildwarden__v1__event__get_packed_size(&ev);
	assert_true(len <= cap);
	buildwarden__v1__event__pack(&ev, out);
	return len;
}

/* Sends one EventFrame with raw event bytes; chains it unless chain_override. */
static enum feed_status h_frame_bytes(struct h *h, struct ingest_conn *ic, uint64_t seq,
				      const uint8_t *ev, size_t len, const uint8_t *chain_override)
{
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
	uint8_t chain[32];

	assert_int_equal(chain__next(h->chain, seq, ev, len, h->key, h->keylen, chain), 0);
	if (chain_override)
		memcpy(chain, chain_override, 32);
	memcpy(h->chain, chain, 32);
	f.seq = seq;
	f.event.data = (uint8_t *)ev;
	f.event.len = len;
	f.chain.data = chain;
	f.chain.len = 32;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
	m.event = &f;
	return h_send_on(h, ic, &m);
}

static enum feed_status h_frame(struct h *h, uint64_t seq, char body)
{
	uint8_t ev[512];
	size_t len = h_event(seq, "run-1", body, 0, ev, sizeof(ev));

	return h_frame_bytes(h, &h->ic, seq, ev, len, NULL);
}

static enum feed_status h_skip(struct h *h, uint64_t first, uint64_t last)
{
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__Skip s = BUILDWARDEN__V1__SKIP__INIT;

	s.first_seq = first;
	s.last_seq = last;
	s.reason = (char *)"spool full";
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_SKIP;
	m.skip = &s;
	return h_send_on(h, &h->ic, &m);
}

/* Pops every queued CollectorMessage; returns the last one of case want (or NULL). The
 * caller frees it. */
static Buildwarden__V1__CollectorMessage *h_last(struct ingest_conn *ic, int want)
{
	Buildwarden__V1__CollectorMessage *found = NULL;
	const uint8_t *p;
	size_t off = ic->out_off, plen;

	while (frame__next(ic->out, ic->out_len, &off, 0, &p, &plen) == 1) {
		Buildwarden__V1__CollectorMessage *m =
			buildwarden__v1__collector_message__unpack(NULL, plen, p);

		assert_non_null(m);
		if ((int)m->msg_case == want) {
			if (found)
				buildwarden__v1__collector_message__free_unpacked(found, NULL);
			found = m;
		} else {
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		}
	}
	ingest__out_consume(ic, ic->out_len - ic->out_off);
	return found;
}

static uint64_t h_last_ack(struct ingest_conn *ic)
{
	Buildwarden__V1__CollectorMessage *m = h_last(ic, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK);
	uint64_t seq;

	if (!m)
		return 0;
	seq = m->ack->seq;
	buildwarden__v1__collector_message__free_unpacked(m, NULL);
	return seq;
}

static long long h_sql(struct h *h, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	assert_int_equal(sqlite3_prepare_v2(store__db(h->st), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void h_welcome(struct h *h, struct ingest_conn *ic, uint64_t want_seq, const uint8_t *chain)
{
	Buildwarden__V1__CollectorMessage *m =
		h_last(ic, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME);

	assert_non_null(m);
	assert_int_equal(m->welcome->last_seq, want_seq);
	assert_int_equal(m->welcome->last_chain.len, 32);
	assert_int_equal(m->welcome->max_frame, BW_FRAME_MAX);
	if (!want_seq) {
		/* a new run: the collector starts the chain where the agent's transport
		 * does, from the value bound to the run id (and key) */
		assert_int_equal(chain__init(h->hello_run, h->key, h->keylen, h->chain), 0);
		chain = h->chain;
	}
	if (chain)
		assert_memory_equal(m->welcome->last_chain.data, chain, 32);
	buildwarden__v1__collector_message__free_unpacked(m, NULL);
}

/* ---- tests -------------------------------------------------------------- */

static void test_collector_ingest__verify_matches_agent_chain(void **state)
{
	uint8_t prev[32], key[100], ev[700], a[32], b[32], c[32];
	unsigned int n;
	struct verify v;

	for (int round = 0; round < 200; round++) {
		size_t keylen = (size_t)round % sizeof(key), len = (size_t)(round * 7) % sizeof(ev);
		uint64_t seq = (uint64_t)round * 0x9e3779b97f4a7c15ull;

		RAND_bytes(prev, sizeof(prev));
		RAND_bytes(key, sizeof(key));
		RAND_bytes(ev, sizeof(ev));
		assert_int_equal(verify__init(&v, keylen ? key : NULL, keylen), 0);
		assert_int_equal(verify__chain(&v, prev, seq, ev, len, a), 0);
		assert_int_equal(chain__next(prev, seq, ev, len, key, keylen, b), 0);
		assert_memory_equal(a, b, 32);
		if (keylen) {
			/* and against OpenSSL's own HMAC over the same message */
			uint8_t msg[32 + 8 + sizeof(ev)];

			memcpy(msg, prev, 32);
			for (int i = 0; i < 8; i++)
				msg[32 + i] = (uint8_t)(seq >> (56 - 8 * i));
			memcpy(msg + 40, ev, len);
			HMAC(EVP_sha256(), key, (int)keylen, msg, 40 + len, c, &n);
			assert_memory_equal(a, c, 32);
		}
		verify__free(&v);
	}
	/* and the value a run starts from (protocol v2) */
	for (int round = 0; round < 50; round++) {
		size_t keylen = (size_t)round % sizeof(key);
		char run[40];

		snprintf(run, sizeof(run), "run-%d", round * 7919);
		RAND_bytes(key, sizeof(key));
		assert_int_equal(verify__init(&v, keylen ? key : NULL, keylen), 0);
		assert_int_equal(verify__start(&v, run, a), 0);
		assert_int_equal(chain__init(run, key, keylen, b), 0);
		assert_memory_equal(a, b, 32);
		assert_int_equal(chain__init("run-x", key, keylen, c), 0);
		assert_memory_not_equal(a, c, 32);
		verify__free(&v);
	}
}

/* The frames of one run, replayed byte for byte (chains included) as another run,
 * break at their first frame: a chain starts from a value bound to its run id. The
 * events carry no runId, so only the chain can tell. */
static void test_collector_ingest__chain_bound_to_run(void **state)
{
	struct h *h = h_new(NULL);
	struct ingest_conn ic2;
	uint8_t ev[3][512], ch[3][32];
	size_t len[3];

	h_hello_on(h, &h->ic, "run-1", false);
	for (int i = 0; i < 3; i++) {
		len[i] = h_event((uint64_t)i + 1, "", i ? 'x' : 's', 0, ev[i], sizeof(ev[i]));
		assert_int_equal(h_frame_bytes(h, &h->ic, (uint64_t)i + 1, ev[i], len[i], NULL),
				 FEED_MORE);
		memcpy(ch[i], h->chain, 32);
	}
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 0);

	ingest__conn_init(&ic2, NULL);
	assert_int_equal(h_hello_on(h, &ic2, "run-2", false), FEED_MORE);
	for (int i = 0; i < 3; i++)
		assert_int_equal(h_frame_bytes(h, &ic2, (uint64_t)i + 1, ev[i], len[i], ch[i]),
				 FEED_MORE);
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings f JOIN runs r ON r.id = f.run"
				  " WHERE r.run_id = 'run-2' AND f.kind = 'chain_break'"
				  " AND f.first_seq = 1"), 1);
	assert_int_equal(h_sql(h, "SELECT flags FROM events e JOIN runs r ON r.id = e.run"
				  " WHERE r.run_id = 'run-2' AND seq = 1"), EVF_CHAIN_BREAK);
	ingest__conn_close(h->ig, &ic2);
	h_free(h);
}

static void test_collector_ingest__in_order_complete(void **state)
{
	struct h *h = h_new(NULL);
	uint8_t zero[32] = { 0 };

	assert_int_equal(h_hello_on(h, &h->ic, "run-1", false), FEED_MORE);
	h_welcome(h, &h->ic, 0, zero);
	assert_int_equal(h_frame(h, 1, 's'), FEED_MORE);
	assert_int_equal(h_frame(h, 2, 'x'), FEED_MORE);
	assert_int_equal(h_frame(h, 3, 'v'), FEED_MORE);
	assert_int_equal(h_last_ack(&h->ic), 0); /* nothing durable yet: no Ack */
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 3);
	assert_int_equal(h_frame(h, 4, 'e'), FEED_MORE);
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 4);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 4);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 0);
	assert_int_equal(h_sql(h, "SELECT complete FROM runs"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE violation = 1 AND seq = 3"
				  " AND rule = 'protect[0]: /srv/src' AND action = 'AUDITED'"
				  " AND path = '/srv/src/main.c' AND kind = 'file'"), 1);
	assert_int_equal(h_sql(h, "SELECT sum(flags) FROM events"), 0);
	h_free(h);
}

/* Reconnects a fresh connection for run-1 and checks its Welcome. */
static void h_reconnect(struct h *h, uint64_t want_seq)
{
	ingest__conn_close(h->ig, &h->ic);
	ingest__conn_init(&h->ic, NULL);
	assert_int_equal(h_hello_on(h, &h->ic, "run-1", false), FEED_MORE);
	h_welcome(h, &h->ic, want_seq, NULL);
}

static void test_collector_ingest__resume_after_reconnect(void **state)
{
	struct h *h = h_new(NULL);
	struct ingest_conn ic2;

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	h_commit(h);
	ingest__conn_close(h->ig, &h->ic);
	ingest__conn_init(&h->ic, NULL);
	/* a fresh Hello resumes from the durable state, chain included */
	h_hello_on(h, &h->ic, "run-1", false);
	h_welcome(h, &h->ic, 2, h->chain);
	/* seq 1 again, with other (empty) event bytes: below Welcome.last_seq, which an
	 * agent never sends: refused, and a finding */
	{
		uint8_t keep[32], none = 0;

		memcpy(keep, h->chain, 32);
		assert_int_equal(h_frame_bytes(h, &h->ic, 1, &none, 0, NULL), FEED_DEAD);
		memcpy(h->chain, keep, 32);
	}
	assert_non_null(strstr(h->ic.reason, "goes backwards"));
	h_commit(h);
	/* seq 1 with other bytes: duplicate_mismatch */
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'duplicate_mismatch'"
				  " AND first_seq = 1"), 1);
	assert_int_equal(h_sql(h, "SELECT chain_ok FROM runs"), 0);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 2);

	/* and on a second connection a superseded first one is refused */
	h_reconnect(h, 2);
	ingest__conn_init(&ic2, NULL);
	h_frame(h, 3, 'x');
	assert_int_equal(h_hello_on(h, &ic2, "run-1", false), FEED_MORE);
	assert_int_equal(h->ic.state, IC_DEAD);
	assert_non_null(strstr(h->ic.reason, "superseded"));
	assert_int_equal(ic2.state, IC_WELCOME_WAIT); /* seq 3 is not durable yet */
	assert_null(h_last(&ic2, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME));
	h_commit(h);
	assert_int_equal(ic2.state, IC_STREAM);
	h_welcome(h, &ic2, 3, h->chain);
	ingest__conn_close(h->ig, &ic2);
	h_free(h);
}

/* Within one connection seqs only go up; a seq at or below one this connection (or the
 * Welcome) already covered is refused, whatever its bytes. The store still tells an
 * identical replay (no finding) from other content (duplicate_mismatch). */
static void test_collector_ingest__backwards_refused(void **state)
{
	struct h *h = h_new(NULL);
	uint8_t ev[512], c1[32], c2[32];
	size_t len;

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	memcpy(c1, h->chain, 32);
	h_frame(h, 2, 'x');
	memcpy(c2, h->chain, 32);
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 2);
	/* seq 2 again, exactly: refused, nothing recorded (the record is intact) */
	len = h_event(2, "run-1", 'x', 0, ev, sizeof(ev));
	memcpy(h->chain, c1, 32);
	assert_int_equal(h_frame_bytes(h, &h->ic, 2, ev, len, NULL), FEED_DEAD);
	assert_int_equal(h->ic.state, IC_DEAD);
	assert_non_null(strstr(h->ic.reason, "seq 2 goes backwards"));
	{
		Buildwarden__V1__CollectorMessage *m =
			h_last(&h->ic, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL);

		assert_non_null(m);
		assert_non_null(strstr(m->refusal->reason, "goes backwards"));
		buildwarden__v1__collector_message__free_unpacked(m, NULL);
	}
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 0);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 2);
	assert_int_equal(h_sql(h, "SELECT chain_ok FROM runs"), 1);

	/* seq 1..3, then 2 with other bytes on the same connection, before any commit:
	 * refused, a finding, the first seq 2 stays */
	h_reconnect(h, 2);
	memcpy(h->chain, c2, 32);
	assert_int_equal(h_frame(h, 3, 'x'), FEED_MORE);
	len = h_event(2, "run-1", 'v', 0, ev, sizeof(ev));
	memcpy(h->chain, c1, 32);
	assert_int_equal(h_frame_bytes(h, &h->ic, 2, ev, len, NULL), FEED_DEAD);
	/* nothing after the refusal is taken */
	assert_int_equal(h_frame(h, 4, 'x'), FEED_DEAD);
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'duplicate_mismatch'"
				  " AND first_seq = 2"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 3);
	assert_int_equal(h_sql(h, "SELECT violation FROM events WHERE seq = 2"), 0);
	assert_int_equal(h_sql(h, "SELECT chain_ok + complete FROM runs"), 0);
	/* the resume point is what was stored: 3 */
	h_reconnect(h, 3);
	h_free(h);
}

/* A Skip that reaches back over what the run has is refused and recorded. */
static void test_collector_ingest__skip_backwards_refused(void **state)
{
	struct h *h = h_new(NULL);

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	assert_int_equal(h_skip(h, 2, 4), FEED_DEAD);
	assert_non_null(strstr(h->ic.reason, "Skip 2-4 goes backwards"));
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'seq_backwards'"
				  " AND first_seq = 2 AND last_seq = 2"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'skip'"), 0);
	assert_int_equal(h_sql(h, "SELECT last_seq FROM runs"), 2);
	h_reconnect(h, 2);
	h_free(h);
}

static void test_collector_ingest__gap_recorded_and_continues(void **state)
{
	struct h *h = h_new(NULL);
	uint8_t ev[512];
	size_t len;

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	/* 3 and 4 "lost": the agent's chain still covers them */
	len = h_event(3, "run-1", 'x', 0, ev, sizeof(ev));
	chain__next(h->chain, 3, ev, len, NULL, 0, h->chain);
	len = h_event(4, "run-1", 'x', 0, ev, sizeof(ev));
	chain__next(h->chain, 4, ev, len, NULL, 0, h->chain);
	assert_int_equal(h_frame(h, 5, 'x'), FEED_MORE);
	assert_int_equal(h_frame(h, 6, 'x'), FEED_MORE);
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 6);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'gap' AND first_seq = 3"
				  " AND last_seq = 4"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 1);
	assert_int_equal(h_sql(h, "SELECT flags FROM events WHERE seq = 5"), EVF_CHAIN_UNVERIFIED);
	assert_int_equal(h_sql(h, "SELECT flags FROM events WHERE seq = 6"), 0);
	/* a late seq from inside the gap is refused into a finding, not stored */
	len = h_event(3, "run-1", 'x', 0, ev, sizeof(ev));
	assert_int_equal(h_frame_bytes(h, &h->ic, 3, ev, len, NULL), FEED_DEAD);
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'seq_backwards'"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 4);
	assert_int_equal(h_sql(h, "SELECT chain_ok FROM runs"), 0);
	h_free(h);
}

static void test_collector_ingest__chain_break_stored_flagged(void **state)
{
	struct h *h = h_new(NULL);
	uint8_t bogus[32];

	memset(bogus, 0xab, sizeof(bogus));
	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	{
		uint8_t ev[512];
		size_t len = h_event(3, "run-1", 'v', 0, ev, sizeof(ev));

		h_frame_bytes(h, &h->ic, 3, ev, len, bogus); /* forged chain value */
	}
	/* 4 chains from the received (bogus) value, as the agent would after a restart */
	h_frame(h, 4, 'x');
	h_frame(h, 5, 'e');
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 5);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'chain_break'"
				  " AND first_seq = 3 AND last_seq = 3"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 1);
	assert_int_equal(h_sql(h, "SELECT flags FROM events WHERE seq = 3"), EVF_CHAIN_BREAK);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE flags = 0"), 4);
	assert_int_equal(h_sql(h, "SELECT has_run_end * 10 + complete FROM runs"), 10);
	h_free(h);
}

static void test_collector_ingest__skip(void **state)
{
	struct h *h = h_new(NULL);

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	assert_int_equal(h_skip(h, 3, 5), FEED_MORE);
	assert_int_equal(h_frame(h, 6, 'x'), FEED_MORE); /* chained from 2 */
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 6);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'skip' AND first_seq = 3"
				  " AND last_seq = 5 AND detail LIKE '%spool full%'"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 1);
	assert_int_equal(h_sql(h, "SELECT flags FROM events WHERE seq = 6"), 0);
	/* a Skip past a gap records the gap too */
	h_skip(h, 9, 9);
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'gap' AND first_seq = 7"
				  " AND last_seq = 8"), 1);
	assert_int_equal(h_sql(h, "SELECT last_seq FROM runs"), 9);
	assert_int_equal(h_sql(h, "SELECT chain_ok FROM runs"), 0);
	h_free(h);
}

static void h_keydir(struct h *h, const char *key)
{
	char p[128];
	FILE *f;

	snprintf(h->keydir, sizeof(h->keydir), "/tmp/bw-keys-XXXXXX");
	assert_non_null(mkdtemp(h->keydir));
	snprintf(p, sizeof(p), "%s/agent-1.key", h->keydir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(key, f);
	fclose(f);
}

static struct h *h_new_keyed(const char *key)
{
	struct ingest_cfg cfg = { 0 };
	struct h *h;

	h = h_new(NULL);
	h_keydir(h, key);
	/* rebuild with the key dir configured */
	ingest__free(h->ig);
	cfg.insecure = true;
	cfg.agent_keys = h->keydir;
	assert_int_equal(ingest__new(&cfg, h->st, &h->ig), 0);
	return h;
}

static void test_collector_ingest__keyed_chain(void **state)
{
	static const uint8_t key[] = "s3cret-key\n"; /* the newline is part of the key */
	struct h *h = h_new_keyed((const char *)key);

	h->key = key;
	h->keylen = sizeof(key) - 1;
	h_hello_on(h, &h->ic, "run-1", true);
	h_welcome(h, &h->ic, 0, NULL);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	h_frame(h, 3, 'e');
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 0);
	assert_int_equal(h_sql(h, "SELECT complete FROM runs"), 1);
	h_free(h);
}

static void test_collector_ingest__keyed_chain_wrong_key(void **state)
{
	static const uint8_t other[] = "not-the-key";
	struct h *h = h_new_keyed("s3cret-key");

	/* an agent (or an attacker with its certificate) without the right key */
	h->key = other;
	h->keylen = sizeof(other) - 1;
	h_hello_on(h, &h->ic, "run-1", true);
	for (uint64_t s = 1; s <= 50; s++)
		h_frame(h, s, s == 1 ? 's' : 'x');
	h_commit(h);
	/* one coalesced finding for the whole run of broken frames, every frame flagged */
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'chain_break'"
				  " AND first_seq = 1 AND last_seq = 50"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE flags = 1"), 50);
	h_free(h);
}

static void test_collector_ingest__keyed_mismatch_is_finding(void **state)
{
	struct h *h = h_new_keyed("s3cret-key");

	/* the agent claims an unkeyed chain: verified with the key anyway */
	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'key_mismatch'"), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'chain_break'"), 1);
	h_free(h);

	/* keyed claimed, no key configured: unverifiable, flagged */
	h = h_new(NULL);
	h_hello_on(h, &h->ic, "run-1", true);
	h_frame(h, 1, 's');
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'key_mismatch'"), 1);
	assert_int_equal(h_sql(h, "SELECT flags FROM events"), EVF_CHAIN_UNVERIFIED);
	h_free(h);
}

static void test_collector_ingest__completeness(void **state)
{
	struct h *h = h_new(NULL);
	uint8_t ev[512];
	size_t len;

	/* drops reported by the kernel make a run incomplete */
	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	len = h_event(2, "run-1", 'e', 3, ev, sizeof(ev));
	h_frame_bytes(h, &h->ic, 2, ev, len, NULL);
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT kernel_drops * 10 + complete FROM runs"), 30);
	h_free(h);

	/* seq 1 that is not runStart: no_run_start, incomplete */
	h = h_new(NULL);
	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 'x');
	h_frame(h, 2, 'e');
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT has_run_start * 10 + complete FROM runs"), 0);
	h_free(h);
}

static void test_collector_ingest__bad_events(void **state)
{
	struct h *h = h_new(NULL);
	static const uint8_t junk[] = { 0xff, 0xff, 0xff };
	uint8_t ev[512];
	size_t len;

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	/* not an Event at all */
	assert_int_equal(h_frame_bytes(h, &h->ic, 2, junk, sizeof(junk), NULL), FEED_MORE);
	/* an Event whose seq disagrees with the frame's */
	len = h_event(99, "run-1", 'v', 0, ev, sizeof(ev));
	h_frame_bytes(h, &h->ic, 3, ev, len, NULL);
	/* an Event of another run */
	len = h_event(4, "run-2", 'x', 0, ev, sizeof(ev));
	h_frame_bytes(h, &h->ic, 4, ev, len, NULL);
	h_frame(h, 5, 'x');
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 5);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE flags = 4"), 3);
	/* flagged rows never count as violations */
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE violation = 1"), 0);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'bad_event'"
				  " AND first_seq = 2 AND last_seq = 4"), 1);
	h_free(h);
}

static void test_collector_ingest__framing_refusals(void **state)
{
	struct ingest_cfg cfg = { .max_frame = 4096 };
	struct h *h = h_new(&cfg);
	Buildwarden__V1__CollectorMessage *m;
	uint8_t buf[32];
	size_t used, n;

	/* oversized: refused as soon as the length is read, not after the body */
	n = frame__encode_len(4097, buf);
	assert_int_equal(h_feed_raw(h, &h->ic, buf, n, &used), FEED_DEAD);
	assert_non_null(strstr(h->ic.reason, "4097"));
	m = h_last(&h->ic, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL);
	assert_non_null(m);
	assert_non_null(strstr(m->refusal->reason, "above the limit"));
	buildwarden__v1__collector_message__free_unpacked(m, NULL);
	ingest__conn_close(h->ig, &h->ic);

	/* truncated: more is needed, nothing consumed, the needed size is known */
	ingest__conn_init(&h->ic, NULL);
	n = frame__encode_len(100, buf);
	memset(buf + n, 0, 10);
	assert_int_equal(h_feed_raw(h, &h->ic, buf, n + 10, &used), FEED_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(h->ic.need, n + 100);
	ingest__conn_close(h->ig, &h->ic);

	/* not protobuf */
	ingest__conn_init(&h->ic, NULL);
	buf[0] = 4;
	memset(buf + 1, 0xff, 4);
	assert_int_equal(h_feed_raw(h, &h->ic, buf, 5, &used), FEED_DEAD);
	assert_non_null(strstr(h->ic.reason, "not an AgentMessage"));
	ingest__conn_close(h->ig, &h->ic);

	/* an invalid varint */
	ingest__conn_init(&h->ic, NULL);
	memset(buf, 0xff, 11);
	assert_int_equal(h_feed_raw(h, &h->ic, buf, 11, &used), FEED_DEAD);
	ingest__conn_close(h->ig, &h->ic);

	/* an empty AgentMessage (no oneof set) */
	ingest__conn_init(&h->ic, NULL);
	buf[0] = 0;
	assert_int_equal(h_feed_raw(h, &h->ic, buf, 1, &used), FEED_DEAD);
	ingest__conn_close(h->ig, &h->ic);

	/* an EventFrame before Hello */
	ingest__conn_init(&h->ic, NULL);
	assert_int_equal(h_frame(h, 1, 's'), FEED_DEAD);
	assert_non_null(strstr(h->ic.reason, "first message must be Hello"));
	ingest__conn_close(h->ig, &h->ic);

	/* a second Hello */
	ingest__conn_init(&h->ic, NULL);
	assert_int_equal(h_hello_on(h, &h->ic, "run-1", false), FEED_MORE);
	assert_int_equal(h_hello_on(h, &h->ic, "run-1", false), FEED_DEAD);
	ingest__conn_close(h->ig, &h->ic);

	/* bad ids and versions */
	ingest__conn_init(&h->ic, NULL);
	assert_int_equal(h_hello_on(h, &h->ic, "../../etc/passwd", false), FEED_DEAD);
	ingest__conn_close(h->ig, &h->ic);
	ingest__conn_init(&h->ic, NULL);
	assert_int_equal(h_hello_on(h, &h->ic, "", false), FEED_DEAD);

	/* seq 0 and seqs past INT64_MAX */
	ingest__conn_close(h->ig, &h->ic);
	ingest__conn_init(&h->ic, NULL);
	h_hello_on(h, &h->ic, "run-9", false);
	assert_int_equal(h_frame(h, 0, 'x'), FEED_DEAD);
	ingest__conn_close(h->ig, &h->ic);
	ingest__conn_init(&h->ic, NULL);
	h_hello_on(h, &h->ic, "run-9", false);
	assert_int_equal(h_frame(h, 1ull << 63, 'x'), FEED_DEAD);
	h_free(h);
}

static void test_collector_ingest__tls_identity_wins(void **state)
{
	struct ingest_cfg cfg = { 0 };
	struct h *h = h_new(NULL);

	/* with TLS the certificate's CN is the agent, whatever Hello.agent_id says */
	ingest__free(h->ig);
	cfg.insecure = false;
	assert_int_equal(ingest__new(&cfg, h->st, &h->ig), 0);
	ingest__conn_init(&h->ic, "cn-from-cert");
	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_commit(h);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM runs WHERE agent = 'cn-from-cert'"), 1);
	h_free(h);
}

static void test_collector_ingest__storage_failure_resets(void **state)
{
	struct h *h = h_new(NULL);
	struct batch *b;

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_frame(h, 2, 'x');
	b = ingest__seal(h->ig);
	assert_non_null(b);
	ingest__done(h->ig, b, false); /* the disk was full */
	assert_int_equal(h->ic.state, IC_DEAD);
	assert_non_null(strstr(h->ic.reason, "storage error"));
	ingest__conn_close(h->ig, &h->ic);
	/* the agent comes back and resumes from what is durable: nothing */
	ingest__conn_init(&h->ic, NULL);
	memset(h->chain, 0, 32);
	h_hello_on(h, &h->ic, "run-1", false);
	h_welcome(h, &h->ic, 0, h->chain);
	h_frame(h, 1, 's');
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 1);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings"), 0);
	h_free(h);
}

static void test_collector_ingest__batch_full_stalls(void **state)
{
	struct ingest_cfg cfg = { .batch_frames = 4 };
	struct h *h = h_new(&cfg);
	uint8_t *stream = malloc(1 << 16);
	size_t len = 0, used;
	enum feed_status st;

	/* 10 frames in one buffer: ingest takes 4, stalls, and resumes after a commit */
	h_hello_on(h, &h->ic, "run-1", false);
	for (uint64_t s = 1; s <= 10; s++) {
		Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
		Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
		uint8_t ev[512];
		size_t el = h_event(s, "run-1", s == 1 ? 's' : 'x', 0, ev, sizeof(ev)), ml;

		chain__next(h->chain, s, ev, el, NULL, 0, h->chain);
		f.seq = s;
		f.event.data = ev;
		f.event.len = el;
		f.chain.data = h->chain;
		f.chain.len = 32;
		m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
		m.event = &f;
		ml = buildwarden__v1__agent_message__get_packed_size(&m);
		len += frame__encode_len(ml, stream + len);
		len += buildwarden__v1__agent_message__pack(&m, stream + len);
	}
	st = h_feed_raw(h, &h->ic, stream, len, &used);
	assert_int_equal(st, FEED_STALL);
	assert_true(ingest__full(h->ig));
	while (st == FEED_STALL) {
		size_t u;

		h_commit(h);
		st = h_feed_raw(h, &h->ic, stream + used, len - used, &u);
		used += u;
	}
	assert_int_equal(st, FEED_MORE);
	assert_int_equal(used, len);
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 10);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 10);
	free(stream);
	h_free(h);
}

/* Rows go in 32 to a statement; a (run, seq) that is already stored (only a second
 * writer or a hand-edited database makes one) keeps the stored row and is recorded,
 * in a full statement and in the single-row tail alike. */
static void test_collector_ingest__multirow_insert_keeps_stored(void **state)
{
	struct h *h = h_new(NULL);

	h_hello_on(h, &h->ic, "run-1", false);
	h_frame(h, 1, 's');
	h_commit(h);
	assert_int_equal(sqlite3_exec(store__db(h->st),
				      "INSERT INTO events (run, seq, violation, flags, chain, event)"
				      " VALUES (1, 10, 0, 0, x'00', x'01'), (1, 38, 0, 0, x'00', x'01')",
				      NULL, NULL, NULL), SQLITE_OK);
	for (uint64_t s = 2; s <= 40; s++)
		assert_int_equal(h_frame(h, s, s % 7 ? 'x' : 'v'), FEED_MORE);
	h_commit(h);
	assert_int_equal(h_last_ack(&h->ic), 40);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events"), 40);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE event = x'01'"), 2);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM findings WHERE kind = 'duplicate_mismatch'"), 2);
	assert_int_equal(h_sql(h, "SELECT sum(first_seq) FROM findings"), 10 + 38);
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE violation = 1"), 5);
	/* received_ns is the collector's clock, set on every stored row */
	assert_int_equal(h_sql(h, "SELECT count(*) FROM events WHERE received_ns > 1600000000000000000"),
			 38);
	h_free(h);
}

/* A version 1 database (no received_ns) is upgraded in place by the writer. */
static void test_collector_ingest__schema_v1_upgraded(void **state)
{
	char path[] = "/tmp/bw-v1-XXXXXX", db[64], err[256];
	struct store *st;
	sqlite3 *raw;
	sqlite3_stmt *q;

	assert_non_null(mkdtemp(path));
	snprintf(db, sizeof(db), "%s/v1.db", path);
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw,
		"CREATE TABLE runs (id INTEGER PRIMARY KEY, agent TEXT NOT NULL, host TEXT NOT NULL,"
		" run_id TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
		" last_seq INTEGER NOT NULL, last_chain BLOB NOT NULL, has_run_start INTEGER NOT NULL,"
		" has_run_end INTEGER NOT NULL, run_end_seq INTEGER, kernel_drops INTEGER NOT NULL,"
		" chain_ok INTEGER NOT NULL, complete INTEGER NOT NULL, UNIQUE (agent, run_id));"
		"CREATE TABLE events (run INTEGER NOT NULL, seq INTEGER NOT NULL, time_ns INTEGER,"
		" kind TEXT, violation INTEGER NOT NULL, rule TEXT, action TEXT, pid INTEGER, exe TEXT,"
		" path TEXT, address TEXT, port INTEGER, flags INTEGER NOT NULL, chain BLOB NOT NULL,"
		" event BLOB NOT NULL);"
		"CREATE VIEW events_v AS SELECT e.seq FROM events e;"
		"INSERT INTO events (run, seq, violation, flags, chain, event) VALUES (1, 1, 0, 0, x'', x'');"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	/* a reader takes it as it is */
	assert_int_equal(store__open(db, STORE_READ, &st, err, sizeof(err)), 0);
	store__close(st);
	assert_int_equal(store__open(db, STORE_WRITE, &st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_prepare_v2(store__db(st),
		"SELECT (SELECT user_version FROM pragma_user_version) * 10 + count(received_ns)"
		" FROM events_v", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	/* version 3 (received_ns in 2, the CI columns in 3), old row's received_ns NULL */
	assert_int_equal(sqlite3_column_int(q, 0), 30);
	sqlite3_finalize(q);
	store__close(st);
	snprintf(err, sizeof(err), "rm -rf %s", path);
	assert_int_equal(system(err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_ingest__verify_matches_agent_chain),
		cmocka_unit_test(test_collector_ingest__chain_bound_to_run),
		cmocka_unit_test(test_collector_ingest__in_order_complete),
		cmocka_unit_test(test_collector_ingest__resume_after_reconnect),
		cmocka_unit_test(test_collector_ingest__backwards_refused),
		cmocka_unit_test(test_collector_ingest__skip_backwards_refused),
		cmocka_unit_test(test_collector_ingest__gap_recorded_and_continues),
		cmocka_unit_test(test_collector_ingest__chain_break_stored_flagged),
		cmocka_unit_test(test_collector_ingest__skip),
		cmocka_unit_test(test_collector_ingest__keyed_chain),
		cmocka_unit_test(test_collector_ingest__keyed_chain_wrong_key),
		cmocka_unit_test(test_collector_ingest__keyed_mismatch_is_finding),
		cmocka_unit_test(test_collector_ingest__completeness),
		cmocka_unit_test(test_collector_ingest__bad_events),
		cmocka_unit_test(test_collector_ingest__framing_refusals),
		cmocka_unit_test(test_collector_ingest__tls_identity_wins),
		cmocka_unit_test(test_collector_ingest__storage_failure_resets),
		cmocka_unit_test(test_collector_ingest__batch_full_stalls),
		cmocka_unit_test(test_collector_ingest__multirow_insert_keeps_stored),
		cmocka_unit_test(test_collector_ingest__schema_v1_upgraded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
