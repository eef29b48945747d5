// SPDX-License-Identifier: GPL-2.0
/* Sender-side housekeeping: deleting acknowledged segments, making what the agent
 * thread wrote durable, compressing sealed segments that stay. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/clock.h"
#include "transport/spool_internal.h"

int spool__ack(struct spool *sp, struct spool_run *run, uint64_t seq)
{
	struct spool_seg *segs;
	size_t n;
	int err, deleted = 0;

	if (run->dfd < 0)
		return 0;
	if (seq > spool__run_last_seq(sp, run))
		seq = spool__run_last_seq(sp, run);
	err = spool__list(run->dfd, &segs, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		uint64_t size;

		if (segs[i].type == SEG_LIVE || segs[i].last > seq)
			continue;
		size = spool__file_size(run->dfd, segs[i].name);
		if (unlinkat(run->dfd, segs[i].name, 0) == 0) {
			spool__usage_sub(sp, size);
			deleted++;
		}
	}
	free(segs);
	return deleted;
}

static int spool__sync_file(int dfd, const char *name)
{
	int fd = spool__openat(dfd, name, O_RDONLY), err = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* acked and deleted meanwhile */
	if (fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Compresses one sealed raw segment to .segz: written to a temporary name, synced,
 * renamed over, then the raw one unlinked, so a crash leaves one or the other. */
static int spool__compress(struct spool *sp, int dfd, const struct spool_seg *s)
{
	char tmp[SPOOL_SEG_NAME_MAX + 4], name[SPOOL_SEG_NAME_MAX];
	uint8_t *raw, *z;
	size_t rawlen;
	uLongf zlen;
	int err;

	err = spool__read_file(dfd, s->name, SPOOL_SEG_MAX, &raw, &rawlen);
	if (err) {
		free(raw);
		return err == -ENOENT ? 0 : err;
	}
	zlen = compressBound(rawlen);
	z = malloc(zlen);
	if (!z) {
		free(raw);
		return -ENOMEM;
	}
	/* Fastest level: the spool only grows when the collector is away, and then the
	 * sender has a CPU budget to share with the build. */
	if (compress2(z, &zlen, raw, rawlen, Z_BEST_SPEED) != Z_OK) {
		err = -EIO;
		goto out;
	}
	spool__seg_name(name, s->first, s->last, SEG_Z);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	err = spool__replace_file(dfd, tmp, name, z, zlen, true);
	if (err)
		goto out;
	unlinkat(dfd, s->name, 0);
	fsync(dfd);
	pthread_mutex_lock(&sp->lock);
	sp->usage += zlen;
	sp->usage = sp->usage > rawlen ? sp->usage - rawlen : 0;
	pthread_mutex_unlock(&sp->lock);
out:
	free(raw);
	free(z);
	return err;
}

int spool__maintain(struct spool *sp, struct spool_run *run, unsigned min_age_ms)
{
	struct spool_seg *segs;
	bool synced = false;
	int64_t now;
	size_t n;
	int err;

	if (run->dfd < 0)
		return 0;
	err = spool__list(run->dfd, &segs, &n);
	if (err)
		return err;
	now = clock__real_ns();
	for (size_t i = 0; i < n && !err; i++) {
		struct spool_seg *s = &segs[i];
		struct stat st;
		int64_t age_ms;

		if (run->current && s->type == SEG_LIVE) {
			bool live;
			size_t len;

			pthread_mutex_lock(&sp->lock);
			live = sp->pub_live && sp->pub_first == s->first;
			len = sp->pub_len;
			pthread_mutex_unlock(&sp->lock);
			if (live && (s->first != sp->synced_live_first || len > sp->synced_live_len)) {
				err = spool__sync_file(run->dfd, s->name);
				sp->synced_live_first = s->first;
				sp->synced_live_len = len;
				synced = true;
			}
			continue;
		}
		if (s->type != SEG_RAW)
			continue;
		if (run->current && s->first > sp->synced_sealed_upto) {
			err = spool__sync_file(run->dfd, s->name);
			sp->synced_sealed_upto = s->first;
			synced = true;
		}
		if (fstatat(run->dfd, s->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		age_ms = (now - ((int64_t)st.st_mtim.tv_sec * NSEC_PER_SEC + st.st_mtim.tv_nsec)) /
			 NSEC_PER_MSEC;
		if (age_ms < (int64_t)min_age_ms)
			continue;
		err = spool__compress(sp, run->dfd, s);
	}
	free(segs);
	/* new segment names must survive a crash too */
	if (synced)
		fsync(run->dfd);
	return err;
}
