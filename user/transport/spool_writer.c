// SPDX-License-Identifier: GPL-2.0
/* The writing side of the spool (agent thread): append, drop into a pending Skip,
 * seal. It never waits on anything but the local disk: fsyncs are the sender's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fdio.h"
#include "base/grow.h"
#include "transport/frame.h"
#include "transport/spool_internal.h"

/* Room for a framed Skip record with a reason of our own (short, fixed strings). */
#define SPOOL_SKIP_MAX 300

static void spool__drop(struct spool *sp, uint64_t seq, const char *reason, bool full)
{
	if (!sp->skip_first) {
		sp->skip_first = seq;
		sp->skip_reason = reason;
	} else if (strcmp(sp->skip_reason, reason) != 0) {
		sp->skip_reason = "dropped by the agent: spool full, event too large or I/O error";
	}
	sp->skip_last = seq;
	sp->last_seq = seq;
	pthread_mutex_lock(&sp->lock);
	if (full)
		sp->full_drops++;
	else
		sp->other_drops++;
	sp->pub_last_seq = seq;
	pthread_mutex_unlock(&sp->lock);
}

static int spool__seal_live(struct spool *sp)
{
	char live[SPOOL_SEG_NAME_MAX], name[SPOOL_SEG_NAME_MAX];
	int err = 0;

	if (sp->live_fd < 0)
		return 0;
	if (sp->live_bad_tail && ftruncate(sp->live_fd, (off_t)sp->live_len) < 0)
		err = -errno; /* the reader will stop at the damage: counted, not fatal */
	close(sp->live_fd);
	sp->live_fd = -1;
	sp->live_bad_tail = false;
	spool__seg_name(live, sp->live_first, 0, SEG_LIVE);
	if (sp->live_len == 0) {
		unlinkat(sp->cur->dfd, live, 0);
	} else {
		spool__seg_name(name, sp->live_first, sp->live_last, SEG_RAW);
		if (renameat(sp->cur->dfd, live, sp->cur->dfd, name) < 0)
			err = -errno;
	}
	pthread_mutex_lock(&sp->lock);
	sp->pub_live = false;
	pthread_mutex_unlock(&sp->lock);
	sp->cur->meta.last_seq = sp->last_seq;
	memcpy(sp->cur->meta.last_chain, sp->chain, CHAIN_LEN);
	/* No fsync here: the sender thread syncs sealed segments (spool__maintain), so
	 * the agent loop never waits for the disk to flush. */
	return spool__write_meta(sp->cur->dfd, &sp->cur->meta, false) ?: err;
}

/* Appends buf[0..n) covering seqs first..last to the live segment, opening one if
 * needed. On failure the segment is cut back to its last record.
 *
 * The live segment is published (empty) before its file exists: a reader that lists
 * the file must find it live, and read it as it grows. Published only after a first
 * write, it would look sealed in between, and stay so when that write fails (a full
 * disk: the file is kept for the Skip and the events that come once there is room),
 * so the reader would take it for a finished, empty segment and never read it again. */
static int spool__write_live(struct spool *sp, const uint8_t *buf, size_t n, uint64_t first,
			     uint64_t last)
{
	int err;

	if (sp->live_fd < 0) {
		char live[SPOOL_SEG_NAME_MAX];

		spool__seg_name(live, first, 0, SEG_LIVE);
		sp->live_first = first;
		sp->live_len = 0;
		pthread_mutex_lock(&sp->lock);
		sp->pub_live = true;
		sp->pub_first = first;
		sp->pub_len = 0;
		pthread_mutex_unlock(&sp->lock);
		sp->live_fd = spool__openat(sp->cur->dfd, live,
					    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
		if (sp->live_fd < 0) {
			err = -errno;
			pthread_mutex_lock(&sp->lock);
			sp->pub_live = false;
			pthread_mutex_unlock(&sp->lock);
			return err;
		}
	}
	err = fdio__write_all(sp->live_fd, buf, n);
	if (err) {
		if (ftruncate(sp->live_fd, (off_t)sp->live_len) < 0)
			sp->live_bad_tail = true;
		return err;
	}
	sp->live_len += n;
	sp->live_last = last;
	pthread_mutex_lock(&sp->lock);
	sp->usage += n;
	sp->pub_live = true;
	sp->pub_first = sp->live_first;
	sp->pub_len = sp->live_len;
	sp->pub_last_seq = last;
	pthread_mutex_unlock(&sp->lock);
	return 0;
}

/* Only sealed segments are deleted when acknowledged: a full spool whose live segment
 * holds everything would stay full after the collector has it all. Sealing it lets the
 * sender free it as soon as it is acknowledged. */
static void spool__free_room(struct spool *sp)
{
	if (sp->live_len)
		spool__seal_live(sp);
}

int spool__append(struct spool *sp, const Buildwarden__V1__Event *ev)
{
	uint64_t seq = ev->seq;
	size_t evlen, msg, skiplen = 0, n, evoff;
	uint8_t chain[CHAIN_LEN];
	bool over;
	int err;

	if (seq == 0 || seq <= sp->last_seq)
		return -EINVAL;
	evlen = buildwarden__v1__event__get_packed_size(ev);
	msg = spool__event_msg_size(seq, evlen);
	if (msg > BW_FRAME_MAX) {
		/* the collector would refuse the frame and the connection with it */
		spool__drop(sp, seq, "event too large", false);
		return -EMSGSIZE;
	}
	/* msg <= BW_FRAME_MAX: the only failure left is -ENOMEM */
	err = grow__reserve((void **)&sp->buf, &sp->cap, SPOOL_SKIP_MAX + FRAME_VARINT_MAX + msg,
			    1, 4096, 0);
	if (err) {
		spool__drop(sp, seq, "out of memory", false);
		return err;
	}
	if (sp->skip_first)
		skiplen = spool__encode_skip(sp->skip_first, sp->skip_last, sp->skip_reason,
					     sp->buf, SPOOL_SKIP_MAX);

	/* AgentMessage{event: EventFrame{seq, event, chain}}, packed in place so the
	 * event is serialized once and hashed where it lies. */
	n = skiplen;
	n += spool__put_event_head(sp->buf + n, seq, evlen);
	evoff = n;
	if (buildwarden__v1__event__pack(ev, sp->buf + n) != evlen) {
		spool__drop(sp, seq, "event does not pack", false);
		return -EINVAL;
	}
	n += evlen;
	err = chain__next(sp->chain, seq, sp->buf + evoff, evlen, sp->key, sp->keylen, chain);
	if (err) {
		spool__drop(sp, seq, "chain hash failed", false);
		return err;
	}
	n += spool__put_event_tail(sp->buf + n, chain);

	pthread_mutex_lock(&sp->lock);
	/* Only the sender lowers usage, so a check that passes here stays true. */
	over = sp->usage + n > sp->max_bytes;
	pthread_mutex_unlock(&sp->lock);
	if (over) {
		spool__drop(sp, seq, "spool full", true);
		spool__free_room(sp);
		return -ENOSPC;
	}
	err = spool__write_live(sp, sp->buf, n, sp->skip_first ? sp->skip_first : seq, seq);
	if (err) {
		bool full = err == -ENOSPC || err == -EDQUOT;

		spool__drop(sp, seq, full ? "spool full" : "spool write failed", full);
		if (full)
			spool__free_room(sp);
		return full ? -ENOSPC : err;
	}
	memcpy(sp->chain, chain, CHAIN_LEN);
	sp->last_seq = seq;
	sp->skip_first = sp->skip_last = 0;
	pthread_mutex_lock(&sp->lock);
	sp->spooled++;
	pthread_mutex_unlock(&sp->lock);
	if (sp->live_len >= SPOOL_SEAL_BYTES)
		spool__seal_live(sp);
	return 0;
}

int spool__seal(struct spool *sp, bool final)
{
	int err = 0;

	if (sp->skip_first) {
		/* A Skip is tiny and says what was lost: it goes in over the cap. */
		uint8_t rec[SPOOL_SKIP_MAX];
		size_t n = spool__encode_skip(sp->skip_first, sp->skip_last, sp->skip_reason,
					      rec, sizeof(rec));

		err = spool__write_live(sp, rec, n, sp->skip_first, sp->skip_last);
		if (!err)
			sp->skip_first = sp->skip_last = 0;
	}
	if (final && sp->live_fd >= 0 && fdatasync(sp->live_fd) < 0 && !err)
		err = -errno;
	err = spool__seal_live(sp) ?: err;
	if (final) {
		if (spool__write_meta(sp->cur->dfd, &sp->cur->meta, true) == 0)
			fsync(sp->cur->dfd);
	}
	return err;
}
