// SPDX-License-Identifier: GPL-2.0
/* Spool files: segment names, listing a run directory, whole-file reads and writes.
 * Files are opened relative to their run directory's fd, with O_NOFOLLOW: a symlink
 * in a run directory is never followed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fdio.h"
#include "base/grow.h"
#include "transport/spool_internal.h"

bool spool__valid_run_id(const char *s)
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

void spool__seg_name(char out[SPOOL_SEG_NAME_MAX], uint64_t first, uint64_t last,
		     enum spool_seg_type type)
{
	if (type == SEG_LIVE)
		snprintf(out, SPOOL_SEG_NAME_MAX, "%020" PRIu64 ".live", first);
	else
		snprintf(out, SPOOL_SEG_NAME_MAX, "%020" PRIu64 "-%020" PRIu64 ".%s", first, last,
			 type == SEG_Z ? "segz" : "seg");
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

int spool__list(int dfd, struct spool_seg **out, size_t *n)
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

int spool__openat(int dfd, const char *name, int flags)
{
	return openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
}

int spool__replace_file(int dfd, const char *tmp, const char *name, const void *p, size_t n,
			bool sync)
{
	int fd = spool__openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC), err;

	if (fd < 0)
		return -errno;
	err = fdio__write_all(fd, p, n);
	if (!err && sync && fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && renameat(dfd, tmp, dfd, name) < 0)
		err = -errno;
	if (err)
		unlinkat(dfd, tmp, 0);
	return err;
}

int spool__read_file(int dfd, const char *name, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t want, got = 0;
	int fd, err = 0;
	ssize_t r;

	*out = NULL;
	*len = 0;
	fd = spool__openat(dfd, name, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	want = (uint64_t)st.st_size > max ? max : (size_t)st.st_size;
	buf = malloc(want ? want : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	r = fdio__read_full(fd, buf, want);
	if (r < 0)
		err = (int)r;
	else
		got = (size_t)r;
	close(fd);
	if (!err && (uint64_t)st.st_size > max)
		err = -EFBIG;
	*out = buf;
	*len = got;
	return err;
}

int spool__load_seg(int dfd, const struct spool_seg *seg, uint8_t **out, size_t *len)
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

uint64_t spool__file_size(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

uint64_t spool__dir_usage(int dfd)
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

int spool__mkdirs(const char *path)
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
