/* The spool's insides, shared by its files and by nothing else: callers use spool.h.
 *
 *   spool.c               open, close, stats, the counters both threads update
 *   spool_record.c        records: parse, scan, inflate, encode (pure)
 *   spool_file.c          segment names, listing, whole-file reads and writes
 *   spool_meta.c          a run's meta file
 *   spool_run.c           locking, adopting and removing run directories
 *   spool_writer.c        append and seal (agent thread)
 *   spool_housekeeping.c  ack, fdatasync, compress (sender thread)
 *   spool_reader.c        reading a run in seq order (sender thread) */
#ifndef BUILDWARDEN_TRANSPORT_SPOOL_INTERNAL_H
#define BUILDWARDEN_TRANSPORT_SPOOL_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/chain.h"
#include "transport/spool.h"

/* The prefix of every line the spool logs (to stderr, through base/log.h). */
#define SPOOL_LOG "buildwarden: spool: "

enum spool_seg_type {
	SEG_LIVE,
	SEG_RAW,
	SEG_Z,
};

/* "<20 digits>.live", "<20>-<20>.seg", "<20>-<20>.segz", and a NUL */
#define SPOOL_SEG_NAME_MAX 48

struct spool_seg {
	uint64_t first, last; /* last is 0 for a live segment: not known from its name */
	enum spool_seg_type type;
	char name[SPOOL_SEG_NAME_MAX];
};

/*
 * Who touches what. spool__open and spool__close run alone; in between, two threads
 * share the struct (spool.h): the agent thread (spool_writer.c) and the sender thread
 * (spool_housekeeping.c, spool_reader.c, spool__remove_run). Each group of fields
 * below belongs to one of them or is under `lock`; nothing else is shared.
 *
 * The runs: the table is fixed after open. The current run's meta.last_seq and
 * meta.last_chain are the agent thread's (written at each seal); the sender reads a
 * run's meta.run_id only, which never changes. A run's dfd turns -1 when the sender
 * removes an old run, or at close for the current one.
 */
struct spool {
	/* Fixed after open: read by both threads. */
	char root[PATH_MAX];
	int root_fd;
	uint64_t max_bytes;
	uint8_t key[CHAIN_KEY_MAX];
	size_t keylen;

	struct spool_run **runs; /* oldest first, the current run last; fixed after open */
	size_t n_runs, runs_cap;
	struct spool_run *cur;

	/* Agent thread only. */
	int live_fd; /* -1: no live segment */
	uint64_t live_first, live_last;
	size_t live_len;      /* committed: ends on a record boundary */
	bool live_bad_tail;   /* a failed write may have left bytes past live_len */
	uint64_t last_seq;    /* highest seq spooled or dropped */
	uint8_t chain[CHAIN_LEN];
	uint64_t skip_first, skip_last; /* pending Skip; skip_first 0 = none */
	const char *skip_reason;
	uint8_t *buf;
	size_t cap;

	/* Sender thread only: what spool__maintain already made durable. */
	uint64_t synced_live_first;
	size_t synced_live_len;
	uint64_t synced_sealed_upto;

	/* Shared between the two threads, only with lock held. usage is lowered by the
	 * sender alone (acks, compression), so the agent's "fits under the cap" check
	 * stays true until its write. */
	pthread_mutex_t lock;
	bool pub_live; /* the current run has a live segment (from before its file exists)... */
	uint64_t pub_first; /* ...starting at this seq... */
	size_t pub_len;     /* ...of which this many bytes are complete records */
	uint64_t usage, spooled, full_drops, other_drops, corrupt, pub_last_seq;
	/* Set at open only (before the sender starts), read after. */
	uint64_t foreign_runs;
};

/* ---- spool.c: the counters, under lock ---- */
void spool__usage_sub(struct spool *sp, uint64_t n);
void spool__count_corrupt(struct spool *sp);

/* ---- spool_record.c ---- */

/* AgentMessage{event: EventFrame{seq, event, chain}} for an event of evlen bytes is
 * written in three steps, so that the event is packed once, in place, and hashed
 * where it lies: the head (the frame's length, the message keys, seq and the event's
 * length), the event, the tail (its chain). msg_size is the AgentMessage's size,
 * without the frame's length varint. */
size_t spool__event_msg_size(uint64_t seq, size_t evlen);
size_t spool__put_event_head(uint8_t *out, uint64_t seq, size_t evlen);
size_t spool__put_event_tail(uint8_t *out, const uint8_t chain[CHAIN_LEN]);

/* ---- spool_file.c ---- */

bool spool__valid_run_id(const char *s);
/* The file name of a segment (last is ignored for SEG_LIVE); spool__list parses it. */
void spool__seg_name(char out[SPOOL_SEG_NAME_MAX], uint64_t first, uint64_t last,
		     enum spool_seg_type type);
/* mkdir -p, 0700 */
int spool__mkdirs(const char *path);
/* The segments of a run directory, sorted by first seq. */
int spool__list(int dfd, struct spool_seg **out, size_t *n);
/* openat() of a file in a run directory: never follows a symlink, never inherited by
 * a child (the build), created 0600. -1 with errno. */
int spool__openat(int dfd, const char *name, int flags);
/* Replaces name with p[0..n): written to tmp, fdatasync()ed if sync, renamed over
 * name, so that nobody reads a file half written. On failure tmp is removed and name
 * left as it was. */
int spool__replace_file(int dfd, const char *tmp, const char *name, const void *p, size_t n,
			bool sync);
/* Reads a whole file of at most max bytes; -EFBIG (with the first max bytes) above. */
int spool__read_file(int dfd, const char *name, size_t max, uint8_t **out, size_t *len);
/* A segment's bytes, inflated if compressed. */
int spool__load_seg(int dfd, const struct spool_seg *seg, uint8_t **out, size_t *len);
/* 0 if it cannot be stat()ed */
uint64_t spool__file_size(int dfd, const char *name);
/* The bytes of the segments in a run directory. */
uint64_t spool__dir_usage(int dfd);

/* ---- spool_meta.c ---- */

/* Replaces meta through meta.tmp and a rename; sync: fdatasync before the rename. */
int spool__write_meta(int dfd, const struct spool_meta *m, bool sync);
/* -EBADMSG: not a meta we wrote (no magic line, or a bad run_id). */
int spool__read_meta(int dfd, struct spool_meta *m);

/* ---- spool_run.c ---- */

/* Opens and locks <root>/<name>; -EBUSY if another process holds it. */
int spool__lock_run(struct spool *sp, const char *name, int *dfd);
/* Makes an inherited run consistent (see spool_run.c) and rewrites its meta. */
int spool__adopt(struct spool *sp, struct spool_run *run);
/* The runs other processes left: adopted, or removed when nothing is left in them. */
void spool__adopt_old_runs(struct spool *sp, const char *cur);
int spool__add_run(struct spool *sp, struct spool_run *run);
bool spool__run_empty(int dfd);

#endif /* BUILDWARDEN_TRANSPORT_SPOOL_INTERNAL_H */
