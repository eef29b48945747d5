// SPDX-License-Identifier: GPL-2.0
/* Spool: see spool.h; its files are listed in spool_internal.h. Here: open, close,
 * and the counters both threads update. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "transport/frame.h"
#include "transport/spool_internal.h"

void spool__usage_sub(struct spool *sp, uint64_t n)
{
	pthread_mutex_lock(&sp->lock);
	sp->usage = sp->usage > n ? sp->usage - n : 0;
	pthread_mutex_unlock(&sp->lock);
}

void spool__count_corrupt(struct spool *sp)
{
	pthread_mutex_lock(&sp->lock);
	sp->corrupt++;
	pthread_mutex_unlock(&sp->lock);
}

struct spool *spool__open(const struct spool_opts *o, char *err, size_t errlen)
{
	struct spool_run *run = NULL;
	struct spool *sp;
	struct stat st;
	int e;

	if (!o->dir || !*o->dir || !o->run_id || !spool__valid_run_id(o->run_id)) {
		snprintf(err, errlen, "spool: invalid directory or run id '%s'",
			 o->run_id ? o->run_id : "");
		return NULL;
	}
	if ((o->host && strchr(o->host, '\n')) || (o->agent_id && strchr(o->agent_id, '\n')) ||
	    o->keylen > CHAIN_KEY_MAX) {
		snprintf(err, errlen, "spool: host or agent id has a newline, or key too long");
		return NULL;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp) {
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	pthread_mutex_init(&sp->lock, NULL);
	sp->live_fd = -1;
	sp->root_fd = -1;
	sp->max_bytes = o->max_bytes ? o->max_bytes : SPOOL_DEFAULT_MAX;
	if (o->keylen)
		memcpy(sp->key, o->key, o->keylen);
	sp->keylen = o->keylen;
	snprintf(sp->root, sizeof(sp->root), "%s", o->dir);

	e = spool__mkdirs(sp->root);
	if (e) {
		snprintf(err, errlen, "spool: cannot create '%s': %s", sp->root, strerror(-e));
		goto fail;
	}
	sp->root_fd = open(sp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (sp->root_fd < 0) {
		snprintf(err, errlen, "spool: cannot open '%s': %s", sp->root,
			 errno == ENOTDIR ? "not a directory (or a symbolic link)" : strerror(errno));
		goto fail;
	}
	/* The spool holds the runs the agent (root) will sign and send: a directory
	 * another user owns or can write into could be fed runs that were never seen. */
	if (fstat(sp->root_fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		snprintf(err, errlen, "spool: refusing '%s': it must be a directory owned by uid %u "
			 "that only its owner can write", sp->root, (unsigned)geteuid());
		goto fail;
	}
	/* Readable by others: the events are the host's business only. Ours: made 0700. */
	if (st.st_mode & 077) {
		if (fchmod(sp->root_fd, 0700) < 0) {
			snprintf(err, errlen, "spool: cannot make '%s' mode 0700: %s", sp->root,
				 strerror(errno));
			goto fail;
		}
		log__line(stderr, SPOOL_LOG, "'%s' was mode %04o: now 0700", sp->root,
			  (unsigned)(st.st_mode & 07777));
	}
	if (mkdirat(sp->root_fd, o->run_id, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "spool: cannot create run '%s' in '%s': %s", o->run_id,
			 sp->root, strerror(errno));
		goto fail;
	}
	run = calloc(1, sizeof(*run));
	if (!run) {
		snprintf(err, errlen, "spool: out of memory");
		goto fail;
	}
	run->current = true;
	e = spool__lock_run(sp, o->run_id, &run->dfd);
	if (e) {
		snprintf(err, errlen, "spool: cannot lock run '%s': %s", o->run_id,
			 e == -EBUSY ? "in use by another process" :
			 e == -EPERM ? "its directory is not this agent's (another owner, or not mode 0700)" :
			 strerror(-e));
		free(run);
		run = NULL;
		goto fail;
	}
	e = spool__read_meta(run->dfd, &run->meta);
	if (e == 0) {
		/* resuming a run: same key setting, or the chain could not verify */
		if (run->meta.keyed != (o->keylen > 0)) {
			snprintf(err, errlen, "spool: run '%s' was chained %s a key", o->run_id,
				 run->meta.keyed ? "with" : "without");
			goto fail;
		}
		e = spool__adopt(sp, run);
	} else if (e == -ENOENT) {
		snprintf(run->meta.run_id, sizeof(run->meta.run_id), "%s", o->run_id);
		snprintf(run->meta.host, sizeof(run->meta.host), "%s", o->host ? o->host : "");
		snprintf(run->meta.agent_id, sizeof(run->meta.agent_id), "%s",
			 o->agent_id ? o->agent_id : "");
		run->meta.keyed = o->keylen > 0;
		run->meta.created_ns = (uint64_t)clock__real_ns();
		/* the chain starts bound to this run (and, keyed, to this agent) */
		e = chain__init(o->run_id, o->key, o->keylen, run->meta.last_chain);
		if (!e)
			e = spool__write_meta(run->dfd, &run->meta, true);
		if (!e && fsync(run->dfd) < 0)
			e = -errno;
	}
	if (e) {
		snprintf(err, errlen, "spool: run '%s': cannot %s meta: %s", o->run_id,
			 e == -EBADMSG ? "parse" : "write", frame__strerror(e));
		goto fail;
	}
	sp->last_seq = run->meta.last_seq;
	memcpy(sp->chain, run->meta.last_chain, CHAIN_LEN);
	sp->pub_last_seq = sp->last_seq;
	sp->usage = spool__dir_usage(run->dfd);

	spool__adopt_old_runs(sp, o->run_id);
	if (spool__add_run(sp, run)) {
		snprintf(err, errlen, "spool: out of memory");
		goto fail;
	}
	sp->cur = run;
	return sp;

fail:
	if (run) {
		close(run->dfd);
		free(run);
	}
	for (size_t i = 0; i < sp->n_runs; i++) {
		close(sp->runs[i]->dfd);
		free(sp->runs[i]);
	}
	free(sp->runs);
	if (sp->root_fd >= 0)
		close(sp->root_fd);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
	return NULL;
}

size_t spool__n_runs(const struct spool *sp)
{
	return sp->n_runs;
}

struct spool_run *spool__run(struct spool *sp, size_t i)
{
	return i < sp->n_runs ? sp->runs[i] : NULL;
}

void spool__stats(struct spool *sp, struct spool_stats *out)
{
	pthread_mutex_lock(&sp->lock);
	out->spooled = sp->spooled;
	out->full_drops = sp->full_drops;
	out->other_drops = sp->other_drops;
	out->corrupt = sp->corrupt;
	out->usage = sp->usage;
	out->last_seq = sp->pub_last_seq;
	out->foreign_runs = sp->foreign_runs;
	pthread_mutex_unlock(&sp->lock);
}

uint64_t spool__run_last_seq(struct spool *sp, const struct spool_run *run)
{
	uint64_t last;

	if (!run->current)
		return run->meta.last_seq; /* adopted: its segments were scanned at open */
	pthread_mutex_lock(&sp->lock);
	last = sp->pub_last_seq;
	pthread_mutex_unlock(&sp->lock);
	return last;
}

void spool__close(struct spool *sp)
{
	if (!sp)
		return;
	spool__seal(sp, true);
	/* Everything acknowledged: nothing for a later process to adopt. */
	if (sp->cur->dfd >= 0 && spool__run_empty(sp->cur->dfd)) {
		sp->cur->current = false;
		spool__remove_run(sp, sp->cur);
	}
	for (size_t i = 0; i < sp->n_runs; i++) {
		if (sp->runs[i]->dfd >= 0)
			close(sp->runs[i]->dfd); /* releases the flock */
		free(sp->runs[i]);
	}
	free(sp->runs);
	free(sp->buf);
	close(sp->root_fd);
	memset(sp->key, 0, sizeof(sp->key));
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}
