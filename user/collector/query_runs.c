// SPDX-License-Identifier: GPL-2.0
/* `query --runs`: the runs a collector knows, with what their runStart says about the
 * CI job (argv, policy, mode, agent version), whether they are complete, and how many
 * violations and findings they have. With --outside-writes, only the runs in which a
 * process outside the build changed a protected file: "which runs produced an artifact
 * written by a process outside the build?" */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Counts the run's outside writes (decoding its file events: the store keeps the
 * actor in columns only for violation rows). */
static int runs__outside(sqlite3 *db, int64_t run, const struct query_opts *o,
			 struct runs_outside *w)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT event FROM events WHERE run = ?1 AND kind = 'file'", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, run);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		Buildwarden__V1__Event *ev =
			buildwarden__v1__event__unpack(NULL, len, b ? b : (const uint8_t *)"");
		bool known = false;
		const char *exe;

		if (!ev)
			continue;
		if (query_event__match(o, ev)) {
			w->n++;
			exe = ev->process && ev->process->exe && *ev->process->exe ?
				      ev->process->exe : "?";
			for (size_t i = 0; i < w->n_writers && !known; i++)
				known = !strcmp(w->writers[i], exe);
			if (!known && w->n_writers < RUNS_WRITERS_MAX)
				w->writers[w->n_writers++] = strdup(exe);
		}
		buildwarden__v1__event__free_unpacked(ev, NULL);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static void runs__str(FILE *out, const char *s)
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

int query__runs(sqlite3 *db, const struct query_opts *o, FILE *out, char *err, size_t errlen)
{
	char sql[2048];
	sqlite3_stmt *st;
	int rc, i;

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
		 " FROM runs r WHERE 1%s%s%s%s ORDER BY r.last_seen DESC, r.id DESC%s)"
		 " ORDER BY last_seen, id",
		 o->since_ns ? " AND r.last_seen >= :since" : "", o->run ? " AND r.run_id = :run" : "",
		 o->host ? " AND r.host = :host" : "", o->agent ? " AND r.agent = :agent" : "",
		 /* with --outside-writes the limit counts runs that pass, below */
		 o->outside_writes ? "" : " LIMIT :limit");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if ((i = sqlite3_bind_parameter_index(st, ":since")))
		sqlite3_bind_int64(st, i, o->since_ns);
	if ((i = sqlite3_bind_parameter_index(st, ":limit")))
		sqlite3_bind_int64(st, i, o->limit ? o->limit : -1);
	if ((i = sqlite3_bind_parameter_index(st, ":run")))
		sqlite3_bind_text(st, i, o->run, -1, SQLITE_STATIC);
	if ((i = sqlite3_bind_parameter_index(st, ":host")))
		sqlite3_bind_text(st, i, o->host, -1, SQLITE_STATIC);
	if ((i = sqlite3_bind_parameter_index(st, ":agent")))
		sqlite3_bind_text(st, i, o->agent, -1, SQLITE_STATIC);
	{
		/* --outside-writes with --limit: the last N runs that have one, so the
		 * output is buffered and cut from the front */
		char *buf = NULL;
		size_t blen = 0;
		FILE *mem = open_memstream(&buf, &blen);
		long long printed = 0;

		if (!mem) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct runs_outside w = { 0 };
			const char *agent = (const char *)sqlite3_column_text(st, 1);
			const char *host = (const char *)sqlite3_column_text(st, 2);
			const char *run_id = (const char *)sqlite3_column_text(st, 3);
			long long viol = sqlite3_column_int64(st, 10);
			long long fnd = sqlite3_column_int64(st, 11);
			bool complete = sqlite3_column_int(st, 7);
			char t1[40], t2[40];

			if (o->outside_writes) {
				rc = runs__outside(db, sqlite3_column_int64(st, 0), o, &w);
				if (rc) {
					rc = SQLITE_ERROR;
					break;
				}
				if (!w.n) {
					runs__outside_free(&w);
					continue;
				}
			}
			query_event__time(t1, sizeof(t1), sqlite3_column_int64(st, 4));
			query_event__time(t2, sizeof(t2), sqlite3_column_int64(st, 5));
			if (o->format == QUERY_TEXT) {
				fprintf(mem, "%s .. %s %s/%s run %s: %s, %lld events, %lld violations, %lld findings",
					t1, t2, agent, host, run_id,
					complete ? "complete" : sqlite3_column_int(st, 8) ? "INCOMPLETE" : "no runEnd yet",
					sqlite3_column_int64(st, 6), viol, fnd);
				if (w.n) {
					fprintf(mem, ", %lld changes by processes outside the build (", w.n);
					for (size_t k = 0; k < w.n_writers; k++)
						fprintf(mem, "%s%s", k ? ", " : "", w.writers[k]);
					fputc(')', mem);
				}
				runs__text_start(mem, sqlite3_column_blob(st, 12),
						 (size_t)sqlite3_column_bytes(st, 12));
				fputc('\n', mem);
			} else {
				fputs("{\"agent\":", mem);
				runs__str(mem, agent);
				fputs(",\"host\":", mem);
				runs__str(mem, host);
				fputs(",\"runId\":", mem);
				runs__str(mem, run_id);
				fprintf(mem, ",\"firstSeen\":\"%s\",\"lastSeen\":\"%s\",\"lastSeq\":\"%lld\","
					     "\"complete\":%s,\"violations\":%lld,\"findings\":%lld",
					t1, t2, sqlite3_column_int64(st, 6), complete ? "true" : "false",
					viol, fnd);
				if (w.n) {
					fprintf(mem, ",\"outsideWrites\":%lld,\"outsideWriters\":[", w.n);
					for (size_t k = 0; k < w.n_writers; k++) {
						if (k)
							fputc(',', mem);
						runs__str(mem, w.writers[k]);
					}
					fputc(']', mem);
				}
				runs__body(mem, "runStart", sqlite3_column_blob(st, 12),
					   (size_t)sqlite3_column_bytes(st, 12), true);
				runs__body(mem, "runEnd", sqlite3_column_blob(st, 13),
					   (size_t)sqlite3_column_bytes(st, 13), false);
				fputs("}\n", mem);
			}
			runs__outside_free(&w);
			printed++;
		}
		fclose(mem);
		if (rc == SQLITE_DONE && buf) {
			const char *p = buf;

			/* keep the last limit lines */
			for (long long skip = o->limit ? printed - o->limit : 0; skip > 0; skip--)
				p = strchr(p, '\n') + 1;
			fputs(p, out);
		}
		free(buf);
	}
	if (rc != SQLITE_DONE)
		snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}
