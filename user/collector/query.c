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

static void query__time(FILE *out, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char buf[64];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "\"%s.%03dZ\"", buf, (int)((ns % 1000000000) / 1000000));
}

static void query__flags(FILE *out, int flags)
{
	static const char *const names[] = { "chain_break", "chain_unverified", "bad_event",
					     "redacted" };
	bool first = true;

	fputs("\"integrity\":[", out);
	for (int i = 0; i < 4; i++) {
		if (!(flags & (1 << i)))
			continue;
		fprintf(out, "%s\"%s\"", first ? "" : ",", names[i]);
		first = false;
	}
	fputs("],", out);
}

/* One stored event: {"agent":..,["integrity":[..],] <the event's own fields>}. */
static int query__print_event(FILE *out, sqlite3_stmt *st)
{
	const char *agent = (const char *)sqlite3_column_text(st, 0);
	int flags = sqlite3_column_int(st, 1);
	const uint8_t *bytes = sqlite3_column_blob(st, 2);
	size_t len = (size_t)sqlite3_column_bytes(st, 2);
	sqlite3_int64 seq = sqlite3_column_int64(st, 3);
	Buildwarden__V1__Event *ev;
	char *json = NULL;
	size_t jlen = 0;
	FILE *mem;
	int rc = 0;

	fputs("{\"agent\":", out);
	query__json_str(out, agent);
	fputc(',', out);
	if (flags)
		query__flags(out, flags);
	ev = buildwarden__v1__event__unpack(NULL, len, bytes ? bytes : (const uint8_t *)"");
	if (!ev) {
		fprintf(out, "\"seq\":\"%lld\"}\n", (long long)seq);
		return 0;
	}
	mem = open_memstream(&json, &jlen);
	if (!mem) {
		buildwarden__v1__event__free_unpacked(ev, NULL);
		return -ENOMEM;
	}
	rc = pbjson__print(mem, &ev->base);
	fclose(mem);
	buildwarden__v1__event__free_unpacked(ev, NULL);
	if (!rc && json && jlen >= 2 && json[0] == '{') {
		if (jlen == 2) /* "{}" */
			fprintf(out, "\"seq\":\"%lld\"}\n", (long long)seq);
		else
			fprintf(out, "%s\n", json + 1);
	} else {
		fprintf(out, "\"seq\":\"%lld\"}\n", (long long)seq);
	}
	free(json);
	return 0;
}

static void query__print_finding(FILE *out, sqlite3_stmt *st)
{
	fputs("{\"kind\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 4));
	fputs(",\"agent\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 0));
	fputs(",\"host\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 1));
	fputs(",\"runId\":", out);
	query__json_str(out, (const char *)sqlite3_column_text(st, 2));
	fputs(",\"time\":", out);
	query__time(out, sqlite3_column_int64(st, 3));
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
		snprintf(buf, sizeof(buf), " AND %s = :rule", rule_col);
		query__add(q, buf);
	}
}

static void query__bind(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int query__exec(sqlite3 *db, const struct query_sql *q, const struct query_opts *o,
		       FILE *out, bool events, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc, i;

	if (sqlite3_prepare_v2(db, q->text, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if ((i = sqlite3_bind_parameter_index(st, ":since")))
		sqlite3_bind_int64(st, i, o->since_ns);
	if ((i = sqlite3_bind_parameter_index(st, ":limit")))
		sqlite3_bind_int64(st, i, o->limit ? o->limit : -1);
	query__bind(st, ":run", o->run);
	query__bind(st, ":host", o->host);
	query__bind(st, ":agent", o->agent);
	query__bind(st, ":rule", o->rule);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (events)
			query__print_event(out, st);
		else
			query__print_finding(out, st);
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
		query__add(&q, "SELECT * FROM (SELECT r.agent, e.flags, e.event, e.seq,"
			       " coalesce(e.received_ns, e.time_ns) AS rx, e.run FROM events e"
			       " JOIN runs r ON r.id = e.run WHERE e.violation = 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__add(&q, " ORDER BY rx DESC, e.run DESC, e.seq DESC LIMIT :limit)"
			       " ORDER BY rx, run, seq");
		rc = query__exec(db, &q, o, out, true, err, errlen);
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
		rc = query__exec(db, &q, o, out, false, err, errlen);
		if (rc)
			return rc;
	}
	if (!o->violations && !o->findings && o->run) {
		rc = query__one_agent(db, o, err, errlen);
		if (rc)
			return rc;
		q.len = 0;
		query__add(&q, "SELECT r.agent, e.flags, e.event, e.seq FROM events e"
			       " JOIN runs r ON r.id = e.run WHERE 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__add(&q, " ORDER BY r.agent, e.seq LIMIT :limit");
		rc = query__exec(db, &q, o, out, true, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}
