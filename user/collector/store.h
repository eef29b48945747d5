/* The collector's SQLite store (schema in docs/collector.md). One process writes it:
 * store__open(STORE_WRITE) takes an exclusive lock file beside the database. Any number
 * of readers (the event loop's run lookups, `buildwarden query`) read it concurrently
 * thanks to WAL. A store handle belongs to one thread at a time. */
#ifndef BUILDWARDEN_COLLECTOR_STORE_H
#define BUILDWARDEN_COLLECTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "collector/batch.h"

enum store_mode {
	STORE_WRITE, /* create if missing, take the writer lock */
	STORE_READ,  /* read-only; the database must exist */
};

struct store;

/* Opens path (":memory:" works for STORE_WRITE: tests and fuzzing). On failure returns
 * -errno-like codes and writes a message into err: -ENOENT (no database, STORE_READ),
 * -EBUSY (another collector holds the lock), -EINVAL (not a collector database), -EIO. */
int store__open(const char *path, enum store_mode mode, struct store **out, char *err,
		size_t errlen);
void store__close(struct store *s);

/* How a commit is made durable (docs/collector.md, "Durability"). FULL: every commit
 * fsyncs the WAL, so what was acknowledged survives a power loss. NORMAL: the WAL is
 * written at commit (a kill -9 of the collector loses nothing acknowledged) and synced
 * at checkpoints only, so a power loss can take back the last acknowledged commits. */
enum store_sync { STORE_SYNC_FULL, STORE_SYNC_NORMAL };
int store__set_sync(struct store *s, enum store_sync mode);

/* One transaction: upserts b->runs, then applies b->ops in order; commits with the
 * durability set by store__set_sync (FULL by default). 0, or -EIO with err set (rolled
 * back). */
int store__apply(struct store *s, const struct batch *b, char *err, size_t errlen);

/* The stored state of (agent, run_id): 1 found, 0 not found, -EIO. */
int store__lookup_run(struct store *s, const char *agent, const char *run_id,
		      struct run_rec *out);
/* Largest runs.id, 0 for an empty store: the writer hands out ids above it. */
int store__max_run_id(struct store *s, int64_t *out);

/* The raw handle, for the read-only queries in query.c. */
sqlite3 *store__db(struct store *s);

/* Counters since open, for logs and benches. */
struct store_stats {
	uint64_t events, findings, dups_identical, commits;
};
void store__stats(const struct store *s, struct store_stats *out);

#endif /* BUILDWARDEN_COLLECTOR_STORE_H */
