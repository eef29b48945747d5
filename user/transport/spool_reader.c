// SPDX-License-Identifier: GPL-2.0
/* Reading a run in seq order (sender thread), the current run's live segment as the
 * agent thread appends to it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/grow.h"
#include "base/log.h"
#include "transport/frame.h"
#include "transport/spool_internal.h"

struct spool_reader {
	struct spool *sp;
	struct spool_run *run;
	uint64_t from;
	bool eof;

	bool have_seg;
	struct spool_seg seg;
	bool incremental; /* the current run's live segment: read as it grows */
	int fd;
	uint8_t *buf;
	size_t len, cap, pos;
	uint64_t prev_last; /* last seq of the previous record in this segment */
	int load_err;       /* the segment could only be read in part */

	bool any_done; /* segments up to done_first were read */
	uint64_t done_first;
};

struct spool_reader *spool_reader__new(struct spool *sp, struct spool_run *run,
				       uint64_t from_seq)
{
	struct spool_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->sp = sp;
	r->run = run;
	r->from = from_seq;
	r->fd = -1;
	return r;
}

bool spool_reader__eof(const struct spool_reader *r)
{
	return r->eof;
}

static void spool_reader__drop_seg(struct spool_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = r->pos = 0;
	r->prev_last = 0;
	r->load_err = 0;
	r->have_seg = false;
	r->incremental = false;
}

static void spool_reader__finish_seg(struct spool_reader *r)
{
	r->any_done = true;
	r->done_first = r->seg.first;
	spool_reader__drop_seg(r);
}

/* Picks and opens the next segment. 1 opened, 0 none (yet), -errno. */
static int spool_reader__open_next(struct spool_reader *r)
{
	struct spool_seg *segs, *pick = NULL;
	size_t n;
	int err;

	if (r->run->dfd < 0) {
		r->eof = true;
		return 0;
	}
	err = spool__list(r->run->dfd, &segs, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !pick; i++) {
		if (r->any_done && segs[i].first <= r->done_first)
			continue;
		if (segs[i].type != SEG_LIVE && segs[i].last < r->from)
			continue;
		pick = &segs[i];
	}
	if (!pick) {
		free(segs);
		if (!r->run->current)
			r->eof = true;
		return 0;
	}
	r->seg = *pick;
	free(segs);

	if (r->seg.type == SEG_LIVE && r->run->current) {
		bool live;

		pthread_mutex_lock(&r->sp->lock);
		live = r->sp->pub_live && r->sp->pub_first == r->seg.first;
		pthread_mutex_unlock(&r->sp->lock);
		if (live) {
			r->fd = spool__openat(r->run->dfd, r->seg.name, O_RDONLY);
			if (r->fd < 0)
				return errno == ENOENT ? -EAGAIN : -errno; /* sealed meanwhile */
			r->incremental = true;
			r->have_seg = true;
			return 1;
		}
	}
	err = spool__load_seg(r->run->dfd, &r->seg, &r->buf, &r->len);
	if (err == -ENOENT) {
		/* compressed or sealed between the listing and the open: list again */
		free(r->buf);
		r->buf = NULL;
		r->len = 0;
		return -EAGAIN;
	}
	if (err && !r->buf)
		return err;
	r->have_seg = true;
	/* keep the readable prefix; the damage is reported when the reader gets there */
	r->load_err = err;
	return 1;
}

/* Reads what the agent thread committed to the live segment since the last call.
 * *still_live: the segment is still being appended to. */
static int spool_reader__refill(struct spool_reader *r, bool *still_live)
{
	size_t avail;
	struct stat st;

	pthread_mutex_lock(&r->sp->lock);
	*still_live = r->sp->pub_live && r->sp->pub_first == r->seg.first;
	avail = r->sp->pub_len;
	pthread_mutex_unlock(&r->sp->lock);
	if (!*still_live) {
		/* sealed: every record is in the file (the fd outlives the rename) */
		if (fstat(r->fd, &st) < 0)
			return -errno;
		avail = (size_t)st.st_size;
	}
	if (avail > SPOOL_SEG_MAX)
		avail = SPOOL_SEG_MAX;
	if (avail <= r->len)
		return 0;
	if (grow__reserve((void **)&r->buf, &r->cap, avail, 1, 65536, 0))
		return -ENOMEM;
	while (r->len < avail) {
		ssize_t got = pread(r->fd, r->buf + r->len, avail - r->len, (off_t)r->len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		r->len += (size_t)got;
	}
	return 0;
}

int spool_reader__next(struct spool_reader *r, struct spool_rec *rec)
{
	int races = 0;

	for (;;) {
		bool still_live = false;
		int rc;

		if (r->eof)
			return 0;
		if (!r->have_seg) {
			rc = spool_reader__open_next(r);
			/* a file renamed under us is found under its new name next time */
			if (rc == -EAGAIN && ++races < 8)
				continue;
			if (rc <= 0)
				return rc == -EAGAIN ? 0 : rc;
		}
		if (r->incremental) {
			rc = spool_reader__refill(r, &still_live);
			if (rc)
				return rc;
		}
		rc = spool__next_record(r->buf, r->len, &r->pos, rec);
		/* Seqs outside the segment's name would let an ack delete what it does
		 * not cover: damage, like seqs that go backwards. */
		if (rc == 1 && ((r->prev_last && rec->first <= r->prev_last) ||
				rec->first < r->seg.first ||
				(r->seg.type != SEG_LIVE && rec->last > r->seg.last))) {
			r->pos -= rec->frame_len;
			rc = -EBADMSG;
		}
		if (rc == 1) {
			r->prev_last = rec->last;
			if (rec->last < r->from)
				continue;
			return 1;
		}
		if (rc == 0 && still_live)
			return 0; /* caught up with the agent */
		if (rc < 0 || r->load_err) {
			log__line(stderr, SPOOL_LOG, "run '%s': segment '%s' is damaged at byte %zu (%s); "
				   "skipping the rest of it",
				   r->run->meta.run_id, r->seg.name, r->pos,
				   r->load_err == -EFBIG ? "larger than any segment we write" :
				   frame__strerror(r->load_err ?: rc));
			spool__count_corrupt(r->sp);
		}
		spool_reader__finish_seg(r);
	}
}

void spool_reader__free(struct spool_reader *r)
{
	if (!r)
		return;
	spool_reader__drop_seg(r);
	free(r);
}
