// SPDX-License-Identifier: GPL-2.0
/* Spool: see spool.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/grow.h"
#include "base/log.h"
#include "transport/frame.h"
#include "transport/pbfield.h"
#include "transport/spool.h"

#define SPOOL_META_MAX 4096
/* Room for a framed Skip record with a reason of our own (short, fixed strings). */
#define SPOOL_SKIP_MAX 300
#define SPOOL_REASON_MAX 1024

enum spool_seg_type {
	SEG_LIVE,
	SEG_RAW,
	SEG_Z,
};

struct spool_seg {
	uint64_t first, last; /* last is 0 for a live segment: not known from its name */
	enum spool_seg_type type;
	char name[48];
};

struct spool {
	char root[PATH_MAX];
	int root_fd;
	uint64_t max_bytes;
	uint8_t key[CHAIN_KEY_MAX];
	size_t keylen;

	struct spool_run **runs; /* oldest first, the current run last; fixed after open */
	size_t n_runs, runs_cap;
	struct spool_run *cur;

	/* Agent thread only. */
	int live_fd; /* -1: no live segment */
	uint64_t live_first, live_last;
	size_t live_len;      /* committed: ends on a record boundary */
	bool live_bad_tail;   /* a failed write may have left bytes past live_len */
	uint64_t last_seq;    /* highest seq spooled or dropped */
	uint8_t chain[CHAIN_LEN];
	uint64_t skip_first, skip_last; /* pending Skip; skip_first 0 = none */
	const char *skip_reason;
	uint8_t *buf;
	size_t cap;

	/* Sender thread only: what spool__maintain already made durable. */
	uint64_t synced_live_first;
	size_t synced_live_len;
	uint64_t synced_sealed_upto;

	/* Shared between the two threads. */
	pthread_mutex_t lock;
	bool pub_live; /* the current run has a live segment (from before its file exists)... */
	uint64_t pub_first; /* ...starting at this seq... */
	size_t pub_len;     /* ...of which this many bytes are complete records */
	uint64_t usage, spooled, full_drops, other_drops, corrupt, pub_last_seq;
};

/* The prefix of every line the spool logs (to stderr, through base/log.h). */
#define SPOOL_LOG "buildwarden: spool: "

/* ---- records ---------------------------------------------------------- */

/* The fields of proto/collector.proto a record is made of. */
enum {
	AGENT_MESSAGE_EVENT = 2,
	AGENT_MESSAGE_SKIP = 3,
	EVENT_FRAME_SEQ = 1,
	EVENT_FRAME_EVENT = 2,
	EVENT_FRAME_CHAIN = 3,
	SKIP_FIRST_SEQ = 1,
	SKIP_LAST_SEQ = 2,
	SKIP_REASON = 3,
};

/* The fields of the one EventFrame/Skip inside an AgentMessage. Our writer emits
 * exactly these; anything else in a segment is damage, so the parser is strict. */
static int spool__parse_inner(const uint8_t *p, size_t n, struct spool_rec *rec)
{
	bool seen[4] = { false };
	size_t off = 0;

	while (off < n) {
		uint64_t tag, v;
		unsigned field, wt;
		int k = frame__decode_len(p + off, n - off, &tag);

		if (k < 0)
			return -EBADMSG;
		off += (size_t)k;
		field = (unsigned)(tag >> 3);
		wt = (unsigned)(tag & 7);
		if (field < 1 || field > 3 || seen[field])
			return -EBADMSG;
		seen[field] = true;
		k = frame__decode_len(p + off, n - off, &v);
		if (k < 0)
			return -EBADMSG;
		off += (size_t)k;

		if (rec->kind == SPOOL_REC_EVENT) {
			if (field == EVENT_FRAME_SEQ && wt == PB_WIRE_VARINT) {
				rec->first = rec->last = v;
				continue;
			}
			if (wt != PB_WIRE_LEN || v > n - off)
				return -EBADMSG;
			if (field == EVENT_FRAME_EVENT) {
				rec->event = p + off;
				rec->event_len = (size_t)v;
			} else {
				if (v != CHAIN_LEN)
					return -EBADMSG;
				rec->chain = p + off;
			}
			off += (size_t)v;
		} else {
			if (field == SKIP_FIRST_SEQ && wt == PB_WIRE_VARINT) {
				rec->first = v;
			} else if (field == SKIP_LAST_SEQ && wt == PB_WIRE_VARINT) {
				rec->last = v;
			} else if (field == SKIP_REASON && wt == PB_WIRE_LEN && v <= n - off &&
				   v <= SPOOL_REASON_MAX) {
				rec->reason = p + off;
				rec->reason_len = (size_t)v;
				off += (size_t)v;
			} else {
				return -EBADMSG;
			}
		}
	}
	if (rec->first == 0 || rec->last < rec->first)
		return -EBADMSG;
	if (rec->kind == SPOOL_REC_EVENT && !rec->chain)
		return -EBADMSG;
	return 0;
}

int spool__next_record(const uint8_t *buf, size_t len, size_t *off, struct spool_rec *rec)
{
	const uint8_t *p;
	size_t start = *off, pos = *off, plen, hdr;
	uint64_t inner;
	int rc, k;

	rc = frame__next(buf, len, &pos, BW_FRAME_MAX, &p, &plen);
	if (rc <= 0)
		return rc;
	memset(rec, 0, sizeof(*rec));
	if (plen < 2 || (p[0] != PBFIELD_TAG(AGENT_MESSAGE_EVENT, PB_WIRE_LEN) &&
			 p[0] != PBFIELD_TAG(AGENT_MESSAGE_SKIP, PB_WIRE_LEN)))
		return -EBADMSG;
	rec->kind = p[0] == PBFIELD_TAG(AGENT_MESSAGE_EVENT, PB_WIRE_LEN) ? SPOOL_REC_EVENT :
									   SPOOL_REC_SKIP;
	k = frame__decode_len(p + 1, plen - 1, &inner);
	if (k < 0)
		return -EBADMSG;
	hdr = 1 + (size_t)k;
	if (inner != plen - hdr)
		return -EBADMSG;
	rc = spool__parse_inner(p + hdr, plen - hdr, rec);
	if (rc)
		return rc;
	rec->frame = buf + start;
	rec->frame_len = pos - start;
	*off = pos;
	return 1;
}

int spool__scan(const uint8_t *buf, size_t len, size_t *good_len, uint64_t *first,
		uint64_t *last, uint8_t last_chain[CHAIN_LEN])
{
	struct spool_rec rec;
	size_t off = 0;
	int rc;

	*first = *last = 0;
	while ((rc = spool__next_record(buf, len, &off, &rec)) == 1) {
		if (*last && rec.first <= *last) {
			/* seqs go backwards: not something our writer does */
			off -= rec.frame_len;
			rc = -EBADMSG;
			break;
		}
		if (!*first)
			*first = rec.first;
		*last = rec.last;
		if (rec.kind == SPOOL_REC_EVENT && last_chain)
			memcpy(last_chain, rec.chain, CHAIN_LEN);
	}
	*good_len = off;
	return rc;
}

int spool__inflate(const uint8_t *z, size_t zlen, uint8_t **out, size_t *outlen)
{
	z_stream s;
	uint8_t *buf = NULL;
	size_t cap = 0, first = zlen * 4 < 65536 ? 65536 : zlen * 4;
	int zr, err = 0;

	if (first > SPOOL_SEG_MAX)
		first = SPOOL_SEG_MAX;
	*out = NULL;
	*outlen = 0;
	if (grow__reserve((void **)&buf, &cap, first, 1, first, SPOOL_SEG_MAX))
		return -ENOMEM;
	memset(&s, 0, sizeof(s));
	if (inflateInit(&s) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	/* zlen may exceed uInt in theory; a segment file never does (bounded on read). */
	s.next_in = (Bytef *)z;
	s.avail_in = (uInt)zlen;
	for (;;) {
		if (s.total_out == cap) {
			/* doubles, up to the bound; one byte past it is not a segment we wrote */
			err = grow__reserve((void **)&buf, &cap, cap + 1, 1, 0, SPOOL_SEG_MAX);
			if (err) {
				err = err == -EOVERFLOW ? -EFBIG : -ENOMEM;
				break;
			}
		}
		s.next_out = buf + s.total_out;
		s.avail_out = (uInt)(cap - s.total_out);
		zr = inflate(&s, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_OK)
			continue;
		if (zr == Z_BUF_ERROR && s.avail_out == 0)
			continue; /* grow */
		err = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
		break;
	}
	*out = buf;
	*outlen = s.total_out;
	inflateEnd(&s);
	return err;
}

size_t spool__encode_skip(uint64_t first, uint64_t last, const char *reason, uint8_t *out,
			  size_t cap)
{
	size_t rlen = strnlen(reason, 256), inner, msg, n;

	inner = pbfield__uint64_size(SKIP_FIRST_SEQ, first) +
		pbfield__uint64_size(SKIP_LAST_SEQ, last) +
		(rlen ? pbfield__len_size(SKIP_REASON, rlen) : 0);
	msg = pbfield__len_size(AGENT_MESSAGE_SKIP, inner);
	if (pbfield__varint_size(msg) + msg > cap)
		return 0;
	n = pbfield__put_varint(out, msg);
	n += pbfield__put_len_head(out + n, AGENT_MESSAGE_SKIP, inner);
	n += pbfield__put_uint64(out + n, SKIP_FIRST_SEQ, first);
	n += pbfield__put_uint64(out + n, SKIP_LAST_SEQ, last);
	if (rlen)
		n += pbfield__put_bytes(out + n, SKIP_REASON, reason, rlen);
	return n;
}

static size_t spool__event_inner_size(uint64_t seq, size_t evlen)
{
	return pbfield__uint64_size(EVENT_FRAME_SEQ, seq) +
	       pbfield__len_size(EVENT_FRAME_EVENT, evlen) +
	       pbfield__len_size(EVENT_FRAME_CHAIN, CHAIN_LEN);
}

/* AgentMessage{event: EventFrame{seq, event, chain}} for an event of evlen bytes is
 * written in three steps, so that the event is packed once, in place, and hashed
 * where it lies: the head (the frame's length, the message keys, seq and the event's
 * length), the event, the tail (its chain). The size is the AgentMessage's, without
 * the frame's length varint. */
static size_t spool__event_msg_size(uint64_t seq, size_t evlen)
{
	return pbfield__len_size(AGENT_MESSAGE_EVENT, spool__event_inner_size(seq, evlen));
}

static size_t spool__put_event_head(uint8_t *out, uint64_t seq, size_t evlen)
{
	size_t inner = spool__event_inner_size(seq, evlen), n;

	n = pbfield__put_varint(out, pbfield__len_size(AGENT_MESSAGE_EVENT, inner));
	n += pbfield__put_len_head(out + n, AGENT_MESSAGE_EVENT, inner);
	n += pbfield__put_uint64(out + n, EVENT_FRAME_SEQ, seq);
	n += pbfield__put_len_head(out + n, EVENT_FRAME_EVENT, evlen);
	return n;
}

static size_t spool__put_event_tail(uint8_t *out, const uint8_t chain[CHAIN_LEN])
{
	return pbfield__put_bytes(out, EVENT_FRAME_CHAIN, chain, CHAIN_LEN);
}

/* ---- files -------------------------------------------------------------- */

static bool spool__valid_run_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SPOOL_RUN_ID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool spool__parse_seq(const char *s, uint64_t *v)
{
	uint64_t r = 0;

	for (int i = 0; i < 20; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (r > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		r = r * 10 + (uint64_t)(s[i] - '0');
	}
	*v = r;
	return r != 0;
}

/* "<20 digits>.live", "<20>-<20>.seg", "<20>-<20>.segz"; anything else is not ours. */
static bool spool__parse_name(const char *name, struct spool_seg *seg)
{
	size_t n = strlen(name);

	if (n >= sizeof(seg->name) || !spool__parse_seq(name, &seg->first))
		return false;
	if (strcmp(name + 20, ".live") == 0) {
		seg->type = SEG_LIVE;
		seg->last = 0;
	} else if (name[20] == '-' && spool__parse_seq(name + 21, &seg->last) &&
		   seg->last >= seg->first &&
		   (strcmp(name + 41, ".seg") == 0 || strcmp(name + 41, ".segz") == 0)) {
		seg->type = name[45] == 'z' ? SEG_Z : SEG_RAW;
	} else {
		return false;
	}
	memcpy(seg->name, name, n + 1);
	return true;
}

static int spool__seg_cmp(const void *a, const void *b)
{
	const struct spool_seg *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->type - (int)y->type;
}

/* The segments of a run directory, sorted by first seq. */
static int spool__list(int dfd, struct spool_seg **out, size_t *n)
{
	struct spool_seg *v = NULL, seg;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = NULL;
	*n = 0;
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!spool__parse_name(de->d_name, &seg))
			continue;
		if (grow__reserve((void **)&v, &cap, cnt + 1, sizeof(*v), 16, 0)) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v[cnt++] = seg;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), spool__seg_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

static int spool__write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads a whole file of at most max bytes; -EFBIG (with the first max bytes) above. */
static int spool__read_file(int dfd, const char *name, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t want, got = 0;
	int fd, err = 0;

	*out = NULL;
	*len = 0;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return err;
	}
	want = (uint64_t)st.st_size > max ? max : (size_t)st.st_size;
	buf = malloc(want ? want : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < want) {
		ssize_t r = read(fd, buf + got, want - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!err && (uint64_t)st.st_size > max)
		err = -EFBIG;
	*out = buf;
	*len = got;
	return err;
}

/* A segment's bytes, inflated if compressed. */
static int spool__load_seg(int dfd, const struct spool_seg *seg, uint8_t **out, size_t *len)
{
	uint8_t *z;
	size_t zlen;
	int err;

	err = spool__read_file(dfd, seg->name, SPOOL_SEG_MAX, out, len);
	if (seg->type != SEG_Z || err == -ENOENT || err == -ENOMEM || !*out)
		return err;
	z = *out;
	zlen = *len;
	err = spool__inflate(z, zlen, out, len) ?: err;
	free(z);
	return err;
}

static uint64_t spool__file_size(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

static void spool__usage_sub(struct spool *sp, uint64_t n)
{
	pthread_mutex_lock(&sp->lock);
	sp->usage = sp->usage > n ? sp->usage - n : 0;
	pthread_mutex_unlock(&sp->lock);
}

static void spool__count_corrupt(struct spool *sp)
{
	pthread_mutex_lock(&sp->lock);
	sp->corrupt++;
	pthread_mutex_unlock(&sp->lock);
}

/* ---- meta -------------------------------------------------------------- */

static int spool__write_meta(int dfd, const struct spool_meta *m, bool sync)
{
	char buf[SPOOL_META_MAX], hex[2 * CHAIN_LEN + 1];
	int fd, n, err;

	for (int i = 0; i < CHAIN_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", m->last_chain[i]);
	n = snprintf(buf, sizeof(buf),
		     "buildwarden-spool 1\nrun_id %s\nhost %s\nagent_id %s\nkeyed %d\n"
		     "created_ns %" PRIu64 "\nlast_seq %" PRIu64 "\nlast_chain %s\n",
		     m->run_id, m->host, m->agent_id, m->keyed ? 1 : 0, m->created_ns,
		     m->last_seq, hex);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	fd = openat(dfd, "meta.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	err = spool__write_all(fd, (const uint8_t *)buf, (size_t)n);
	if (!err && sync && fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && renameat(dfd, "meta.tmp", dfd, "meta") < 0)
		err = -errno;
	if (err)
		unlinkat(dfd, "meta.tmp", 0);
	return err;
}

static bool spool__meta_str(const char *line, const char *key, char *out, size_t outlen)
{
	size_t k = strlen(key), n;

	if (strncmp(line, key, k) != 0 || line[k] != ' ')
		return false;
	n = strlen(line + k + 1);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, line + k + 1, n);
	out[n] = '\0';
	return true;
}

static int spool__read_meta(int dfd, struct spool_meta *m)
{
	char val[2 * CHAIN_LEN + 8];
	uint8_t *buf;
	size_t len;
	char *text, *line, *save = NULL;
	bool magic = false;
	int err;

	memset(m, 0, sizeof(*m));
	err = spool__read_file(dfd, "meta", SPOOL_META_MAX, &buf, &len);
	if (err) {
		free(buf);
		return err;
	}
	text = malloc(len + 1);
	if (!text) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "buildwarden-spool 1") == 0) {
			magic = true;
		} else if (spool__meta_str(line, "run_id", m->run_id, sizeof(m->run_id)) ||
			   spool__meta_str(line, "host", m->host, sizeof(m->host)) ||
			   spool__meta_str(line, "agent_id", m->agent_id, sizeof(m->agent_id))) {
			continue;
		} else if (spool__meta_str(line, "keyed", val, sizeof(val))) {
			m->keyed = strcmp(val, "1") == 0;
		} else if (spool__meta_str(line, "created_ns", val, sizeof(val))) {
			m->created_ns = strtoull(val, NULL, 10);
		} else if (spool__meta_str(line, "last_seq", val, sizeof(val))) {
			m->last_seq = strtoull(val, NULL, 10);
		} else if (spool__meta_str(line, "last_chain", val, sizeof(val))) {
			for (int i = 0; i < CHAIN_LEN && strlen(val) == 2 * CHAIN_LEN; i++) {
				unsigned b;

				if (sscanf(val + 2 * i, "%2x", &b) == 1)
					m->last_chain[i] = (uint8_t)b;
			}
		}
	}
	free(text);
	if (!magic || !spool__valid_run_id(m->run_id))
		return -EBADMSG;
	return 0;
}

/* ---- runs --------------------------------------------------------------- */

/* Makes an inherited run consistent: its live segment (the process died while writing
 * it) is cut after its last good record and sealed, sealed segments newer than meta
 * are scanned for the last seq and chain, leftovers of interrupted renames go. */
static int spool__adopt(struct spool *sp, struct spool_run *run)
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
			char name[48];
			int fd;

			if (!last) {
				unlinkat(run->dfd, s->name, 0);
				continue;
			}
			fd = openat(run->dfd, s->name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0) {
				if (ftruncate(fd, (off_t)good) < 0 || fdatasync(fd) < 0)
					log__line(stderr, SPOOL_LOG, "run '%s': cannot truncate '%s': %s",
						   run->meta.run_id, s->name, strerror(errno));
				close(fd);
			}
			snprintf(name, sizeof(name), "%020" PRIu64 "-%020" PRIu64 ".seg", first, last);
			if (renameat(run->dfd, s->name, run->dfd, name) < 0)
				log__line(stderr, SPOOL_LOG, "run '%s': cannot seal '%s': %s", run->meta.run_id,
					   s->name, strerror(errno));
		}
	}
	free(segs);
	fsync(run->dfd);
	return spool__write_meta(run->dfd, &run->meta, true);
}

static bool spool__run_empty(int dfd)
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

static uint64_t spool__dir_usage(int dfd)
{
	struct spool_seg *segs;
	uint64_t sum = 0;
	size_t n;

	if (spool__list(dfd, &segs, &n))
		return 0;
	for (size_t i = 0; i < n; i++)
		sum += spool__file_size(dfd, segs[i].name);
	free(segs);
	return sum;
}

static int spool__run_cmp(const void *a, const void *b)
{
	const struct spool_run *x = *(struct spool_run *const *)a;
	const struct spool_run *y = *(struct spool_run *const *)b;

	if (x->meta.created_ns != y->meta.created_ns)
		return x->meta.created_ns < y->meta.created_ns ? -1 : 1;
	return strcmp(x->meta.run_id, y->meta.run_id);
}

static int spool__add_run(struct spool *sp, struct spool_run *run)
{
	int err = grow__reserve((void **)&sp->runs, &sp->runs_cap, sp->n_runs + 1,
				sizeof(*sp->runs), 4, 0);

	if (err)
		return err;
	sp->runs[sp->n_runs++] = run;
	return 0;
}

/* Opens and locks <root>/<name>; -EBUSY if another process holds it. */
static int spool__lock_run(struct spool *sp, const char *name, int *dfd)
{
	int fd = openat(sp->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	*dfd = fd;
	return 0;
}

/* The runs other processes left: adopted, or removed when nothing is left in them. */
static void spool__adopt_old_runs(struct spool *sp, const char *cur)
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
			int ofd = openat(sp->root_fd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (ofd >= 0) {
				sp->usage += spool__dir_usage(ofd);
				close(ofd);
			}
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

static int spool__mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		tmp[i] = path[i];
	}
	return 0;
}

struct spool *spool__open(const struct spool_opts *o, char *err, size_t errlen)
{
	struct spool_run *run = NULL;
	struct spool *sp;
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
	sp->root_fd = open(sp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->root_fd < 0) {
		snprintf(err, errlen, "spool: cannot open '%s': %s", sp->root, strerror(errno));
		goto fail;
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
			 e == -EBUSY ? "in use by another process" : strerror(-e));
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

/* ---- writing (agent thread) ---------------------------------------------- */

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
	char live[48], name[48];
	int err = 0;

	if (sp->live_fd < 0)
		return 0;
	if (sp->live_bad_tail && ftruncate(sp->live_fd, (off_t)sp->live_len) < 0)
		err = -errno; /* the reader will stop at the damage: counted, not fatal */
	close(sp->live_fd);
	sp->live_fd = -1;
	sp->live_bad_tail = false;
	snprintf(live, sizeof(live), "%020" PRIu64 ".live", sp->live_first);
	if (sp->live_len == 0) {
		unlinkat(sp->cur->dfd, live, 0);
	} else {
		snprintf(name, sizeof(name), "%020" PRIu64 "-%020" PRIu64 ".seg", sp->live_first,
			 sp->live_last);
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
		char live[48];

		snprintf(live, sizeof(live), "%020" PRIu64 ".live", first);
		sp->live_first = first;
		sp->live_len = 0;
		pthread_mutex_lock(&sp->lock);
		sp->pub_live = true;
		sp->pub_first = first;
		sp->pub_len = 0;
		pthread_mutex_unlock(&sp->lock);
		sp->live_fd = openat(sp->cur->dfd, live,
				     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
				     0600);
		if (sp->live_fd < 0) {
			err = -errno;
			pthread_mutex_lock(&sp->lock);
			sp->pub_live = false;
			pthread_mutex_unlock(&sp->lock);
			return err;
		}
	}
	err = spool__write_all(sp->live_fd, buf, n);
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

void spool__stats(struct spool *sp, struct spool_stats *out)
{
	pthread_mutex_lock(&sp->lock);
	out->spooled = sp->spooled;
	out->full_drops = sp->full_drops;
	out->other_drops = sp->other_drops;
	out->corrupt = sp->corrupt;
	out->usage = sp->usage;
	out->last_seq = sp->pub_last_seq;
	pthread_mutex_unlock(&sp->lock);
}

/* ---- sender-side housekeeping --------------------------------------------- */

int spool__ack(struct spool *sp, struct spool_run *run, uint64_t seq)
{
	struct spool_seg *segs;
	size_t n;
	int err, deleted = 0;

	if (run->dfd < 0)
		return 0;
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
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), err = 0;

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
	char tmp[64], name[48];
	uint8_t *raw, *z;
	size_t rawlen;
	uLongf zlen;
	int fd, err;

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
	snprintf(name, sizeof(name), "%020" PRIu64 "-%020" PRIu64 ".segz", s->first, s->last);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = spool__write_all(fd, z, zlen);
	if (!err && fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && renameat(dfd, tmp, dfd, name) < 0)
		err = -errno;
	if (err) {
		unlinkat(dfd, tmp, 0);
		goto out;
	}
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

/* ---- reading (sender thread) ------------------------------------------------ */

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
			r->fd = openat(r->run->dfd, r->seg.name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
