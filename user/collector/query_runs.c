// SPDX-License-Identifier: GPL-2.0
/* `query --runs`: the runs a collector knows, with what their runStart says about the
 * CI job (argv, policy, mode, agent version), whether they are complete, and how many
 * violations and findings they have. With --outside-writes, only the runs in which a
 * process outside the build changed a protected file: "which runs produced an artifact
 * written by a process outside the build?" */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector/json_out.h"
#include "collector/query_event.h"
#include "transport/pbjson.h"

#define RUNS_WRITERS_MAX 8 /* distinct outside writers named per run */

struct runs_outside {
	long long n;
	char *writers[RUNS_WRITERS_MAX];
	size_t n_writers;
};

static void runs__outside_free(struct runs_outside *w)
{
	for (size_t i = 0; i < w->n_writers; i++)
		free(w->writers[i]);
	memset(w, 0, sizeof(*w));
}

struct runs_outside_q {
	const struct query_opts *o;
	struct runs_outside *w;
};

static int runs__outside_row(void *arg, const struct store_res *r)
{
	struct runs_outside_q *q = arg;
	struct runs_outside *w = q->w;
	size_t len;
	const uint8_t *b = store_res__blob(r, 0, &len);
	Buildwarden__V1__Event *ev =
		buildwarden__v1__event__unpack(NULL, len, b ? b : (const uint8_t *)"");
	bool known = false;
	const char *exe;

	if (!ev)
		return 0;
	if (query_event__match(q->o, ev)) {
		w->n++;
		exe = ev->process && ev->process->exe && *ev->process->exe ? ev->process->exe : "?";
		for (size_t i = 0; i < w->n_writers && !known; i++)
			known = !strcmp(w->writers[i], exe);
		if (!known && w->n_writers < RUNS_WRITERS_MAX)
			w->writers[w->n_writers++] = strdup(exe);
	}
	buildwarden__v1__event__free_unpacked(ev, NULL);
	return 0;
}

/* Counts the run's outside writes (decoding its file events: the store keeps the
 * actor in columns only for violation rows). */
static int runs__outside(struct store *db, int64_t run, const struct query_opts *o,
			 struct runs_outside *w, char *err, size_t errlen)
{
	struct store_param p = { .name = ":id", .num = run };
	struct runs_outside_q q = { .o = o, .w = w };

	return store__query(db, "SELECT event FROM events WHERE run = :id AND kind = 'file'", &p,
			    1, runs__outside_row, &q, err, errlen);
}

/* ,"name":{...} from a sub-message of a stored event; nothing if it does not decode. */
static void runs__body(FILE *out, const char *name, const void *bytes, size_t len, bool start)
{
	Buildwarden__V1__Event *ev;
	const ProtobufCMessage *m;

	if (!bytes)
		return;
	ev = buildwarden__v1__event__unpack(NULL, len, bytes);
	if (!ev)
		return;
	m = start ? (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START ?
			     &ev->run_start->base : NULL) :
		    (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_END ? &ev->run_end->base : NULL);
	if (m) {
		fprintf(out, ",\"%s\":", name);
		pbjson__print(out, m);
	}
	buildwarden__v1__event__free_unpacked(ev, NULL);
}

static void runs__text_start(FILE *out, const void *bytes, size_t len)
{
	Buildwarden__V1__Event *ev = bytes ? buildwarden__v1__event__unpack(NULL, len, bytes) : NULL;

	if (ev && ev->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START) {
		fprintf(out, " mode %s:", ev->run_start->mode && *ev->run_start->mode ?
						 ev->run_start->mode : "?");
		for (size_t i = 0; i < ev->run_start->n_argv; i++) {
			fputc(' ', out);
			for (const char *c = ev->run_start->argv[i]; *c; c++)
				fputc((unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c, out);
		}
	}
	if (ev)
		buildwarden__v1__event__free_unpacked(ev, NULL);
}

struct runs_print {
	struct store *db;
	const struct query_opts *o;
	FILE *mem;
	long long printed;
	int rc;
	char *err;
	size_t errlen;
};

static int runs__row(void *arg, const struct store_res *r)
{
	struct runs_print *x = arg;
	const struct query_opts *o = x->o;
	FILE *mem = x->mem;
	struct runs_outside w = { 0 };
	const char *agent = store_res__text(r, 1);
	const char *host = store_res__text(r, 2);
	const char *run_id = store_res__text(r, 3);
	long long viol = store_res__int(r, 10);
	long long fnd = store_res__int(r, 11);
	bool complete = store_res__int(r, 7);
	const void *start, *end;
	size_t start_len, end_len;
	char t1[40], t2[40];

	if (o->outside_writes) {
		x->rc = runs__outside(x->db, store_res__int(r, 0), o, &w, x->err, x->errlen);
		if (x->rc)
			return 1;
		if (!w.n) {
			runs__outside_free(&w);
			return 0;
		}
	}
	start = store_res__blob(r, 12, &start_len);
	end = store_res__blob(r, 13, &end_len);
	if (store_res__null(r, 12))
		start = NULL;
	if (store_res__null(r, 13))
		end = NULL;
	query_event__time(t1, sizeof(t1), store_res__int(r, 4));
	query_event__time(t2, sizeof(t2), store_res__int(r, 5));
	if (o->format == QUERY_TEXT) {
		fprintf(mem, "%s .. %s %s/%s run %s: %s, %lld events, %lld violations, %lld findings",
			t1, t2, agent, host, run_id,
			complete ? "complete" : store_res__int(r, 8) ? "INCOMPLETE" : "no runEnd yet",
			(long long)store_res__int(r, 6), viol, fnd);
		if (w.n) {
			fprintf(mem, ", %lld changes by processes outside the build (", w.n);
			for (size_t k = 0; k < w.n_writers; k++)
				fprintf(mem, "%s%s", k ? ", " : "", w.writers[k]);
			fputc(')', mem);
		}
		runs__text_start(mem, start, start_len);
		fputc('\n', mem);
	} else {
		fputs("{\"agent\":", mem);
		json_out__str(mem, agent);
		fputs(",\"host\":", mem);
		json_out__str(mem, host);
		fputs(",\"runId\":", mem);
		json_out__str(mem, run_id);
		fprintf(mem, ",\"firstSeen\":\"%s\",\"lastSeen\":\"%s\",\"lastSeq\":\"%lld\","
			     "\"complete\":%s,\"violations\":%lld,\"findings\":%lld",
			t1, t2, (long long)store_res__int(r, 6), complete ? "true" : "false", viol, fnd);
		if (w.n) {
			fprintf(mem, ",\"outsideWrites\":%lld,\"outsideWriters\":[", w.n);
			for (size_t k = 0; k < w.n_writers; k++) {
				if (k)
					fputc(',', mem);
				json_out__str(mem, w.writers[k]);
			}
			fputc(']', mem);
		}
		runs__body(mem, "runStart", start, start_len, true);
		runs__body(mem, "runEnd", end, end_len, false);
		fputs("}\n", mem);
	}
	runs__outside_free(&w);
	x->printed++;
	return 0;
}

int query__runs(struct store *db, const struct query_opts *o, FILE *out, char *err,
		size_t errlen)
{
	struct runs_print x = { .db = db, .o = o, .err = err, .errlen = errlen };
	struct store_param p[8];
	size_t np = 0, blen = 0;
	char sql[2048], *buf = NULL;
	int rc;

	/* the newest N by last activity, printed oldest first; runStart is seq 1 and
	 * runEnd is at run_end_seq, so both are one index probe */
	snprintf(sql, sizeof(sql),
		 "SELECT * FROM (SELECT r.id, r.agent, r.host, r.run_id, r.first_seen, r.last_seen,"
		 " r.last_seq, r.complete, r.has_run_end, r.kernel_drops,"
		 " (SELECT count(*) FROM events e WHERE e.run = r.id AND e.violation = 1),"
		 " (SELECT count(*) FROM findings f WHERE f.run = r.id),"
		 " (SELECT event FROM events e WHERE e.run = r.id AND e.seq = 1 AND e.kind = 'run_start'),"
		 " (SELECT event FROM events e WHERE e.run = r.id AND e.seq = r.run_end_seq"
		 "  AND e.kind = 'run_end')"
		 " FROM runs r WHERE 1 = 1%s%s%s%s%s%s%s ORDER BY r.last_seen DESC, r.id DESC%s) AS q"
		 " ORDER BY last_seen, id",
		 o->since_ns ? " AND r.last_seen >= :since" : "", o->run ? " AND r.run_id = :run" : "",
		 o->host ? " AND r.host = :host" : "", o->agent ? " AND r.agent = :agent" : "",
		 o->repo ? " AND r.ci_repo = :repo" : "", o->commit ? " AND r.ci_commit = :commit" : "",
		 o->job ? " AND r.ci_job = :job" : "",
		 /* with --outside-writes the limit counts runs that pass, below */
		 o->outside_writes ? "" : " LIMIT :limit");
	p[np++] = (struct store_param){ .name = ":since", .num = o->since_ns };
	p[np++] = (struct store_param){ .name = ":limit", .num = o->limit ? o->limit : -1 };
	if (o->run)
		p[np++] = (struct store_param){ .name = ":run", .text = o->run };
	if (o->host)
		p[np++] = (struct store_param){ .name = ":host", .text = o->host };
	if (o->agent)
		p[np++] = (struct store_param){ .name = ":agent", .text = o->agent };
	if (o->repo)
		p[np++] = (struct store_param){ .name = ":repo", .text = o->repo };
	if (o->commit)
		p[np++] = (struct store_param){ .name = ":commit", .text = o->commit };
	if (o->job)
		p[np++] = (struct store_param){ .name = ":job", .text = o->job };
	/* --outside-writes with --limit: the last N runs that have one, so the output is
	 * buffered and cut from the front */
	x.mem = open_memstream(&buf, &blen);
	if (!x.mem)
		return -ENOMEM;
	rc = store__query(db, sql, p, np, runs__row, &x, err, errlen);
	rc = rc ?: x.rc;
	fclose(x.mem);
	if (!rc && buf) {
		const char *s = buf;

		/* keep the last limit lines */
		for (long long skip = o->limit ? x.printed - o->limit : 0; skip > 0; skip--)
			s = strchr(s, '\n') + 1;
		fputs(s, out);
	}
	free(buf);
	return rc;
}
