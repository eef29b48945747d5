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
#include "collector/json_out.h"
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

const char *const query_kinds[] = { "exec", "file", "connect", "run_start", "run_end", "stats",
				    "process_access", "none", NULL };

/* One stored event row (agent, flags, event, seq, host, run_id, rx): decoded, filtered
 * on its own fields, printed. 1 printed, 0 filtered out. */
static int query__print_event(FILE *out, const struct store_res *st, const struct query_opts *o)
{
	size_t len;
	const uint8_t *bytes = store_res__blob(st, 2, &len);
	Buildwarden__V1__Event *ev;
	int printed = 0;

	ev = buildwarden__v1__event__unpack(NULL, len, bytes ? bytes : (const uint8_t *)"");
	if (query_event__match(o, ev)) {
		query_event__print(out, o, store_res__text(st, 0), store_res__text(st, 4),
				   store_res__text(st, 5), (uint64_t)store_res__int(st, 3),
				   store_res__int(st, 6), (int)store_res__int(st, 1), ev);
		printed = 1;
	}
	if (ev)
		buildwarden__v1__event__free_unpacked(ev, NULL);
	return printed;
}

static void query__print_finding(FILE *out, const struct store_res *st, const struct query_opts *o)
{
	if (o->format == QUERY_TEXT) {
		char t[40];

		query_event__time(t, sizeof(t), store_res__int(st, 3));
		fprintf(out, "%s %s/%s run %s: %s", t, store_res__text(st, 0),
			store_res__text(st, 1), store_res__text(st, 2),
			store_res__text(st, 4));
		if (!store_res__null(st, 5))
			fprintf(out, " seq %lld", (long long)store_res__int(st, 5));
		if (!store_res__null(st, 6))
			fprintf(out, "..%lld", (long long)store_res__int(st, 6));
		if (!store_res__null(st, 7)) {
			const unsigned char *d = (const unsigned char *)store_res__text(st, 7);

			fputs(": ", out);
			for (; d && *d; d++)
				fputc(*d < 0x20 || *d == 0x7f ? '?' : *d, out);
		}
		fputc('\n', out);
		return;
	}
	fputs("{\"kind\":", out);
	json_out__str(out, store_res__text(st, 4));
	fputs(",\"agent\":", out);
	json_out__str(out, store_res__text(st, 0));
	fputs(",\"host\":", out);
	json_out__str(out, store_res__text(st, 1));
	fputs(",\"runId\":", out);
	json_out__str(out, store_res__text(st, 2));
	{
		char t[40];

		query_event__time(t, sizeof(t), store_res__int(st, 3));
		fprintf(out, ",\"time\":\"%s\"", t);
	}
	if (!store_res__null(st, 5))
		fprintf(out, ",\"firstSeq\":\"%lld\"", (long long)store_res__int(st, 5));
	if (!store_res__null(st, 6))
		fprintf(out, ",\"lastSeq\":\"%lld\"", (long long)store_res__int(st, 6));
	if (!store_res__null(st, 7)) {
		fputs(",\"detail\":", out);
		json_out__str(out, store_res__text(st, 7));
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

/* The CI context filters, on the runs table aliased r. */
static void query__ci_filters(struct query_sql *q, const struct query_opts *o)
{
	if (o->repo)
		query__add(q, " AND r.ci_repo = :repo");
	if (o->commit)
		query__add(q, " AND r.ci_commit = :commit");
	if (o->job)
		query__add(q, " AND r.ci_job = :job");
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

/* The parameters a query's SQL may name; each engine binds those it names. */
static size_t query__params(struct store_param *p, const struct query_opts *o, long long limit)
{
	size_t n = 0;

	p[n++] = (struct store_param){ .name = ":since", .num = o->since_ns };
	p[n++] = (struct store_param){ .name = ":limit", .num = limit };
	if (o->run)
		p[n++] = (struct store_param){ .name = ":run", .text = o->run };
	if (o->host)
		p[n++] = (struct store_param){ .name = ":host", .text = o->host };
	if (o->agent)
		p[n++] = (struct store_param){ .name = ":agent", .text = o->agent };
	if (o->rule)
		p[n++] = (struct store_param){ .name = ":rule", .text = o->rule };
	if (o->kind)
		p[n++] = (struct store_param){ .name = ":kind", .text = o->kind };
	if (o->repo)
		p[n++] = (struct store_param){ .name = ":repo", .text = o->repo };
	if (o->commit)
		p[n++] = (struct store_param){ .name = ":commit", .text = o->commit };
	if (o->job)
		p[n++] = (struct store_param){ .name = ":job", .text = o->job };
	return n;
}

struct query_exec {
	const struct query_opts *o;
	FILE *dst;
	bool events, cut, newest;
	long long printed;
};

static int query__exec_row(void *arg, const struct store_res *r)
{
	struct query_exec *x = arg;

	if (x->events)
		x->printed += query__print_event(x->dst, r, x->o);
	else
		query__print_finding(x->dst, r, x->o);
	return x->cut && !x->newest && x->printed >= x->o->limit;
}

/* Events are filtered on their own fields here, after SQL's LIMIT could apply: with
 * such a filter the limit is applied to what passes (newest: the last N lines of
 * the ascending output; else the first N). */
static int query__exec(struct store *db, const struct query_sql *q, const struct query_opts *o,
		       FILE *out, bool events, bool newest, char *err, size_t errlen)
{
	struct query_exec x = { .o = o, .dst = out, .events = events, .newest = newest };
	struct store_param p[12];
	char *buf = NULL;
	size_t blen = 0, np;
	int rc;

	x.cut = events && o->limit && query_event__filters(o);
	np = query__params(p, o, o->limit && !x.cut ? o->limit : -1);
	if (x.cut && newest && !(x.dst = open_memstream(&buf, &blen))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = store__query(db, q->text, p, np, query__exec_row, &x, err, errlen);
	if (x.dst != out) {
		const char *s;

		fclose(x.dst);
		s = buf ? buf : "";
		for (long long skip = x.printed - o->limit; skip > 0 && !rc; skip--)
			s = strchr(s, '\n') + 1;
		if (!rc)
			fputs(s, out);
		free(buf);
	}
	return rc;
}

struct query_agents {
	char *err;
	size_t errlen, len;
	int n;
};

static int query__agent_row(void *arg, const struct store_res *r)
{
	struct query_agents *a = arg;
	const char *agent = store_res__text(r, 0);

	if (a->len < a->errlen)
		a->len += (size_t)snprintf(a->err + a->len, a->errlen - a->len, "%s%s",
					   a->n ? ", " : "", agent ? agent : "");
	a->n++;
	return 0;
}

/* A run is (agent, run id): the history of a run id that more than one agent used
 * would interleave two agents' events, so it needs --agent. */
static int query__one_agent(struct store *db, const struct query_opts *o, char *err,
			    size_t errlen)
{
	struct store_param p = { .name = ":run", .text = o->run };
	struct query_agents a = { .err = err, .errlen = errlen };
	char qerr[256];
	int rc;

	if (o->agent)
		return 0;
	a.len = (size_t)snprintf(err, errlen, "run '%s' was sent by more than one agent (", o->run);
	rc = store__query(db, "SELECT agent FROM runs WHERE run_id = :run ORDER BY agent", &p, 1,
			  query__agent_row, &a, qerr, sizeof(qerr));
	if (rc) {
		snprintf(err, errlen, "%s", qerr);
		return rc;
	}
	if (a.n <= 1) {
		if (errlen)
			err[0] = 0;
		return 0;
	}
	if (a.len < errlen)
		snprintf(err + a.len, errlen - a.len, "): name one with --agent");
	return -EEXIST;
}

/* The newest --limit stored events that pass `where` and o's filters, printed oldest
 * first. Ordered and filtered on the collector's clock (received_ns): an agent chooses
 * its events' timeNs, and one that dated its rows in the future would otherwise hold the
 * top of every --limit and pass every --since. q is reused: its text starts over. */
static int query__newest_events(struct store *db, struct query_sql *q,
				const struct query_opts *o, const char *where, FILE *out,
				char *err, size_t errlen)
{
	q->len = 0;
	query__add(q, "SELECT * FROM (SELECT r.agent, e.flags, e.event, e.seq, r.host,"
		      " r.run_id, coalesce(e.received_ns, e.time_ns) AS rx, e.run FROM events e"
		      " JOIN runs r ON r.id = e.run WHERE ");
	query__add(q, where);
	query__filters(q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host", "e.rule",
		       "r.agent");
	query__event_filters(q, o);
	query__ci_filters(q, o);
	query__add(q, " ORDER BY rx DESC, e.run DESC, e.seq DESC LIMIT :limit) AS q"
		      " ORDER BY rx, run, seq");
	return query__exec(db, q, o, out, true, true, err, errlen);
}

int query__run(struct store *db, const struct query_opts *o, FILE *out, char *err, size_t errlen)
{
	struct query_sql q = { .len = 0 };
	int rc;

	if (o->violations) {
		rc = query__newest_events(db, &q, o, "e.violation = 1", out, err, errlen);
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
			") AS f WHERE 1 = 1");
		query__filters(&q, o, "time", "run_id", "host", NULL, "agent");
		query__add(&q, " ORDER BY time DESC, ord DESC LIMIT :limit) AS q ORDER BY time, ord");
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
			       " JOIN runs r ON r.id = e.run WHERE 1 = 1");
		query__filters(&q, o, "coalesce(e.received_ns, e.time_ns)", "r.run_id", "r.host",
			       "e.rule", "r.agent");
		query__event_filters(&q, o);
		query__ci_filters(&q, o);
		query__add(&q, " ORDER BY r.agent, e.seq LIMIT :limit");
		rc = query__exec(db, &q, o, out, true, false, err, errlen);
		if (rc)
			return rc;
	} else if (!o->violations && !o->findings && !o->runs &&
		   (o->kind || query_event__filters(o))) {
		/* every stored event that passes the filters, by arrival */
		rc = query__newest_events(db, &q, o, "1 = 1", out, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}
