// SPDX-License-Identifier: GPL-2.0
/* The export cursor file: "buildwarden-export-cursor 1 <row id>\n", replaced atomically.
 * It sits beside the database (the root-owned collector's own directory), so it is
 * created O_NOFOLLOW, 0600, and refused when it is not a regular file of ours. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fdio.h"
#include "collector/export_priv.h"

#define CURSOR_MAGIC "buildwarden-export-cursor 1 "

int export_cursor__load(const char *path, int64_t *id, char *err, size_t errlen)
{
	char buf[96], *end;
	struct stat st;
	ssize_t n;
	long long v;
	int fd;

	*id = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot open the export cursor '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
			 "the export cursor '%s' is not a regular file owned by uid %u and writable by it alone",
			 path, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	n = fdio__read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the export cursor '%s': %s", path, strerror((int)-n));
		return (int)n;
	}
	buf[n] = 0;
	if (strncmp(buf, CURSOR_MAGIC, strlen(CURSOR_MAGIC)))
		goto bad;
	errno = 0;
	v = strtoll(buf + strlen(CURSOR_MAGIC), &end, 10);
	if (errno || end == buf + strlen(CURSOR_MAGIC) || *end != '\n' || end[1] || v < 0)
		goto bad;
	*id = v;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not an export cursor file (delete it to export from the start)",
		 path);
	return -EINVAL;
}

int export_cursor__save(const char *path, int64_t id, char *err, size_t errlen)
{
	char tmp[4096], dir[4096], buf[96];
	int fd, dfd, len, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "'%s': path too long", path);
		return -ENAMETOOLONG;
	}
	/* a leftover temporary file of a crash is ours to replace; a link planted there
	 * is refused by O_NOFOLLOW */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", tmp, strerror(-rc));
		return rc;
	}
	len = snprintf(buf, sizeof(buf), CURSOR_MAGIC "%" PRId64 "\n", id);
	rc = fdio__write_all(fd, buf, (size_t)len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "cannot write the export cursor '%s': %s", path, strerror(-rc));
		unlink(tmp);
		return rc;
	}
	/* the rename is durable once the directory is */
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0)
			rc = -errno;
		close(dfd);
	}
	if (rc)
		snprintf(err, errlen, "cannot sync the directory of '%s': %s", path, strerror(-rc));
	return rc;
}
