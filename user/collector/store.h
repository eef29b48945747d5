/* The collector's store: where committed events, findings and the hash-chain state of
 * every run live. Two engines behind one interface (docs/collector.md):
 *
 * - SQLite (store_sqlite.c), a path: one collector writes it. store__open(STORE_WRITE)
 *   takes an exclusive lock file beside the database; any number of readers (the event
 *   loop's run lookups, `buildwarden query`) read it concurrently thanks to WAL.
 * - PostgreSQL (store_pg.c), a postgresql:// URI or a libpq conninfo string: any number
 *   of stateless collectors write one database. De-duplication is the database's
 *   unique key on (run, seq); a run's chain state is its runs row, and a batch only
 *   advances a run from the state it was built on (store__apply fails otherwise, and
 *   ingest makes its agents re-send from what is durable).
 *
 * A store handle belongs to one thread at a time. */
#ifndef BUILDWARDEN_COLLECTOR_STORE_H
#define BUILDWARDEN_COLLECTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "collector/batch.h"

enum store_mode {
	STORE_WRITE, /* create or migrate the schema; SQLite: take the writer lock */
	STORE_READ,  /* read-only; the database must exist */
};

enum store_engine { STORE_SQLITE, STORE_PG };

struct store;

/* Which engine a --db value names: a postgresql:// or postgres:// URI, or a libpq
 * conninfo string (it starts with "keyword="), is PostgreSQL; anything else is a path. */
enum store_engine store__engine_of(const char *db);
enum store_engine store__engine(const struct store *s);
/* db as a log line may show it: a path as it is; for PostgreSQL only the user, host,
 * port and database (a conninfo or URI can hold a password). */
void store__describe(const char *db, char *out, size_t len);

/* Opens db (":memory:" works for SQLite STORE_WRITE: tests and fuzzing). On failure
 * returns -errno-like codes and writes a message into err: -ENOENT (no database,
 * STORE_READ), -EBUSY (another collector holds the SQLite lock), -EINVAL (not a
 * collector database, or one of a newer schema than this build), -EIO (includes a
 * PostgreSQL server that cannot be reached). Nothing is created on failure. */
int store__open(const char *db, enum store_mode mode, struct store **out, char *err,
		size_t errlen);
void store__close(struct store *s);

/* How a commit is made durable (docs/collector.md, "Durability"). FULL: every commit
 * is synced before it returns, so what was acknowledged survives a power loss. NORMAL:
 * SQLite writes the WAL at commit and syncs at checkpoints; PostgreSQL commits with
 * synchronous_commit = off. A kill -9 of the collector loses nothing acknowledged; a
 * power loss (or a database server crash) can take back the last commits. */
enum store_sync { STORE_SYNC_FULL, STORE_SYNC_NORMAL };
int store__set_sync(struct store *s, enum store_sync mode);

/* One transaction: upserts b->runs, then applies b->ops in order; commits with the
 * durability set by store__set_sync (FULL by default). 0, or -EIO with err set (rolled
 * back). PostgreSQL: a run that another collector advanced since this one read it
 * (its stored last_seq is not the batch's base_seq) is left out, with its ops, and
 * marked stale; the rest is committed and 0 returned, with err saying which run (err
 * is "" when none is stale). */
int store__apply(struct store *s, struct batch *b, char *err, size_t errlen);

/* The stored state of (agent, run_id): 1 found, 0 not found, -EIO. */
int store__lookup_run(struct store *s, const char *agent, const char *run_id,
		      struct run_rec *out);
/* The writer hands out ids above this for new runs. SQLite: the largest runs.id.
 * PostgreSQL: a base far above any id the database hands out; store__apply maps each
 * run to its database id by (agent, run_id). */
int store__max_run_id(struct store *s, int64_t *out);

/* Retention: removes what is older than cutoff_ns (unix ns), in a bounded step so that
 * ingestion never waits long. SQLite: runs whose last activity is older, at most
 * max_rows events per call. PostgreSQL: whole day partitions of runs that started
 * before the cutoff's day (max_rows unused). *more is set when another call has work
 * left. 0, or -EIO with err set. */
int store__retain(struct store *s, int64_t cutoff_ns, size_t max_rows, bool *more, char *err,
		  size_t errlen);

/* ---- read queries, whatever the engine (query.c) ---- */

/* A parameter of a query, named ":name" in its SQL. A num parameter named ":limit"
 * below 0 means no limit. */
struct store_param {
	const char *name;
	const char *text; /* NULL: num is the value */
	int64_t num;
};

/* One result row; valid during the callback only. Columns count from 0. */
struct store_res;
bool store_res__null(const struct store_res *r, int col);
const char *store_res__text(const struct store_res *r, int col); /* NULL for NULL */
int64_t store_res__int(const struct store_res *r, int col);
const void *store_res__blob(const struct store_res *r, int col, size_t *len);

/* Runs sql (the dialect both engines share: see query.c) with params, calling fn per
 * row; fn returning non-zero stops the query (store__query then returns 0). 0, or -EIO
 * with err set. */
int store__query(struct store *s, const char *sql, const struct store_param *params,
		 size_t n_params, int (*fn)(void *arg, const struct store_res *r), void *arg,
		 char *err, size_t errlen);

/* The raw SQLite handle (tests; NULL for PostgreSQL). */
sqlite3 *store__db(struct store *s);

/* Counters since open, for logs and benches. */
struct store_stats {
	uint64_t events, findings, dups_identical, commits;
};
void store__stats(const struct store *s, struct store_stats *out);

#endif /* BUILDWARDEN_COLLECTOR_STORE_H */
