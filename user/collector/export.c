// SPDX-License-Identifier: GPL-2.0
/* The export thread: see export.h. One per --export, each with its own read handle on
 * the store, its own cursor and its own sink, so a receiver that is down holds back
 * only its own export, and never ingest (which only kicks it after a commit).
 * SQLite: the cursor is a file beside the database. PostgreSQL: it is a row of the
 * database shared by every collector exporting to the same destination, and only the
 * one holding the claim exports; the others stand by and take over when it goes. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "collector/export_priv.h"
#include "collector/store.h"

/* Rows per read, write and cursor save, at most: each batch costs ~4 syncs (data,
 * cursor file, its directory); 1024 rows made the export I/O-bound at ~20k rows/s. */
#define EXPORT_BATCH 8192
#define EXPORT_BATCH_BYTES (8u << 20) /* and event bytes: an event can be --max-frame big */
#define EXPORT_IDLE_MS 500          /* poll the store this often with no kick */
#define EXPORT_BACKOFF_MIN_MS 200
#define EXPORT_BACKOFF_MAX_MS 10000
#define EXPORT_LOG "collector: "

struct exporter {
	struct export_cfg cfg;
	char spec[512];
	char cursor_path[4096];
	bool shared;                 /* the cursor is the store's (PostgreSQL), named name */
	char name[800];
	bool claimed;                /* thread: this collector exports (shared) */
	bool standby_logged;         /* thread */
	struct store *st;
	struct export_sink *sink;
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool kicked;                 /* under mu */
	bool quit;                   /* under mu */
	int64_t drain_end;           /* under mu: monotonic ns, once quit */
	struct export_stats stats;   /* under mu */
	int64_t written;             /* thread: the last row id handed to the sink */
	struct export_item *items;   /* thread: the batch */
	size_t n_items;
	size_t batch_bytes;
	struct log_limiter lim;
};

int export__check_spec(const char *spec, char *err, size_t errlen)
{
	if (!strncmp(spec, "jsonl:", 6) && spec[6])
		return 0;
	if (!strncmp(spec, "syslog:tcp://", 13) || !strncmp(spec, "syslog:tls://", 13))
		return 0;
	snprintf(err, errlen,
		 "--export '%s': expected jsonl:DIR, syslog:tcp://HOST:PORT or syslog:tls://HOST:PORT",
		 spec);
	return -EINVAL;
}

/* DB.export-<spec with every byte outside [A-Za-z0-9.-] as '_'>: one cursor per
 * destination, beside the database whose row ids it counts. */
static int export__cursor_path(struct exporter *x, char *err, size_t errlen)
{
	char name[256];
	size_t i, n = 0;

	for (i = 0; x->spec[i] && n < sizeof(name) - 1; i++) {
		char c = x->spec[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-';

		name[n++] = ok ? c : '_';
	}
	name[n] = 0;
	if ((size_t)snprintf(x->cursor_path, sizeof(x->cursor_path), "%s.export-%s.cursor",
			     x->cfg.db, name) >= sizeof(x->cursor_path)) {
		snprintf(err, errlen, "--export '%s': the cursor file's path is too long", x->spec);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The name of a shared cursor: the destination as given; for jsonl:DIR, a directory of
 * this host, with "@<hostname>" appended (two hosts' DIRs are two destinations). */
static int export__shared_name(struct exporter *x, char *err, size_t errlen)
{
	char host[256];
	int n;

	if (strncmp(x->spec, "jsonl:", 6)) {
		snprintf(x->name, sizeof(x->name), "%s", x->spec);
		return 0;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	n = snprintf(x->name, sizeof(x->name), "%s@%s", x->spec, host);
	if (n < 0 || (size_t)n >= sizeof(x->name)) {
		snprintf(err, errlen, "--export '%s': the cursor's name is too long", x->spec);
		return -ENAMETOOLONG;
	}
	return 0;
}

static void export__items_free(struct exporter *x)
{
	for (size_t i = 0; i < x->n_items; i++) {
		if (x->items[i].ev)
			buildwarden__v1__event__free_unpacked(x->items[i].ev, NULL);
		free((void *)x->items[i].row.agent); /* one block holds the row's strings */
	}
	x->n_items = 0;
	x->batch_bytes = 0;
}

/* store__tail's callback: copies the row into the batch and unpacks its event. */
static int export__take(void *arg, const struct store_row *r)
{
	struct exporter *x = arg;
	struct export_item *it = &x->items[x->n_items];
	size_t la = strlen(r->agent) + 1, lh = strlen(r->host) + 1, lr = strlen(r->run_id) + 1,
	       lk = strlen(r->kind) + 1;
	char *p = malloc(la + lh + lr + lk + r->event_len + 1);

	if (!p)
		return -ENOMEM;
	it->row = *r;
	it->row.agent = memcpy(p, r->agent, la);
	it->row.host = memcpy(p + la, r->host, lh);
	it->row.run_id = memcpy(p + la + lh, r->run_id, lr);
	it->row.kind = memcpy(p + la + lh + lr, r->kind, lk);
	it->row.event = (uint8_t *)p + la + lh + lr + lk;
	if (r->event_len)
		memcpy((uint8_t *)it->row.event, r->event, r->event_len);
	it->ev = buildwarden__v1__event__unpack(NULL, r->event_len, it->row.event);
	x->n_items++;
	x->batch_bytes += r->event_len;
	return x->batch_bytes >= EXPORT_BATCH_BYTES ? 1 : 0; /* 1: enough for one batch */
}

static void export__save(struct exporter *x, int64_t id)
{
	char err[512];

	if (id <= x->stats.cursor)
		return;
	if (x->shared ? store__tail_cursor_save(x->st, x->name, id, err, sizeof(err))
		      : export_cursor__save(x->cursor_path, id, err, sizeof(err))) {
		/* the export went out; only a restart would repeat it: say so, go on */
		log__line(x->cfg.log, EXPORT_LOG, "export %s: %s (a restart will repeat what followed row %lld)",
			  x->spec, err, (long long)x->stats.cursor);
		return;
	}
	pthread_mutex_lock(&x->mu);
	x->stats.cursor = id;
	pthread_mutex_unlock(&x->mu);
}

/* Counts and logs a failure (a repeat of the same reason at most every 30 s). */
static void export__failed(struct exporter *x, const char *what, const char *err)
{
	char line[LOG_LINE_MAX];
	uint64_t n;

	pthread_mutex_lock(&x->mu);
	n = ++x->stats.failures;
	x->stats.down = true;
	pthread_mutex_unlock(&x->mu);
	snprintf(line, sizeof(line), "%s: %s", what, err);
	if (log_limiter__pass(&x->lim, line, clock__mono_ns(), 30 * NSEC_PER_SEC))
		log__line(x->cfg.log, EXPORT_LOG,
			  "export %s: %s; retrying with backoff, events stay in the store (%llu failures so far)",
			  x->spec, line, (unsigned long long)n);
}

/* Sleeps ms or until stopped; true when stopping. */
static bool export__wait(struct exporter *x, int64_t ms, bool wake_on_kick)
{
	struct timespec dl = clock__real_deadline(ms);
	bool quit;

	pthread_mutex_lock(&x->mu);
	while (!x->quit && !(wake_on_kick && x->kicked))
		if (pthread_cond_timedwait(&x->cv, &x->mu, &dl) == ETIMEDOUT)
			break;
	x->kicked = false;
	quit = x->quit;
	pthread_mutex_unlock(&x->mu);
	return quit;
}

static bool export__draining_over(struct exporter *x)
{
	bool over;

	pthread_mutex_lock(&x->mu);
	over = x->quit && clock__mono_ns() >= x->drain_end;
	pthread_mutex_unlock(&x->mu);
	return over;
}

/* Shared cursor: whether this collector holds the export, taking it when free; false
 * (the sink closed) while another collector does or the store cannot be reached. */
static bool export__claim(struct exporter *x, bool *open)
{
	int64_t pos;
	int rc;

	if (x->claimed && store__tail_claimed(x->st))
		return true;
	if (x->claimed) {
		/* the session that held the claim is gone: another collector may export now */
		log__line(x->cfg.log, EXPORT_LOG,
			  "export %s: lost the claim with the database connection; stopping until it is taken again",
			  x->spec);
		x->claimed = false;
	}
	if (*open) {
		x->sink->close(x->sink);
		*open = false;
	}
	rc = store__tail_claim(x->st, x->name);
	if (rc == 1)
		rc = store__tail_cursor_load(x->st, x->name, &pos) ? -EIO : 1;
	if (rc < 0) {
		export__failed(x, "cannot read the store", "cannot take the export's claim");
		return false;
	}
	if (rc == 0) {
		if (!x->standby_logged)
			log__line(x->cfg.log, EXPORT_LOG,
				  "export %s: standing by: another collector exports '%s'", x->spec,
				  x->name);
		x->standby_logged = true;
		return false;
	}
	pthread_mutex_lock(&x->mu);
	x->stats.cursor = pos;
	pthread_mutex_unlock(&x->mu);
	x->written = pos;
	x->claimed = true;
	x->standby_logged = false;
	log__line(x->cfg.log, EXPORT_LOG, "export %s: exporting '%s' from position %lld", x->spec,
		  x->name, (long long)pos);
	return true;
}

static void *export__main(void *arg)
{
	struct exporter *x = arg;
	struct export_sink *k = x->sink;
	int64_t backoff = EXPORT_BACKOFF_MIN_MS;
	bool open = false, was_down = false;
	char err[512];

	for (;;) {
		int64_t settled;
		int rc;

		if (export__draining_over(x))
			break;
		if (x->shared && !export__claim(x, &open)) {
			if (export__wait(x, EXPORT_IDLE_MS, false))
				break;
			continue;
		}
		if (!open) {
			err[0] = 0;
			rc = k->open(k, err, sizeof(err));
			if (rc) {
				export__failed(x, "cannot open", err);
				was_down = true;
				goto retry;
			}
			open = true;
			if (k->delivered) {
				/* the sink holds proof of rows past the cursor (a crash between
				 * the write and the cursor save): do not write them twice */
				int64_t d = k->delivered(k);

				if (d > x->written) {
					x->written = d;
					export__save(x, d);
				}
			}
		}
		export__items_free(x);
		rc = store__tail(x->st, x->written, EXPORT_BATCH, export__take, x);
		if (rc < 0) {
			export__failed(x, "cannot read the store", rc == -ENOMEM ? "out of memory" : "I/O error");
			goto retry;
		}
		if (!x->n_items) {
			bool quit;
			int64_t max;

			/* Row ids only grow, unless every row was deleted (retention) and the
			 * numbering began again: then everything there is new. (SQLite: shared
			 * positions never restart.) */
			if (!x->shared && !store__tail_max(x->st, &max) && max < x->written) {
				log__line(x->cfg.log, EXPORT_LOG,
					  "export %s: the database's last row (%lld) is below the cursor (%lld): its rows were deleted and numbered anew; exporting from the start",
					  x->spec, (long long)max, (long long)x->written);
				x->written = 0;
				pthread_mutex_lock(&x->mu);
				x->stats.cursor = 0;
				pthread_mutex_unlock(&x->mu);
				continue;
			}

			settled = k->settled ? k->settled(k, x->written) : -1;
			if (settled == EXPORT_BROKEN)
				goto broken;
			export__save(x, settled < 0 ? x->written : settled);
			pthread_mutex_lock(&x->mu);
			quit = x->quit;
			pthread_mutex_unlock(&x->mu);
			/* stopping: wait only for what is written to settle */
			if (quit && (settled < 0 || settled >= x->written))
				break;
			export__wait(x, quit ? 100 : EXPORT_IDLE_MS, !quit);
			continue;
		}
		err[0] = 0;
		rc = k->write(k, x->items, x->n_items, err, sizeof(err));
		if (rc) {
			export__failed(x, "cannot deliver", err);
			goto broken;
		}
		x->written = x->items[x->n_items - 1].row.id;
		pthread_mutex_lock(&x->mu);
		x->stats.exported += x->n_items;
		x->stats.down = false;
		pthread_mutex_unlock(&x->mu);
		if (was_down) {
			log__line(x->cfg.log, EXPORT_LOG, "export %s: delivering again", x->spec);
			was_down = false;
		}
		backoff = EXPORT_BACKOFF_MIN_MS;
		settled = k->settled ? k->settled(k, x->written) : -1;
		if (settled == EXPORT_BROKEN)
			goto broken;
		export__save(x, settled < 0 ? x->written : settled);
		continue;
broken:
		/* resume from what is durable: at-least-once, the repeat is what was
		 * written after the cursor */
		k->close(k);
		open = false;
		was_down = true;
		x->written = x->stats.cursor;
retry:
		{
			bool quit;

			pthread_mutex_lock(&x->mu);
			quit = x->quit;
			pthread_mutex_unlock(&x->mu);
			if (quit)
				break; /* stopping while the sink is down: the cursor keeps the rest */
		}
		if (export__wait(x, backoff, false))
			break;
		backoff = backoff * 2 > EXPORT_BACKOFF_MAX_MS ? EXPORT_BACKOFF_MAX_MS : backoff * 2;
	}
	export__items_free(x);
	if (open)
		k->close(k);
	return NULL;
}

int export__start(const struct export_cfg *cfg, struct exporter **out, char *err, size_t errlen)
{
	struct exporter *x;
	int64_t max;
	int rc;

	*out = NULL;
	rc = export__check_spec(cfg->spec, err, errlen);
	if (rc)
		return rc;
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->cfg = *cfg;
	if (!x->cfg.log)
		x->cfg.log = stderr;
	snprintf(x->spec, sizeof(x->spec), "%s", cfg->spec);
	x->cfg.spec = x->spec;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->items = calloc(EXPORT_BATCH, sizeof(*x->items));
	if (!x->items) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	rc = store__open(cfg->db, STORE_READ, &x->st, err, errlen);
	if (rc)
		goto fail;
	x->shared = store__tail_shared(x->st);
	if (x->shared) {
		rc = export__shared_name(x, err, errlen);
		if (rc)
			goto fail;
	} else {
		rc = export__cursor_path(x, err, errlen);
		rc = rc ?: export_cursor__load(x->cursor_path, &x->stats.cursor, err, errlen);
		if (rc)
			goto fail;
	}
	if (!x->shared && store__tail_max(x->st, &max) == 0 && x->stats.cursor > max) {
		/* row ids only grow: a cursor past the last row counts another database */
		log__line(x->cfg.log, EXPORT_LOG,
			  "export %s: the cursor (row %lld) is past the database's last row (%lld): a new database; exporting it from the start",
			  x->spec, (long long)x->stats.cursor, (long long)max);
		x->stats.cursor = 0;
	}
	x->written = x->stats.cursor;
	if (!strncmp(x->spec, "jsonl:", 6))
		rc = export_jsonl__new(&x->cfg, x->spec + 6, &x->sink, err, errlen);
	else
		rc = export_syslog__new(&x->cfg, x->spec + 7, &x->sink, err, errlen);
	if (rc)
		goto fail;
	if (thread__start_quiet(&x->th, export__main, x)) {
		snprintf(err, errlen, "cannot start the export thread");
		rc = -EAGAIN;
		goto fail;
	}
	x->started = true;
	if (x->shared)
		log__line(x->cfg.log, EXPORT_LOG,
			  "export %s: cursor '%s' in the database (one collector at a time exports it)",
			  x->spec, x->name);
	else
		log__line(x->cfg.log, EXPORT_LOG, "export %s: from row %lld (cursor %s)", x->spec,
			  (long long)x->stats.cursor, x->cursor_path);
	*out = x;
	return 0;
fail:
	export__stop(x, 0);
	return rc;
}

void export__kick(struct exporter *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->kicked = true;
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

void export__stats(struct exporter *x, struct export_stats *out)
{
	pthread_mutex_lock(&x->mu);
	*out = x->stats;
	pthread_mutex_unlock(&x->mu);
}

void export__stop(struct exporter *x, unsigned drain_ms)
{
	if (!x)
		return;
	if (x->started) {
		struct export_stats s;

		pthread_mutex_lock(&x->mu);
		x->quit = true;
		x->drain_end = clock__mono_ns() + (int64_t)drain_ms * NSEC_PER_MSEC;
		pthread_cond_signal(&x->cv);
		pthread_mutex_unlock(&x->mu);
		pthread_join(x->th, NULL);
		export__stats(x, &s);
		log__line(x->cfg.log, EXPORT_LOG,
			  "export %s: stopped: %llu events exported, %llu failures, cursor at row %lld",
			  x->spec, (unsigned long long)s.exported, (unsigned long long)s.failures,
			  (long long)s.cursor);
	}
	if (x->items)
		export__items_free(x);
	if (x->sink)
		x->sink->free(x->sink);
	store__close(x->st);
	free(x->items);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
}
