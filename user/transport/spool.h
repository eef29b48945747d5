/* The agent's on-disk spool: every event is written here before the collector client
 * sends it, so a network cut, a collector restart or an agent restart loses nothing.
 *
 * Layout, under the spool root (directories 0700, files 0600):
 *
 *   <root>/<run_id>/meta                      host, run_id, agent_id, keyed, created,
 *                                             last seq and chain as of the last seal
 *   <root>/<run_id>/<first>.live              the segment being appended to
 *   <root>/<run_id>/<first>-<last>.seg        sealed, not yet compressed
 *   <root>/<run_id>/<first>-<last>.segz       sealed and zlib-compressed
 *
 * (<first>, <last>: 20-digit seqs, so names sort in seq order.) A segment is a sequence
 * of varint length-delimited records; each record is a serialized AgentMessage holding
 * an EventFrame or a Skip (proto/collector.proto). They are byte for byte the frames the
 * client sends, so streaming the spool needs no re-encoding, and a Skip written after a
 * full spool is kept in order with the events around it.
 *
 * Each run directory is flock()ed by the process that owns it: the current run by its
 * writer, runs left by dead processes by whoever adopted them at open. A second agent
 * sharing the root leaves runs it cannot lock alone.
 *
 * Threads: spool__append, spool__seal and spool__close belong to one thread (the
 * agent's). The reader, spool__ack, spool__maintain and spool__remove_run belong to one
 * other thread (the sender). What they share (the live segment's committed length, the
 * usage total, counters) is under the spool's internal mutex; nothing else is shared. */
#ifndef BUILDWARDEN_TRANSPORT_SPOOL_H
#define BUILDWARDEN_TRANSPORT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buildwarden.pb-c.h"
#include "transport/chain.h"

/* A live segment is sealed once it reaches this size: big enough that per-segment costs
 * (a file, an fsync, a compression run) are amortised over thousands of events, small
 * enough that an acknowledged prefix of the spool is freed soon after it is sent. */
#define SPOOL_SEAL_BYTES (1u << 20)
/* The largest segment a reader accepts, raw or inflated: a segment holds at most
 * SPOOL_SEAL_BYTES plus one record, so anything bigger is corrupt. */
#define SPOOL_SEG_MAX (4u << 20)
#define SPOOL_DEFAULT_MAX (256ull << 20)
#define SPOOL_RUN_ID_MAX 64

struct spool_opts {
	const char *dir;      /* the spool root; created (0700) if missing */
	const char *run_id;   /* [A-Za-z0-9._-]{1,64}: it names a directory */
	const char *host;     /* for Hello; no newlines */
	const char *agent_id; /* for Hello; no newlines */
	const uint8_t *key;   /* chain key, keylen 0 = plain SHA-256 */
	size_t keylen;
	uint64_t max_bytes; /* cap on all segments under dir; 0 = SPOOL_DEFAULT_MAX */
};

struct spool_meta {
	char run_id[SPOOL_RUN_ID_MAX + 1];
	char host[256];
	char agent_id[256];
	bool keyed;
	uint64_t created_ns; /* CLOCK_REALTIME: orders runs oldest first */
	uint64_t last_seq;   /* as of the last seal or close */
	uint8_t last_chain[CHAIN_LEN];
};

/* One run directory this process owns. */
struct spool_run {
	struct spool_meta meta;
	int dfd;      /* the directory, flock()ed; -1 once removed */
	bool current; /* written by this process */
};

enum spool_rec_kind {
	SPOOL_REC_EVENT = 1,
	SPOOL_REC_SKIP = 2,
};

/* One parsed record. Pointers are into the caller's buffer. */
struct spool_rec {
	enum spool_rec_kind kind;
	uint64_t first, last;     /* an event: first == last == seq */
	const uint8_t *frame;     /* varint length + AgentMessage: the wire bytes */
	size_t frame_len;
	const uint8_t *event;     /* EVENT: the serialized Event */
	size_t event_len;
	const uint8_t *chain;     /* EVENT: CHAIN_LEN bytes */
	const uint8_t *reason;    /* SKIP: not NUL-terminated */
	size_t reason_len;
};

struct spool_stats {
	uint64_t spooled;     /* events written to the spool by this process */
	uint64_t full_drops;  /* events dropped: spool over its cap or the disk full */
	uint64_t other_drops; /* events dropped for another reason (I/O error, too large) */
	uint64_t corrupt;     /* segments found damaged, read up to the first bad record */
	uint64_t usage;       /* bytes of segments under the root */
	uint64_t last_seq;    /* highest seq of the current run in the spool (or skipped) */
	uint64_t foreign_runs; /* run directories refused at open: not this agent's (another
				* owner, or not 0700); never read, sent or removed */
};

/* ---- records: pure functions, safe on hostile bytes ---- */

/* Parses the record at buf[*off]. 1 with *rec filled and *off moved past it; 0 at a
 * clean end; a FRAME_E* code or -EBADMSG (not an AgentMessage we write) with *off
 * left at the bad record. */
int spool__next_record(const uint8_t *buf, size_t len, size_t *off, struct spool_rec *rec);

/* Checks a whole segment: records well formed and seqs strictly increasing. Returns 0
 * if all of buf is good, else the error of the first bad record; *good_len is the
 * length of the good prefix, *first and *last (0 if none) the seqs it covers and
 * last_chain (if not NULL, and an event was seen) the chain of its last event. */
int spool__scan(const uint8_t *buf, size_t len, size_t *good_len, uint64_t *first,
		uint64_t *last, uint8_t last_chain[CHAIN_LEN]);

/* Inflates a zlib stream of at most SPOOL_SEG_MAX output bytes into a new buffer.
 * -EFBIG past the bound, -EBADMSG if the stream is damaged or incomplete; in both
 * cases *out holds what was inflated before the error (free it). */
int spool__inflate(const uint8_t *z, size_t zlen, uint8_t **out, size_t *outlen);

/* Encodes Skip{first,last,reason} as a framed record into out (cap bytes; 300 is
 * enough for a reason under 256 bytes). Returns its length, or 0 if it does not fit. */
size_t spool__encode_skip(uint64_t first, uint64_t last, const char *reason, uint8_t *out,
			  size_t cap);

/* ---- the spool ---- */

struct spool;

/* Opens the root, creates and locks <root>/<run_id> (resuming it if it exists and is
 * not locked by a live process: seq and chain continue from what it holds), and adopts
 * the runs earlier processes left behind: their live segments are sealed at the last
 * good record, runs with nothing left are removed. NULL with a message in err.
 * Ownership (docs/security.md): the root is created 0700 if missing, opened without
 * following a symlink, and must be the caller's effective user's and writable by no one
 * else (a root that others may only read is tightened to 0700); every run directory,
 * the current one included, must be the caller's and 0700, or it is refused: logged,
 * counted (spool_stats.foreign_runs) and left alone. */
struct spool *spool__open(const struct spool_opts *o, char *err, size_t errlen);

/* Agent thread. Packs ev, chains it and appends it. Returns 0 when it is spooled.
 * Otherwise the event is dropped, counted and remembered, and a Skip covering it is
 * written in order before the next event that fits: -ENOSPC (over the cap, or the
 * disk full), -EMSGSIZE (would pack over BW_FRAME_MAX), or -errno (I/O error). -EINVAL,
 * nothing recorded, if ev->seq does not come after the last seq. Never waits on
 * anything but the local disk. */
int spool__append(struct spool *sp, const Buildwarden__V1__Event *ev);

/* Agent thread. Writes a pending Skip, seals the live segment and records the last
 * seq and chain in meta. With final, also fsyncs (the process is about to end). */
int spool__seal(struct spool *sp, bool final);

void spool__stats(struct spool *sp, struct spool_stats *out);

/* Runs to upload, oldest first; the current run is last. Owned by the spool. */
size_t spool__n_runs(const struct spool *sp);
struct spool_run *spool__run(struct spool *sp, size_t i);

/* The highest seq run holds (spooled or skipped): for the current run as the agent
 * thread last published it, for an old run as found at open. Any thread. */
uint64_t spool__run_last_seq(struct spool *sp, const struct spool_run *run);

/* Sender thread. Deletes the sealed segments of run whose last seq <= seq. seq is
 * first clamped to spool__run_last_seq: an acknowledgement of seqs never written
 * (a confused or hostile collector) deletes nothing more than the run holds. */
int spool__ack(struct spool *sp, struct spool_run *run, uint64_t seq);

/* Sender thread. Housekeeping of run: fdatasync()s segment data the agent thread wrote
 * since the last call (so the agent never waits on the disk's flush), and compresses
 * sealed segments that were sealed more than min_age_ms ago (those acknowledged
 * sooner are deleted instead, and never cost a compression). */
int spool__maintain(struct spool *sp, struct spool_run *run, unsigned min_age_ms);

/* Sender thread. Deletes every file of an old run and its directory. */
int spool__remove_run(struct spool *sp, struct spool_run *run);

/* Seals (final), unlocks and frees. Whatever is not acknowledged stays on disk for the
 * next process; a current run with no segment left is removed. Call with the sender
 * stopped. NULL is a no-op. */
void spool__close(struct spool *sp);

/* ---- reading a run, in seq order (sender thread) ---- */

struct spool_reader;

/* A reader of run that starts at the first record whose seqs reach from_seq. */
struct spool_reader *spool_reader__new(struct spool *sp, struct spool_run *run,
				       uint64_t from_seq);

/* 1 with the next record in *rec (valid until the next call); 0 when there is nothing
 * more for now (the current run) or ever (an old run: spool_reader__eof()); -errno on
 * an I/O error (the reader may be retried). A damaged segment is reported on stderr,
 * counted in spool_stats.corrupt and left after its last good record. */
int spool_reader__next(struct spool_reader *r, struct spool_rec *rec);
bool spool_reader__eof(const struct spool_reader *r);
void spool_reader__free(struct spool_reader *r);

#endif /* BUILDWARDEN_TRANSPORT_SPOOL_H */
