// SPDX-License-Identifier: GPL-2.0
/* Stream decoder: see decode.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buildwarden.pb-c.h"
#include "base/grow.h"
#include "base/log.h"
#include "transport/decode.h"
#include "transport/frame.h"
#include "transport/event_text.h"
#include "transport/pbjson.h"

#define DECODE_CHUNK (128 * 1024)
/* One whole frame must fit after compaction, so the reader never stalls on a legal one. */
#define DECODE_BUF_MAX (BW_FRAME_MAX + FRAME_VARINT_MAX)

struct decode_buf {
	uint8_t *data;
	size_t cap;
	size_t start;  /* first unconsumed byte */
	size_t end;    /* one past the last byte read */
	uint64_t base; /* stream offset of data[0], for error messages */
};

/* Makes room for more input: drop consumed bytes, then grow up to DECODE_BUF_MAX. */
static int decode__make_room(struct decode_buf *b)
{
	if (b->start) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->base += b->start;
		b->end -= b->start;
		b->start = 0;
	}
	if (b->end < b->cap)
		return 0;
	/* Cannot happen: a full DECODE_BUF_MAX window holds a frame or an error. */
	if (b->cap >= DECODE_BUF_MAX)
		return -EOVERFLOW;
	return grow__reserve((void **)&b->data, &b->cap, b->cap + 1, 1, DECODE_CHUNK, DECODE_BUF_MAX);
}

static gzFile decode__open(const char *path, const char *name, const char *who, FILE *err)
{
	struct stat st;
	gzFile gz;
	int fd;

	if (!path || strcmp(path, "-") == 0)
		/* A dup, so gzclose leaves the process's stdin open. */
		fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log__line(err, who, "cannot open '%s': %s", name, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		log__line(err, who, "cannot open '%s': %s", name, strerror(EISDIR));
		close(fd);
		return NULL;
	}
	/* zlib reads a plain file through unchanged ("transparent"), so one path serves
	 * both .pb and .pb.gz whatever the file is called. */
	gz = gzdopen(fd, "rb");
	if (!gz) {
		log__line(err, who, "cannot open '%s': %s", name, strerror(ENOMEM));
		close(fd);
		return NULL;
	}
	gzbuffer(gz, DECODE_CHUNK);
	return gz;
}

/* Unpacks one frame's payload and hands it to the visitor. 0, or a DECODE_* result
 * with the reason in *why (NULL: the visitor has said it). */
static int decode__event(const uint8_t *payload, size_t plen, const struct decode_visitor *v,
			 const char **why)
{
	Buildwarden__V1__Event *ev;
	int ret;

	ev = buildwarden__v1__event__unpack(NULL, plen, payload);
	if (!ev) {
		*why = "payload is not a valid Event message";
		return DECODE_BAD_DATA;
	}
	*why = NULL;
	ret = v->event(v->ctx, ev, why);
	buildwarden__v1__event__free_unpacked(ev, NULL);
	return ret;
}

struct decode_print {
	FILE *out;
	FILE *err;
	unsigned flags; /* DECODE_* */
};

/* decode__stream's visitor: one proto3-JSON line per event. */
static int decode__print(void *ctx, const Buildwarden__V1__Event *ev, const char **why)
{
	struct decode_print *p = ctx;
	int ret;

	if (p->flags & DECODE_TEXT) {
		event_text__print(p->out, ev);
		ret = ferror(p->out) ? -EIO : 0;
		if (ret == -EIO) {
			log__line(p->err, "decode: ", "%s", strerror(errno ? errno : EIO));
			return DECODE_IO_ERROR;
		}
		return 0;
	}
	ret = pbjson__print_opts(p->out, &ev->base,
				 (p->flags & DECODE_KIND ? PBJSON_KIND : 0) |
					 (p->flags & DECODE_EMIT_DEFAULTS ? PBJSON_EMIT_DEFAULTS : 0));
	if (ret == -EIO || fputc('\n', p->out) == EOF) {
		log__line(p->err, "decode: ", "%s", strerror(errno ? errno : EIO));
		return DECODE_IO_ERROR;
	}
	if (ret) {
		fflush(p->out);
		*why = frame__strerror(ret);
		return DECODE_BAD_DATA;
	}
	return 0;
}

int decode__stream(const char *path, FILE *out, FILE *err)
{
	return decode__stream_opts(path, out, err, 0);
}

int decode__stream_opts(const char *path, FILE *out, FILE *err, unsigned flags)
{
	struct decode_print p = { .out = out, .err = err, .flags = flags };
	struct decode_visitor v = { .event = decode__print, .ctx = &p };
	int ret;

	ret = decode__each(path, &v, "decode: ", err);
	/* every good event before an error is out, whatever the outcome */
	if (fflush(out) != 0 && ret == DECODE_OK) {
		log__line(err, "decode: ", "%s", strerror(errno));
		ret = DECODE_IO_ERROR;
	}
	return ret;
}

int decode__each(const char *path, const struct decode_visitor *v, const char *who, FILE *err)
{
	const char *name = (!path || strcmp(path, "-") == 0) ? "<stdin>" : path;
	struct decode_buf b = { 0 };
	bool eof = false, gz_trunc = false;
	const char *why = NULL;
	gzFile gz;
	int ret = DECODE_OK;

	gz = decode__open(path, name, who, err);
	if (!gz)
		return DECODE_NO_INPUT;

	for (;;) {
		const uint8_t *payload;
		size_t plen, off = b.start;
		int rc, n;

		rc = frame__next(b.data, b.end, &off, BW_FRAME_MAX, &payload, &plen);
		if (rc == 1) {
			ret = decode__event(payload, plen, v, &why);
			if (ret && why)
				goto corrupt;
			if (ret)
				goto cleanup;
			b.start = off;
			continue;
		}
		if (eof && gz_trunc) {
			/* Whatever the frames say, the input ended where it should not have. */
			log__line(err, who,
				"%s: truncated gzip stream after byte offset %" PRIu64,
				name, b.base + b.end);
			ret = DECODE_BAD_DATA;
			goto cleanup;
		}
		if (rc == 0 && eof)
			break;
		if (rc < 0 && (rc != FRAME_ETRUNC || eof)) {
			why = frame__strerror(rc);
			ret = DECODE_BAD_DATA;
			goto corrupt;
		}

		/* The next frame is not all here yet: read more. */
		rc = decode__make_room(&b);
		if (rc) {
			log__line(err, who, "%s: %s", name, strerror(-rc));
			ret = DECODE_NO_MEMORY;
			goto cleanup;
		}
		n = gzread(gz, b.data + b.end, (unsigned)(b.cap - b.end));
		if (n < 0) {
			int errnum;
			const char *msg = gzerror(gz, &errnum);

			if (errnum == Z_ERRNO) {
				log__line(err, who, "%s: read error: %s", name,
					strerror(errno));
				ret = DECODE_IO_ERROR;
			} else {
				log__line(err, who,
					"%s: corrupt gzip stream after byte offset %" PRIu64
					": %s",
					name, b.base + b.end, msg);
				ret = DECODE_BAD_DATA;
			}
			goto cleanup;
		}
		if (n == 0) {
			int errnum;

			eof = true;
			/* zlib reports a cut-off gzip member as a quiet EOF plus this error. */
			gzerror(gz, &errnum);
			gz_trunc = errnum == Z_BUF_ERROR;
		}
		b.end += (size_t)n;
		if (v->progress)
			v->progress(v->ctx, (uint64_t)gzoffset(gz));
	}
	goto cleanup;

corrupt:
	log__line(err, who, "%s: corrupt frame at byte offset %" PRIu64 ": %s",
		name, b.base + b.start, why);
cleanup:
	gzclose(gz);
	free(b.data);
	return ret;
}
