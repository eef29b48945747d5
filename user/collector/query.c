// SPDX-License-Identifier: GPL-2.0
/* Queries: see query.h. Events print as `buildwarden decode` prints them (proto3 JSON
 * from the exact stored bytes) with the agent and any integrity flags in front. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buildwarden.pb-c.h"
#include "collector/batch.h"
#include "collector/query.h"
#include "collector/query_event.h"
#include "transport/pbjson.h"

int query__duration(const char *s, int64_t *ns)
{
	unsigned long long v = 0, unit;
	const char *p = s;

	if (!s || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > 100ull * 365 * 86400)
			return -EINVAL;
	}
	switch (*p) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (p[1] || v * unit > 100ull * 365 * 86400)
		return -EINVAL;
	*ns = (int64_t)(v * unit) * 1000000000;
	return 0;
}

static void query__json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

const char *const query_kinds[] = { "exec", "file", "connect", "run_start", "run_end", "stats",
				    "process_access", "none", NULL };

/* One stored event row (agent, flags, event, seq, host, run_id, rx): decoded, filtered
 * on its own fields, printed. 1 printed, 0 filtered out. */
static int query__print_event(FILE *out, sqlite3_stmt *st, const struct query_opts *o)
{
	const uint8_t *bytes = sqlite3_column_blob(st, 2);
	size_t len = (size_t)sqlite3_column_bytes(st, 2);
	Buildwarden__V1__Event *ev;
	int printed = 0;

	ev = buildwarden__v1__event__unpack(NULL, len, bytes ? bytes : (const uint8_t *)"");
	if (query_event__match(o, ev)) {
		query_event__print(out, o, (const char *)sqlite3_column_text(st, 0),
				   (const char *)sqlite3_column_text(st, 4),
				   (const char *)sqlite3_column_text(st, 5),
				   (uint64_t)sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 6),
				   sqlite3_column_int(st, 1), ev);
		printed = 1;
	}
	if (ev)
		buildwarden__v1__event__free_unpacked(ev, NULL);
	return printed;
}

static void query__print_finding(FILE *out, sqlite3_stmt *st, const struct query_opts *o)
{
	if (o->format == QUERY_TEXT) {
		char t[40];

		query_event__time(t, sizeof(t), sqlite3_column_int64(st, 3));
		fprintf(out, "%s %s/%s run %s: %s", t, (const char *)sqlite3_column_text(st, 0),
			(const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
			(const char *)sqlite3_column_text(st, 4));
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			fprintf(out, " seq %lld", (long long)sqlite3_column_int64(st, 5));
		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			fprintf(out, "..%lld", (long long)sqlite3_column_int64(st, 6));
		if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			const unsigned char *d = sqlite3_column_text(st, 7);

			fputs(": ", out);
			for (; d && *d; d++)
				fputc(*d < 0x20 || *d == 0x7f ? '?' : *d, out);
		}
		fputc('\n', out);
		return;
	}
	fputs("{\"kind\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 4));
	fputs(",\"agent\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 0));
	fputs(",\"host\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 1));
	fputs(",\"runId\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 2));
	{
		char t[40];

		query_event__time(t, sizeof(t), sqlite3_column_int64(st, 3));
		fprintf(out, ",\"time\":\"%s\"", t);
	}
	if (sqlite3_column_type(st, 5) != SQLITE_NULL)
		fprintf(out, ",\"firstSeq\":\"%lld\"", (long long)sqlite3_column_int64(st, 5));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL)
		fprintf(out, ",\"lastSeq\":\"%lld\"", (long long)sqlite3_column_int64(st, 6));
	if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
		fputs(",\"detail\":", out);
		query__json_str(out, (const char *)sqlite3_column_text(st, 7));
	}
	fputs("}\n", out);
}

/* The filters every query shares, as SQL text appended to a WHERE with bound values
 * (never spliced in). Names of columns differ per query, hence the parameters. */
struct query_sql {
	char text[4096];
	size_t len;
};

static void query__add(struct query_sql *q, const char *s)
{
	size_t n = strlen(s);

	if (q->len + n < sizeof(q->text)) {
		memcpy(q->text + q->len, s, n + 1);
		q->len += n;
	}
}

static void query__filters(struct query_sql *q, const struct query_opts *o, const char *time_col,
			   const char *run_col, const char *host_col, const char *rule_col,
			   const char *agent_col)
{
	char buf[256];

	if (o->since_ns) {
		snprintf(buf, sizeof(buf), " AND %s >= :since", time_col);
		query__add(q, buf);
	}
	if (o->run && run_col) {
		snprintf(buf, sizeof(buf), " AND %s = :run", run_col);
		query__add(q, buf);
	}
	if (o->host) {
		snprintf(buf, sizeof(buf), " AND %s = :host", host_col);
		query__add(q, buf);
	}
	if (o->agent) {
		snprintf(buf, sizeof(buf), " AND %s = :agent", agent_col);
		query__add(q, buf);
	}
	if (o->rule && rule_col) {
		/* a rule's name or any prefix of its text: "gh", "network.deny", "protect[1]" */
		snprintf(buf, sizeof(buf), " AND substr(%s, 1, length(:rule)) = :rule", rule_col);
		query__add(q, buf);
	}
}

/* The part of the event filters SQL can do: the kind column (and, for outside
 * writes, only file events get decoded). */
static void query__event_filters(struct query_sql *q, const struct query_opts *o)
{
	if (o->kind)
		query__add(q, " AND e.kind = :kind");
	if (o->outside_writes)
		query__add(q, " AND e.kind = 'file'");
}

static void query__bind(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Events are filtered on their own fields here, after SQL's LIMIT could apply: with
 * such a filter the limit is applied to what passes (newest: the last N lines of
 * the ascending output; else the first N). */
static int query__exec(sqlite3 *db, const struct query_sql *q, const struct query_opts *o,
		       FILE *out, bool events, bool newest, char *err, size_t errlen)
{
	bool cut = events && o->limit && query_event__filters(o);
	char *buf = NULL;
	size_t blen = 0;
	long long printed = 0;
	FILE *dst = out;
	sqlite3_stmt *st;
	int rc, i;

	if (sqlite3_prepare_v2(db, q->text, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if ((i = sqlite3_bind_parameter_index(st, ":since")))
		sqlite3_bind_int64(st, i, o->since_ns);
	if ((i = sqlite3_bind_parameter_index(st, ":limit")))
		sqlite3_bind_int64(st, i, o->limit && !cut ? o->limit : -1);
	query__bind(st, ":run", o->run);
	query__bind(st, ":host", o->host);
	query__bind(st, ":agent", o->agent);
	query__bind(st, ":rule", o->rule);
	query__bind(st, ":kind", o->kind);
	if (cut && newest && !(dst = open_memstream(&buf, &blen))) {
		sqlite3_finalize(st);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (events)
			printed += query__print_event(dst, st, o);
		else
			query__print_finding(dst, st, o);
		if (cut && !newest && printed >= o->limit) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (dst != out) {
		const char *p;

		fclose(dst);
		p = buf ? buf : "";
		for (long long skip = printed - o->limit; skip > 0 && rc == SQLITE_DONE; skip--)
			p = strchr(p, '\n') + 1;
		if (rc == SQLITE_DONE)
			fputs(p, out);
		free(buf);
	}
	if (rc != SQLITE_DONE)
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* A run is (agent, run id): the history of a run id that more than one agent used
 * would interleave two agents' events, so it needs --agent. */
static int query__one_agent(sqlite3 *db, const struct query_opts *o, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	size_t len = 0;
	int n = 0, rc;

	if (o->agent)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT agent FROM runs WHERE run_id = ?1 ORDER BY agent", -1,
			       &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, o->run, -1, SQLITE_STATIC);
	len = (size_t)snprintf(err, errlen, "run '%s' was sent by more than one agent (", o->run);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len < errlen)
			len += (size_t)snprintf(err + len, errlen - len, "%s%s", n ? ", " : "",
						(const char *)sqlite3_column_text(st, 0));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if (n <= 1) {
		if (errlen)
			err[0] = 0;
		return 0;
	}
	if (len < errlen)
		snprintf(err + len, errlen - len, "): name one with --agent");
	return -EEXIST;
}

int query__run(sqlite3 *db, const struct query_opts *o, FILE *out, char *err, size_t errlen)
{
	struct query_sql q = { .len = 0 };
	int rc;

	if (o->violations) {
		/* the newest N, printed oldest first */
		/* Ordered and filtered on the collector's clock (received_ns): an agent
		 * chooses its events' timeNs, and one that dated its rows in the future
		 * would otherwise hold the top of every --limit and pass every --since. */
		query__add(&q, "SELECT * FROM (SELECT r.agent, e.flags, e.event, e.seq, r.host,"
			       " r.run_id, coalesce(e.received_ns, e.time_ns) AS rx, e.run FROM events e"
			       " JOIN runs r ON r.id = e.run WHERE e.violation = 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__event_filters(&q, o);
		query__add(&q, " ORDER BY rx DESC, e.run DESC, e.seq DESC LIMIT :limit)"
			       " ORDER BY rx, run, seq");
		rc = query__exec(db, &q, o, out, true, true, err, errlen);
		if (rc)
			return rc;
	}
	if (o->findings) {
		q.len = 0;
		/* Runs that are not complete are computed here rather than stored: a run with
		 * no runEnd may simply still be going, and only now tells how long it has
		 * been quiet (the finding's time is the run's last activity). */
		query__add(&q,
			"SELECT * FROM (SELECT * FROM ("
			" SELECT r.agent, r.host, r.run_id, f.time, f.kind, f.first_seq, f.last_seq,"
			"  f.detail, f.id AS ord FROM findings f JOIN runs r ON r.id = f.run"
			" UNION ALL SELECT agent, host, run_id, last_seen, 'no_run_end', NULL, last_seq,"
			"  'no runEnd event: the agent was stopped or killed, or the run is still going',"
			"  0 FROM runs WHERE has_run_end = 0"
			" UNION ALL SELECT agent, host, run_id, last_seen, 'no_run_start', 1, 1,"
			"  'seq 1 is not a runStart event', 0 FROM runs"
			"  WHERE has_run_start = 0 AND last_seq > 0"
			" UNION ALL SELECT agent, host, run_id, last_seen, 'kernel_drops', NULL, NULL,"
			"  'the kernel dropped ' || kernel_drops || ' events (runEnd.drops)', 0"
			"  FROM runs WHERE kernel_drops > 0"
			") WHERE 1");
		query__filters(&q, o, "time", "run_id", "host", NULL, "agent");
		query__add(&q, " ORDER BY time DESC, ord DESC LIMIT :limit) ORDER BY time, ord");
		rc = query__exec(db, &q, o, out, false, true, err, errlen);
		if (rc)
			return rc;
	}
	if (o->runs) {
		rc = query__runs(db, o, out, err, errlen);
		if (rc)
			return rc;
	}
	if (!o->violations && !o->findings && !o->runs && o->run) {
		rc = query__one_agent(db, o, err, errlen);
		if (rc)
			return rc;
		q.len = 0;
		query__add(&q, "SELECT r.agent, e.flags, e.event, e.seq, r.host, r.run_id,"
			       " coalesce(e.received_ns, e.time_ns) FROM events e"
			       " JOIN runs r ON r.id = e.run WHERE 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__event_filters(&q, o);
		query__add(&q, " ORDER BY r.agent, e.seq LIMIT :limit");
		rc = query__exec(db, &q, o, out, true, false, err, errlen);
		if (rc)
			return rc;
	} else if (!o->violations && !o->findings && !o->runs &&
		   (o->kind || query_event__filters(o))) {
		/* every stored event that passes the filters, by arrival */
		q.len = 0;
		query__add(&q, "SELECT * FROM (SELECT r.agent, e.flags, e.event, e.seq, r.host,"
			       " r.run_id, coalesce(e.received_ns, e.time_ns) AS rx, e.run FROM events e"
			       " JOIN runs r ON r.id = e.run WHERE 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__event_filters(&q, o);
		query__add(&q, " ORDER BY rx DESC, e.run DESC, e.seq DESC LIMIT :limit)"
			       " ORDER BY rx, run, seq");
		rc = query__exec(db, &q, o, out, true, true, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}
