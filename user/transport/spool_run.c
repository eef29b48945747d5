// SPDX-License-Identifier: GPL-2.0
/* Run directories: locking one, adopting the runs dead processes left, removing a
 * run once everything in it is acknowledged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/grow.h"
#include "base/log.h"
#include "transport/frame.h"
#include "transport/spool_internal.h"

/* Makes an inherited run consistent: its live segment (the process died while writing
 * it) is cut after its last good record and sealed, sealed segments newer than meta
 * are scanned for the last seq and chain, leftovers of interrupted renames go. */
int spool__adopt(struct spool *sp, struct spool_run *run)
{
	struct spool_seg *segs;
	size_t n;
	int err;

	unlinkat(run->dfd, "meta.tmp", 0);
	err = spool__list(run->dfd, &segs, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct spool_seg *s = &segs[i];
		uint64_t first, last;
		uint8_t chain[CHAIN_LEN];
		size_t len, good;
		uint8_t *buf;
		bool event = false;
		int rc;

		if (s->type != SEG_LIVE && s->last <= run->meta.last_seq)
			continue;
		err = spool__load_seg(run->dfd, s, &buf, &len);
		if (err && !buf) {
			log__line(stderr, SPOOL_LOG, "run '%s': cannot read segment '%s': %s", run->meta.run_id,
				   s->name, strerror(-err));
			continue;
		}
		memset(chain, 0, sizeof(chain));
		rc = spool__scan(buf, len, &good, &first, &last, chain);
		for (int k = 0; k < CHAIN_LEN; k++)
			event |= chain[k] != 0;
		free(buf);
		if (rc || err) {
			log__line(stderr, SPOOL_LOG, "run '%s': segment '%s' is damaged at byte %zu (%s); "
				   "the records after it are lost",
				   run->meta.run_id, s->name, good, frame__strerror(rc ?: err));
			spool__count_corrupt(sp);
		}
		if (last > run->meta.last_seq) {
			run->meta.last_seq = last;
			if (event)
				memcpy(run->meta.last_chain, chain, CHAIN_LEN);
		}
		if (s->type == SEG_LIVE) {
			char name[SPOOL_SEG_NAME_MAX];
			int fd;

			if (!last) {
				unlinkat(run->dfd, s->name, 0);
				continue;
			}
			fd = spool__openat(run->dfd, s->name, O_WRONLY);
			if (fd >= 0) {
				if (ftruncate(fd, (off_t)good) < 0 || fdatasync(fd) < 0)
					log__line(stderr, SPOOL_LOG, "run '%s': cannot truncate '%s': %s",
						   run->meta.run_id, s->name, strerror(errno));
				close(fd);
			}
			spool__seg_name(name, first, last, SEG_RAW);
			if (renameat(run->dfd, s->name, run->dfd, name) < 0)
				log__line(stderr, SPOOL_LOG, "run '%s': cannot seal '%s': %s", run->meta.run_id,
					   s->name, strerror(errno));
		}
	}
	free(segs);
	fsync(run->dfd);
	return spool__write_meta(run->dfd, &run->meta, true);
}

bool spool__run_empty(int dfd)
{
	struct spool_seg *segs;
	size_t n;

	if (spool__list(dfd, &segs, &n))
		return false;
	free(segs);
	return n == 0;
}

int spool__remove_run(struct spool *sp, struct spool_run *run)
{
	struct spool_seg *segs;
	size_t n;
	int err;

	if (run->current || run->dfd < 0)
		return -EINVAL;
	err = spool__list(run->dfd, &segs, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		uint64_t size = spool__file_size(run->dfd, segs[i].name);

		if (unlinkat(run->dfd, segs[i].name, 0) == 0)
			spool__usage_sub(sp, size);
	}
	free(segs);
	unlinkat(run->dfd, "meta", 0);
	unlinkat(run->dfd, "meta.tmp", 0);
	/* rmdir last, while still holding the lock: a new process cannot adopt a run
	 * that is half deleted. */
	if (unlinkat(sp->root_fd, run->meta.run_id, AT_REMOVEDIR) < 0)
		err = -errno;
	close(run->dfd);
	run->dfd = -1;
	return err;
}

static int spool__run_cmp(const void *a, const void *b)
{
	const struct spool_run *x = *(struct spool_run *const *)a;
	const struct spool_run *y = *(struct spool_run *const *)b;

	if (x->meta.created_ns != y->meta.created_ns)
		return x->meta.created_ns < y->meta.created_ns ? -1 : 1;
	return strcmp(x->meta.run_id, y->meta.run_id);
}

int spool__add_run(struct spool *sp, struct spool_run *run)
{
	int err = grow__reserve((void **)&sp->runs, &sp->runs_cap, sp->n_runs + 1,
				sizeof(*sp->runs), 4, 0);

	if (err)
		return err;
	sp->runs[sp->n_runs++] = run;
	return 0;
}

int spool__lock_run(struct spool *sp, const char *name, int *dfd)
{
	int fd = spool__openat(sp->root_fd, name, O_RDONLY | O_DIRECTORY);
	struct stat st;

	if (fd < 0)
		return -errno;
	/* Only a directory this agent made (its user's, 0700) holds runs it wrote: one that
	 * another user owns or may write into could hold a forged run, signed and sent as
	 * ours. */
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	*dfd = fd;
	return 0;
}

void spool__adopt_old_runs(struct spool *sp, const char *cur)
{
	struct dirent *de;
	int fd = openat(sp->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct spool_run *run;
		int dfd, err;

		if (!spool__valid_run_id(de->d_name) || strcmp(de->d_name, cur) == 0)
			continue;
		err = spool__lock_run(sp, de->d_name, &dfd);
		if (err == -EBUSY) {
			/* another agent's run: counted in usage, never touched */
			int ofd = spool__openat(sp->root_fd, de->d_name, O_RDONLY | O_DIRECTORY);

			if (ofd >= 0) {
				sp->usage += spool__dir_usage(ofd);
				close(ofd);
			}
			continue;
		}
		if (err == -EPERM) {
			sp->foreign_runs++;
			log__line(stderr, SPOOL_LOG, "'%s': refusing a run directory that is not this agent's "
				  "(another owner, or a mode other than 0700): not uploaded, left alone (%llu refused)",
				  de->d_name, (unsigned long long)sp->foreign_runs);
			continue;
		}
		if (err)
			continue;
		run = calloc(1, sizeof(*run));
		if (!run) {
			close(dfd);
			continue;
		}
		run->dfd = dfd;
		err = spool__read_meta(dfd, &run->meta);
		if (err || strcmp(run->meta.run_id, de->d_name) != 0) {
			/* not a run we wrote, or its meta is gone: leave it for a human */
			log__line(stderr, SPOOL_LOG, "'%s': not a spool run (%s); left alone", de->d_name, err ? frame__strerror(err) : "run_id mismatch");
			close(dfd);
			free(run);
			continue;
		}
		spool__adopt(sp, run);
		if (spool__run_empty(dfd)) {
			spool__remove_run(sp, run);
			free(run);
			continue;
		}
		sp->usage += spool__dir_usage(dfd);
		if (spool__add_run(sp, run)) {
			close(dfd);
			free(run);
		}
	}
	closedir(d);
	if (sp->n_runs > 1)
		qsort(sp->runs, sp->n_runs, sizeof(*sp->runs), spool__run_cmp);
}
