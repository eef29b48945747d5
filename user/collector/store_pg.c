// SPDX-License-Identifier: GPL-2.0
/* PostgreSQL store: see store.h and docs/collector.md ("PostgreSQL").
 *
 * Several collectors write one database, none of them holding state another needs:
 * - a run's chain state is its runs row. A batch upserts every run it touches, in one
 *   statement, with "... DO UPDATE ... WHERE runs.last_seq = <the last_seq this
 *   collector built the batch on>": the upsert locks the rows until COMMIT, and a
 *   collector whose idea of a run is stale (another one advanced it meanwhile) gets no
 *   row back for it: that try is rolled back, the run marked stale, and the batch
 *   applied again without it (its ops left out). Only that run's agent is refused and
 *   re-sends from what is durable; the rest of the batch is committed.
 * - (run, seq) is the events table's primary key (with the partition key, day, which
 *   is a function of the run): events go by binary COPY straight into events; if one
 *   is stored already the COPY fails and the batch is applied again through a staging
 *   table and INSERT ... SELECT ... ON CONFLICT DO NOTHING, which never stores a seq
 *   twice, whoever sends it.
 * - a batch of events costs five round trips however many runs it holds: BEGIN, the
 *   runs, COPY (two), and the export log with COMMIT. A finding or a re-sent seq to
 *   compare (rare) costs one more, and the events after it a COPY of their own.
 * - events are partitioned by the day the run started (UTC): a run's rows stay in one
 *   partition, and retention drops whole partitions (no vacuum debt, no long delete).
 * - new runs get ids from a bigserial: ingest numbers runs above PG_LOCAL_BASE and
 *   store__apply maps each to its database id by (agent, run_id).
 * - schema changes are numbered migrations recorded in schema_version, applied at
 *   start-up under an advisory lock; a database newer than this build is refused
 *   before anything is written. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "base/clock.h"
#include "base/hex.h"
#include "collector/json_out.h"
#include "collector/store_priv.h"

/* The newest schema this build knows: the length of pg__migrations. */
#define PG_SCHEMA_VERSION 3
/* pg_advisory_lock keys: schema migrations, partition DDL and retention (the export's
 * are in store_priv.h). */
#define PG_LOCK_MIGRATE 0x6277636f6c6c01LL
#define PG_LOCK_DDL 0x6277636f6c6c02LL
/* Local run ids (ingest's, for runs not in the database yet) start here: far above
 * any id a bigserial hands out, so that they never collide with a looked-up one. */
#define PG_LOCAL_BASE (1LL << 56)
/* Columns of the events table that a batch writes (xact is its default). */
#define PG_EVENT_COLS 17
#define PG_EVENT_COLLIST "(run, seq, day, time_ns, received_ns, kind, violation, rule, action," \
	" pid, exe, path, address, port, flags, chain, event)"
#define PG_DAYS_MAX 64
/* A lost connection is made again with this connect_timeout (seconds, libpq's
 * smallest that is not "none"), and after a failed try not before a backoff of
 * PG_BACKOFF_MIN_MS doubling to PG_BACKOFF_MAX_MS: during an outage, calls fail at
 * once instead of each waiting for a connect. */
#define PG_RECONNECT_TIMEOUT "2"
#define PG_BACKOFF_MIN_MS 500
#define PG_BACKOFF_MAX_MS 8000
/* A run lookup (a Hello, on the event loop) waits this long for the server at most. */
#define PG_LOOKUP_MS 2000
#define NS_PER_DAY (86400LL * 1000000000LL)

/* Type OIDs of pg_type (stable across versions). */
#define PG_BOOL 16
#define PG_BYTEA 17
#define PG_INT8 20
#define PG_INT2 21
#define PG_INT4 23
#define PG_TEXT 25
#define PG_DATE 1082

static const char *const pg__migrations[PG_SCHEMA_VERSION] = {
	/* 1: the schema of SQLite's version 2, plus the day a run started, which
	 * partitions events */
	"CREATE TABLE runs ("
	" id bigserial PRIMARY KEY,"
	" agent text NOT NULL,"
	" host text NOT NULL,"
	" run_id text NOT NULL,"
	" first_seen bigint NOT NULL,"
	" last_seen bigint NOT NULL,"
	" last_seq bigint NOT NULL,"
	" last_chain bytea NOT NULL,"
	" has_run_start integer NOT NULL,"
	" has_run_end integer NOT NULL,"
	" run_end_seq bigint,"
	" kernel_drops bigint NOT NULL,"
	" chain_ok integer NOT NULL,"
	" complete integer NOT NULL,"
	" day date NOT NULL,"
	" UNIQUE (agent, run_id));"
	"CREATE INDEX runs_run_id ON runs (run_id);"
	"CREATE INDEX runs_host ON runs (host);"
	"CREATE INDEX runs_last_seen ON runs (last_seen);"
	"CREATE INDEX runs_day ON runs (day);"
	"CREATE TABLE events ("
	" run bigint NOT NULL,"
	" seq bigint NOT NULL,"
	" day date NOT NULL,"
	" time_ns bigint,"
	" received_ns bigint,"
	" kind text,"
	" violation integer NOT NULL,"
	" rule text,"
	" action text,"
	" pid bigint,"
	" exe text,"
	" path text,"
	" address text,"
	" port integer,"
	" flags integer NOT NULL,"
	" chain bytea NOT NULL,"
	" event bytea NOT NULL,"
	" PRIMARY KEY (run, seq, day)) PARTITION BY RANGE (day);"
	"CREATE INDEX events_violations ON events (time_ns) WHERE violation = 1;"
	"CREATE INDEX events_violations_rule ON events (rule, time_ns) WHERE violation = 1;"
	"CREATE INDEX events_violations_received ON events"
	" ((coalesce(received_ns, time_ns))) WHERE violation = 1;"
	"CREATE TABLE findings ("
	" id bigserial PRIMARY KEY,"
	" run bigint NOT NULL,"
	" time bigint NOT NULL,"
	" kind text NOT NULL,"
	" first_seq bigint,"
	" last_seq bigint,"
	" detail text);"
	"CREATE INDEX findings_time ON findings (time);"
	"CREATE INDEX findings_run ON findings (run);"
	"CREATE VIEW events_v AS SELECT r.agent, r.host, r.run_id, e.seq,"
	" e.time_ns, e.received_ns, e.kind, e.violation, e.rule, e.action, e.pid, e.exe,"
	" e.path, e.address, e.port, e.flags, e.chain, e.event"
	" FROM events e JOIN runs r ON r.id = e.run;"
	"CREATE VIEW findings_v AS SELECT r.agent, r.host, r.run_id, f.time,"
	" f.kind, f.first_seq, f.last_seq, f.detail FROM findings f JOIN runs r ON r.id = f.run;",
	/* 2: runStart.ci as run columns (issue 11), for query --repo/--commit/--job */
	"ALTER TABLE runs ADD COLUMN ci_repo text, ADD COLUMN ci_commit text,"
	" ADD COLUMN ci_job text;"
	"CREATE INDEX runs_ci_repo ON runs (ci_repo);"
	"CREATE INDEX runs_ci_commit ON runs (ci_commit);",
	/* 3: export positions in commit order (docs/collector.md, "Export from
	 * PostgreSQL"). Every batch transaction stamps its events with its xid (xact, a
	 * default: no table rewrite, rows of before stay NULL) and logs one export_log row
	 * per run it wrote; the export's sequencer numbers log rows once they are
	 * committed (store_pg_tail.c), so a late commit is never skipped. The rows of
	 * before are one "legacy" log row per run, numbered first. */
	"ALTER TABLE events ADD COLUMN xact xid8;"
	"ALTER TABLE events ALTER COLUMN xact SET DEFAULT pg_current_xact_id();"
	"CREATE TABLE export_log ("
	" xact xid8 NOT NULL,"
	" run bigint NOT NULL,"
	" day date NOT NULL,"
	" first_seq bigint NOT NULL,"
	" last_seq bigint NOT NULL,"
	" legacy boolean NOT NULL DEFAULT false,"
	" pos bigint,"
	" pos_end bigint,"
	" PRIMARY KEY (xact, run));"
	"CREATE INDEX export_log_pending ON export_log (xact) WHERE pos IS NULL;"
	"CREATE INDEX export_log_pos_end ON export_log (pos_end) WHERE pos IS NOT NULL;"
	"CREATE INDEX export_log_day ON export_log (day);"
	"CREATE TABLE export_next (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
	" next bigint NOT NULL);"
	"INSERT INTO export_next (next) VALUES (1);"
	"CREATE TABLE export_cursors ("
	" name text PRIMARY KEY,"
	" pos bigint NOT NULL,"
	" updated_at timestamptz NOT NULL DEFAULT now());"
	"INSERT INTO export_log (xact, run, day, first_seq, last_seq, legacy)"
	" SELECT pg_current_xact_id(), run, min(day), min(seq), max(seq), true"
	" FROM events GROUP BY run;",
};

struct store_pg {
	struct store base; /* first: the store interface's handle */
	PGconn *c;
	enum store_mode mode;
	bool sync_normal;
	bool prepared;
	uint64_t session;          /* +1 at each (re)connect: session locks end with one */
	uint64_t claim;            /* the session that took the export claim, 0: none */
	char *conninfo;            /* to connect again */
	int64_t retry_at;          /* monotonic ns: no reconnect before (after a failed one) */
	int backoff_ms;            /* the next wait after a failed reconnect; 0: none failed */
	int32_t days[PG_DAYS_MAX]; /* days whose events partition is known to exist */
	size_t n_days;
	uint8_t *copy;             /* a binary COPY stream being built */
	size_t copy_len, copy_cap;
};

/* One run of a batch: its local id (what the ops carry) and where it is stored. */
struct pg_map {
	int64_t from, to;
	int32_t day;
	char daystr[16];
	uint64_t first_seq, last_seq; /* of the batch's events of this run; 0: none */
	bool stale;                   /* left out: another collector advanced it */
};

static const struct store_ops store_pg__ops;

static void pg__quiet(void *arg, const char *msg)
{
	/* NOTICEs ("relation already exists, skipping") are expected chatter */
}

/* libpq's message without its trailing newline. */
static void pg__err(struct store_pg *s, char *err, size_t errlen, const char *what,
		    const PGresult *res)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	size_t n;

	if (!m || !*m)
		m = s->c ? PQerrorMessage(s->c) : "no connection";
	n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	if (err && errlen)
		snprintf(err, errlen, "%s: %.*s", what, (int)n, m);
}

/* Runs sql (no parameters); 0 or -EIO with err set. */
static int pg__exec(struct store_pg *s, const char *sql, char *err, size_t errlen,
		    const char *what)
{
	PGresult *res = PQexec(s->c, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg__err(s, err, errlen, what, res);
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

static void pg__day_str(int32_t day, char *out, size_t len, bool compact)
{
	time_t t = (time_t)day * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, compact ? "%Y%m%d" : "%Y-%m-%d", &tm);
}

static int32_t pg__day_of(int64_t ns)
{
	return (int32_t)((ns >= 0 ? ns : 0) / NS_PER_DAY);
}

static bool pg__day_known(struct store_pg *s, int32_t day)
{
	for (size_t i = 0; i < s->n_days; i++)
		if (s->days[i] == day)
			return true;
	return false;
}

/* Creates the events partition of day (idempotent; in its own transaction, under a
 * lock so that collectors creating the same day do not collide in the catalog). */
static int pg__ensure_day(struct store_pg *s, int32_t day, char *err, size_t errlen)
{
	char sql[512], d0[16], d1[16], name[16];
	int rc;

	if (pg__day_known(s, day))
		return 0;
	pg__day_str(day, d0, sizeof(d0), false);
	pg__day_str(day + 1, d1, sizeof(d1), false);
	pg__day_str(day, name, sizeof(name), true);
	snprintf(sql, sizeof(sql),
		 "BEGIN; SELECT pg_advisory_xact_lock(%lld);"
		 " CREATE TABLE IF NOT EXISTS events_p%s PARTITION OF events"
		 " FOR VALUES FROM ('%s') TO ('%s'); COMMIT",
		 PG_LOCK_DDL, name, d0, d1);
	rc = pg__exec(s, sql, err, errlen, "cannot create an events partition");
	if (rc) {
		pg__exec(s, "ROLLBACK", NULL, 0, "");
		return rc;
	}
	if (s->n_days == PG_DAYS_MAX) {
		memmove(s->days, s->days + 1, sizeof(s->days[0]) * (PG_DAYS_MAX - 1));
		s->n_days--;
	}
	s->days[s->n_days++] = day;
	return 0;
}

/* Partitions ahead of need: yesterday (runs resumed after midnight) to tomorrow. */
static int pg__ensure_days(struct store_pg *s, char *err, size_t errlen)
{
	int32_t today = pg__day_of(clock__real_ns());
	int rc = 0;

	for (int32_t d = today - 1; d <= today + 1 && !rc; d++)
		rc = pg__ensure_day(s, d, err, errlen);
	return rc;
}

/* ---- schema ------------------------------------------------------------- */

/* The version recorded in schema_version, 0 without that table. */
static int pg__version(struct store_pg *s, int *ver, char *err, size_t errlen)
{
	PGresult *res;
	bool exists;

	*ver = 0;
	res = PQexec(s->c, "SELECT to_regclass('schema_version') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg__err(s, err, errlen, "cannot read the schema version", res);
		PQclear(res);
		return -EIO;
	}
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists)
		return 0;
	res = PQexec(s->c, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg__err(s, err, errlen, "cannot read the schema version", res);
		PQclear(res);
		return -EIO;
	}
	*ver = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Brings the schema to PG_SCHEMA_VERSION, one migration per transaction step, under
 * the migration lock (collectors starting together apply each migration once). A
 * database newer than this build is left untouched: -EINVAL. */
static int pg__migrate(struct store_pg *s, char *err, size_t errlen)
{
	char sql[256];
	int ver, rc;

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", PG_LOCK_MIGRATE);
	rc = pg__exec(s, sql, err, errlen, "cannot take the migration lock");
	if (rc)
		return rc;
	rc = pg__version(s, &ver, err, errlen);
	if (!rc && ver > PG_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "the database has schema version %d, newer than this collector knows (%d):"
			 " upgrade buildwarden; nothing was changed",
			 ver, PG_SCHEMA_VERSION);
		rc = -EINVAL;
	}
	if (!rc && ver < PG_SCHEMA_VERSION) {
		rc = pg__exec(s,
			      "BEGIN; CREATE TABLE IF NOT EXISTS schema_version ("
			      " version integer PRIMARY KEY,"
			      " applied_at timestamptz NOT NULL DEFAULT now(),"
			      " applied_by text NOT NULL)",
			      err, errlen, "cannot create schema_version");
		for (int v = ver + 1; !rc && v <= PG_SCHEMA_VERSION; v++) {
			rc = pg__exec(s, pg__migrations[v - 1], err, errlen,
				      "schema migration failed");
			snprintf(sql, sizeof(sql),
				 "INSERT INTO schema_version (version, applied_by)"
				 " VALUES (%d, 'buildwarden " BW_VERSION "')",
				 v);
			rc = rc ?: pg__exec(s, sql, err, errlen, "schema migration failed");
		}
		rc = rc ?: pg__exec(s, "COMMIT", err, errlen, "schema migration failed");
		if (rc)
			pg__exec(s, "ROLLBACK", NULL, 0, "");
	}
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", PG_LOCK_MIGRATE);
	pg__exec(s, sql, NULL, 0, "");
	return rc;
}

/* ---- statements ---------------------------------------------------------- */

static int pg__prepare(struct store_pg *s, const char *name, const char *sql, int n,
		       const Oid *types, char *err, size_t errlen)
{
	PGresult *res = PQprepare(s->c, name, sql, n, types);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg__err(s, err, errlen, "cannot prepare a statement", res);
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}

static int pg__prepare_all(struct store_pg *s, char *err, size_t errlen)
{
	static const Oid finding_t[] = { PG_INT8, PG_INT8, PG_TEXT, PG_INT8, PG_INT8, PG_TEXT };
	static const Oid dup_t[] = { PG_INT8, PG_INT8, PG_DATE };
	static const Oid id_t[] = { PG_INT8 };
	static const Oid run_t[] = { PG_TEXT, PG_TEXT };
	int rc = 0;

	if (s->mode == STORE_WRITE) {
		/* every run of the batch in one statement (one round trip, not one per run):
		 * $1 is a JSON array of objects, one per run; each is applied only if the
		 * stored last_seq is still the one the batch was built on (base_seq). Rows
		 * are locked in (agent, run_id) order, whichever collector does it. */
		rc = pg__prepare(s, "upsert",
			"WITH input AS (SELECT * FROM json_to_recordset($1::json) AS x(agent text,"
			" host text, run_id text, first_seen bigint, last_seen bigint, last_seq bigint,"
			" last_chain text, has_run_start integer, has_run_end integer,"
			" run_end_seq bigint, kernel_drops bigint, chain_ok integer, complete integer,"
			" day date, base_seq bigint, ci_repo text, ci_commit text, ci_job text))"
			" INSERT INTO runs AS r (agent, host, run_id, first_seen, last_seen, last_seq,"
			" last_chain, has_run_start, has_run_end, run_end_seq, kernel_drops, chain_ok,"
			" complete, day, ci_repo, ci_commit, ci_job)"
			" SELECT agent, host, run_id, first_seen, last_seen, last_seq,"
			" decode(last_chain, 'hex'), has_run_start, has_run_end, run_end_seq,"
			" kernel_drops, chain_ok, complete, day, ci_repo, ci_commit, ci_job"
			" FROM input ORDER BY agent, run_id"
			" ON CONFLICT (agent, run_id) DO UPDATE SET"
			" ci_repo = coalesce(excluded.ci_repo, r.ci_repo),"
			" ci_commit = coalesce(excluded.ci_commit, r.ci_commit),"
			" ci_job = coalesce(excluded.ci_job, r.ci_job),"
			" last_seen = greatest(r.last_seen, excluded.last_seen),"
			" last_seq = excluded.last_seq, last_chain = excluded.last_chain,"
			" has_run_start = excluded.has_run_start,"
			" has_run_end = excluded.has_run_end, run_end_seq = excluded.run_end_seq,"
			" kernel_drops = excluded.kernel_drops,"
			/* once broken, always broken, whichever collector saw it */
			" chain_ok = least(r.chain_ok, excluded.chain_ok),"
			" complete = least(r.chain_ok, excluded.chain_ok, excluded.complete)"
			" WHERE r.last_seq = (SELECT i.base_seq FROM input i"
			"  WHERE i.agent = excluded.agent AND i.run_id = excluded.run_id)"
			" RETURNING id, (day - date '1970-01-01')::bigint, agent, run_id",
			1, NULL, err, errlen);
		rc = rc ?: pg__prepare(s, "finding",
			"INSERT INTO findings (run, time, kind, first_seq, last_seq, detail)"
			" VALUES ($1, $2, $3, $4, $5, $6)", 6, finding_t, err, errlen);
		rc = rc ?: pg__prepare(s, "seldup",
			"SELECT event, chain FROM events WHERE run = $1 AND seq = $2 AND day = $3",
			3, dup_t, err, errlen);
		rc = rc ?: pg__prepare(s, "taint",
			"UPDATE runs SET chain_ok = 0, complete = 0 WHERE id = $1", 1, id_t,
			err, errlen);
	}
	rc = rc ?: pg__prepare(s, "selrun",
		"SELECT id, host, first_seen, last_seen, last_seq, last_chain, has_run_start,"
		" has_run_end, run_end_seq, kernel_drops, chain_ok FROM runs"
		" WHERE agent = $1 AND run_id = $2", 2, run_t, err, errlen);
	if (!rc)
		s->prepared = true;
	return rc;
}

static PGconn *pg__connect(const char *conninfo, const char *timeout)
{
	const char *kw[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *val[] = { conninfo, timeout, "buildwarden-collector", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);

	if (c)
		PQsetNoticeProcessor(c, pg__quiet, NULL);
	return c;
}

/* A usable connection: after a server restart (or a lookup that timed out) libpq's
 * handle is dead; reconnect and prepare again (prepared statements and settings belong
 * to a session). While the server cannot be reached, one try per backoff period. */
static int pg__ready(struct store_pg *s, char *err, size_t errlen)
{
	if (PQstatus(s->c) != CONNECTION_OK) {
		int64_t now = clock__mono_ns();

		s->prepared = false;
		if (s->backoff_ms && now < s->retry_at) {
			if (err && errlen)
				snprintf(err, errlen,
					 "cannot reach PostgreSQL (the last try failed; the next in %lld ms)",
					 (long long)((s->retry_at - now) / NSEC_PER_MSEC + 1));
			return -EIO;
		}
		s->session++;
		PQfinish(s->c);
		s->c = pg__connect(s->conninfo, PG_RECONNECT_TIMEOUT);
		if (PQstatus(s->c) != CONNECTION_OK) {
			pg__err(s, err, errlen, "cannot reach PostgreSQL", NULL);
			s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
			if (s->backoff_ms > PG_BACKOFF_MAX_MS)
				s->backoff_ms = PG_BACKOFF_MAX_MS;
			s->retry_at = now + (int64_t)s->backoff_ms * NSEC_PER_MSEC;
			return -EIO;
		}
		s->backoff_ms = 0;
	}
	if (!s->prepared) {
		int rc = pg__exec(s, s->sync_normal ? "SET synchronous_commit = off" :
						      "SET synchronous_commit = on",
				  err, errlen, "cannot set synchronous_commit");

		rc = rc ?: pg__prepare_all(s, err, errlen);
		/* events arrive by binary COPY into this session's staging table, then one
		 * INSERT ... SELECT ... ON CONFLICT DO NOTHING moves them (COPY itself
		 * cannot skip a duplicate) */
		if (!rc && s->mode == STORE_WRITE)
			rc = pg__exec(s, "CREATE TEMP TABLE IF NOT EXISTS bw_events_in (LIKE events)"
					 " ON COMMIT DELETE ROWS",
				      err, errlen, "cannot create the staging table");
		if (rc)
			return rc;
	}
	return 0;
}

int store_pg__ready(struct store *bs, char *err, size_t errlen)
{
	return pg__ready((struct store_pg *)bs, err, errlen);
}

PGconn *store_pg__conn(struct store *bs)
{
	return ((struct store_pg *)bs)->c;
}

uint64_t store_pg__session(const struct store *bs)
{
	return ((const struct store_pg *)bs)->session + 1;
}

uint64_t *store_pg__claim(struct store *bs)
{
	return &((struct store_pg *)bs)->claim;
}

int store_pg__open(const char *conninfo, enum store_mode mode, struct store **out, char *err,
		   size_t errlen)
{
	struct store_pg *s = calloc(1, sizeof(*s));
	int rc, ver;

	*out = NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->base.ops = &store_pg__ops;
	s->mode = mode;
	s->conninfo = strdup(conninfo);
	if (!s->conninfo) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* connect_timeout: an address that drops packets fails the start-up in seconds */
	s->c = pg__connect(conninfo, "10");
	if (!s->c || PQstatus(s->c) != CONNECTION_OK) {
		pg__err(s, err, errlen, "cannot connect to PostgreSQL", NULL);
		rc = -EIO;
		goto fail;
	}
	if (mode == STORE_WRITE) {
		rc = pg__migrate(s, err, errlen);
		rc = rc ?: pg__ensure_days(s, err, errlen);
	} else {
		rc = pg__version(s, &ver, err, errlen);
		if (!rc && (ver < 1 || ver > PG_SCHEMA_VERSION)) {
			snprintf(err, errlen,
				 ver ? "the database has schema version %d, newer than this build knows (%d)"
				     : "not a buildwarden collector database (no schema_version table)%.0d",
				 ver, PG_SCHEMA_VERSION);
			rc = -EINVAL;
		}
	}
	rc = rc ?: pg__ready(s, err, errlen);
	if (rc)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	PQfinish(s->c);
	free(s->conninfo);
	free(s);
	return rc;
}

void store_pg__describe(const char *conninfo, char *out, size_t len)
{
	const char *user = "", *host = "", *port = "", *db = "";
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);

	if (!opts) {
		snprintf(out, len, "PostgreSQL (a conninfo libpq cannot parse)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
	}
	snprintf(out, len, "PostgreSQL %s%s%s%s%s%s%s", *user ? user : "", *user ? "@" : "",
		 *host ? host : "(default host)", *port ? ":" : "", port, *db ? "/" : "", db);
	PQconninfoFree(opts);
}

static void pg__close(struct store *bs)
{
	struct store_pg *s = (struct store_pg *)bs;

	PQfinish(s->c);
	free(s->copy);
	free(s->conninfo);
	free(s);
}

static int pg__set_sync(struct store *bs, enum store_sync mode)
{
	struct store_pg *s = (struct store_pg *)bs;

	s->sync_normal = mode == STORE_SYNC_NORMAL;
	return pg__exec(s, s->sync_normal ? "SET synchronous_commit = off" :
					    "SET synchronous_commit = on",
			NULL, 0, "");
}

/* ---- parameters ---------------------------------------------------------- */

/* Parameter arrays for one execution: binary integers and bytea, text as text. */
struct pg_params {
	const char **v;
	int *len, *fmt;
	uint64_t *num; /* storage of the binary integers, one slot per parameter */
	int n, cap;
	bool overflow; /* more parameters than cap: the statement is not run */
};

static int pg__params_init(struct pg_params *p, int cap)
{
	p->v = calloc((size_t)cap, sizeof(*p->v));
	p->len = calloc((size_t)cap, sizeof(*p->len));
	p->fmt = calloc((size_t)cap, sizeof(*p->fmt));
	p->num = calloc((size_t)cap, sizeof(*p->num));
	p->n = 0;
	p->cap = cap;
	return p->v && p->len && p->fmt && p->num ? 0 : -ENOMEM;
}

static void pg__params_free(struct pg_params *p)
{
	free(p->v);
	free(p->len);
	free(p->fmt);
	free(p->num);
}

static void pg__p_null(struct pg_params *p)
{
	if (p->n >= p->cap) {
		p->overflow = true;
		return;
	}
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void pg__p_i64(struct pg_params *p, int64_t v)
{
	if (p->n >= p->cap) {
		p->overflow = true;
		return;
	}
	p->num[p->n] = htobe64((uint64_t)v);
	p->v[p->n] = (const char *)&p->num[p->n];
	p->len[p->n] = 8;
	p->fmt[p->n] = 1;
	p->n++;
}

/* Seqs are checked against INT64_MAX on the wire; counters from the agent are not. */
static int64_t pg__clamp(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void pg__p_i64_or_null(struct pg_params *p, uint64_t v)
{
	if (v)
		pg__p_i64(p, pg__clamp(v));
	else
		pg__p_null(p);
}

static void pg__p_text(struct pg_params *p, const char *s)
{
	if (p->n >= p->cap) {
		p->overflow = true;
		return;
	}
	if (!s) {
		pg__p_null(p);
		return;
	}
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static PGresult *pg__run(struct store_pg *s, const char *stmt, const struct pg_params *p,
			 int result_fmt)
{
	/* a statement given more values than the arrays hold is a bug here: never run it
	 * with some of them missing (NULL: the caller reports the failure) */
	if (p->overflow)
		return NULL;
	return PQexecPrepared(s->c, stmt, p->n, p->v, p->len, p->fmt, result_fmt);
}

/* An integer column of a binary result, whatever its width (store_priv.h). */
int64_t store_pg__bin_int(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	uint64_t u64;
	uint32_t u32;
	uint16_t u16;

	if (PQgetisnull(res, row, col))
		return 0;
	switch (PQftype(res, col)) {
	case PG_INT8:
		memcpy(&u64, v, 8);
		return (int64_t)be64toh(u64);
	case PG_INT4:
		memcpy(&u32, v, 4);
		return (int32_t)be32toh(u32);
	case PG_INT2:
		memcpy(&u16, v, 2);
		return (int16_t)be16toh(u16);
	case PG_BOOL:
		return v[0] != 0;
	default:
		return strtoll(v, NULL, 10);
	}
}

/* ---- apply --------------------------------------------------------------- */

struct pg_apply {
	struct store_pg *s;
	struct pg_map *map;
	size_t n_map;
	struct pg_params p;
	int32_t missing_day; /* a run's partition this store has not ensured */
	bool staging;        /* a COPY met a stored (run, seq): this try goes by staging */
};

static int pg__map_cmp(const void *a, const void *b)
{
	const struct pg_map *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

static struct pg_map *pg__map_find(const struct pg_apply *a, int64_t local)
{
	struct pg_map key = { .from = local };

	return bsearch(&key, a->map, a->n_map, sizeof(key), pg__map_cmp);
}

/* One run as an object of the upsert's JSON array. */
static void pg__run_json(FILE *f, const struct batch_run *br)
{
	const struct run_rec *r = &br->rec;
	char day[16], chain_hex[2 * BW_CHAIN_LEN + 1];

	pg__day_str(pg__day_of(r->first_seen), day, sizeof(day), false);
	fputs("{\"agent\":", f);
	json_out__str(f, r->agent);
	fputs(",\"host\":", f);
	json_out__str(f, r->host);
	fputs(",\"run_id\":", f);
	json_out__str(f, r->run_id);
	fprintf(f, ",\"first_seen\":%lld,\"last_seen\":%lld,\"last_seq\":%lld,\"last_chain\":\"",
		(long long)r->first_seen, (long long)r->last_seen, (long long)pg__clamp(r->last_seq));
	hex__encode(r->last_chain, BW_CHAIN_LEN, chain_hex);
	fputs(chain_hex, f);
	fprintf(f, "\",\"has_run_start\":%d,\"has_run_end\":%d,\"run_end_seq\":", r->has_run_start,
		r->has_run_end);
	if (r->run_end_seq)
		fprintf(f, "%lld", (long long)pg__clamp(r->run_end_seq));
	else
		fputs("null", f);
	fprintf(f, ",\"kernel_drops\":%lld,\"chain_ok\":%d,\"complete\":%d,\"day\":\"%s\","
		   "\"base_seq\":%lld",
		(long long)pg__clamp(r->kernel_drops), r->chain_ok, run_rec__complete(r), day,
		(long long)pg__clamp(br->base_seq));
	fputs(",\"ci_repo\":", f);
	r->ci_repo[0] ? json_out__str(f, r->ci_repo) : (void)fputs("null", f);
	fputs(",\"ci_commit\":", f);
	r->ci_commit[0] ? json_out__str(f, r->ci_commit) : (void)fputs("null", f);
	fputs(",\"ci_job\":", f);
	r->ci_job[0] ? json_out__str(f, r->ci_job) : (void)fputs("null", f);
	fputc('}', f);
}

/* Upserts every run of the batch not marked stale (one statement) and maps each to its
 * database id and day. -ESTALE when a run was advanced by another collector since this
 * one read it (it is marked stale), -EAGAIN when a run's day partition is not known to
 * exist (a->missing_day). */
static int pg__upsert_runs(struct pg_apply *a, struct batch *b, char *err, size_t errlen)
{
	char *json = NULL;
	size_t jlen = 0;
	const char *v[1];
	PGresult *res;
	FILE *f;
	int rc = 0;

	a->n_map = 0;
	if (!b->n_runs)
		return 0;
	f = open_memstream(&json, &jlen);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fputc('[', f);
	for (size_t i = 0, n = 0; i < b->n_runs; i++) {
		if (b->runs[i].stale)
			continue;
		if (n++)
			fputc(',', f);
		pg__run_json(f, &b->runs[i]);
	}
	fputc(']', f);
	if (fclose(f) || !json) {
		free(json);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v[0] = json;
	res = PQexecPrepared(a->s->c, "upsert", 1, v, NULL, NULL, 1);
	free(json);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg__err(a->s, err, errlen, "store the runs", res);
		PQclear(res);
		return -EIO;
	}
	for (size_t i = 0; i < b->n_runs && rc != -EAGAIN; i++) {
		const struct run_rec *r = &b->runs[i].rec;
		struct pg_map *m = &a->map[a->n_map];
		int row;

		m->from = r->id;
		m->first_seq = m->last_seq = 0;
		m->stale = b->runs[i].stale;
		if (m->stale) {
			a->n_map++;
			continue;
		}
		/* RETURNING's order is not promised: find the run's row */
		for (row = 0; row < PQntuples(res); row++)
			if (!strcmp(PQgetvalue(res, row, 2), r->agent) &&
			    !strcmp(PQgetvalue(res, row, 3), r->run_id))
				break;
		if (row == PQntuples(res)) {
			/* another collector advanced it: this try is rolled back, the next
			 * one leaves the run out */
			b->runs[i].stale = true;
			rc = -ESTALE;
			continue;
		}
		m->to = store_pg__bin_int(res, row, 0);
		m->day = (int32_t)store_pg__bin_int(res, row, 1);
		pg__day_str(m->day, m->daystr, sizeof(m->daystr), false);
		a->n_map++;
		if (!pg__day_known(a->s, m->day)) {
			a->missing_day = m->day;
			rc = -EAGAIN;
		}
	}
	PQclear(res);
	return rc;
}

static int pg__finding(struct pg_apply *a, int64_t run, int64_t time_ns, const char *kind,
		       uint64_t first, uint64_t last, const char *detail, char *err,
		       size_t errlen)
{
	const struct pg_map *m = pg__map_find(a, run);
	PGresult *res;
	int rc = 0;

	if (!m) {
		snprintf(err, errlen, "store a finding: run %lld is not in the batch",
			 (long long)run);
		return -EIO;
	}
	if (m->stale)
		return 0;
	a->p.n = 0;
	pg__p_i64(&a->p, m->to);
	pg__p_i64(&a->p, time_ns);
	pg__p_text(&a->p, kind);
	pg__p_i64_or_null(&a->p, first);
	pg__p_i64_or_null(&a->p, last);
	pg__p_text(&a->p, detail);
	res = pg__run(a->s, "finding", &a->p, 1);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg__err(a->s, err, errlen, "store a finding", res);
		rc = -EIO;
	} else {
		a->s->base.st.findings++;
	}
	PQclear(res);
	return rc;
}

/* A seq at or below what is stored: an identical re-send (after a reconnect, to this
 * or another collector) is ignored; anything else is recorded and taints the run. */
static int pg__dupcheck(struct pg_apply *a, const struct bop_event *e, char *err, size_t errlen)
{
	const struct pg_map *m = pg__map_find(a, e->run);
	const char *kind = NULL;
	char detail[160];
	PGresult *res;
	int rc;

	if (!m) {
		snprintf(err, errlen, "check a duplicate: run %lld is not in the batch",
			 (long long)e->run);
		return -EIO;
	}
	if (m->stale)
		return 0;
	a->p.n = 0;
	pg__p_i64(&a->p, m->to);
	pg__p_i64(&a->p, pg__clamp(e->seq));
	pg__p_text(&a->p, m->daystr);
	res = pg__run(a->s, "seldup", &a->p, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg__err(a->s, err, errlen, "check a duplicate", res);
		PQclear(res);
		return -EIO;
	}
	if (PQntuples(res) == 1) {
		size_t evlen = (size_t)PQgetlength(res, 0, 0);
		size_t chlen = (size_t)PQgetlength(res, 0, 1);

		if (evlen == e->event_len && chlen == e->chain_len &&
		    (!evlen || memcmp(PQgetvalue(res, 0, 0), e->event, evlen) == 0) &&
		    (!chlen || memcmp(PQgetvalue(res, 0, 1), e->chain, chlen) == 0)) {
			a->s->base.st.dups_identical++;
		} else {
			kind = "duplicate_mismatch";
			snprintf(detail, sizeof(detail),
				 "seq %llu sent again with other content (%zu event bytes stored, %zu sent)",
				 (unsigned long long)e->seq, evlen, e->event_len);
		}
	} else {
		kind = "seq_backwards";
		snprintf(detail, sizeof(detail),
			 "seq %llu is below the run's resume point and was never stored (in a gap or skip)",
			 (unsigned long long)e->seq);
	}
	PQclear(res);
	if (!kind)
		return 0;
	rc = pg__finding(a, e->run, clock__real_ns(), kind, e->seq, e->seq, detail, err, errlen);
	if (rc)
		return rc;
	a->p.n = 0;
	pg__p_i64(&a->p, m->to);
	res = pg__run(a->s, "taint", &a->p, 1);
	rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;
	if (rc)
		pg__err(a->s, err, errlen, "taint a run", res);
	PQclear(res);
	return rc;
}

/* ---- the export log --------------------------------------------------------- */

/* Widens a run's range of this batch's seqs. */
static void pg__map_seq(struct pg_map *m, uint64_t seq)
{
	if (!m->first_seq || seq < m->first_seq)
		m->first_seq = seq;
	if (seq > m->last_seq)
		m->last_seq = seq;
}

/* Appends "v," to a text array being built; false when it does not fit. */
static bool pg__arr_add(char *buf, size_t len, size_t *used, int64_t v)
{
	int n = snprintf(buf + *used, len - *used, "%s%lld", *used > 1 ? "," : "", (long long)v);

	if (n < 0 || (size_t)n >= len - *used)
		return false;
	*used += (size_t)n;
	return true;
}

/* Commits the batch's transaction, first writing in it one export_log row per run the
 * batch wrote events of (the export numbers them once committed: store_pg_tail.c).
 * One round trip: the numbers are inlined (digits and commas only) and COMMIT follows
 * in the same query string, which PostgreSQL stops at the first error. */
static int pg__export_log_commit(struct pg_apply *a, char *err, size_t errlen)
{
	static const char ins[] =
		"INSERT INTO export_log (xact, run, day, first_seq, last_seq)"
		" SELECT pg_current_xact_id(), u.r, date '1970-01-01' + u.d::integer, u.f, u.l"
		" FROM unnest('%s'::bigint[], '%s'::bigint[], '%s'::bigint[], '%s'::bigint[])"
		" AS u(r, d, f, l); COMMIT";
	size_t cap = 32 + a->n_map * 24, used[4] = { 1, 1, 1, 1 };
	char *arr[4] = { NULL }, *sql = NULL;
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < a->n_map; i++)
		n += a->map[i].first_seq != 0;
	if (!n)
		return pg__exec(a->s, "COMMIT", err, errlen, "commit");
	for (int k = 0; k < 4; k++) {
		arr[k] = malloc(cap);
		if (arr[k])
			arr[k][0] = '{', arr[k][1] = 0;
	}
	sql = malloc(sizeof(ins) + 4 * cap);
	if (!arr[0] || !arr[1] || !arr[2] || !arr[3] || !sql) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < a->n_map; i++) {
		const struct pg_map *m = &a->map[i];

		if (!m->first_seq)
			continue;
		if (!pg__arr_add(arr[0], cap, &used[0], m->to) ||
		    !pg__arr_add(arr[1], cap, &used[1], m->day) ||
		    !pg__arr_add(arr[2], cap, &used[2], pg__clamp(m->first_seq)) ||
		    !pg__arr_add(arr[3], cap, &used[3], pg__clamp(m->last_seq))) {
			snprintf(err, errlen, "log the batch for export: internal error (array)");
			rc = -EIO;
			goto out;
		}
	}
	for (int k = 0; k < 4; k++)
		snprintf(arr[k] + used[k], cap - used[k], "}");
	snprintf(sql, sizeof(ins) + 4 * cap, ins, arr[0], arr[1], arr[2], arr[3]);
	rc = pg__exec(a->s, sql, err, errlen, "log the batch for export and commit");
out:
	for (int k = 0; k < 4; k++)
		free(arr[k]);
	free(sql);
	return rc;
}

/* ---- binary COPY ---------------------------------------------------------- */

static bool pg__put(struct store_pg *s, const void *p, size_t n)
{
	if (s->copy_len + n > s->copy_cap) {
		size_t cap = s->copy_cap ? s->copy_cap : 1 << 20;
		uint8_t *nb;

		while (cap < s->copy_len + n)
			cap *= 2;
		nb = realloc(s->copy, cap);
		if (!nb)
			return false;
		s->copy = nb;
		s->copy_cap = cap;
	}
	memcpy(s->copy + s->copy_len, p, n);
	s->copy_len += n;
	return true;
}

static bool pg__put_field(struct store_pg *s, const void *p, int32_t len)
{
	uint32_t be = htobe32((uint32_t)len);

	return pg__put(s, &be, 4) && (len <= 0 || pg__put(s, p, (size_t)len));
}

static bool pg__put_i64(struct store_pg *s, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);

	return pg__put_field(s, &be, 8);
}

static bool pg__put_i32(struct store_pg *s, int32_t v)
{
	uint32_t be = htobe32((uint32_t)v);

	return pg__put_field(s, &be, 4);
}

static bool pg__put_text(struct store_pg *s, const char *t)
{
	return t ? pg__put_field(s, t, (int32_t)strlen(t)) : pg__put_field(s, NULL, -1);
}

/* One events row in COPY's binary tuple format (columns in table order). */
static bool pg__put_event(struct store_pg *s, const struct pg_map *m, const struct bop_event *e)
{
	uint16_t ncols = htobe16(PG_EVENT_COLS);

	return pg__put(s, &ncols, 2) && pg__put_i64(s, m->to) &&
	       pg__put_i64(s, pg__clamp(e->seq)) &&
	       /* date: days since 2000-01-01 */
	       pg__put_i32(s, m->day - 10957) &&
	       (e->time_ns ? pg__put_i64(s, pg__clamp(e->time_ns)) : pg__put_field(s, NULL, -1)) &&
	       pg__put_i64(s, e->received_ns) && pg__put_text(s, e->kind) &&
	       pg__put_i32(s, e->violation) && pg__put_text(s, e->rule) &&
	       pg__put_text(s, e->action) &&
	       (e->pid ? pg__put_i64(s, e->pid) : pg__put_field(s, NULL, -1)) &&
	       pg__put_text(s, e->exe) && pg__put_text(s, e->path) && pg__put_text(s, e->address) &&
	       (e->port ? pg__put_i32(s, (int32_t)e->port) : pg__put_field(s, NULL, -1)) &&
	       pg__put_i32(s, (int32_t)e->flags) &&
	       pg__put_field(s, e->chain, (int32_t)e->chain_len) &&
	       pg__put_field(s, e->event, (int32_t)e->event_len);
}

/* Sends the COPY stream built in s->copy with the COPY statement sql. 0, or -EIO with
 * err set and state the SQLSTATE of the failure ("" if none). */
static int pg__copy_in(struct store_pg *s, const char *sql, char state[8], char *err,
		       size_t errlen)
{
	PGresult *res = PQexec(s->c, sql);
	int rc = 0;

	state[0] = 0;
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		pg__err(s, err, errlen, "store events (COPY)", res);
		PQclear(res);
		return -EIO;
	}
	PQclear(res);
	if (PQputCopyData(s->c, (const char *)s->copy, (int)s->copy_len) != 1 ||
	    PQputCopyEnd(s->c, NULL) != 1) {
		pg__err(s, err, errlen, "store events (COPY)", NULL);
		rc = -EIO;
	}
	while ((res = PQgetResult(s->c))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			snprintf(state, 8, "%s", st ? st : "");
			pg__err(s, err, errlen, "store events (COPY)", res);
			rc = -EIO;
		}
		PQclear(res);
	}
	return rc;
}

/* n consecutive event ops: COPY into events; if some (run, seq) is stored already, COPY
 * into the staging table and from there into events, skipping those, which are then
 * compared with what is stored. */
static int pg__copy_events(struct pg_apply *a, const struct bop *ops, size_t n, char *err,
			   size_t errlen)
{
	static const uint8_t head[19] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
	struct store_pg *s = a->s;
	uint16_t trailer = 0xffff;
	char state[8];
	PGresult *res;
	size_t n_put = 0;
	long inserted;
	int rc = 0;

	s->copy_len = 0;
	if (!pg__put(s, head, sizeof(head)))
		goto oom;
	for (size_t r = 0; r < n; r++) {
		struct pg_map *m = pg__map_find(a, ops[r].ev.run);

		if (!m) {
			snprintf(err, errlen, "store an event: run %lld is not in the batch",
				 (long long)ops[r].ev.run);
			return -EIO;
		}
		if (m->stale)
			continue;
		n_put++;
		if (!pg__put_event(s, m, &ops[r].ev))
			goto oom;
		pg__map_seq(m, ops[r].ev.seq);
	}
	if (!pg__put(s, &trailer, 2))
		goto oom;
	if (!n_put)
		return 0; /* all of stale runs */
	/* The usual case, no (run, seq) stored yet: COPY straight into events. A
	 * duplicate (a race between collectors, a re-send) fails the COPY with a unique
	 * violation: -EEXIST, and the caller applies the whole batch again, this time
	 * through the staging table, which can skip it. (Not a savepoint around the COPY:
	 * that costs two round trips and a subtransaction on every batch, for a case that
	 * is rare.) */
	if (!a->staging) {
		rc = pg__copy_in(s, "COPY events " PG_EVENT_COLLIST " FROM STDIN (FORMAT binary)",
				 state, err, errlen);
		if (!rc)
			s->base.st.events += n_put;
		return rc && !strcmp(state, "23505") ? -EEXIST : rc;
	}
	rc = pg__copy_in(s, "COPY bw_events_in " PG_EVENT_COLLIST " FROM STDIN (FORMAT binary)",
			 state, err, errlen);
	if (rc)
		return rc;
	/* named columns: xact takes its default, this transaction's id */
	res = PQexec(s->c, "INSERT INTO events " PG_EVENT_COLLIST " SELECT run, seq, day, time_ns,"
			   " received_ns, kind, violation, rule, action, pid, exe, path, address,"
			   " port, flags, chain, event FROM bw_events_in ON CONFLICT DO NOTHING");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg__err(s, err, errlen, "store events", res);
		PQclear(res);
		return -EIO;
	}
	inserted = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	rc = pg__exec(s, "TRUNCATE bw_events_in", err, errlen, "store events");
	if (rc)
		return rc;
	s->base.st.events += (uint64_t)inserted;
	if ((size_t)inserted == n_put)
		return 0;
	for (size_t r = 0; r < n && !rc; r++)
		rc = pg__dupcheck(a, &ops[r].ev, err, errlen);
	return rc;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static int pg__apply_once(struct pg_apply *a, struct batch *b, char *err, size_t errlen)
{
	struct store_pg *s = a->s;
	size_t i;
	int rc;

	rc = pg__exec(s, "BEGIN", err, errlen, "cannot begin a transaction");
	if (rc)
		return rc;
	/* Runs first, locked in (agent, run_id) order whichever collector does it (a
	 * deadlock, were there one, fails one of them, which then re-syncs its agents). */
	rc = pg__upsert_runs(a, b, err, errlen);
	if (!rc)
		qsort(a->map, a->n_map, sizeof(*a->map), pg__map_cmp);
	for (i = 0; i < b->n_ops && !rc; i++) {
		const struct bop *op = &b->ops[i];
		size_t k;

		/* consecutive events (nearly the whole batch): one COPY */
		for (k = 0; i + k < b->n_ops && b->ops[i + k].kind == BOP_EVENT; k++)
			;
		if (k) {
			rc = pg__copy_events(a, op, k, err, errlen);
			i += k - 1;
			continue;
		}
		switch (op->kind) {
		case BOP_EVENT:
			break;
		case BOP_DUPCHECK:
			rc = pg__dupcheck(a, &op->ev, err, errlen);
			break;
		case BOP_FINDING:
			rc = pg__finding(a, op->fi.run, op->fi.time_ns, op->fi.kind,
					 op->fi.first_seq, op->fi.last_seq, op->fi.detail, err,
					 errlen);
			break;
		}
	}
	/* the Ack follows this: only a COMMIT that PostgreSQL confirmed counts */
	rc = rc ?: pg__export_log_commit(a, err, errlen);
	if (rc) {
		pg__exec(s, "ROLLBACK", NULL, 0, "");
		return rc;
	}
	s->base.st.commits++;
	return 0;
}

static int pg__apply(struct store *bs, struct batch *b, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)bs;
	struct pg_apply a = { .s = s };
	struct store_stats before = s->base.st;
	int rc, tries = 0;
	size_t stale_tries = 0;

	rc = pg__ready(s, err, errlen);
	if (rc)
		return rc;
	a.map = calloc(b->n_runs ? b->n_runs : 1, sizeof(*a.map));
	if (!a.map || pg__params_init(&a.p, 32)) {
		free(a.map);
		pg__params_free(&a.p);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		a.missing_day = 0;
		rc = pg__apply_once(&a, b, err, errlen);
		if (rc == -ESTALE && stale_tries++ < b->n_runs) {
			/* a run another collector advanced is marked stale now: the rest of
			 * the batch again, without it (its agent re-syncs; not every agent
			 * of this batch) */
			s->base.st = before;
			continue;
		}
		if (rc == -EEXIST && !a.staging && tries++ <= 4) {
			/* a (run, seq) is stored already: again, by the staging table */
			s->base.st = before;
			a.staging = true;
			continue;
		}
		if (rc != -EAGAIN || tries++ > 4)
			break;
		/* a run of a day whose partition this collector has not made: make it
		 * outside the batch's transaction, then apply the batch again */
		s->base.st = before;
		rc = pg__ensure_day(s, a.missing_day, err, errlen);
		if (rc)
			break;
	}
	if (rc)
		s->base.st = before;
	free(a.map);
	pg__params_free(&a.p);
	if (rc)
		return rc == -EAGAIN || rc == -EEXIST || rc == -ESTALE ? -EIO : rc;
	/* committed: say which run was left out, if one was */
	err[0] = 0;
	for (size_t i = 0; i < b->n_runs; i++) {
		if (!b->runs[i].stale)
			continue;
		snprintf(err, errlen,
			 "run %s of agent %s was advanced by another collector since seq %llu:"
			 " left out of the batch, its agent re-sends from the stored state",
			 b->runs[i].rec.run_id, b->runs[i].rec.agent,
			 (unsigned long long)b->runs[i].base_seq);
		break;
	}
	return 0;
}

/* ---- reads --------------------------------------------------------------- */

/* Runs a prepared statement waiting at most ms for the server; binary results. On a
 * timeout the connection is dropped (its answer would come to a later call), and
 * pg__ready makes a new one. NULL when it failed or timed out. */
static PGresult *pg__exec_bounded(struct store_pg *s, const char *stmt, int n,
				  const char *const *v, int ms)
{
	int64_t end = clock__mono_ns() + (int64_t)ms * NSEC_PER_MSEC;
	PGresult *last = NULL, *r;

	if (!PQsendQueryPrepared(s->c, stmt, n, v, NULL, NULL, 1))
		return NULL;
	for (;;) {
		while (PQisBusy(s->c)) {
			int64_t left = (end - clock__mono_ns()) / NSEC_PER_MSEC;
			struct pollfd pfd = { .fd = PQsocket(s->c), .events = POLLIN };

			if (left <= 0 || poll(&pfd, 1, (int)left) == 0 ||
			    !PQconsumeInput(s->c)) {
				PQclear(last);
				PQfinish(s->c);
				s->c = NULL;
				return NULL;
			}
		}
		r = PQgetResult(s->c);
		if (!r)
			return last;
		PQclear(last);
		last = r;
	}
}

static int pg__lookup_run(struct store *bs, const char *agent, const char *run_id,
			  struct run_rec *out)
{
	struct store_pg *s = (struct store_pg *)bs;
	const char *v[2] = { agent, run_id };
	PGresult *res;
	int rc;

	if (pg__ready(s, NULL, 0))
		return -EIO;
	/* on the event loop: a server that does not answer must not hold every
	 * connection of this collector for long */
	res = pg__exec_bounded(s, "selrun", 2, v, PG_LOOKUP_MS);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = -EIO;
	} else if (PQntuples(res) == 0) {
		rc = 0;
	} else {
		memset(out, 0, sizeof(*out));
		out->id = store_pg__bin_int(res, 0, 0);
		snprintf(out->agent, sizeof(out->agent), "%s", agent);
		snprintf(out->run_id, sizeof(out->run_id), "%s", run_id);
		snprintf(out->host, sizeof(out->host), "%s", PQgetvalue(res, 0, 1));
		out->first_seen = store_pg__bin_int(res, 0, 2);
		out->last_seen = store_pg__bin_int(res, 0, 3);
		out->last_seq = (uint64_t)store_pg__bin_int(res, 0, 4);
		if (PQgetlength(res, 0, 5) == BW_CHAIN_LEN)
			memcpy(out->last_chain, PQgetvalue(res, 0, 5), BW_CHAIN_LEN);
		out->has_run_start = store_pg__bin_int(res, 0, 6);
		out->has_run_end = store_pg__bin_int(res, 0, 7);
		out->run_end_seq = (uint64_t)store_pg__bin_int(res, 0, 8);
		out->kernel_drops = (uint64_t)store_pg__bin_int(res, 0, 9);
		out->chain_ok = store_pg__bin_int(res, 0, 10);
		rc = 1;
	}
	PQclear(res);
	return rc;
}

static int pg__max_run_id(struct store *bs, int64_t *out)
{
	*out = PG_LOCAL_BASE;
	return 0;
}

/* Retention: drops the events partitions of days before the cutoff's day, then the
 * runs that started on them and their findings. One collector at a time (the others
 * skip the round); partitions for the coming days are made on the way. */
static int pg__retain(struct store *bs, int64_t cutoff_ns, size_t max_rows, bool *more,
		      char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)bs;
	int32_t cutoff = pg__day_of(cutoff_ns);
	char sql[512], day[16];
	PGresult *res;
	int rc;

	rc = pg__ready(s, err, errlen);
	rc = rc ?: pg__ensure_days(s, err, errlen);
	if (rc)
		return rc;
	snprintf(sql, sizeof(sql),
		 "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
		 " WHERE i.inhparent = 'events'::regclass ORDER BY c.relname");
	res = PQexec(s->c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg__err(s, err, errlen, "retention: cannot list partitions", res);
		PQclear(res);
		return -EIO;
	}
	rc = pg__exec(s, "BEGIN", err, errlen, "retention");
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)", PG_LOCK_DDL);
	rc = rc ?: pg__exec(s, sql, err, errlen, "retention");
	for (int i = 0; !rc && i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		char want[32];

		pg__day_str(cutoff, day, sizeof(day), true);
		snprintf(want, sizeof(want), "events_p%s", day);
		/* names sort as their days do: events_pYYYYMMDD */
		if (strlen(name) != strlen(want) || strncmp(name, "events_p", 8) ||
		    strcmp(name, want) >= 0)
			continue;
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
		rc = pg__exec(s, sql, err, errlen, "retention: cannot drop a partition");
	}
	PQclear(res);
	pg__day_str(cutoff, day, sizeof(day), false);
	snprintf(sql, sizeof(sql),
		 "DELETE FROM findings WHERE run IN (SELECT id FROM runs WHERE day < '%s');"
		 " DELETE FROM export_log WHERE day < '%s';"
		 " DELETE FROM runs WHERE day < '%s'",
		 day, day, day);
	rc = rc ?: pg__exec(s, sql, err, errlen, "retention: cannot delete old runs");
	rc = rc ?: pg__exec(s, "COMMIT", err, errlen, "retention");
	if (rc) {
		pg__exec(s, "ROLLBACK", NULL, 0, "");
		return rc;
	}
	/* forget dropped days: a run of one would recreate its partition */
	for (size_t i = 0; i < s->n_days;)
		if (s->days[i] < cutoff)
			s->days[i] = s->days[--s->n_days];
		else
			i++;
	return 0;
}

static bool pg__res_null(const struct store_res *r, int col)
{
	return PQgetisnull(r->h, r->row, col);
}

static const char *pg__res_text(const struct store_res *r, int col)
{
	return PQgetisnull(r->h, r->row, col) ? NULL : PQgetvalue(r->h, r->row, col);
}

static int64_t pg__res_num(const struct store_res *r, int col)
{
	return store_pg__bin_int(r->h, r->row, col);
}

static const void *pg__res_blob(const struct store_res *r, int col, size_t *len)
{
	*len = (size_t)PQgetlength(r->h, r->row, col);
	return PQgetisnull(r->h, r->row, col) ? NULL : PQgetvalue(r->h, r->row, col);
}

static const struct store_res_ops pg__res_ops = {
	.null = pg__res_null,
	.text = pg__res_text,
	.num = pg__res_num,
	.blob = pg__res_blob,
};

/* The shared dialect's ":name" parameters as $n, outside quoted strings. */
static int pg__translate(const char *sql, const struct store_param *params, size_t n_params,
			 char *out, size_t outlen, int *order, int *n_order, char *err,
			 size_t errlen)
{
	size_t o = 0;
	bool quoted = false;

	*n_order = 0;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (!quoted && *p == ':' && ((p[1] >= 'a' && p[1] <= 'z') || p[1] == '_')) {
			size_t n = 1;
			int idx = -1, k;

			while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_')
				n++;
			for (size_t i = 0; i < n_params; i++)
				if (strlen(params[i].name) == n && !strncmp(params[i].name, p, n))
					idx = (int)i;
			if (idx < 0) {
				snprintf(err, errlen, "query failed: no value for %.*s", (int)n, p);
				return -EINVAL;
			}
			for (k = 0; k < *n_order && order[k] != idx; k++)
				;
			if (k == *n_order) {
				if (*n_order >= 16)
					return -E2BIG;
				order[(*n_order)++] = idx;
			}
			if (o + 8 >= outlen)
				return -E2BIG;
			o += (size_t)snprintf(out + o, outlen - o, "$%d", k + 1);
			p += n - 1;
			continue;
		}
		if (o + 1 >= outlen)
			return -E2BIG;
		out[o++] = *p;
	}
	out[o] = 0;
	return 0;
}

static int pg__query(struct store *bs, const char *sql, const struct store_param *params,
		     size_t n_params, int (*fn)(void *arg, const struct store_res *r), void *arg,
		     char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)bs;
	struct store_res res = { .ops = &pg__res_ops };
	char text[8192], nums[16][24];
	const char *v[16];
	int order[16], n, rc;
	PGresult *pr;

	rc = pg__translate(sql, params, n_params, text, sizeof(text), order, &n, err, errlen);
	if (rc) {
		if (rc == -E2BIG)
			snprintf(err, errlen, "query failed: the query is too long");
		return -EIO;
	}
	for (int i = 0; i < n; i++) {
		const struct store_param *p = &params[order[i]];

		if (p->text) {
			v[i] = p->text;
		} else if (!strcmp(p->name, ":limit") && p->num < 0) {
			v[i] = NULL; /* LIMIT NULL: no limit */
		} else {
			snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p->num);
			v[i] = nums[i];
		}
	}
	if (pg__ready(s, err, errlen))
		return -EIO;
	pr = PQexecParams(s->c, text, n, NULL, v, NULL, NULL, 1);
	if (PQresultStatus(pr) != PGRES_TUPLES_OK) {
		pg__err(s, err, errlen, "query failed", pr);
		PQclear(pr);
		return -EIO;
	}
	res.h = pr;
	for (int r = 0; r < PQntuples(pr); r++) {
		res.row = r;
		if (fn(arg, &res))
			break;
	}
	PQclear(pr);
	return 0;
}

static const struct store_ops store_pg__ops = {
	.engine = STORE_PG,
	.close = pg__close,
	.set_sync = pg__set_sync,
	.apply = pg__apply,
	.lookup_run = pg__lookup_run,
	.max_run_id = pg__max_run_id,
	.retain = pg__retain,
	.query = pg__query,
	.tail = store_pg__tail,
	/* no tail_max: positions are never handed out again (export_next only grows) */
	.tail_claim = store_pg__tail_claim,
	.tail_claimed = store_pg__tail_claimed,
	.tail_cursor_load = store_pg__tail_cursor_load,
	.tail_cursor_save = store_pg__tail_cursor_save,
};
