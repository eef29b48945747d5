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

static gzFile decode__open(const char *path, const char *name, FILE *err)
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
		log__line(err, "decode: ", "cannot open '%s': %s", name, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		log__line(err, "decode: ", "cannot open '%s': %s", name, strerror(EISDIR));
		close(fd);
		return NULL;
	}
	/* zlib reads a plain file through unchanged ("transparent"), so one path serves
	 * both .pb and .pb.gz whatever the file is called. */
	gz = gzdopen(fd, "rb");
	if (!gz) {
		log__line(err, "decode: ", "cannot open '%s': %s", name, strerror(ENOMEM));
		close(fd);
		return NULL;
	}
	gzbuffer(gz, DECODE_CHUNK);
	return gz;
}

/* Prints one frame's payload as a JSON line. 0, or a DECODE_* result with the reason
 * in *why. */
static int decode__event(const uint8_t *payload, size_t plen, FILE *out,
			 const char **why)
{
	Buildwarden__V1__Event *ev;
	int ret;

	ev = buildwarden__v1__event__unpack(NULL, plen, payload);
	if (!ev) {
		*why = "payload is not a valid Event message";
		return DECODE_BAD_DATA;
	}
	ret = pbjson__print(out, &ev->base);
	buildwarden__v1__event__free_unpacked(ev, NULL);
	if (ret == -EIO || fputc('\n', out) == EOF) {
		*why = "write error";
		return DECODE_IO_ERROR;
	}
	if (ret) {
		*why = frame__strerror(ret);
		return DECODE_BAD_DATA;
	}
	return 0;
}

int decode__stream(const char *path, FILE *out, FILE *err)
{
	const char *name = (!path || strcmp(path, "-") == 0) ? "<stdin>" : path;
	struct decode_buf b = { 0 };
	bool eof = false, gz_trunc = false;
	const char *why = NULL;
	gzFile gz;
	int ret = DECODE_OK;

	gz = decode__open(path, name, err);
	if (!gz)
		return DECODE_NO_INPUT;

	for (;;) {
		const uint8_t *payload;
		size_t plen, off = b.start;
		int rc, n;

		rc = frame__next(b.data, b.end, &off, BW_FRAME_MAX, &payload, &plen);
		if (rc == 1) {
			ret = decode__event(payload, plen, out, &why);
			if (ret == DECODE_IO_ERROR) {
				log__line(err, "decode: ", "%s", strerror(errno ? errno : EIO));
				goto cleanup;
			}
			if (ret)
				goto corrupt;
			b.start = off;
			continue;
		}
		if (eof && gz_trunc) {
			/* Whatever the frames say, the input ended where it should not have. */
			log__line(err, "decode: ",
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
			log__line(err, "decode: ", "%s: %s", name, strerror(-rc));
			ret = DECODE_NO_MEMORY;
			goto cleanup;
		}
		n = gzread(gz, b.data + b.end, (unsigned)(b.cap - b.end));
		if (n < 0) {
			int errnum;
			const char *msg = gzerror(gz, &errnum);

			if (errnum == Z_ERRNO) {
				log__line(err, "decode: ", "%s: read error: %s", name,
					strerror(errno));
				ret = DECODE_IO_ERROR;
			} else {
				log__line(err, "decode: ",
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
	}

	if (fflush(out) != 0) {
		log__line(err, "decode: ", "%s", strerror(errno));
		ret = DECODE_IO_ERROR;
	}
	goto cleanup;

corrupt:
	fflush(out);
	log__line(err, "decode: ", "%s: corrupt frame at byte offset %" PRIu64 ": %s",
		name, b.base + b.start, why);
cleanup:
	gzclose(gz);
	free(b.data);
	return ret;
}
