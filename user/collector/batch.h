/* What one store transaction writes: the rows that ingest decided on, in order, plus the
 * state of every run they touched. Built by ingest on the event-loop thread, applied by
 * store__apply on the writer thread; nothing in it points into connection buffers. */
#ifndef BUILDWARDEN_COLLECTOR_BATCH_H
#define BUILDWARDEN_COLLECTOR_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/slab.h"

#define BW_CHAIN_LEN 32
/* Agent ids and run ids: see ingest__valid_id(). */
#define BW_ID_MAX 128
#define BW_HOST_MAX 255
#define BW_CI_MAX 256

/* events.flags */
#define EVF_CHAIN_BREAK 0x1      /* the frame's chain did not verify */
#define EVF_CHAIN_UNVERIFIED 0x2 /* nothing to verify against: after a gap, or no key */
#define EVF_BAD_EVENT 0x4        /* not an Event, or seq/run do not match the frame */
#define EVF_REDACTED 0x8         /* argv redacted before storing: the chain covers the
				  * bytes the agent sent, not the stored ones */

/* The durable state of a run: one row of the runs table. */
struct run_rec {
	int64_t id;
	char agent[BW_ID_MAX + 1];
	char host[BW_HOST_MAX + 1];
	char run_id[BW_ID_MAX + 1];
	int64_t first_seen, last_seen; /* collector wall clock, unix ns */
	uint64_t last_seq;             /* the resume point: highest seq stored or skipped */
	uint64_t run_end_seq;
	uint64_t kernel_drops;         /* runEnd.drops */
	uint8_t last_chain[BW_CHAIN_LEN];
	bool has_run_start, has_run_end;
	bool chain_ok;                 /* no break, gap, skip or other finding so far */
	/* runStart.ci (CiContext), cut to 256 bytes; "" when the agent sent none. A
	 * store keeps what it has when these are empty (a resumed run). */
	char ci_repo[BW_CI_MAX + 1], ci_commit[BW_CI_MAX + 1], ci_job[BW_CI_MAX + 1];
};

/* A run is complete when its chain is unbroken from runStart (seq 1) to runEnd and the
 * kernel dropped nothing. */
static inline bool run_rec__complete(const struct run_rec *r)
{
	return r->chain_ok && r->has_run_start && r->has_run_end && !r->kernel_drops;
}

enum bop_kind {
	BOP_EVENT,    /* insert one event */
	BOP_FINDING,  /* insert one finding */
	BOP_DUPCHECK, /* a seq at or below the stored ones: compare with the stored row */
};

struct bop_event {
	int64_t run;
	uint64_t seq, time_ns;
	int64_t received_ns;  /* collector wall clock when the frame was read */
	const char *kind;     /* static string, NULL when the event did not unpack */
	const char *rule;     /* NULL: no value */
	const char *action;   /* static string */
	const char *exe, *path, *address;
	uint32_t pid, port;   /* 0: no value */
	uint32_t flags;       /* EVF_* */
	bool violation;
	const uint8_t *event; /* the exact bytes the chain covers */
	size_t event_len;
	const uint8_t *chain;
	size_t chain_len;
};

struct bop_finding {
	int64_t run;
	int64_t time_ns;
	const char *kind;     /* static string */
	uint64_t first_seq, last_seq;
	const char *detail;
};

struct bop {
	enum bop_kind kind;
	union {
		struct bop_event ev; /* BOP_EVENT and BOP_DUPCHECK */
		struct bop_finding fi;
	};
};

struct batch_run {
	struct run_rec rec;   /* state after the last op of this batch */
	uint64_t base_seq;    /* rec.last_seq before this batch: a store shared by several
			       * collectors applies the batch only if the run is still there */
	void *owner;          /* ingest's run, held until the batch is done */
	bool stale;           /* set by store__apply: another collector advanced the run
			       * since base_seq; nothing of it was applied */
};

struct batch {
	uint64_t gen;         /* batches are committed in gen order */
	struct bop *ops;
	size_t n_ops, cap_ops;
	size_t n_events;      /* BOP_EVENT + BOP_DUPCHECK */
	size_t bytes;         /* event bytes held */
	struct batch_run *runs;
	size_t n_runs, cap_runs;
	int64_t first_ns;     /* monotonic time of the first op, for the commit interval */
	struct slab mem;      /* strings and event bytes of the ops */
};

void batch__init(struct batch *b);
void batch__reset(struct batch *b);
void batch__free(struct batch *b);
/* A new zeroed op at the end, or NULL when out of memory. */
struct bop *batch__push(struct batch *b, enum bop_kind kind);
struct batch_run *batch__push_run(struct batch *b);
/* Copies into the batch's memory; NULL-safe (NULL in, NULL out). */
const char *batch__strdup(struct batch *b, const char *s);
bool batch__empty(const struct batch *b);

#endif /* BUILDWARDEN_COLLECTOR_BATCH_H */
