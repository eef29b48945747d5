/* The collector's protocol state machine (docs/collector-protocol.md), with no sockets:
 * bytes a connection delivered (after TLS) go in, Welcome/Ack/Refusal frames and store
 * operations come out. The server, the unit tests and the fuzz target drive it the same
 * way:
 *
 *	ingest__feed(ig, ic, buf, len, &st)   consume whole frames from a connection
 *	b = ingest__seal(ig)                  take the batch that is being filled
 *	store__apply(writer, b, ...)          on any thread
 *	ingest__done(ig, b, ok)               queue Acks and deferred Welcomes
 *
 * Checks, per connection: framing (max_frame), every message is a known AgentMessage,
 * Hello first and once, schema_version BW_SCHEMA_VERSION, ids of a sane charset. Per frame: seq is
 * last + 1 (else a gap finding, or a duplicate check), the chain verifies (else a
 * chain_break finding; the event is stored flagged and the chain continues from the
 * received value), the event unpacks as an Event with the frame's seq and run. Welcome
 * and Ack only ever report what is durable. Single-threaded: one event loop owns it. */
#ifndef BUILDWARDEN_COLLECTOR_INGEST_H
#define BUILDWARDEN_COLLECTOR_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/batch.h"
#include "collector/redact.h"
#include "collector/slab.h"
#include "collector/store.h"
#include "collector/verify.h"

#define INGEST_REASON_MAX 256
/* A peer that does not read its Acks is cut off before its queue grows past this. */
#define INGEST_OUT_MAX (1u << 20)

struct ingest_cfg {
	size_t max_frame;     /* largest AgentMessage frame; 0 = BW_FRAME_MAX */
	const char *agent_keys; /* DIR with <agent>.key files, or NULL */
	bool insecure;        /* identity from Hello.agent_id instead of the certificate */
	bool require_keys;    /* refuse an agent with no DIR/<agent>.key */
	unsigned max_agent_conns; /* connections (runs) at once per identity; 0: no limit */
	unsigned max_agent_runs; /* new runs (not in the store) per identity per minute; 0: no limit */
	size_t max_agent_bytes; /* memory held for one identity (read buffers, its frames in
				 * batches not yet committed, run and connection state); 0: no
				 * limit. See ingest__budget. */
	size_t batch_frames;  /* seal after this many frames (0 = 16384) */
	size_t batch_bytes;   /* or this many event bytes (0 = 64 MiB) */
	const struct redact *redact; /* secrets hidden in argv before storing; NULL: none */
};

enum ic_state {
	IC_HELLO,        /* waiting for Hello */
	IC_WELCOME_WAIT, /* Hello seen; its run has uncommitted frames: Welcome after commit */
	IC_STREAM,       /* EventFrames and Skips */
	IC_DEAD,         /* refused: a Refusal is queued in out, close after sending it */
};

enum feed_status {
	FEED_MORE,  /* everything whole was consumed; more bytes are needed */
	FEED_STALL, /* whole frames are left: the batch is full or Welcome is pending */
	FEED_DEAD,  /* refused */
};

struct ingest_run;
struct ingest_agent;

/* Bytes of a certificate's DNS subjectAltNames kept per connection (the names an
 * agent may give as Hello.host). */
#define INGEST_HOSTS_MAX 1024

struct ingest_conn {
	enum ic_state state;
	char identity[BW_ID_MAX + 1]; /* from the client certificate; "" with --insecure */
	/* The host names the certificate binds (NUL-separated DNS SANs; with none, the
	 * CN). hosts_bound false (--insecure): Hello.host is taken as given. */
	bool hosts_bound;
	char hosts[INGEST_HOSTS_MAX];
	size_t hosts_len;
	char reason[INGEST_REASON_MAX];
	struct ingest_run *run;
	struct ingest_agent *agent; /* from a valid Hello on: the identity's memory account */
	struct verify ck;
	bool ck_init;
	bool unverifiable;  /* keyed chain claimed, no key configured */
	uint8_t *out;       /* frames to send, from out_off on */
	size_t out_len, out_off, out_cap;
	size_t need;        /* size of the next frame once its length is known */
	uint64_t frames, dups, skips;
	uint64_t throttled; /* feeds stopped because the identity was over its budget */
};

struct ingest;

/* reader: where Hello looks up runs that are not in memory (may be the writer's handle
 * when everything runs on one thread). */
int ingest__new(const struct ingest_cfg *cfg, struct store *reader, struct ingest **out);
void ingest__free(struct ingest *ig);

/* identity: the TLS client certificate's CN, or NULL with --insecure. */
void ingest__conn_init(struct ingest_conn *ic, const char *identity);
/* With TLS: the certificate's DNS subjectAltNames (NUL-separated, len bytes, 0 for
 * none) bound to the connection; Hello.host must be one of them (or, with none, the
 * CN), else the run is stored under the CN with a host_mismatch finding. */
void ingest__conn_bind_hosts(struct ingest_conn *ic, const char *dns, size_t len);
/* Detaches the connection from its run; call before freeing it. */
void ingest__conn_close(struct ingest *ig, struct ingest_conn *ic);

/* Consumes whole frames from buf[0..len); returns the bytes consumed. */
size_t ingest__feed(struct ingest *ig, struct ingest_conn *ic, const uint8_t *buf, size_t len,
		    enum feed_status *st);

/* Refuses the connection from outside (handshake timeout): queues a Refusal. */
void ingest__refuse(struct ingest_conn *ic, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The batch being filled can take no more frames. */
bool ingest__full(const struct ingest *ig);
/* Worth committing now: full, a Hello waits on it, or its first op is older than
 * interval_ns (monotonic now_ns). */
bool ingest__due(const struct ingest *ig, int64_t now_ns, int64_t interval_ns);
/* Monotonic ns of the filling batch's first op, 0 when it is empty: the loop sleeps no
 * longer than until that plus the commit interval. */
int64_t ingest__first_ns(const struct ingest *ig);
/* Takes the batch being filled (NULL if it is empty) and starts a new one. */
struct batch *ingest__seal(struct ingest *ig);
/* The store applied b (ok) or failed. On failure every connection with a run is refused
 * and in-memory state is dropped, so agents reconnect and resume from what is durable. */
void ingest__done(struct ingest *ig, struct batch *b, bool ok);
/* Set when another connection than the one fed was refused (superseded, storage error)
 * or got output (Acks, Welcomes); the caller scans its connections and clears it. */
bool ingest__take_others(struct ingest *ig);

/* The per-identity memory budget (max_agent_bytes). The server charges what it holds
 * for a connection past its Hello (its read buffer and state) with ingest__charge;
 * ingest charges the frames it queued in batches itself and releases them at commit.
 * ingest__budget says whether the identity may take `more` bytes: BUDGET_WAIT when it
 * is over but some of what it holds is frames a commit will release (stop reading: TCP
 * slows that agent down, and only that agent), BUDGET_REFUSE when it is over with
 * nothing a commit would free (its connections' buffers alone: refuse). A connection
 * with no identity yet (before Hello) is the handshake budget's business: BUDGET_OK. */
enum ingest_budget { BUDGET_OK, BUDGET_WAIT, BUDGET_REFUSE };
enum ingest_budget ingest__budget(const struct ingest *ig, const struct ingest_conn *ic,
				  size_t more);
void ingest__charge(struct ingest_conn *ic, size_t add, size_t sub);
/* What the connection's identity holds now, in bytes (0 before Hello), for log lines. */
size_t ingest__held(const struct ingest_conn *ic);

void ingest__out_consume(struct ingest_conn *ic, size_t n);
/* The run id of the connection's Hello, NULL before it (for log lines). */
const char *ingest__run_name(const struct ingest_conn *ic);

#endif /* BUILDWARDEN_COLLECTOR_INGEST_H */
