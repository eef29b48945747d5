// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the collector's connection state machine after TLS. Arbitrary
 * bytes go through framing, AgentMessage/Hello/EventFrame/Skip handling, chain checks,
 * Event unpacking and the SQLite store (in memory), in chunks of fuzzer-chosen sizes,
 * with commits in between, over one or two connections (reconnects, supersedes). No
 * sockets. The first input byte picks the configuration:
 *   bit 0: --max-frame 512    bit 1: batches of 3 frames (stalls)
 *   bit 2: two connections    bits 3-7: chunk size 1..32 (x 16) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.pb-c.h"
#include "collector/ingest.h"
#include "collector/store.h"
#include "transport/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_commit(struct ingest *ig, struct store *st)
{
	struct batch *b = ingest__seal(ig);
	char err[256];

	if (!b)
		return;
	/* The store must take whatever ingest decided on. */
	if (store__apply(st, b, err, sizeof(err)))
		abort();
	ingest__done(ig, b, true);
}

/* Whatever ingest queued must be well-formed CollectorMessages. */
static void fz_drain(struct ingest_conn *ic)
{
	const uint8_t *p;
	size_t off = ic->out_off, plen;
	int rc;

	while ((rc = frame__next(ic->out, ic->out_len, &off, 0, &p, &plen)) == 1) {
		Buildwarden__V1__CollectorMessage *m =
			buildwarden__v1__collector_message__unpack(NULL, plen, p);

		if (!m)
			abort();
		buildwarden__v1__collector_message__free_unpacked(m, NULL);
	}
	if (rc != 0)
		abort();
	ingest__out_consume(ic, ic->out_len - ic->out_off);
}

struct fz_conn {
	struct ingest_conn ic;
	uint8_t *buf;
	size_t len;
	bool open;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ingest_cfg cfg = { .insecure = true };
	struct fz_conn c[2] = { 0 };
	static struct store *st;
	struct ingest *ig = NULL;
	size_t chunk, off = 0;
	char err[256];
	int nconn, turn = 0;
	uint8_t flags;

	if (!size)
		return 0;
	flags = data[0];
	data++;
	size--;
	cfg.max_frame = flags & 1 ? 512 : 0;
	cfg.batch_frames = flags & 2 ? 3 : 0;
	/* with small batches, small per-identity budgets too: memory and new runs */
	cfg.max_agent_bytes = flags & 2 ? 4096 : 0;
	cfg.max_agent_runs = flags & 2 ? 2 : 0;
	nconn = flags & 4 ? 2 : 1;
	chunk = (size_t)((flags >> 3) + 1) * 16;

	/* One store for the whole run, emptied per input: creating the schema with 64 KiB
	 * pages each time cost more than the input itself. Emptied, it hands out the same
	 * run ids again, so an input replays the same way. */
	if (!st && store__open(":memory:", STORE_WRITE, &st, err, sizeof(err)))
		abort();
	if (sqlite3_exec(store__db(st), "DELETE FROM events; DELETE FROM findings; DELETE FROM runs",
			 NULL, NULL, NULL) != SQLITE_OK)
		abort();
	if (ingest__new(&cfg, st, &ig))
		abort();
	for (int i = 0; i < nconn; i++) {
		ingest__conn_init(&c[i].ic, NULL);
		c[i].buf = malloc(size + 1);
		c[i].open = true;
	}

	while (off < size) {
		struct fz_conn *k = &c[turn];
		size_t n = size - off < chunk ? size - off : chunk;
		enum feed_status fs;
		size_t used;

		turn = (turn + 1) % nconn;
		if (!k->open) {
			/* a refused connection: the agent reconnects with what is left */
			ingest__conn_close(ig, &k->ic);
			ingest__conn_init(&k->ic, NULL);
			k->len = 0;
			k->open = true;
		}
		memcpy(k->buf + k->len, data + off, n);
		k->len += n;
		off += n;
		for (;;) {
			used = ingest__feed(ig, &k->ic, k->buf, k->len, &fs);
			if (used > k->len)
				abort();
			memmove(k->buf, k->buf + used, k->len - used);
			k->len -= used;
			fz_drain(&k->ic);
			if (fs != FEED_STALL)
				break;
			if (!ingest__full(ig) && k->ic.state != IC_WELCOME_WAIT &&
			    ingest__budget(ig, &k->ic, 0) != BUDGET_WAIT)
				abort(); /* a stall needs a reason */
			fz_commit(ig, st);
			if (k->ic.state == IC_WELCOME_WAIT && !ingest__full(ig) && !used)
				break; /* waits on the other connection's batch: committed now */
		}
		if (fs == FEED_DEAD)
			k->open = false;
		/* a frame's need never exceeds what the limit allows */
		if (k->ic.need > (cfg.max_frame ? cfg.max_frame : BW_FRAME_MAX) + FRAME_VARINT_MAX)
			abort();
		if (off % (chunk * 4) < chunk)
			fz_commit(ig, st);
	}
	fz_commit(ig, st);
	for (int i = 0; i < nconn; i++) {
		fz_drain(&c[i].ic);
		ingest__conn_close(ig, &c[i].ic);
		free(c[i].buf);
	}
	fz_commit(ig, st);
	ingest__free(ig);
	return 0;
}
