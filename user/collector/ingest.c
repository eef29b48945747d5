// SPDX-License-Identifier: GPL-2.0
/* Protocol state machine: see ingest.h and docs/collector.md. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "base/clock.h"
#include "base/grow.h"
#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "collector/ingest.h"
#include "transport/chain.h"
#include "transport/frame.h"

#define SEQ_MAX ((uint64_t)INT64_MAX) /* SQLite integers are signed */
#define SKIP_REASON_MAX 200

/* One identity's memory account (ingest.h, ingest__budget): alive while a connection
 * past its Hello or a run in memory refers to it. */
struct ingest_agent {
	char id[BW_ID_MAX + 1];
	size_t held;     /* everything charged: buffers, state, pending */
	size_t pending;  /* of which frames in batches not yet committed */
	int64_t win_ns;  /* monotonic start of the minute new_runs counts in */
	unsigned new_runs;
	unsigned refs;
	struct ingest_agent *next, **pprev; /* ig->agents */
};

/* A run in memory: while a connection carries it or a batch holds its ops. Runs that are
 * neither are dropped, and the next Hello reads the durable state from the store. */
struct ingest_run {
	struct run_rec rec;
	struct ingest_run *next, **pprev; /* ig->runs; pprev NULL when unlisted */
	unsigned refs;
	struct ingest_agent *agent;
	size_t held[2];        /* bytes of its frames in the batch of gen g, at [g & 1] */
	struct ingest_conn *owner;
	uint64_t pending_gen;  /* newest batch with seq/chain ops for this run */
	uint64_t dirty_gen;    /* batch the run is listed in (batch->runs) */
	uint64_t acked;        /* last Ack sent to the owner */
	struct {
		const char *kind;
		uint64_t gen;  /* batch of idx */
		size_t idx;    /* the run's last finding of this kind in that batch */
	} co[2];               /* the kinds that coalesce: chain_break, bad_event */
};

struct ingest {
	struct ingest_cfg cfg;
	struct store *reader;
	struct ingest_run *runs;
	struct ingest_agent *agents;
	struct batch *cur, *spare;
	uint64_t fill_gen, committed_gen;
	int64_t next_run_id;
	int64_t now;           /* realtime ns, read once per feed */
	bool seal_asap;        /* a Hello waits for the filling batch */
	bool others;           /* ingest__take_others() */
	struct slab scratch;   /* one frame's unpacked messages */
};

static struct batch *ingest__batch_new(uint64_t gen)
{
	struct batch *b = malloc(sizeof(*b));

	if (!b)
		return NULL;
	batch__init(b);
	b->gen = gen;
	return b;
}

int ingest__new(const struct ingest_cfg *cfg, struct store *reader, struct ingest **out)
{
	struct ingest *ig = calloc(1, sizeof(*ig));
	int err;

	*out = NULL;
	if (!ig)
		return -ENOMEM;
	ig->cfg = *cfg;
	if (!ig->cfg.max_frame)
		ig->cfg.max_frame = BW_FRAME_MAX;
	if (!ig->cfg.batch_frames)
		ig->cfg.batch_frames = 16384;
	if (!ig->cfg.batch_bytes)
		ig->cfg.batch_bytes = 64u << 20;
	ig->reader = reader;
	ig->fill_gen = 1;
	slab__init(&ig->scratch, 16 * 1024);
	ig->cur = ingest__batch_new(ig->fill_gen);
	if (!ig->cur) {
		free(ig);
		return -ENOMEM;
	}
	err = store__max_run_id(reader, &ig->next_run_id);
	if (err) {
		ingest__free(ig);
		return err;
	}
	*out = ig;
	return 0;
}

void ingest__free(struct ingest *ig)
{
	struct ingest_run *r, *n;

	if (!ig)
		return;
	/* Connections are closed first (ingest__conn_close); what is left is held only by
	 * batches that will never be applied. */
	for (r = ig->runs; r; r = n) {
		n = r->next;
		free(r);
	}
	for (struct ingest_agent *a = ig->agents, *an; a; a = an) {
		an = a->next;
		free(a);
	}
	if (ig->cur)
		batch__free(ig->cur);
	free(ig->cur);
	if (ig->spare)
		batch__free(ig->spare);
	free(ig->spare);
	slab__free(&ig->scratch);
	free(ig);
}

/* ---- runs --------------------------------------------------------------- */

static void ingest__unlist(struct ingest_run *r)
{
	if (!r->pprev)
		return;
	*r->pprev = r->next;
	if (r->next)
		r->next->pprev = r->pprev;
	r->next = NULL;
	r->pprev = NULL;
}

/* ---- per-identity memory ------------------------------------------------ */

#define RUNS_WINDOW_NS (60ll * 1000000000ll)

/* An account nobody refers to is kept while its minute of new runs lasts: otherwise
 * an agent would reset its count by closing all its connections. */
static bool ingest__agent_idle(const struct ingest_agent *a, int64_t now)
{
	return !a->refs && (!a->new_runs || now - a->win_ns >= RUNS_WINDOW_NS);
}

static void ingest__agent_unlist(struct ingest_agent *a)
{
	*a->pprev = a->next;
	if (a->next)
		a->next->pprev = a->pprev;
	free(a);
}

static struct ingest_agent *ingest__agent_get(struct ingest *ig, const char *id)
{
	int64_t now = clock__mono_ns();
	struct ingest_agent *a, *n;

	/* Hellos are rare next to frames: sweep the accounts whose minute is over. */
	for (a = ig->agents; a; a = n) {
		n = a->next;
		if (ingest__agent_idle(a, now) && strcmp(a->id, id))
			ingest__agent_unlist(a);
	}
	for (a = ig->agents; a; a = a->next)
		if (!strcmp(a->id, id))
			break;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return NULL;
		snprintf(a->id, sizeof(a->id), "%s", id);
		a->next = ig->agents;
		if (a->next)
			a->next->pprev = &a->next;
		a->pprev = &ig->agents;
		ig->agents = a;
	}
	a->refs++;
	return a;
}

static void ingest__agent_put(struct ingest_agent *a)
{
	if (!a || --a->refs)
		return;
	if (ingest__agent_idle(a, clock__mono_ns()))
		ingest__agent_unlist(a);
}

/* A new run of a's (one the store does not have): within --max-agent-runs a minute? */
static bool ingest__agent_new_run(const struct ingest *ig, struct ingest_agent *a)
{
	int64_t now = clock__mono_ns();

	if (!ig->cfg.max_agent_runs)
		return true;
	if (!a->new_runs || now - a->win_ns >= RUNS_WINDOW_NS) {
		a->win_ns = now;
		a->new_runs = 0;
	}
	if (a->new_runs >= ig->cfg.max_agent_runs)
		return false;
	a->new_runs++;
	return true;
}

void ingest__charge(struct ingest_conn *ic, size_t add, size_t sub)
{
	struct ingest_agent *a = ic->agent;

	if (!a)
		return;
	a->held += add;
	a->held -= sub < a->held ? sub : a->held;
}

size_t ingest__held(const struct ingest_conn *ic)
{
	return ic->agent ? ic->agent->held : 0;
}

enum ingest_budget ingest__budget(const struct ingest *ig, const struct ingest_conn *ic,
				  size_t more)
{
	const struct ingest_agent *a = ic->agent;

	if (!a || !ig->cfg.max_agent_bytes || a->held + more <= ig->cfg.max_agent_bytes)
		return BUDGET_OK;
	return a->pending ? BUDGET_WAIT : BUDGET_REFUSE;
}

/* bytes of r's frames were queued in the filling batch */
static void ingest__hold(struct ingest *ig, struct ingest_run *r, size_t bytes)
{
	r->held[ig->fill_gen & 1] += bytes;
	if (r->agent) {
		r->agent->held += bytes;
		r->agent->pending += bytes;
	}
}

/* b was applied or dropped: what its frames held is free. */
static void ingest__release(struct batch *b)
{
	for (size_t i = 0; i < b->n_runs; i++) {
		struct ingest_run *r = b->runs[i].owner;
		size_t n = r->held[b->gen & 1];

		r->held[b->gen & 1] = 0;
		if (!r->agent)
			continue;
		r->agent->held -= n < r->agent->held ? n : r->agent->held;
		r->agent->pending -= n < r->agent->pending ? n : r->agent->pending;
	}
}

static void ingest__run_put(struct ingest_run *r)
{
	if (--r->refs)
		return;
	ingest__unlist(r);
	if (r->agent) {
		r->agent->held -= sizeof(*r) < r->agent->held ? sizeof(*r) : r->agent->held;
		ingest__agent_put(r->agent);
	}
	free(r);
}

static struct ingest_run *ingest__run_find(struct ingest *ig, const char *agent,
					   const char *run_id)
{
	struct ingest_run *r;

	/* A list: Hellos are rare next to frames, and the set is bounded by the
	 * connections plus the runs of at most two batches. */
	for (r = ig->runs; r; r = r->next)
		if (!strcmp(r->rec.run_id, run_id) && !strcmp(r->rec.agent, agent))
			return r;
	return NULL;
}

/* Lists r in the filling batch, so its state is written with it at seal time. Returns
 * false when out of memory. */
static bool ingest__dirty(struct ingest *ig, struct ingest_run *r)
{
	struct batch_run *br;

	if (r->dirty_gen == ig->fill_gen)
		return true;
	br = batch__push_run(ig->cur);
	if (!br)
		return false;
	br->owner = r;
	br->base_seq = r->rec.last_seq;
	r->refs++;
	r->dirty_gen = ig->fill_gen;
	if (!ig->cur->first_ns)
		ig->cur->first_ns = clock__mono_ns();
	return true;
}

/* ---- output ------------------------------------------------------------- */

static bool ingest__send(struct ingest_conn *ic, const Buildwarden__V1__CollectorMessage *m)
{
	uint8_t hdr[FRAME_VARINT_MAX];
	size_t len = buildwarden__v1__collector_message__get_packed_size(m);
	size_t hl = frame__encode_len(len, hdr);
	size_t need = hl + len;

	if (ic->out_off && ic->out_off == ic->out_len)
		ic->out_off = ic->out_len = 0;
	if (ic->out_len - ic->out_off + need > INGEST_OUT_MAX)
		return false;
	if (ic->out_len + need > ic->out_cap) {
		if (ic->out_off) {
			memmove(ic->out, ic->out + ic->out_off, ic->out_len - ic->out_off);
			ic->out_len -= ic->out_off;
			ic->out_off = 0;
		}
		if (grow__reserve((void **)&ic->out, &ic->out_cap, ic->out_len + need, 1, 256, 0))
			return false;
	}
	memcpy(ic->out + ic->out_len, hdr, hl);
	buildwarden__v1__collector_message__pack(m, ic->out + ic->out_len + hl);
	ic->out_len += need;
	return true;
}

void ingest__out_consume(struct ingest_conn *ic, size_t n)
{
	ic->out_off += n;
	if (ic->out_off >= ic->out_len)
		ic->out_off = ic->out_len = 0;
}

static void ingest__vrefuse(struct ingest_conn *ic, const char *fmt, va_list ap)
{
	Buildwarden__V1__CollectorMessage m = BUILDWARDEN__V1__COLLECTOR_MESSAGE__INIT;
	Buildwarden__V1__Refusal rf = BUILDWARDEN__V1__REFUSAL__INIT;

	if (ic->state == IC_DEAD)
		return;
	vsnprintf(ic->reason, sizeof(ic->reason), fmt, ap);
	ic->state = IC_DEAD;
	rf.reason = ic->reason;
	m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL;
	m.refusal = &rf;
	/* Queued even past the output bound: it is the last thing this peer gets. */
	ic->out_off = ic->out_len = ic->out_len > INGEST_OUT_MAX / 2 ? 0 : ic->out_len;
	ingest__send(ic, &m);
}

void ingest__refuse(struct ingest_conn *ic, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ingest__vrefuse(ic, fmt, ap);
	va_end(ap);
}

static void ingest__welcome(struct ingest *ig, struct ingest_conn *ic)
{
	Buildwarden__V1__CollectorMessage m = BUILDWARDEN__V1__COLLECTOR_MESSAGE__INIT;
	Buildwarden__V1__Welcome w = BUILDWARDEN__V1__WELCOME__INIT;
	struct ingest_run *r = ic->run;

	w.last_seq = r->rec.last_seq;
	w.last_chain.data = r->rec.last_chain;
	w.last_chain.len = BW_CHAIN_LEN;
	w.max_frame = ig->cfg.max_frame;
	m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME;
	m.welcome = &w;
	r->acked = r->rec.last_seq;
	ic->state = IC_STREAM;
	if (!ingest__send(ic, &m))
		ingest__refuse(ic, "out of memory");
}

static void ingest__ack(struct ingest_conn *ic, uint64_t seq)
{
	Buildwarden__V1__CollectorMessage m = BUILDWARDEN__V1__COLLECTOR_MESSAGE__INIT;
	Buildwarden__V1__Ack a = BUILDWARDEN__V1__ACK__INIT;

	a.seq = seq;
	m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK;
	m.ack = &a;
	if (!ingest__send(ic, &m))
		ingest__refuse(ic, "peer does not read: more than %u bytes of Acks queued",
			       INGEST_OUT_MAX);
}

/* ---- connections -------------------------------------------------------- */

void ingest__conn_init(struct ingest_conn *ic, const char *identity)
{
	memset(ic, 0, sizeof(*ic));
	ic->state = IC_HELLO;
	if (identity)
		snprintf(ic->identity, sizeof(ic->identity), "%s", identity);
}

void ingest__conn_bind_hosts(struct ingest_conn *ic, const char *dns, size_t len)
{
	ic->hosts_bound = true;
	if (len > sizeof(ic->hosts))
		len = 0;
	memcpy(ic->hosts, dns, len);
	ic->hosts_len = len;
}

/* Is host one the connection's certificate binds? DNS names compare without case. */
static bool ingest__host_allowed(const struct ingest_conn *ic, const char *host)
{
	if (!ic->hosts_bound)
		return true;
	if (!ic->hosts_len)
		return !strcasecmp(host, ic->identity);
	for (size_t off = 0; off < ic->hosts_len;) {
		const char *name = ic->hosts + off;
		size_t n = strnlen(name, ic->hosts_len - off);

		if (!strcasecmp(host, name))
			return true;
		off += n + 1;
	}
	return false;
}

/* Connections of this identity that carry a run (one run per connection). */
static unsigned ingest__agent_conns(const struct ingest *ig, const char *agent)
{
	unsigned n = 0;

	for (const struct ingest_run *r = ig->runs; r; r = r->next)
		if (r->owner && !strcmp(r->rec.agent, agent))
			n++;
	return n;
}

void ingest__conn_close(struct ingest *ig, struct ingest_conn *ic)
{
	struct ingest_run *r = ic->run;

	if (r) {
		if (r->owner == ic)
			r->owner = NULL;
		ic->run = NULL;
		ingest__run_put(r);
	}
	if (ic->ck_init)
		verify__free(&ic->ck);
	ic->ck_init = false;
	ingest__agent_put(ic->agent);
	ic->agent = NULL;
	free(ic->out);
	ic->out = NULL;
	ic->out_len = ic->out_off = ic->out_cap = 0;
}

const char *ingest__run_name(const struct ingest_conn *ic)
{
	return ic->run ? ic->run->rec.run_id : NULL;
}

bool ingest__take_others(struct ingest *ig)
{
	bool o = ig->others;

	ig->others = false;
	return o;
}

/* ---- checks ------------------------------------------------------------- */

/* Agent and run ids become file names (DIR/<agent>.key) and log text: letters, digits
 * and ._:@- only, not starting with a dot, 1..BW_ID_MAX bytes. */
static bool ingest__valid_id(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '.' || *s == '-')
		return false;
	for (; *s; s++, n++) {
		char c = *s;

		if (n >= BW_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* A host name as the agent saw it: printable ASCII, no spaces or quotes. */
static bool ingest__valid_host(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++)
		if (n >= BW_HOST_MAX || *s <= ' ' || *s > '~' || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* ---- findings ----------------------------------------------------------- */

/* Queues a finding; with coalesce, one that continues the run's previous finding of the
 * same kind in this batch extends it instead, so a stream of broken frames (a wrong key)
 * costs one row per batch, not one per frame. */
static bool ingest__finding(struct ingest *ig, struct ingest_run *r, const char *kind,
			    uint64_t first, uint64_t last, const char *detail, bool coalesce)
{
	struct batch *b = ig->cur;
	struct bop *op;
	int slot = -1;

	if (coalesce) {
		for (slot = 0; slot < 2; slot++)
			if (r->co[slot].kind == kind || !r->co[slot].kind)
				break;
		if (slot == 2)
			slot = 0;
		if (r->co[slot].kind == kind && r->co[slot].gen == ig->fill_gen &&
		    r->co[slot].idx < b->n_ops) {
			op = &b->ops[r->co[slot].idx];
			if (op->kind == BOP_FINDING && op->fi.kind == kind &&
			    op->fi.last_seq + 1 == first) {
				op->fi.last_seq = last;
				return true;
			}
		}
	}
	if (!ingest__dirty(ig, r))
		return false;
	op = batch__push(b, BOP_FINDING);
	if (!op)
		return false;
	op->fi.run = r->rec.id;
	op->fi.time_ns = ig->now;
	op->fi.kind = kind;
	op->fi.first_seq = first;
	op->fi.last_seq = last;
	op->fi.detail = batch__strdup(b, detail);
	if (detail && !op->fi.detail)
		return false;
	if (slot >= 0) {
		r->co[slot].kind = kind;
		r->co[slot].gen = ig->fill_gen;
		r->co[slot].idx = b->n_ops - 1;
	}
	r->rec.chain_ok = false;
	return true;
}

/* ---- messages ----------------------------------------------------------- */

/* DIR/<agent>.key through the agent's own reader, so both read a key file the same way.
 * 0 when there is none: that agent's chain is unkeyed. agent is a checked id already. */
static int ingest__read_key(const char *dir, const char *agent, uint8_t key[CHAIN_KEY_MAX])
{
	char path[PATH_MAX];
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.key", dir, agent) >= sizeof(path))
		return -ENAMETOOLONG;
	rc = chain__read_key_nowait(path, key);
	return rc == -ENOENT ? 0 : rc;
}

static void ingest__hello(struct ingest *ig, struct ingest_conn *ic,
			  const Buildwarden__V1__Hello *h)
{
	uint8_t key[CHAIN_KEY_MAX];
	const char *agent;
	struct ingest_run *r;
	int keylen = 0, rc;

	if (h->schema_version != BW_SCHEMA_VERSION) {
		ingest__refuse(ic, "schema_version %u: this collector speaks %d", h->schema_version,
			       BW_SCHEMA_VERSION);
		return;
	}
	if (ig->cfg.insecure) {
		agent = h->agent_id;
		if (!ingest__valid_id(agent)) {
			ingest__refuse(ic, "Hello.agent_id must be 1-%d characters of [A-Za-z0-9._:@-]",
				       BW_ID_MAX);
			return;
		}
		snprintf(ic->identity, sizeof(ic->identity), "%s", agent);
	} else {
		agent = ic->identity;
		if (!ingest__valid_id(agent)) {
			ingest__refuse(ic, "client certificate CN is not a valid agent id");
			return;
		}
	}
	if (!ingest__valid_id(h->run_id)) {
		ingest__refuse(ic, "Hello.run_id must be 1-%d characters of [A-Za-z0-9._:@-]",
			       BW_ID_MAX);
		return;
	}
	if (!ingest__valid_host(h->host)) {
		ingest__refuse(ic, "Hello.host must be 1-%d printable characters", BW_HOST_MAX);
		return;
	}
	if (ig->cfg.agent_keys) {
		keylen = ingest__read_key(ig->cfg.agent_keys, agent, key);
		if (keylen < 0) {
			ingest__refuse(ic, "cannot read the chain key of agent '%s': %s", agent,
				       strerror(-keylen));
			return;
		}
	}
	/* With --require-keys an agent without a key file is not enrolled: removing its
	 * key revokes it, instead of silently downgrading it to an unkeyed chain. */
	if (ig->cfg.require_keys && !keylen) {
		ingest__refuse(ic, "no chain key for agent '%s' (--require-keys)", agent);
		return;
	}
	if (ig->cfg.max_agent_conns && ingest__agent_conns(ig, agent) >= ig->cfg.max_agent_conns &&
	    !(ingest__run_find(ig, agent, h->run_id) &&
	      ingest__run_find(ig, agent, h->run_id)->owner)) {
		OPENSSL_cleanse(key, sizeof(key));
		ingest__refuse(ic, "agent '%s' already has %u connections (--max-agent-conns)",
			       agent, ig->cfg.max_agent_conns);
		return;
	}
	rc = verify__init(&ic->ck, keylen ? key : NULL, (size_t)keylen);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc) {
		ingest__refuse(ic, "collector error: cannot set up chain verification");
		return;
	}
	ic->ck_init = true;
	if (!ic->agent) {
		ic->agent = ingest__agent_get(ig, agent);
		if (!ic->agent) {
			ingest__refuse(ic, "out of memory");
			return;
		}
	}

	r = ingest__run_find(ig, agent, h->run_id);
	if (r) {
		/* One connection per run: the newer one wins, the older is most likely a
		 * half-open TCP connection the agent has given up on. */
		if (r->owner && r->owner != ic) {
			ingest__refuse(r->owner, "superseded by a newer connection for run %s",
				       h->run_id);
			r->owner->run = NULL;
			r->owner = NULL;
			r->refs--; /* the old connection's reference; the list still holds it */
			ig->others = true;
		}
		r->refs++;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r) {
			ingest__refuse(ic, "out of memory");
			return;
		}
		rc = store__lookup_run(ig->reader, agent, h->run_id, &r->rec);
		if (rc < 0) {
			free(r);
			ingest__refuse(ic, "collector error: cannot read the store");
			return;
		}
		if (!rc && !ingest__agent_new_run(ig, ic->agent)) {
			free(r);
			ingest__refuse(ic, "agent '%s' started %u new runs within a minute (--max-agent-runs)",
				       agent, ig->cfg.max_agent_runs);
			return;
		}
		if (!rc) {
			r->rec.id = ++ig->next_run_id;
			snprintf(r->rec.agent, sizeof(r->rec.agent), "%s", agent);
			snprintf(r->rec.run_id, sizeof(r->rec.run_id), "%s", h->run_id);
			/* the host a query shows and filters on is one the certificate
			 * binds: a claim it does not back is stored under the CN */
			snprintf(r->rec.host, sizeof(r->rec.host), "%s",
				 ingest__host_allowed(ic, h->host) ? h->host : agent);
			r->rec.first_seen = ig->now;
			r->rec.chain_ok = true;
			/* seq 1 chains from a value bound to this run (and, keyed, to this
			 * agent's key): frames of another run replayed here break at once */
			if (verify__start(&ic->ck, h->run_id, r->rec.last_chain)) {
				free(r);
				ingest__refuse(ic, "collector error: hashing failed");
				return;
			}
		}
		r->refs = 1;
		r->agent = ic->agent;
		r->agent->refs++;
		r->agent->held += sizeof(*r);
		r->next = ig->runs;
		if (r->next)
			r->next->pprev = &r->next;
		r->pprev = &ig->runs;
		ig->runs = r;
	}
	r->owner = ic;
	ic->run = r;
	r->rec.last_seen = ig->now;
	if (!ingest__dirty(ig, r)) {
		ingest__refuse(ic, "out of memory");
		return;
	}
	if (!ingest__host_allowed(ic, h->host)) {
		char d[BW_HOST_MAX + BW_ID_MAX + 160];

		snprintf(d, sizeof(d),
			 "Hello.host '%s' is not a name of the agent's certificate (CN %s): the run is stored under host '%s'",
			 h->host, agent, r->rec.host);
		if (!ingest__finding(ig, r, "host_mismatch", 0, 0, d, false)) {
			ingest__refuse(ic, "out of memory");
			return;
		}
	}
		if (!keylen != !h->keyed_chain) {
		const char *d = keylen ? "a key is configured for this agent, but Hello says the chain is not keyed: frames are verified with the key"
				       : "Hello says the chain is keyed, but no key is configured for this agent: frames cannot be verified";

		if (!ingest__finding(ig, r, "key_mismatch", 0, 0, d, false)) {
			ingest__refuse(ic, "out of memory");
			return;
		}
		ic->unverifiable = !keylen;
	}
	/* Welcome reports only what is durable: wait for the batch with this run's frames
	 * (from a previous connection) to commit. */
	if (r->pending_gen > ig->committed_gen) {
		ic->state = IC_WELCOME_WAIT;
		ig->seal_asap = true;
		return;
	}
	ingest__welcome(ig, ic);
}

static const char *ingest__body_kind(const Buildwarden__V1__Event *ev)
{
	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		return "exec";
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		return "file";
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		return "connect";
	case BUILDWARDEN__V1__EVENT__BODY_RUN_START:
		return "run_start";
	case BUILDWARDEN__V1__EVENT__BODY_RUN_END:
		return "run_end";
	case BUILDWARDEN__V1__EVENT__BODY_STATS:
		return "stats";
	case BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS:
		return "process_access";
	case BUILDWARDEN__V1__EVENT__BODY_ENROLL:
		return "enroll";
	default:
		return "none";
	}
}

static const char *ingest__nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* Fills the indexed columns from an unpacked event; strings are copied into the batch.
 * Returns false when out of memory. */
static bool ingest__columns(struct batch *b, struct bop_event *e, const Buildwarden__V1__Event *ev)
{
	const char *rule = NULL, *exe = NULL, *path = NULL, *addr = NULL;

	e->kind = ingest__body_kind(ev);
	e->time_ns = ev->time_ns;
	if (ev->verdict) {
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
			&buildwarden__v1__action__descriptor, (int)ev->verdict->action);

		e->violation = ev->verdict->violation;
		rule = ingest__nonempty(ev->verdict->rule);
		e->action = v && ev->verdict->action ? v->name : NULL;
	}
	/* The detail columns are for the rows a security team filters on: violations.
	 * Every other row (~99% of a build's events) keeps them in its event bytes only;
	 * copying and storing them cost ~15% of the insert path (docs/collector.md). */
	if (!e->violation) {
		e->rule = batch__strdup(b, rule);
		return !rule || e->rule;
	}
	if (ev->process) {
		e->pid = ev->process->pid;
		exe = ingest__nonempty(ev->process->exe);
	}
	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		path = ingest__nonempty(ev->exec->filename);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		path = ingest__nonempty(ev->file->path);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		addr = ingest__nonempty(ev->connect->address);
		e->port = ev->connect->port;
		break;
	default:
		break;
	}
	e->rule = batch__strdup(b, rule);
	e->exe = batch__strdup(b, exe);
	e->path = batch__strdup(b, path);
	e->address = batch__strdup(b, addr);
	return (!rule || e->rule) && (!exe || e->exe) && (!path || e->path) &&
	       (!addr || e->address);
}

/* Redacts the argv strings of ev in place (pointers into mem). -1 out of memory, 1 when
 * something was redacted, else 0. */
static int ingest__redact_argv(const struct redact *rd, char **argv, size_t n, struct slab *mem)
{
	bool nomem = false;
	int changed = 0;

	for (size_t i = 0; i < n; i++) {
		const char *r = argv[i] ? redact__string(rd, argv[i], mem, &nomem) : NULL;

		if (nomem)
			return -1;
		if (r) {
			argv[i] = (char *)r;
			changed = 1;
		}
	}
	return changed;
}

/* The bytes of ev to store when redaction changes them: packed into b's memory, in
 * *out. 0 nothing to redact, 1 redacted, -1 out of memory. Deterministic, so an exact
 * replay of a frame redacts to the stored bytes and the duplicate check still holds. */
static int ingest__redact(struct ingest *ig, struct batch *b, Buildwarden__V1__Event *ev,
			  const uint8_t **out, size_t *outlen)
{
	const struct redact *rd = ig->cfg.redact;
	int c1 = 0, c2 = 0;
	uint8_t *buf;

	if (!redact__active(rd))
		return 0;
	if (ev->process)
		c1 = ingest__redact_argv(rd, ev->process->argv, ev->process->n_argv, &ig->scratch);
	if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START && ev->run_start)
		c2 = ingest__redact_argv(rd, ev->run_start->argv, ev->run_start->n_argv,
					 &ig->scratch);
	if (c1 < 0 || c2 < 0)
		return -1;
	if (!c1 && !c2)
		return 0;
	*outlen = buildwarden__v1__event__get_packed_size(ev);
	buf = slab__alloc(&b->mem, *outlen);
	if (!buf)
		return -1;
	buildwarden__v1__event__pack(ev, buf);
	*out = buf;
	return 1;
}

/* Copies the frame's chain and, unless redacted (red not NULL), its event bytes. */
static bool ingest__copy_frame(struct batch *b, struct bop_event *e,
			       const Buildwarden__V1__EventFrame *f, const uint8_t *red,
			       size_t redlen)
{
	e->event = red ? red : slab__memdup(&b->mem, f->event.data, f->event.len);
	e->event_len = red ? redlen : f->event.len;
	e->chain = slab__memdup(&b->mem, f->chain.data, f->chain.len);
	e->chain_len = f->chain.len;
	b->bytes += e->event_len;
	return e->event && e->chain;
}

static void ingest__frame(struct ingest *ig, struct ingest_conn *ic,
			  const Buildwarden__V1__EventFrame *f)
{
	struct ingest_run *r = ic->run;
	const Buildwarden__V1__Event *ev;
	uint8_t chain[BW_CHAIN_LEN];
	char detail[160];
	uint64_t seq = f->seq, expected = r->rec.last_seq + 1;
	struct bop *op;
	uint32_t flags = 0;
	const uint8_t *red = NULL;
	size_t redlen = 0;

	if (!seq || seq > SEQ_MAX) {
		ingest__refuse(ic, "EventFrame seq %llu out of range", (unsigned long long)seq);
		return;
	}
	if (!ingest__dirty(ig, r))
		goto nomem;
	if (seq < expected) {
		/* A protocol violation, whatever the bytes: the agent starts each
		 * connection at Welcome.last_seq + 1 and never sends a seq twice on one
		 * connection, and r->rec.last_seq is exactly Welcome.last_seq plus what this
		 * connection sent (one connection per run). So there is no legitimate
		 * re-send left to accept. The store still compares the frame with the
		 * stored row, so the record says whether it was an identical replay (no
		 * finding: the stored record is intact), other content
		 * (duplicate_mismatch) or a seq that was never stored (seq_backwards). */
		const uint8_t *red = NULL;
		size_t redlen = 0;
		Buildwarden__V1__Event *dev = NULL;

		/* compared with the stored bytes, which were redacted the same way */
		if (redact__active(ig->cfg.redact))
			dev = buildwarden__v1__event__unpack(slab__pb(&ig->scratch), f->event.len,
							     f->event.data);
		if (dev && ingest__redact(ig, ig->cur, dev, &red, &redlen) < 0)
			goto nomem;
		op = batch__push(ig->cur, BOP_DUPCHECK);
		if (!op)
			goto nomem;
		op->ev.run = r->rec.id;
		op->ev.seq = seq;
		if (!ingest__copy_frame(ig->cur, &op->ev, f, red, redlen))
			goto nomem;
		ingest__hold(ig, r, op->ev.event_len + op->ev.chain_len + sizeof(*op));
		r->pending_gen = ig->fill_gen;
		ic->dups++;
		ingest__refuse(ic, "seq %llu goes backwards: the run is at seq %llu on this "
			       "connection (protocol violation)",
			       (unsigned long long)seq, (unsigned long long)r->rec.last_seq);
		return;
	}
	if (seq > expected) {
		snprintf(detail, sizeof(detail), "seqs %llu-%llu never arrived",
			 (unsigned long long)expected, (unsigned long long)seq - 1);
		if (!ingest__finding(ig, r, "gap", expected, seq - 1, detail, false))
			goto nomem;
		/* The chain covers the missing frames: nothing to verify this one against. */
		flags |= EVF_CHAIN_UNVERIFIED;
	}
	if (ic->unverifiable)
		flags |= EVF_CHAIN_UNVERIFIED;

	if (verify__chain(&ic->ck, r->rec.last_chain, seq, f->event.data, f->event.len, chain)) {
		ingest__refuse(ic, "collector error: hashing failed");
		return;
	}
	if (f->chain.len != BW_CHAIN_LEN ||
	    (!(flags & EVF_CHAIN_UNVERIFIED) && CRYPTO_memcmp(chain, f->chain.data, BW_CHAIN_LEN))) {
		if (f->chain.len != BW_CHAIN_LEN)
			snprintf(detail, sizeof(detail), "chain value of %zu bytes, not %d",
				 f->chain.len, BW_CHAIN_LEN);
		else
			snprintf(detail, sizeof(detail), "chain does not verify");
		if (!ingest__finding(ig, r, "chain_break", seq, seq, detail, true))
			goto nomem;
		flags |= EVF_CHAIN_BREAK;
	}

	ev = buildwarden__v1__event__unpack(slab__pb(&ig->scratch), f->event.len, f->event.data);
	if (!ev)
		snprintf(detail, sizeof(detail), "event bytes are not a buildwarden.v1.Event");
	else if (ev->seq != seq)
		snprintf(detail, sizeof(detail), "event seq %llu in frame seq %llu",
			 (unsigned long long)ev->seq, (unsigned long long)seq);
	else if (ev->run_id[0] && strcmp(ev->run_id, r->rec.run_id))
		snprintf(detail, sizeof(detail), "event of another run");
	else
		detail[0] = 0;
	if (detail[0]) {
		if (!ingest__finding(ig, r, "bad_event", seq, seq, detail, true))
			goto nomem;
		flags |= EVF_BAD_EVENT;
	}

	if (ev) {
		int rc = ingest__redact(ig, ig->cur, (Buildwarden__V1__Event *)ev, &red, &redlen);

		if (rc < 0)
			goto nomem;
		if (rc > 0)
			flags |= EVF_REDACTED;
	}
	op = batch__push(ig->cur, BOP_EVENT);
	if (!op)
		goto nomem;
	op->ev.run = r->rec.id;
	op->ev.seq = seq;
	op->ev.received_ns = ig->now;
	if (!ingest__copy_frame(ig->cur, &op->ev, f, red, redlen))
		goto nomem;
	ingest__hold(ig, r, op->ev.event_len + op->ev.chain_len + sizeof(*op));
	if (ev) {
		if (!ingest__columns(ig->cur, &op->ev, ev))
			goto nomem;
		if (!(flags & EVF_BAD_EVENT)) {
			if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START && seq == 1) {
				const Buildwarden__V1__CiContext *ci = ev->run_start->ci;

				r->rec.has_run_start = true;
				if (ci) {
					snprintf(r->rec.ci_repo, sizeof(r->rec.ci_repo), "%s",
						 ci->repository ? ci->repository : "");
					snprintf(r->rec.ci_commit, sizeof(r->rec.ci_commit), "%s",
						 ci->commit_sha ? ci->commit_sha : "");
					snprintf(r->rec.ci_job, sizeof(r->rec.ci_job), "%s",
						 ci->job ? ci->job : "");
				}
			}
			if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_END) {
				r->rec.has_run_end = true;
				r->rec.run_end_seq = seq;
				r->rec.kernel_drops = ev->run_end->drops;
			}
		}
	}
	op->ev.flags = flags;
	if (flags & EVF_BAD_EVENT)
		op->ev.violation = false; /* its columns are not to be trusted */

	/* After a break the chain continues from what the agent sent, so one forged or
	 * corrupt frame is one finding, not a broken rest of the run. */
	memcpy(r->rec.last_chain, f->chain.len == BW_CHAIN_LEN ? f->chain.data : chain,
	       BW_CHAIN_LEN);
	r->rec.last_seq = seq;
	r->rec.last_seen = ig->now;
	r->pending_gen = ig->fill_gen;
	ic->frames++;
	return;
nomem:
	ingest__refuse(ic, "collector out of memory");
}

static void ingest__skip(struct ingest *ig, struct ingest_conn *ic, const Buildwarden__V1__Skip *s)
{
	struct ingest_run *r = ic->run;
	uint64_t first = s->first_seq, last = s->last_seq, expected = r->rec.last_seq + 1;
	char detail[SKIP_REASON_MAX + 64], reason[SKIP_REASON_MAX + 1];
	size_t i, n = 0;

	if (!first || first > last || last > SEQ_MAX) {
		ingest__refuse(ic, "Skip %llu-%llu out of range", (unsigned long long)first,
			       (unsigned long long)last);
		return;
	}
	ic->skips++;
	if (!ingest__dirty(ig, r))
		goto nomem;
	if (first < expected) {
		/* The agent trims each Skip to start at its next seq: one that reaches back
		 * over seqs this run already has (stored or skipped) would re-label sent
		 * events as dropped. Recorded, and refused like a backwards EventFrame. */
		snprintf(detail, sizeof(detail),
			 "Skip %llu-%llu reaches back below the resume point %llu",
			 (unsigned long long)first, (unsigned long long)last,
			 (unsigned long long)r->rec.last_seq);
		if (!ingest__finding(ig, r, "seq_backwards", first,
				     last < expected ? last : expected - 1, detail, false))
			goto nomem;
		r->pending_gen = ig->fill_gen;
		ingest__refuse(ic, "Skip %llu-%llu goes backwards: this connection is at seq %llu "
			       "(protocol violation)", (unsigned long long)first,
			       (unsigned long long)last, (unsigned long long)r->rec.last_seq);
		return;
	}
	if (first > expected) {
		snprintf(detail, sizeof(detail), "seqs %llu-%llu never arrived",
			 (unsigned long long)expected, (unsigned long long)first - 1);
		if (!ingest__finding(ig, r, "gap", expected, first - 1, detail, false))
			goto nomem;
	}
	for (i = 0; s->reason && s->reason[i] && n < SKIP_REASON_MAX; i++)
		reason[n++] = s->reason[i] >= ' ' && s->reason[i] <= '~' ? s->reason[i] : '?';
	reason[n] = 0;
	snprintf(detail, sizeof(detail), "agent dropped seqs %llu-%llu: %s",
		 (unsigned long long)first, (unsigned long long)last, n ? reason : "no reason given");
	if (!ingest__finding(ig, r, "skip", first, last, detail, false))
		goto nomem;
	/* The chain continues from the last frame sent: last_chain stays. */
	r->rec.last_seq = last;
	r->rec.last_seen = ig->now;
	r->pending_gen = ig->fill_gen;
	return;
nomem:
	ingest__refuse(ic, "collector out of memory");
}

static void ingest__message(struct ingest *ig, struct ingest_conn *ic, const uint8_t *p,
			    size_t len)
{
	Buildwarden__V1__AgentMessage *m;

	slab__reset(&ig->scratch, 4u << 20);
	m = buildwarden__v1__agent_message__unpack(slab__pb(&ig->scratch), len, p);
	if (!m) {
		ingest__refuse(ic, "frame of %zu bytes is not an AgentMessage", len);
		return;
	}
	switch (m->msg_case) {
	case BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO:
		if (ic->state != IC_HELLO) {
			ingest__refuse(ic, "second Hello on a connection");
			return;
		}
		ingest__hello(ig, ic, m->hello);
		return;
	case BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT:
	case BUILDWARDEN__V1__AGENT_MESSAGE__MSG_SKIP:
		if (ic->state == IC_HELLO) {
			ingest__refuse(ic, "the first message must be Hello");
			return;
		}
		if (m->msg_case == BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT)
			ingest__frame(ig, ic, m->event);
		else
			ingest__skip(ig, ic, m->skip);
		return;
	default:
		ingest__refuse(ic, "AgentMessage with no message this collector knows");
		return;
	}
}

bool ingest__full(const struct ingest *ig)
{
	const struct batch *b = ig->cur;

	/* Findings count too: a flood of Skips must not grow a batch without bound. */
	return b->n_events >= ig->cfg.batch_frames || b->bytes >= ig->cfg.batch_bytes ||
	       b->n_ops >= 2 * ig->cfg.batch_frames;
}

size_t ingest__feed(struct ingest *ig, struct ingest_conn *ic, const uint8_t *buf, size_t len,
		    enum feed_status *st)
{
	size_t off = 0;

	ig->now = clock__real_ns();
	for (;;) {
		const uint8_t *payload;
		size_t plen, at = off;
		uint64_t n;
		int rc, k;

		if (ic->state == IC_DEAD) {
			*st = FEED_DEAD;
			return off;
		}
		if (off == len) {
			ic->need = 0;
			*st = FEED_MORE;
			return off;
		}
		if (ic->state == IC_WELCOME_WAIT || ingest__full(ig)) {
			*st = FEED_STALL;
			return off;
		}
		/* Over its memory budget with frames waiting for a commit: this identity
		 * waits for that commit; everyone else goes on filling the batch. */
		if (ic->state == IC_STREAM && ingest__budget(ig, ic, 0) == BUDGET_WAIT) {
			ic->throttled++;
			*st = FEED_STALL;
			return off;
		}
		rc = frame__next(buf, len, &off, ig->cfg.max_frame, &payload, &plen);
		if (rc == 1) {
			ingest__message(ig, ic, payload, plen);
			continue;
		}
		if (rc == FRAME_ETRUNC) {
			k = frame__decode_len(buf + at, len - at, &n);
			ic->need = k > 0 ? (size_t)k + (size_t)n : 0;
			*st = FEED_MORE;
			return at;
		}
		if (rc == FRAME_ETOOBIG) {
			k = frame__decode_len(buf + at, len - at, &n);
			ingest__refuse(ic, "frame of %llu bytes above the limit of %zu",
				       (unsigned long long)(k > 0 ? n : 0), ig->cfg.max_frame);
		} else {
			ingest__refuse(ic, "%s", frame__strerror(rc));
		}
		*st = FEED_DEAD;
		return at;
	}
}

/* ---- commits ------------------------------------------------------------ */

bool ingest__due(const struct ingest *ig, int64_t now_ns, int64_t interval_ns)
{
	const struct batch *b = ig->cur;

	if (batch__empty(b))
		return false;
	return ig->seal_asap || ingest__full(ig) || now_ns - b->first_ns >= interval_ns;
}

int64_t ingest__first_ns(const struct ingest *ig)
{
	return batch__empty(ig->cur) ? 0 : ig->cur->first_ns;
}

struct batch *ingest__seal(struct ingest *ig)
{
	struct batch *b = ig->cur;
	struct batch *nb;
	size_t i;

	if (batch__empty(b))
		return NULL;
	nb = ig->spare;
	if (!nb) {
		nb = ingest__batch_new(0);
		if (!nb)
			return NULL;
	}
	ig->spare = NULL;
	for (i = 0; i < b->n_runs; i++) {
		struct ingest_run *r = b->runs[i].owner;

		b->runs[i].rec = r->rec;
	}
	ig->fill_gen++;
	nb->gen = ig->fill_gen;
	ig->cur = nb;
	ig->seal_asap = false;
	return b;
}

/* The store failed: what ingest holds in memory is ahead of what is durable. Refuse
 * every connection that carries a run and forget all runs, so the next Hellos read the
 * durable state and agents re-send from there (their spool still has it: no Ack). */
static void ingest__reset_all(struct ingest *ig)
{
	struct batch *b = ig->cur;
	struct ingest_run *r, *n;
	size_t i;

	for (r = ig->runs; r; r = n) {
		n = r->next;
		if (r->owner) {
			ingest__refuse(r->owner, "collector storage error: reconnect later");
			ig->others = true;
		}
		ingest__unlist(r);
	}
	ingest__release(b);
	for (i = 0; i < b->n_runs; i++)
		ingest__run_put(b->runs[i].owner);
	batch__reset(b);
	ig->fill_gen++;
	b->gen = ig->fill_gen;
	ig->seal_asap = false;
}

void ingest__done(struct ingest *ig, struct batch *b, bool ok)
{
	struct ingest_run *r;
	size_t i;

	if (ok) {
		ig->committed_gen = b->gen;
		for (i = 0; i < b->n_runs; i++) {
			const struct run_rec *rec = &b->runs[i].rec;

			r = b->runs[i].owner;
			if (b->runs[i].stale) {
				/* another collector advanced it (PostgreSQL): nothing of it was
				 * stored; its agent re-sends from the stored state, which a new
				 * Hello reads (the run is forgotten here) */
				if (r->owner) {
					ingest__refuse(r->owner,
						       "run %s was advanced by another collector: reconnect and re-send from the stored state",
						       rec->run_id);
					ig->others = true;
				}
				ingest__unlist(r);
				continue;
			}
			if (r->owner && r->owner->state == IC_STREAM && rec->last_seq > r->acked) {
				ingest__ack(r->owner, rec->last_seq);
				r->acked = rec->last_seq;
				ig->others = true;
			}
		}
		for (r = ig->runs; r; r = r->next) {
			if (r->owner && r->owner->state == IC_WELCOME_WAIT &&
			    r->pending_gen <= ig->committed_gen) {
				ingest__welcome(ig, r->owner);
				ig->others = true;
			}
		}
	} else {
		ig->committed_gen = b->gen;
		ingest__reset_all(ig);
	}
	ingest__release(b);
	for (i = 0; i < b->n_runs; i++)
		ingest__run_put(b->runs[i].owner);
	batch__reset(b);
	if (!ig->spare) {
		ig->spare = b;
	} else {
		batch__free(b);
		free(b);
	}
}
