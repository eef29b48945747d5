// SPDX-License-Identifier: GPL-2.0
/* The jsonl export sink: DIR/events-NNNNNNNNNN.jsonl, one JSON object per line, the
 * highest number being the file written now. What a log shipper (Filebeat, Vector,
 * Fluent Bit) tails: a file only ever grows while it is current, and once the next one
 * is started it is never written again (no renames, no rewrites), so a shipper's
 * offset in a file is never invalidated. The one exception: at start-up, bytes after
 * the last newline of the newest file (a line torn by a crash) are cut off, before a
 * new file starts; they never formed a line, so no shipper has read them as one.
 *
 * Each write ends with fdatasync (and a new file with an fsync of DIR), so what write()
 * returned for survives a power loss; the newest file's last line carries the highest
 * row id delivered ("exportId"), which makes a restart after a crash between the write
 * and the cursor save repeat nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fdio.h"
#include "collector/export_priv.h"

#define JSONL_DEFAULT_ROTATE (64ull << 20)
/* How much of the newest file's end is read at start-up. A last line longer than this
 * only loses the shortcut (its exportId is not seen; the cursor file decides). */
#define JSONL_TAIL_MAX (4u << 20)

struct jsonl {
	struct export_sink k;
	char dir[4096];
	int dfd, fd;
	unsigned long long num;   /* the current (or last) file's number */
	uint64_t size;            /* of the current file */
	uint64_t rotate;
	int64_t delivered;        /* from the newest file's last line, at open */
};

static int jsonl__check_dir(struct jsonl *j, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(j->dfd, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", j->dir, strerror(errno));
		return -errno;
	}
	/* whoever may write DIR may plant a file or a link where the next file goes, or
	 * delete what a shipper has not read yet */
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
			 "'%s' must be a directory owned by uid %u and writable by it alone (mode %04o, uid %u)",
			 j->dir, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;
}

/* "events-0000000012.jsonl" → 12; 0 for any other name */
static unsigned long long jsonl__num(const char *name)
{
	unsigned long long v = 0;
	const char *p;

	if (strncmp(name, "events-", 7) || strlen(name) != 7 + 10 + 6 ||
	    strcmp(name + 17, ".jsonl"))
		return 0;
	for (p = name + 7; p < name + 17; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	return v;
}

/* File num: cut a torn tail, read the last line's exportId into j->delivered (left
 * alone when the file holds no whole line). */
static int jsonl__recover(struct jsonl *j, unsigned long long num, char *err, size_t errlen)
{
	char name[64], *buf, *end, *line, *id;
	struct stat st;
	off_t from;
	ssize_t n;
	int fd, rc = 0;

	snprintf(name, sizeof(name), "events-%010llu.jsonl", num);
	fd = openat(j->dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(err, errlen, "cannot open '%s/%s': %s", j->dir, name, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "'%s/%s' is not a regular file of uid %u", j->dir, name,
			 (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}

	if (!st.st_size) {
		close(fd);
		return 0;
	}
	from = st.st_size > JSONL_TAIL_MAX ? st.st_size - JSONL_TAIL_MAX : 0;
	buf = malloc((size_t)(st.st_size - from) + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, buf, (size_t)(st.st_size - from), from);
	if (n != st.st_size - from) {
		snprintf(err, errlen, "cannot read '%s/%s'", j->dir, name);
		rc = -EIO;
		goto out;
	}
	buf[n] = 0;
	end = strrchr(buf, '\n');
	if (!end || end != buf + n - 1) {
		off_t keep = end ? from + (end - buf) + 1 : from;

		if (!end && from) {
			snprintf(err, errlen, "'%s/%s': no newline in its last %u bytes", j->dir, name,
				 JSONL_TAIL_MAX);
			rc = -EINVAL;
			goto out;
		}
		if (ftruncate(fd, keep) < 0 || fdatasync(fd) < 0) {
			snprintf(err, errlen, "cannot cut the torn last line of '%s/%s': %s", j->dir,
				 name, strerror(errno));
			rc = -errno;
			goto out;
		}
	}
	if (end) {
		*end = 0;
		line = strrchr(buf, '\n');
		line = line ? line + 1 : buf;
		/* the collector fields come first: this cannot be a field of the event */
		id = strstr(line, ",\"exportId\":\"");
		if (id)
			j->delivered = strtoll(id + 13, NULL, 10);
	}
out:
	free(buf);
	close(fd);
	return rc;
}

static int jsonl__open(struct export_sink *k, char *err, size_t errlen)
{
	struct jsonl *j = (struct jsonl *)k;
	struct dirent *de;
	DIR *d;
	int dfd, rc;

	if (j->dfd < 0) {
		if (mkdir(j->dir, 0750) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create '%s': %s", j->dir, strerror(errno));
			return -errno;
		}
		j->dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (j->dfd < 0) {
			snprintf(err, errlen, "cannot open '%s': %s%s", j->dir, strerror(errno),
				 errno == ELOOP || errno == ENOTDIR ? " (not a directory, or a link)" : "");
			return -errno;
		}
	}
	rc = jsonl__check_dir(j, err, errlen);
	if (rc)
		return rc;
	dfd = dup(j->dfd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		snprintf(err, errlen, "cannot list '%s': %s", j->dir, strerror(errno));
		return -errno;
	}
	rewinddir(d);
	j->num = 0;
	while ((de = readdir(d)))
		if (jsonl__num(de->d_name) > j->num)
			j->num = jsonl__num(de->d_name);
	closedir(d);
	/* The newest file may be empty (a crash cut its only, torn, line, or came right
	 * after it was created): then the one before it holds the last line. */
	j->delivered = 0;
	for (unsigned long long n = j->num; n >= 1 && n + 4 > j->num && !j->delivered; n--) {
		rc = jsonl__recover(j, n, err, errlen);
		if (rc == -ENOENT && n < j->num)
			break; /* numbers are not contiguous: deleted by the shipper's clean-up */
		if (rc)
			return rc;
	}
	return 0;
}

static int64_t jsonl__delivered(struct export_sink *k)
{
	return ((struct jsonl *)k)->delivered;
}

/* The next file: created (never opened) by us, so nothing planted is written to. */
static int jsonl__next_file(struct jsonl *j, char *err, size_t errlen)
{
	char name[64];

	if (j->fd >= 0)
		close(j->fd);
	j->num++;
	j->size = 0;
	snprintf(name, sizeof(name), "events-%010llu.jsonl", j->num);
	j->fd = openat(j->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC |
					     O_NOFOLLOW | O_NOCTTY, 0640);
	if (j->fd < 0) {
		snprintf(err, errlen, "cannot create '%s/%s': %s", j->dir, name, strerror(errno));
		return -errno;
	}
	if (fsync(j->dfd) < 0) {
		snprintf(err, errlen, "cannot sync '%s': %s", j->dir, strerror(errno));
		return -errno;
	}
	return 0;
}

static int jsonl__flush(struct jsonl *j, const char *buf, size_t len, char *err, size_t errlen)
{
	int rc;

	if (!len)
		return 0;
	rc = fdio__write_all(j->fd, buf, len);
	if (!rc && fdatasync(j->fd) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "cannot write '%s/events-%010llu.jsonl': %s", j->dir, j->num,
			 strerror(-rc));
		return rc;
	}
	j->size += len;
	return 0;
}

static int jsonl__write(struct export_sink *k, const struct export_item *it, size_t n, char *err,
			size_t errlen)
{
	struct jsonl *j = (struct jsonl *)k;
	char *buf = NULL;
	size_t len = 0, done = 0;
	FILE *mem = open_memstream(&buf, &len);
	int rc = 0;

	if (!mem)
		return -ENOMEM;
	/* one thread writes it: stdio's lock per byte was most of the export's time */
	__fsetlocking(mem, FSETLOCKING_BYCALLER);
	for (size_t i = 0; i < n && !rc; i++) {
		size_t before, line;

		fflush(mem);
		before = len;
		rc = export__json(mem, &it[i]);
		fputc('\n', mem);
		fflush(mem);
		if (rc || ferror(mem)) {
			rc = rc ?: -ENOMEM;
			snprintf(err, errlen, "cannot format row %lld", (long long)it[i].row.id);
			break;
		}
		line = len - before;
		/* a new file before this line if it would take the current one past the
		 * limit (a file holds one line at least) */
		if (j->fd < 0 || (j->size + (before - done) > 0 &&
				  j->size + (before - done) + line > j->rotate)) {
			rc = jsonl__flush(j, buf + done, before - done, err, errlen);
			done = before;
			rc = rc ?: jsonl__next_file(j, err, errlen);
		}
	}
	if (!rc) {
		fflush(mem);
		rc = jsonl__flush(j, buf + done, len - done, err, errlen);
	}
	fclose(mem);
	free(buf);
	return rc;
}

static void jsonl__close(struct export_sink *k)
{
	struct jsonl *j = (struct jsonl *)k;

	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

static void jsonl__free(struct export_sink *k)
{
	struct jsonl *j = (struct jsonl *)k;

	jsonl__close(k);
	if (j->dfd >= 0)
		close(j->dfd);
	free(j);
}

int export_jsonl__new(const struct export_cfg *cfg, const char *dir, struct export_sink **out,
		      char *err, size_t errlen)
{
	struct jsonl *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return -ENOMEM;
	j->k.name = "jsonl";
	j->k.open = jsonl__open;
	j->k.write = jsonl__write;
	j->k.delivered = jsonl__delivered;
	j->k.close = jsonl__close;
	j->k.free = jsonl__free;
	j->dfd = j->fd = -1;
	j->rotate = cfg->rotate_bytes ? cfg->rotate_bytes : JSONL_DEFAULT_ROTATE;
	if ((size_t)snprintf(j->dir, sizeof(j->dir), "%s", dir) >= sizeof(j->dir)) {
		snprintf(err, errlen, "--export jsonl:'%s': path too long", dir);
		free(j);
		return -ENAMETOOLONG;
	}
	/* a directory we cannot use is a configuration error: say so at start-up */
	rc = jsonl__open(&j->k, err, errlen);
	if (rc) {
		jsonl__free(&j->k);
		return rc;
	}
	*out = &j->k;
	return 0;
}
