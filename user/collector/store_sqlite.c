// SPDX-License-Identifier: GPL-2.0
/* SQLite store: see store.h and docs/collector.md (schema, durability).
 *
 * Hot-path choices, measured on the 2-core development machine (docs/collector.md):
 * - 64 KiB pages: inserting ~600-byte rows with 4 KiB pages spent most of its time in
 *   page splits and WAL frame headers (~80k rows/s); 64 KiB pages reach ~230k rows/s.
 * - events reference runs by an integer id instead of repeating (agent, host, run_id)
 *   in every row: the dedup index (run, seq) is two integers, not two strings. The view
 *   events_v shows the denormalised columns.
 * - the violation indexes are partial (WHERE violation = 1): most rows never touch them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "collector/store_priv.h"

#define STORE_SCHEMA_VERSION 3
/* Events per multi-row INSERT: one statement step per STORE_ROWS rows instead of one per
 * row (VDBE set-up, reset and the statement journal dominate single-row inserts). */
#define STORE_ROWS 32
#define STORE_EVENT_COLS 16
struct store_sqlite {
	struct store base; /* first: the store interface's handle */
	sqlite3 *db;
	int lock_fd;
	sqlite3_stmt *ins_event, *ins_events, *ins_finding, *upsert_run, *sel_dup, *taint_run;
	sqlite3_stmt *sel_run, *max_run;
};

static const struct store_ops store_sqlite__ops;
static void sq__close(struct store *bs);

static const char sq__schema[] =
	"CREATE TABLE IF NOT EXISTS runs ("
	" id INTEGER PRIMARY KEY,"
	" agent TEXT NOT NULL,"
	" host TEXT NOT NULL,"
	" run_id TEXT NOT NULL,"
	" first_seen INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL,"
	" last_seq INTEGER NOT NULL,"
	" last_chain BLOB NOT NULL,"
	" has_run_start INTEGER NOT NULL,"
	" has_run_end INTEGER NOT NULL,"
	" run_end_seq INTEGER,"
	" kernel_drops INTEGER NOT NULL,"
	" chain_ok INTEGER NOT NULL,"
	" complete INTEGER NOT NULL,"
	" ci_repo TEXT,"
	" ci_commit TEXT,"
	" ci_job TEXT,"
	" UNIQUE (agent, run_id));"
	"CREATE INDEX IF NOT EXISTS runs_run_id ON runs (run_id);"
	"CREATE INDEX IF NOT EXISTS runs_host ON runs (host);"
	"CREATE INDEX IF NOT EXISTS runs_ci_repo ON runs (ci_repo);"
	"CREATE INDEX IF NOT EXISTS runs_ci_commit ON runs (ci_commit);"
	"CREATE TABLE IF NOT EXISTS events ("
	" run INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" time_ns INTEGER,"
	" received_ns INTEGER,"
	" kind TEXT,"
	" violation INTEGER NOT NULL,"
	" rule TEXT,"
	" action TEXT,"
	" pid INTEGER,"
	" exe TEXT,"
	" path TEXT,"
	" address TEXT,"
	" port INTEGER,"
	" flags INTEGER NOT NULL,"
	" chain BLOB NOT NULL,"
	" event BLOB NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS events_run_seq ON events (run, seq);"
	"CREATE INDEX IF NOT EXISTS events_violations ON events (time_ns) WHERE violation = 1;"
	"CREATE INDEX IF NOT EXISTS events_violations_rule ON events (rule, time_ns)"
	" WHERE violation = 1;"
	"CREATE INDEX IF NOT EXISTS events_violations_run ON events (run, time_ns)"
	" WHERE violation = 1;"
	/* query --violations orders and filters on when the collector received a row, not
	 * on the agent's clock (rows of schema 1 have no received_ns: their time_ns then) */
	"CREATE INDEX IF NOT EXISTS events_violations_received ON events"
	" (coalesce(received_ns, time_ns)) WHERE violation = 1;"
	"CREATE TABLE IF NOT EXISTS findings ("
	" id INTEGER PRIMARY KEY,"
	" run INTEGER NOT NULL,"
	" time INTEGER NOT NULL,"
	" kind TEXT NOT NULL,"
	" first_seq INTEGER,"
	" last_seq INTEGER,"
	" detail TEXT);"
	"CREATE INDEX IF NOT EXISTS findings_time ON findings (time);"
	"CREATE INDEX IF NOT EXISTS findings_run ON findings (run);"
	"CREATE VIEW IF NOT EXISTS events_v AS SELECT r.agent, r.host, r.run_id, e.seq,"
	" e.time_ns, e.received_ns, e.kind, e.violation, e.rule, e.action, e.pid, e.exe, e.path, e.address,"
	" e.port, e.flags, e.chain, e.event FROM events e JOIN runs r ON r.id = e.run;"
	"CREATE VIEW IF NOT EXISTS findings_v AS SELECT r.agent, r.host, r.run_id, f.time,"
	" f.kind, f.first_seq, f.last_seq, f.detail FROM findings f JOIN runs r ON r.id = f.run;";

static int sq__fail(struct store_sqlite *s, char *err, size_t errlen, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no handle");
	return -EIO;
}

static int sq__prepare(struct store_sqlite *s, sqlite3_stmt **st, const char *sql, char *err,
			  size_t errlen)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return sq__fail(s, err, errlen, "cannot prepare a statement");
	return 0;
}

/* INSERT INTO events ... VALUES (?,...), ... with rows rows of STORE_EVENT_COLS
 * parameters each, numbered in order. */
static int sq__prepare_insert(struct store_sqlite *s, sqlite3_stmt **st, int rows, char *err,
				 size_t errlen)
{
	/* OR IGNORE: a statement that cannot abort needs no statement journal. With one,
	 * SQLite copied every page the statement touched (64 KiB each) into the journal
	 * first: a malloc, a 64 KiB memcpy and a free per page per statement, ~20% of the
	 * writer's time. A duplicate (ingest never sends one: only a second writer or a
	 * hand-edited database makes it) is found by the row count instead. */
	static const char head[] = "INSERT OR IGNORE INTO events (run, seq, time_ns, received_ns, kind,"
				   " violation, rule, action, pid, exe, path, address, port, flags,"
				   " chain, event) VALUES ";
	size_t cap = sizeof(head) + (size_t)rows * (STORE_EVENT_COLS * 2 + 4), len;
	char *sql = malloc(cap);
	int rc;

	if (!sql)
		return sq__fail(s, err, errlen, "out of memory");
	len = (size_t)snprintf(sql, cap, "%s", head);
	for (int r = 0; r < rows; r++) {
		sql[len++] = r ? ',' : ' ';
		sql[len++] = '(';
		for (int c = 0; c < STORE_EVENT_COLS; c++) {
			if (c)
				sql[len++] = ',';
			sql[len++] = '?';
		}
		sql[len++] = ')';
	}
	sql[len] = 0;
	rc = sq__prepare(s, st, sql, err, errlen);
	free(sql);
	return rc;
}

static int sq__user_version(struct store_sqlite *s, int *v, int *tables)
{
	sqlite3_stmt *st;

	*v = 0;
	*tables = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		*tables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* The database holds every build's argv and paths: only the collector's user may read
 * it, and nobody else may have written it (a planted file could hold forged runs, or
 * be a link into someone else's data). Checks the open fd, so what is checked is what
 * is used. -EPERM with err set. */
static int sq__check_owner(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		return -EPERM;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "'%s' is owned by uid %u, not by the collector's uid %u",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "'%s' is writable by group or others (mode %04o)", path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Creates path 0600 if missing (SQLite would make it 0644 under the usual umask, and
 * its -wal and -shm files take the database's mode), then checks the owner and mode
 * of it and of any -wal/-shm left beside it. */
static int sq__prepare_file(const char *path, char *err, size_t errlen)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[4096];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		int fd, rc;

		if ((size_t)snprintf(p, sizeof(p), "%s%s", path, sfx[i]) >= sizeof(p)) {
			snprintf(err, errlen, "'%s': path too long", path);
			return -ENAMETOOLONG;
		}
		fd = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
				     (i == 0 ? O_CREAT : 0), 0600);
		if (fd < 0) {
			int e = errno;

			if (i && e == ENOENT)
				continue;
			snprintf(err, errlen, "cannot open '%s': %s%s", p, strerror(e),
				 e == ELOOP ? " (a symbolic link)" : "");
			return -e;
		}
		rc = sq__check_owner(fd, p, err, errlen);
		close(fd);
		if (rc)
			return rc;
	}
	return 0;
}

/* Only one collector may write a database: two would hand out the same run ids and
 * interleave chains. SQLite's own locks are per transaction, so hold a lock file. */
static int sq__lock(struct store_sqlite *s, const char *path, char *err, size_t errlen)
{
	char lp[4096];

	if ((size_t)snprintf(lp, sizeof(lp), "%s.lock", path) >= sizeof(lp)) {
		snprintf(err, errlen, "'%s': path too long", path);
		return -ENAMETOOLONG;
	}
	s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot create '%s': %s", lp, strerror(e));
		return -e;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		snprintf(err, errlen, "'%s' is locked: another collector writes this database", lp);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	return sq__check_owner(s->lock_fd, lp, err, errlen);
}

int store_sqlite__open(const char *path, enum store_mode mode, struct store **out, char *err,
		       size_t errlen)
{
	static bool configured;
	bool mem = strcmp(path, ":memory:") == 0;
	struct store_sqlite *s;
	int flags, ver, tables, rc;

	*out = NULL;
	if (!configured) {
		/* Memory statistics take a global mutex on every allocation: two lock
		 * round trips per row in profiles. Fails harmlessly (SQLITE_MISUSE) if
		 * SQLite was already initialised by someone else in this process. */
		sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
		configured = true;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->base.ops = &store_sqlite__ops;
	s->lock_fd = -1;
	if (mode == STORE_READ) {
		if (!mem && access(path, F_OK) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot open '%s': %s", path, strerror(e));
			free(s);
			return -e;
		}
		flags = SQLITE_OPEN_READONLY;
	} else {
		if (!mem) {
			rc = sq__lock(s, path, err, errlen);
			rc = rc ?: sq__prepare_file(path, err, errlen);
			if (rc)
				goto fail;
		}
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	/* NOMUTEX: each handle is used by one thread at a time (store.h). */
	if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = sq__fail(s, err, errlen, "cannot open the database");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	if (sq__user_version(s, &ver, &tables)) {
		rc = sq__fail(s, err, errlen, "cannot read the database");
		if (strstr(err, "not a database"))
			rc = -EINVAL;
		goto fail;
	}
	if (ver > STORE_SCHEMA_VERSION || (ver == 0 && tables > 0) ||
	    (mode == STORE_READ && ver < 1)) {
		snprintf(err, errlen, "'%s' is not a buildwarden collector database%s", path,
			 ver > STORE_SCHEMA_VERSION ? " of a version this build knows" : "");
		rc = -EINVAL;
		goto fail;
	}
	if (mode == STORE_WRITE) {
		/* page_size only takes effect before the first table: set it first. */
		if (sqlite3_exec(s->db,
				 "PRAGMA page_size = 65536;"
				 "PRAGMA journal_mode = WAL;"
				 "PRAGMA synchronous = FULL;"
				 "PRAGMA cache_size = -8192;"
				 /* the WAL is rewritten from its start after each checkpoint;
				  * this only keeps a burst from leaving a huge file behind */
				 "PRAGMA journal_size_limit = 134217728;"
				 "PRAGMA temp_store = MEMORY;",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
		    /* version 1 had no received_ns; the view lists it, so it goes first */
		    (ver == 1 && sqlite3_exec(s->db,
					      "ALTER TABLE events ADD COLUMN received_ns INTEGER;"
					      "DROP VIEW IF EXISTS events_v;",
					      NULL, NULL, NULL) != SQLITE_OK) ||
		    /* version 3: runStart.ci as run columns */
		    (ver >= 1 && ver < 3 &&
		     sqlite3_exec(s->db,
				  "ALTER TABLE runs ADD COLUMN ci_repo TEXT;"
				  "ALTER TABLE runs ADD COLUMN ci_commit TEXT;"
				  "ALTER TABLE runs ADD COLUMN ci_job TEXT;",
				  NULL, NULL, NULL) != SQLITE_OK) ||
		    sqlite3_exec(s->db, sq__schema, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA user_version = 3; COMMIT", NULL, NULL, NULL) !=
			    SQLITE_OK) {
			rc = sq__fail(s, err, errlen, "cannot create the schema");
			goto fail;
		}
		rc = sq__prepare_insert(s, &s->ins_event, 1, err, errlen);
		rc = rc ?: sq__prepare_insert(s, &s->ins_events, STORE_ROWS, err, errlen);
		rc = rc ?: sq__prepare(s, &s->ins_finding,
					  "INSERT INTO findings (run, time, kind, first_seq,"
					  " last_seq, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
					  err, errlen);
		rc = rc ?: sq__prepare(s, &s->upsert_run,
			"INSERT INTO runs (id, agent, host, run_id, first_seen, last_seen,"
			" last_seq, last_chain, has_run_start, has_run_end, run_end_seq,"
			" kernel_drops, chain_ok, complete, ci_repo, ci_commit, ci_job) VALUES (?1,"
			" ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
			" ON CONFLICT (id) DO UPDATE SET"
			" ci_repo = coalesce(excluded.ci_repo, runs.ci_repo),"
			" ci_commit = coalesce(excluded.ci_commit, runs.ci_commit),"
			" ci_job = coalesce(excluded.ci_job, runs.ci_job),"
			" last_seen = excluded.last_seen, last_seq = excluded.last_seq,"
			" last_chain = excluded.last_chain,"
			" has_run_start = excluded.has_run_start,"
			" has_run_end = excluded.has_run_end,"
			" run_end_seq = excluded.run_end_seq,"
			" kernel_drops = excluded.kernel_drops,"
			/* once broken, always broken: the writer taints runs too (duplicates) */
			" chain_ok = runs.chain_ok AND excluded.chain_ok,"
			" complete = runs.chain_ok AND excluded.complete",
			err, errlen);
		rc = rc ?: sq__prepare(s, &s->sel_dup,
					  "SELECT event, chain FROM events WHERE run = ?1 AND seq = ?2",
					  err, errlen);
		rc = rc ?: sq__prepare(s, &s->taint_run,
					  "UPDATE runs SET chain_ok = 0, complete = 0 WHERE id = ?1",
					  err, errlen);
		rc = rc ?: sq__prepare(s, &s->max_run, "SELECT max(id) FROM runs", err, errlen);
		if (rc)
			goto fail;
	} else {
		rc = sq__prepare(s, &s->max_run, "SELECT max(id) FROM runs", err, errlen);
		if (rc)
			goto fail;
	}
	rc = sq__prepare(s, &s->sel_run,
			    "SELECT id, host, first_seen, last_seen, last_seq, last_chain,"
			    " has_run_start, has_run_end, run_end_seq, kernel_drops, chain_ok"
			    " FROM runs WHERE agent = ?1 AND run_id = ?2",
			    err, errlen);
	if (rc)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	sq__close(&s->base);
	return rc;
}

static void sq__close(struct store *bs)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;

	if (!s)
		return;
	sqlite3_finalize(s->ins_event);
	sqlite3_finalize(s->ins_events);
	sqlite3_finalize(s->ins_finding);
	sqlite3_finalize(s->upsert_run);
	sqlite3_finalize(s->sel_dup);
	sqlite3_finalize(s->taint_run);
	sqlite3_finalize(s->sel_run);
	sqlite3_finalize(s->max_run);
	sqlite3_close(s->db);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s);
}

static int sq__set_sync(struct store *bs, enum store_sync mode)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;

	return sqlite3_exec(s->db, mode == STORE_SYNC_NORMAL ? "PRAGMA synchronous = NORMAL" :
							   "PRAGMA synchronous = FULL",
			    NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

sqlite3 *store_sqlite__db(struct store *bs)
{
	return ((struct store_sqlite *)bs)->db;
}

/* Seqs are checked against INT64_MAX on the wire; counters from the agent are not. */
static sqlite3_int64 sq__i64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

static void sq__text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void sq__int_or_null(sqlite3_stmt *st, int i, uint64_t v)
{
	if (v)
		sqlite3_bind_int64(st, i, sq__i64(v));
	else
		sqlite3_bind_null(st, i);
}

/* Every statement binds all of its parameters on every use, so no clear_bindings:
 * it showed in profiles at one call per row. */
static int sq__step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

static int sq__finding(struct store_sqlite *s, int64_t run, int64_t time_ns, const char *kind,
			  uint64_t first, uint64_t last, const char *detail)
{
	sqlite3_stmt *st = s->ins_finding;

	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, time_ns);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sq__int_or_null(st, 4, first);
	sq__int_or_null(st, 5, last);
	sq__text(st, 6, detail);
	if (sq__step_done(st))
		return -EIO;
	s->base.st.findings++;
	return 0;
}

static int sq__upsert_run(struct store_sqlite *s, const struct run_rec *r)
{
	sqlite3_stmt *st = s->upsert_run;

	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_text(st, 2, r->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->first_seen);
	sqlite3_bind_int64(st, 6, r->last_seen);
	sqlite3_bind_int64(st, 7, sq__i64(r->last_seq));
	sqlite3_bind_blob(st, 8, r->last_chain, BW_CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, r->has_run_start);
	sqlite3_bind_int(st, 10, r->has_run_end);
	sq__int_or_null(st, 11, r->run_end_seq);
	sqlite3_bind_int64(st, 12, sq__i64(r->kernel_drops));
	sqlite3_bind_int(st, 13, r->chain_ok);
	sqlite3_bind_int(st, 14, run_rec__complete(r));
	sq__text(st, 15, r->ci_repo[0] ? r->ci_repo : NULL);
	sq__text(st, 16, r->ci_commit[0] ? r->ci_commit : NULL);
	sq__text(st, 17, r->ci_job[0] ? r->ci_job : NULL);
	return sq__step_done(st) ? -EIO : 0;
}

/* A seq at or below what is stored: an identical re-send (after a reconnect) is
 * ignored; anything else is recorded and taints the run. */
static int sq__dupcheck(struct store_sqlite *s, const struct bop_event *e)
{
	sqlite3_stmt *st = s->sel_dup;
	const char *kind = NULL;
	char detail[160];
	int rc;

	sqlite3_bind_int64(st, 1, e->run);
	sqlite3_bind_int64(st, 2, sq__i64(e->seq));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *ev = sqlite3_column_blob(st, 0);
		size_t evlen = (size_t)sqlite3_column_bytes(st, 0);
		const void *ch = sqlite3_column_blob(st, 1);
		size_t chlen = (size_t)sqlite3_column_bytes(st, 1);

		if (evlen == e->event_len && chlen == e->chain_len &&
		    (!evlen || memcmp(ev, e->event, evlen) == 0) &&
		    (!chlen || memcmp(ch, e->chain, chlen) == 0)) {
			s->base.st.dups_identical++;
		} else {
			kind = "duplicate_mismatch";
			snprintf(detail, sizeof(detail),
				 "seq %llu sent again with other content (%zu event bytes stored, %zu sent)",
				 (unsigned long long)e->seq, evlen, e->event_len);
		}
	} else if (rc == SQLITE_DONE) {
		kind = "seq_backwards";
		snprintf(detail, sizeof(detail),
			 "seq %llu is below the run's resume point and was never stored (in a gap or skip)",
			 (unsigned long long)e->seq);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	if (!kind)
		return 0;
	rc = sq__finding(s, e->run, clock__real_ns(), kind, e->seq, e->seq, detail);
	if (rc)
		return rc;
	sqlite3_bind_int64(s->taint_run, 1, e->run);
	return sq__step_done(s->taint_run) ? -EIO : 0;
}

/* Binds e as row number row (0-based) of an insert statement. */
static void sq__bind_event(sqlite3_stmt *st, int row, const struct bop_event *e)
{
	int i = row * STORE_EVENT_COLS;

	sqlite3_bind_int64(st, i + 1, e->run);
	sqlite3_bind_int64(st, i + 2, sq__i64(e->seq));
	sq__int_or_null(st, i + 3, e->time_ns);
	sqlite3_bind_int64(st, i + 4, e->received_ns);
	sq__text(st, i + 5, e->kind);
	sqlite3_bind_int(st, i + 6, e->violation);
	sq__text(st, i + 7, e->rule);
	sq__text(st, i + 8, e->action);
	sq__int_or_null(st, i + 9, e->pid);
	sq__text(st, i + 10, e->exe);
	sq__text(st, i + 11, e->path);
	sq__text(st, i + 12, e->address);
	sq__int_or_null(st, i + 13, e->port);
	sqlite3_bind_int(st, i + 14, (int)e->flags);
	sqlite3_bind_blob(st, i + 15, e->chain ? (const void *)e->chain : "", (int)e->chain_len,
			  SQLITE_STATIC);
	sqlite3_bind_blob(st, i + 16, e->event ? (const void *)e->event : "", (int)e->event_len,
			  SQLITE_STATIC);
}

static int sq__event(struct store_sqlite *s, const struct bop_event *e)
{
	sq__bind_event(s->ins_event, 0, e);
	if (sq__step_done(s->ins_event))
		return -EIO;
	if (sqlite3_changes(s->db) == 1) {
		s->base.st.events++;
		return 0;
	}
	/* ingest only inserts seqs above the resume point, so this is a state mismatch (a
	 * second writer, a hand-edited database): keep the stored row and compare. */
	return sq__dupcheck(s, e);
}

/* STORE_ROWS consecutive event ops in one statement. Fewer rows than that inserted
 * means some (run, seq) was there already: each row is then compared with what is
 * stored, which is itself for the rows this statement inserted. Returns 0 or -EIO. */
static int sq__events(struct store_sqlite *s, const struct bop *ops)
{
	int rc = 0, n;

	for (int r = 0; r < STORE_ROWS; r++)
		sq__bind_event(s->ins_events, r, &ops[r].ev);
	if (sq__step_done(s->ins_events))
		return -EIO;
	n = sqlite3_changes(s->db);
	s->base.st.events += (uint64_t)n;
	if (n == STORE_ROWS)
		return 0;
	for (int r = 0; r < STORE_ROWS && !rc; r++)
		rc = sq__dupcheck(s, &ops[r].ev);
	return rc;
}

static int sq__apply(struct store *bs, struct batch *b, char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;
	const char *what = "begin";
	size_t i;
	int rc = 0;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return sq__fail(s, err, errlen, "cannot begin a transaction");
	/* Runs first: the duplicate check's taint must find the row it updates. */
	what = "store a run";
	for (i = 0; i < b->n_runs && !rc; i++)
		rc = sq__upsert_run(s, &b->runs[i].rec);
	for (i = 0; i < b->n_ops && !rc; i++) {
		const struct bop *op = &b->ops[i];
		size_t k;

		/* a run of STORE_ROWS inserts (the usual case): one statement */
		for (k = 0; k < STORE_ROWS && i + k < b->n_ops; k++)
			if (b->ops[i + k].kind != BOP_EVENT)
				break;
		if (k == STORE_ROWS) {
			what = "store events";
			rc = sq__events(s, op);
			i += STORE_ROWS - 1;
			continue;
		}
		switch (op->kind) {
		case BOP_EVENT:
			what = "store an event";
			rc = sq__event(s, &op->ev);
			break;
		case BOP_DUPCHECK:
			what = "check a duplicate";
			rc = sq__dupcheck(s, &op->ev);
			break;
		case BOP_FINDING:
			what = "store a finding";
			rc = sq__finding(s, op->fi.run, op->fi.time_ns, op->fi.kind,
					    op->fi.first_seq, op->fi.last_seq, op->fi.detail);
			break;
		}
	}
	if (!rc) {
		what = "commit";
		if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
			s->base.st.commits++;
			return 0;
		}
	}
	sq__fail(s, err, errlen, what);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static int sq__lookup_run(struct store *bs, const char *agent, const char *run_id,
			  struct run_rec *out)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;
	sqlite3_stmt *st = s->sel_run;
	int rc;

	sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *host = (const char *)sqlite3_column_text(st, 1);
		const void *ch = sqlite3_column_blob(st, 5);

		memset(out, 0, sizeof(*out));
		out->id = sqlite3_column_int64(st, 0);
		snprintf(out->agent, sizeof(out->agent), "%s", agent);
		snprintf(out->run_id, sizeof(out->run_id), "%s", run_id);
		snprintf(out->host, sizeof(out->host), "%s", host ? host : "");
		out->first_seen = sqlite3_column_int64(st, 2);
		out->last_seen = sqlite3_column_int64(st, 3);
		out->last_seq = (uint64_t)sqlite3_column_int64(st, 4);
		if (ch && sqlite3_column_bytes(st, 5) == BW_CHAIN_LEN)
			memcpy(out->last_chain, ch, BW_CHAIN_LEN);
		out->has_run_start = sqlite3_column_int(st, 6);
		out->has_run_end = sqlite3_column_int(st, 7);
		out->run_end_seq = (uint64_t)sqlite3_column_int64(st, 8);
		out->kernel_drops = (uint64_t)sqlite3_column_int64(st, 9);
		out->chain_ok = sqlite3_column_int(st, 10);
		rc = 1;
	} else {
		rc = rc == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_reset(st);
	return rc;
}

static int sq__max_run_id(struct store *bs, int64_t *out)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;
	int rc = sqlite3_step(s->max_run);

	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s->max_run, 0) : 0;
	sqlite3_reset(s->max_run);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Retention, one bounded step: the events of runs last active before the cutoff, at
 * most max_rows of them in one short transaction, then (when a run has none left) its
 * findings and the run itself. The writer calls it between batches, so ingestion waits
 * for one step at most. */
static int sq__retain(struct store *bs, int64_t cutoff_ns, size_t max_rows, bool *more,
		      char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return sq__fail(s, err, errlen, "retention: cannot begin a transaction");
	if (sqlite3_prepare_v2(s->db,
			       "DELETE FROM events WHERE rowid IN (SELECT e.rowid FROM runs r"
			       " JOIN events e ON e.run = r.id WHERE r.last_seen < ?1 LIMIT ?2)",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, cutoff_ns);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max_rows);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	if ((size_t)sqlite3_changes(s->db) >= max_rows) {
		*more = true;
	} else {
		/* every event of those runs is gone: their findings and rows follow */
		if (sqlite3_prepare_v2(s->db,
				       "DELETE FROM findings WHERE run IN (SELECT id FROM runs"
				       " WHERE last_seen < ?1)",
				       -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, cutoff_ns);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc != SQLITE_DONE ||
		    sqlite3_prepare_v2(s->db, "DELETE FROM runs WHERE last_seen < ?1", -1, &st,
				       NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, cutoff_ns);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
fail:
	sq__fail(s, err, errlen, "retention");
	sqlite3_finalize(st);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static bool sq__res_null(const struct store_res *r, int col)
{
	return sqlite3_column_type(r->h, col) == SQLITE_NULL;
}

static const char *sq__res_text(const struct store_res *r, int col)
{
	return (const char *)sqlite3_column_text(r->h, col);
}

static int64_t sq__res_num(const struct store_res *r, int col)
{
	return sqlite3_column_int64(r->h, col);
}

static const void *sq__res_blob(const struct store_res *r, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(r->h, col);

	*len = (size_t)sqlite3_column_bytes(r->h, col);
	return p;
}

static const struct store_res_ops sq__res_ops = {
	.null = sq__res_null,
	.text = sq__res_text,
	.num = sq__res_num,
	.blob = sq__res_blob,
};

static int sq__query(struct store *bs, const char *sql, const struct store_param *params,
		     size_t n_params, int (*fn)(void *arg, const struct store_res *r), void *arg,
		     char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)bs;
	struct store_res res = { .ops = &sq__res_ops };
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(s->db));
		return -EIO;
	}
	for (size_t k = 0; k < n_params; k++) {
		int i = sqlite3_bind_parameter_index(st, params[k].name);

		if (!i)
			continue;
		if (params[k].text)
			sqlite3_bind_text(st, i, params[k].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i, params[k].num);
	}
	res.h = st;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(arg, &res)) {
			rc = SQLITE_DONE;
			break;
		}
	if (rc != SQLITE_DONE)
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const struct store_ops store_sqlite__ops = {
	.engine = STORE_SQLITE,
	.close = sq__close,
	.set_sync = sq__set_sync,
	.apply = sq__apply,
	.lookup_run = sq__lookup_run,
	.max_run_id = sq__max_run_id,
	.retain = sq__retain,
	.query = sq__query,
	.tail = store_sqlite__tail,
	.tail_max = store_sqlite__tail_max,
};
