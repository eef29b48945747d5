// SPDX-License-Identifier: GPL-2.0
/* The writer thread and the hand-over of batches: the loop fills one batch while the
 * writer commits the previous one, so disk syncs never stall reading. See server.h. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "collector/server_priv.h"

static void *writer__main(void *arg)
{
	struct writer *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch *b;
		char err[256] = "";
		int rc;

		while (!w->job && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
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
