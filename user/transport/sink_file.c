// SPDX-License-Identifier: GPL-2.0
/* File sink: see sink_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/grow.h"
#include "base/log.h"
#include "transport/frame.h"
#include "transport/sink_file.h"

/* Big enough that a burst of events costs one write(2), small next to the ring buffer. */
#define SINK_FILE_IOBUF (64 * 1024)
/* Most events pack to a few hundred bytes: one allocation serves them all. */
#define SINK_FILE_FIRST_BUF 4096

struct sink_file {
	FILE *fp;	/* plain file or stdout; NULL when gz is set */
	gzFile gz;
	/* A dup of the gzip file's fd: gzclose closes the original, and the data is only
	 * worth syncing after gzclose wrote the trailer. -1 when not gzip. */
	int sync_fd;
	bool is_stdout;
	/* First write error, sticky: after a partial frame, appending more would put good
	 * frames where no reader can find them. */
	int err;
	char *iobuf;
	uint8_t *buf; /* varint prefix + packed event, reused across writes */
	size_t cap;
	/* Rotation and reopen (sink_file__open_rotating): the path again, its limits, and
	 * the bytes the live file holds. NULL path: neither. */
	char *path;
	struct sink_file_rotation rot;
	uint64_t size;
	/* a rotation failed: no more tries (and no more log lines) until a reopen */
	bool rot_stuck;
};

/* rotation and reopen live at the end of this file */
static void sink_file__rotate_if_full(struct sink_file *f, size_t n);

static bool sink_file__is_gz(const char *path)
{
	size_t n = strlen(path);

	return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

static int sink_file__gzerr(gzFile gz)
{
	int errnum = 0;

	gzerror(gz, &errnum);
	if (errnum == Z_ERRNO && errno)
		return -errno;
	return errnum == Z_MEM_ERROR ? -ENOMEM : -EIO;
}

/* The directory that holds path: a world-writable one without the sticky bit lets any
 * user rename the events file away and put their own in its place. */
static int sink_file__check_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) < 0)
		return -errno;
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
		return -EXDEV;
	return 0;
}

/* The agent is root and the path may sit in a directory every user can write: never
 * follow a planted symlink, never block on a planted FIFO (O_NONBLOCK: no reader is
 * ENXIO at once), never append to something another user owns or that is not a file.
 * A character device is let through: only root can make one, and /dev/null is a
 * legitimate "discard". Returns the fd, blocking again, or -1 with *err set. */
static int sink_file__open_fd(const char *path, int *err)
{
	struct stat st;
	int fd, e;

	e = sink_file__check_dir(path);
	if (e) {
		*err = e;
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
			O_NOCTTY, 0640);
	if (fd < 0) {
		*err = -errno;
		return -1;
	}
	if (fstat(fd, &st) < 0)
		e = -errno;
	else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
		e = -ENXIO;
	else if (st.st_uid != geteuid())
		e = -EPERM;
	else if (fcntl(fd, F_SETFL, O_APPEND) < 0)
		e = -errno;
	if (e) {
		close(fd);
		*err = e;
		return -1;
	}
	return fd;
}

const char *sink_file__error(int err)
{
	switch (err) {
	case -ELOOP:
		return "it is a symbolic link: give the path it points to";
	case -EPERM:
		return "it is a file another user owns";
	case -ENXIO:
		return "it is not a regular file (a FIFO, a socket, a directory, a block device, or any device when rotated)";
	case -EXDEV:
		return "its directory is writable by every user and has no sticky bit: another user could replace the file";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

struct sink_file *sink_file__open(const char *path, int *err)
{
	struct sink_file *f;
	int fd = -1;

	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = -ENOMEM;
		return NULL;
	}
	f->sync_fd = -1;

	if (strcmp(path, "-") == 0) {
		/* stdout belongs to the process: no buffer swap, no fsync, no fclose. */
		f->fp = stdout;
		f->is_stdout = true;
		*err = 0;
		return f;
	}

	fd = sink_file__open_fd(path, err);
	if (fd < 0)
		goto cleanup;

	if (sink_file__is_gz(path)) {
		f->sync_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (f->sync_fd < 0) {
			*err = -errno;
			goto cleanup;
		}
		f->gz = gzdopen(fd, "ab");
		if (!f->gz) {
			*err = errno ? -errno : -ENOMEM;
			goto cleanup;
		}
		fd = -1; /* owned by gz now */
		if (gzbuffer(f->gz, SINK_FILE_IOBUF) != 0) {
			*err = -EINVAL;
			goto cleanup;
		}
		*err = 0;
		return f;
	}

	f->iobuf = malloc(SINK_FILE_IOBUF);
	if (!f->iobuf) {
		*err = -ENOMEM;
		goto cleanup;
	}
	f->fp = fdopen(fd, "ab");
	if (!f->fp) {
		*err = -errno;
		goto cleanup;
	}
	fd = -1; /* owned by fp now */
	if (setvbuf(f->fp, f->iobuf, _IOFBF, SINK_FILE_IOBUF) != 0) {
		*err = -EINVAL;
		goto cleanup;
	}
	*err = 0;
	return f;

cleanup:
	if (fd >= 0)
		close(fd);
	if (f->gz)
		gzclose(f->gz);
	if (f->sync_fd >= 0)
		close(f->sync_fd);
	if (f->fp)
		fclose(f->fp);
	free(f->iobuf);
	free(f);
	return NULL;
}

int sink_file__write_event(struct sink_file *f, const Buildwarden__V1__Event *ev)
{
	size_t size, n;
	int err;

	if (f->err)
		return f->err;

	size = buildwarden__v1__event__get_packed_size(ev);
	if (size > BW_FRAME_MAX)
		return -EMSGSIZE;
	err = grow__reserve((void **)&f->buf, &f->cap, FRAME_VARINT_MAX + size, 1,
			    SINK_FILE_FIRST_BUF, 0);
	if (err)
		return err;
	n = frame__encode_len(size, f->buf);
	if (buildwarden__v1__event__pack(ev, f->buf + n) != size)
		return -EINVAL;
	n += size;

	sink_file__rotate_if_full(f, n);
	if (f->err)
		return f->err;
	if (f->gz) {
		if (gzwrite(f->gz, f->buf, (unsigned)n) != (int)n)
			f->err = sink_file__gzerr(f->gz);
	} else {
		errno = 0;
		if (fwrite(f->buf, 1, n, f->fp) != n)
			f->err = errno ? -errno : -EIO;
	}
	f->size += n;
	return f->err;
}

int sink_file__flush(struct sink_file *f)
{
	if (!f->fp && !f->gz)
		return f->err;
	if (f->gz) {
		if (gzflush(f->gz, Z_SYNC_FLUSH) != Z_OK)
			return sink_file__gzerr(f->gz);
		return f->err;
	}
	if (fflush(f->fp) != 0)
		return -errno;
	return f->err;
}

/* fsync where the file supports it: a FIFO or /dev/null given as the path is not an
 * error, only a file that could not be made durable is. */
static int sink_file__sync(int fd)
{
	if (fsync(fd) == 0 || errno == EINVAL || errno == EROFS)
		return 0;
	return -errno;
}

/* Ends f's stream (flush, gzip trailer, fsync, close) and leaves the rest of f: the
 * first error, or 0. */
static int sink_file__close_stream(struct sink_file *f)
{
	int err = 0, ret;

	if (!f->fp && !f->gz)
		return 0; /* a rotation that could not open the new file closed it already */
	if (f->is_stdout) {
		if (fflush(f->fp) != 0)
			err = -errno;
	} else if (f->gz) {
		ret = gzclose(f->gz);
		if (ret != Z_OK)
			err = ret == Z_ERRNO ? -errno : -EIO;
		ret = sink_file__sync(f->sync_fd);
		if (ret && !err)
			err = ret;
		close(f->sync_fd);
	} else {
		if (fflush(f->fp) != 0)
			err = -errno;
		ret = sink_file__sync(fileno(f->fp));
		if (ret && !err)
			err = ret;
		if (fclose(f->fp) != 0 && !err)
			err = -errno;
	}
	f->fp = NULL;
	f->gz = NULL;
	f->sync_fd = -1;
	free(f->iobuf);
	f->iobuf = NULL;
	return err;
}

int sink_file__close(struct sink_file *f)
{
	int err, ret;

	if (!f)
		return 0;
	err = f->err;
	ret = sink_file__close_stream(f);
	if (ret && !err)
		err = ret;
	free(f->path);
	free(f->buf);
	free(f);
	return err;
}

/* ---- rotation and reopen ---- */

/* The bytes the open file holds now: where the next append lands. */
static uint64_t sink_file__stream_size(const struct sink_file *f)
{
	struct stat st;
	int fd = f->gz ? f->sync_fd : fileno(f->fp);

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

static bool sink_file__is_regular(const struct sink_file *f)
{
	struct stat st;
	int fd = f->gz ? f->sync_fd : fileno(f->fp);

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

struct sink_file *sink_file__open_rotating(const char *path, const struct sink_file_rotation *rot,
					   int *err)
{
	struct sink_file *f;

	if (strcmp(path, "-") == 0 || (rot->max_size && rot->max_size < SINK_FILE_MIN_ROTATE) ||
	    rot->max_files > SINK_FILE_MAX_FILES) {
		*err = -EINVAL;
		return NULL;
	}
	f = sink_file__open(path, err);
	if (!f)
		return NULL;
	/* rotating renames the path: never a device the root agent was given (/dev/null
	 * would be moved away and a regular file left in its place) */
	if (rot->max_size && !sink_file__is_regular(f)) {
		sink_file__close(f);
		*err = -ENXIO;
		return NULL;
	}
	f->path = strdup(path);
	if (!f->path) {
		sink_file__close(f);
		*err = -ENOMEM;
		return NULL;
	}
	f->rot = *rot;
	f->size = sink_file__stream_size(f);
	return f;
}

/* Moves g's stream into f, which keeps its path, limits, frame buffer and identity (the
 * emitter holds f). f's own stream was closed. */
static void sink_file__take_stream(struct sink_file *f, struct sink_file *g)
{
	f->fp = g->fp;
	f->gz = g->gz;
	f->sync_fd = g->sync_fd;
	f->iobuf = g->iobuf;
	f->size = sink_file__stream_size(g);
	g->fp = NULL;
	g->gz = NULL;
	g->sync_fd = -1;
	g->iobuf = NULL;
	sink_file__close(g);
}

int sink_file__reopen(struct sink_file *f)
{
	struct sink_file *g;
	int err, ret;

	if (!f->path)
		return 0;
	/* the new file first: when it cannot be opened, the old stream goes on */
	g = sink_file__open(f->path, &err);
	if (!g)
		return err;
	ret = sink_file__close_stream(f);
	if (ret && !f->err)
		f->err = ret;
	sink_file__take_stream(f, g);
	f->rot_stuck = false;
	return f->err;
}

/* path.(i) in out; path.0 is path itself */
static int sink_file__numbered(const char *path, unsigned i, char *out, size_t cap)
{
	int n = i ? snprintf(out, cap, "%s.%u", path, i) : snprintf(out, cap, "%s", path);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* path.(N-1) -> path.N ... path -> path.1 (path.N, the oldest, is replaced), or path
 * unlinked when no old file is kept. rename(2) moves a planted symlink itself, never
 * what it points to. */
static int sink_file__shift(const char *path, unsigned keep)
{
	char from[PATH_MAX], to[PATH_MAX];
	int err;

	if (keep == 0)
		return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	for (unsigned i = keep; i > 0; i--) {
		err = sink_file__numbered(path, i - 1, from, sizeof(from));
		if (!err)
			err = sink_file__numbered(path, i, to, sizeof(to));
		if (err)
			return err;
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

int sink_file__rotate(struct sink_file *f)
{
	struct sink_file *g;
	int err, open_err;

	if (!f->path)
		return -EINVAL;
	/* finish the live file (complete gzip member, fsynced) before it gets its new name */
	err = sink_file__close_stream(f);
	if (err) {
		if (!f->err)
			f->err = err;
		return err;
	}
	/* when the old files cannot move, the live file is opened again and grows on */
	err = sink_file__shift(f->path, f->rot.max_files);
	g = sink_file__open(f->path, &open_err);
	if (!g) {
		/* nowhere to write: the sticky error makes every later event a counted loss */
		if (!f->err)
			f->err = open_err;
		return f->err;
	}
	sink_file__take_stream(f, g);
	return err;
}

/* Before an n-byte frame: rotate when it would take the live file past its limit. A
 * file that holds nothing yet takes any frame, so one big frame cannot loop. For gzip
 * the count is uncompressed bytes: the file on disk stays below the limit. */
static void sink_file__rotate_if_full(struct sink_file *f, size_t n)
{
	int err;

	if (!f->rot.max_size || f->rot_stuck || f->size == 0 || f->size + n <= f->rot.max_size)
		return;
	err = sink_file__rotate(f);
	if (err && !f->err) {
		/* the old files could not move aside: keep appending, say so once */
		f->rot_stuck = true;
		log__line(stderr, "buildwarden: ", "cannot rotate the events file '%s': %s; appending to it until SIGHUP",
			  f->path, strerror(-err));
	}
}

static int sink_file__op_write(void *ctx, const Buildwarden__V1__Event *ev)
{
	return sink_file__write_event(ctx, ev);
}

static int sink_file__op_flush(void *ctx)
{
	return sink_file__flush(ctx);
}

static void sink_file__op_close(void *ctx)
{
	sink_file__close(ctx);
}

static const struct sink_ops sink_file__ops = {
	.write = sink_file__op_write,
	.flush = sink_file__op_flush,
	.close = sink_file__op_close,
};

struct sink sink_file__sink(struct sink_file *f)
{
	return (struct sink){ .ops = &sink_file__ops, .ctx = f };
}
