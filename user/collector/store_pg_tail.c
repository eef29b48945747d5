// SPDX-License-Identifier: GPL-2.0
/* store__tail for the PostgreSQL store: export positions in commit order although
 * several collectors commit at once (docs/collector.md, "Export from PostgreSQL").
 *
 * A batch transaction stamps its events with its transaction id (events.xact) and
 * writes one export_log row per run it wrote, (xact, run, day, first_seq, last_seq).
 * Row ids handed out at insert time would not do: a transaction that took ids 100-199
 * can commit after one that took 200-299, and a reader at 299 would skip 100-199.
 *
 * So positions are handed out after the commit. The sequencer (any exporter, one at a
 * time under a transaction-level advisory lock) numbers the log rows that are not
 * numbered yet and that its snapshot sees, that is of committed batches, each with
 * its events (the same transaction: all or nothing). It gives each log row the range
 * [pos, pos_end) of positions, as many as the events its transaction stored for that
 * run, contiguous after the last range (export_next). An event's position is pos plus
 * its rank by seq among those events. Sequencer transactions commit one after the
 * other, and a batch that commits late is numbered by the next one, after everything
 * numbered before: a reader sees a prefix of the positions, so "every position after
 * the cursor" misses nothing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "collector/store_priv.h"

/* Log rows numbered per sequencer transaction, at most. */
#define PG_SEQ_ROWS 4096

/* Numbers the log rows of committed batches. 0, or -EIO. */
static int pg_tail__sequence(struct store *s)
{
	static const char sql[] =
		"BEGIN;"
		" SELECT pg_advisory_xact_lock(%lld);"
		/* a new statement, a new snapshot: it sees the previous sequencer's commit */
		" WITH ready AS ("
		"  SELECT l.xact, l.run, l.day, l.first_seq, l.last_seq, l.legacy FROM export_log l"
		"  WHERE l.pos IS NULL ORDER BY l.xact, l.run LIMIT %d),"
		" counted AS ("
		"  SELECT r.xact, r.run, (SELECT count(*) FROM events e WHERE e.run = r.run"
		"   AND e.day = r.day AND e.seq BETWEEN r.first_seq AND r.last_seq"
		"   AND (e.xact = r.xact OR (r.legacy AND e.xact IS NULL))) AS n FROM ready r),"
		" numbered AS ("
		"  SELECT c.xact, c.run, (SELECT next FROM export_next) - c.n"
		"   + sum(c.n) OVER (ORDER BY c.xact, c.run ROWS UNBOUNDED PRECEDING) AS pos,"
		"   c.n FROM counted c),"
		" upd AS ("
		"  UPDATE export_log l SET pos = nb.pos, pos_end = nb.pos + nb.n FROM numbered nb"
		"  WHERE l.xact = nb.xact AND l.run = nb.run RETURNING nb.n)"
		/* only when it numbered something: an idle poll then writes nothing (no
		 * xid, no WAL flush at COMMIT, no dead row version of export_next) */
		" UPDATE export_next SET next = next + u.n FROM (SELECT sum(n) AS n FROM upd) u"
		" WHERE u.n > 0;"
		" COMMIT";
	char text[sizeof(sql) + 64];
	PGconn *c = store_pg__conn(s);
	PGresult *res;
	int rc = 0;

	snprintf(text, sizeof(text), sql, (long long)PG_LOCK_EXPORT_SEQ, PG_SEQ_ROWS);
	res = PQexec(c, text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = -EIO;
	PQclear(res);
	if (rc) {
		res = PQexec(c, "ROLLBACK");
		PQclear(res);
	}
	return rc;
}

int store_pg__tail(struct store *s, int64_t after, size_t max,
		   int (*fn)(void *arg, const struct store_row *r), void *arg)
{
	/* the log rows holding positions (after, after + max], their events ranked by seq */
	static const char sql[] =
		"SELECT x.id, r.agent, r.host, r.run_id, x.seq, x.received_ns, x.kind, x.flags,"
		" x.event FROM ("
		"  SELECT l.pos + row_number() OVER (PARTITION BY l.xact, l.run ORDER BY e.seq) - 1"
		"   AS id, l.run, e.seq, e.received_ns, e.kind, e.flags, e.event"
		"  FROM export_log l JOIN events e ON e.run = l.run AND e.day = l.day"
		"   AND e.seq BETWEEN l.first_seq AND l.last_seq"
		"   AND (e.xact = l.xact OR (l.legacy AND e.xact IS NULL))"
		"  WHERE l.pos IS NOT NULL AND l.pos_end > $1::bigint AND l.pos <= $1::bigint + $2::bigint"
		" ) x JOIN runs r ON r.id = x.run"
		" WHERE x.id > $1::bigint AND x.id <= $1::bigint + $2::bigint ORDER BY x.id";
	char a[24], m[24];
	const char *v[2] = { a, m };
	PGresult *res;
	int stop = 0;

	if (store_pg__ready(s, NULL, 0) || pg_tail__sequence(s))
		return -EIO;
	snprintf(a, sizeof(a), "%" PRId64, after);
	snprintf(m, sizeof(m), "%zu", max);
	res = PQexecParams(store_pg__conn(s), sql, 2, NULL, v, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return -EIO;
	}
	for (int i = 0; i < PQntuples(res) && !stop; i++) {
		struct store_row r = {
			.id = store_pg__bin_int(res, i, 0),
			.agent = PQgetvalue(res, i, 1),
			.host = PQgetvalue(res, i, 2),
			.run_id = PQgetvalue(res, i, 3),
			.seq = (uint64_t)store_pg__bin_int(res, i, 4),
			.received_ns = store_pg__bin_int(res, i, 5),
			.kind = PQgetvalue(res, i, 6),
			.flags = (uint32_t)store_pg__bin_int(res, i, 7),
			.event = (const uint8_t *)PQgetvalue(res, i, 8),
			.event_len = (size_t)PQgetlength(res, i, 8),
		};

		stop = fn(arg, &r);
	}
	PQclear(res);
	return stop;
}

int store_pg__tail_claim(struct store *s, const char *name)
{
	const char *v[1] = { name };
	PGresult *res;
	int rc;

	if (store_pg__tail_claimed(s))
		return 1;
	if (store_pg__ready(s, NULL, 0))
		return -EIO;
	/* a session lock: it ends with the session, so a collector that dies (kill -9,
	 * a lost host) hands the export over as soon as PostgreSQL sees its connection go */
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, hashtext($1))",
			 PG_LOCK_EXPORT_NS);
		res = PQexecParams(store_pg__conn(s), sql, 1, NULL, v, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = -EIO;
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		*store_pg__claim(s) = store_pg__session(s);
		rc = 1;
	} else {
		rc = 0;
	}
	PQclear(res);
	return rc;
}

bool store_pg__tail_claimed(const struct store *s)
{
	struct store *w = (struct store *)s; /* libpq's accessors take no const */

	return *store_pg__claim(w) == store_pg__session(s) &&
	       PQstatus(store_pg__conn(w)) == CONNECTION_OK;
}

int store_pg__tail_cursor_load(struct store *s, const char *name, int64_t *pos)
{
	const char *v[1] = { name };
	PGresult *res;
	int rc = 0;

	*pos = 0;
	if (store_pg__ready(s, NULL, 0))
		return -EIO;
	res = PQexecParams(store_pg__conn(s), "SELECT pos FROM export_cursors WHERE name = $1", 1,
			   NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = -EIO;
	else if (PQntuples(res) == 1)
		*pos = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int store_pg__tail_cursor_save(struct store *s, const char *name, int64_t pos, char *err,
			       size_t errlen)
{
	char p[24];
	const char *v[2] = { name, p };
	PGresult *res;
	int rc = 0;

	if (store_pg__ready(s, err, errlen))
		return -EIO;
	snprintf(p, sizeof(p), "%" PRId64, pos);
	/* greatest(): a collector that lost its claim while writing never sets it back */
	res = PQexecParams(store_pg__conn(s),
			   "INSERT INTO export_cursors AS c (name, pos) VALUES ($1, $2)"
			   " ON CONFLICT (name) DO UPDATE SET pos = greatest(c.pos, excluded.pos),"
			   " updated_at = now()",
			   2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *m = PQresultErrorMessage(res);

		snprintf(err, errlen, "cannot save the export cursor in the database: %.*s",
			 (int)strcspn(m, "\n"), m);
		rc = -EIO;
	}
	PQclear(res);
	return rc;
}
