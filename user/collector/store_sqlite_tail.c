// SPDX-License-Identifier: GPL-2.0
/* store__tail for the SQLite store: see store_tail.h. */
#include <errno.h>

#include "collector/store_priv.h"

int store_sqlite__tail(struct store *s, int64_t after, size_t max,
		int (*fn)(void *arg, const struct store_row *r), void *arg)
{
	sqlite3 *db = store_sqlite__db(s);
	sqlite3_stmt *st;
	int rc, stop = 0;

	/* rowid is the events table's own key: the range scan costs one b-tree seek */
	if (sqlite3_prepare_v2(db,
			       "SELECT e.rowid, r.agent, r.host, r.run_id, e.seq, e.received_ns,"
			       " e.kind, e.flags, e.event FROM events e JOIN runs r ON r.id = e.run"
			       " WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 6);
		const void *ev = sqlite3_column_blob(st, 8);
		struct store_row r = {
			.id = sqlite3_column_int64(st, 0),
			.agent = (const char *)sqlite3_column_text(st, 1),
			.host = (const char *)sqlite3_column_text(st, 2),
			.run_id = (const char *)sqlite3_column_text(st, 3),
			.seq = (uint64_t)sqlite3_column_int64(st, 4),
			.received_ns = sqlite3_column_int64(st, 5),
			.kind = kind ? kind : "",
			.flags = (uint32_t)sqlite3_column_int(st, 7),
			.event = ev,
			.event_len = (size_t)sqlite3_column_bytes(st, 8),
		};

		if (!r.agent)
			r.agent = "";
		if (!r.host)
			r.host = "";
		if (!r.run_id)
			r.run_id = "";
		stop = fn(arg, &r);
	}
	if (!stop && rc != SQLITE_DONE)
		stop = -EIO;
	sqlite3_finalize(st);
	return stop;
}

int store_sqlite__tail_max(struct store *s, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	*out = 0;
	if (sqlite3_prepare_v2(store_sqlite__db(s), "SELECT max(rowid) FROM events", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}
