// SPDX-License-Identifier: GPL-2.0
/* File sink: see sink_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/grow.h"
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
};

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
		return "it is not a regular file (a FIFO, a socket, a directory or a block device)";
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

	if (f->gz) {
		if (gzwrite(f->gz, f->buf, (unsigned)n) != (int)n)
			f->err = sink_file__gzerr(f->gz);
	} else {
		errno = 0;
		if (fwrite(f->buf, 1, n, f->fp) != n)
			f->err = errno ? -errno : -EIO;
	}
	return f->err;
}

int sink_file__flush(struct sink_file *f)
{
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

int sink_file__close(struct sink_file *f)
{
	int err = 0, ret;

	if (!f)
		return 0;
	err = f->err;

	if (f->is_stdout) {
		if (fflush(f->fp) != 0 && !err)
			err = -errno;
	} else if (f->gz) {
		ret = gzclose(f->gz);
		if (ret != Z_OK && !err)
			err = ret == Z_ERRNO ? -errno : -EIO;
		ret = sink_file__sync(f->sync_fd);
		if (ret && !err)
			err = ret;
		close(f->sync_fd);
	} else {
		if (fflush(f->fp) != 0 && !err)
			err = -errno;
		ret = sink_file__sync(fileno(f->fp));
		if (ret && !err)
			err = ret;
		if (fclose(f->fp) != 0 && !err)
			err = -errno;
	}
	free(f->iobuf);
	free(f->buf);
	free(f);
	return err;
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
