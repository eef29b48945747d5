// SPDX-License-Identifier: GPL-2.0
/* The writer thread and the hand-over of batches: the loop fills one batch while the
 * writer commits the previous one, so disk syncs never stall reading. See server.h. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "collector/server_priv.h"

/* Retention steps: each deletes at most WRITER_RETAIN_ROWS events (SQLite) in its own
 * transaction, between batches, so a commit waits for one bounded step at most. Steps
 * follow each other while there is work left, else every WRITER_RETAIN_EVERY_NS. */
#define WRITER_RETAIN_ROWS 5000
#define WRITER_RETAIN_EVERY_NS (60LL * 1000000000)

static void writer__retain(struct writer *w)
{
	int64_t now = clock__mono_ns();
	char err[256] = "";
	bool more = false;

	if (!w->retention_ns || now < w->retain_next)
		return;
	if (store__retain(w->st, clock__real_ns() - w->retention_ns, WRITER_RETAIN_ROWS, &more,
			  err, sizeof(err)))
		log__line(w->log, SERVER_LOG, "retention: %s (tried again in a minute)", err);
	w->retain_next = now + (more ? 0 : WRITER_RETAIN_EVERY_NS);
}

/* Waits for a job (mu held), running retention steps while there is none. */
static void writer__wait(struct writer *w)
{
	while (!w->job && !w->quit) {
		struct timespec ts;
		int64_t wait;

		if (!w->retention_ns) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		wait = w->retain_next - clock__mono_ns();
		if (wait > 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			wait = wait > 1000000000 ? 1000000000 : wait;
			ts.tv_nsec += (long)wait;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&w->mu);
		writer__retain(w);
		pthread_mutex_lock(&w->mu);
	}
}

static void *writer__main(void *arg)
{
	struct writer *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch *b;
		char err[256] = "";
		int rc;

		writer__wait(w);
		if (!w->job)
			break;
		b = w->job;
		w->job = NULL;
		pthread_mutex_unlock(&w->mu);
		rc = store__apply(w->st, b, err, sizeof(err));
		pthread_mutex_lock(&w->mu);
		w->done = b;
		w->ok = !rc;
		snprintf(w->err, sizeof(w->err), "%s", err);
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* an eventfd write only fails on counter overflow: cannot happen */
		}
		/* after the batch is handed back, so its Acks do not wait for this */
		pthread_mutex_unlock(&w->mu);
		writer__retain(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int writer__start(struct writer *w, struct store *st)
{
	w->st = st;
	if (pthread_create(&w->th, NULL, writer__main, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

void writer__stop(struct server *s)
{
	struct writer *w = &s->w;

	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->quit = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
		w->started = false;
	}
	if (w->done) {
		ingest__done(s->ig, w->done, w->ok);
		w->done = NULL;
	}
}

static void writer__submit(struct writer *w, struct batch *b)
{
	pthread_mutex_lock(&w->mu);
	w->job = b;
	w->busy = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void writer__maybe_commit(struct server *s, bool force)
{
	struct batch *b;

	if (s->w.busy)
		return;
	if (!force && !ingest__due(s->ig, clock__mono_ns(), s->commit_ns))
		return;
	b = ingest__seal(s->ig);
	if (b)
		writer__submit(&s->w, b);
}

void writer__collect(struct server *s)
{
	struct batch *b;
	uint64_t v;
	bool ok;
	char err[256];

	if (read(s->w.efd, &v, sizeof(v)) < 0 && errno == EAGAIN)
		return;
	pthread_mutex_lock(&s->w.mu);
	b = s->w.done;
	s->w.done = NULL;
	ok = s->w.ok;
	snprintf(err, sizeof(err), "%s", s->w.err);
	pthread_mutex_unlock(&s->w.mu);
	if (!b)
		return;
	if (!ok)
		log__line(s->log, SERVER_LOG,
			  "storage error: %s: refusing every agent so that they re-send from the last commit",
			  err);
	else if (err[0])
		log__line(s->log, SERVER_LOG, "%s", err); /* a run left out (PostgreSQL) */
	ingest__done(s->ig, b, ok);
	for (size_t i = 0; ok && i < s->n_exp; i++)
		export__kick(s->exp[i]); /* what it exports is committed now */
	pthread_mutex_lock(&s->w.mu);
	s->w.busy = false;
	pthread_mutex_unlock(&s->w.mu);
	/* the next batch may be full already: start it before waking readers */
	writer__maybe_commit(s, ingest__full(s->ig));
	ingest__take_others(s->ig);
	conn__scan(s);
}
