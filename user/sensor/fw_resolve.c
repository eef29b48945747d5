/* Resolution: the handles of a record -> the in-tree path of what changed. The table
 * answers first; the kernel (open_by_handle_at + /proc/self/fd) only when it cannot.
 * Never the name the actor used: that may be a symlink or a hard link outside. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sensor/fw_private.h"

int fw_resolve__tree_of(const struct fanwatch *fw, const char *path)
{
	int best = -1;
	size_t best_len = 0, i;

	/* The longest root that contains path, at a '/' boundary. */
	for (i = 0; i < fw->n_trees; i++) {
		size_t l = fw->root_len[i];

		if (strncmp(path, fw->roots[i], l))
			continue;
		if (path[l] != '\0' && path[l] != '/' && !(l == 1 && path[0] == '/'))
			continue;
		if (best < 0 || l > best_len) {
			best = (int)i;
			best_len = l;
		}
	}
	return best;
}

int fw_resolve__kernel_path(const struct fanwatch *fw, const struct fw_key *k, char *out,
			    size_t sz)
{
	char proc[64];
	ssize_t n;
	int fd = fw_handle__open(fw, k);

	if (fd < 0)
		return fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, sz - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= sz - 1)
		return -ENAMETOOLONG;
	out[n] = '\0';
	if (n > 10 && !strcmp(out + n - 10, " (deleted)"))
		return -ESTALE;
	return 0;
}

static int join(char *out, size_t sz, const char *dir, const char *name)
{
	int n;

	if (!name || !*name || !strcmp(name, "."))
		n = snprintf(out, sz, "%s", dir);
	else
		n = snprintf(out, sz, "%s/%s", strcmp(dir, "/") ? dir : "", name);
	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

static int tree_or_enoent(const struct fanwatch *fw, const char *path)
{
	int t = fw_resolve__tree_of(fw, path);

	return t < 0 ? -ENOENT : t;
}

int fw_resolve__dir(const struct fanwatch *fw, const struct fan_fid *f, char *out, size_t sz,
		    bool fallback)
{
	struct fw_key k = fw_key_of(f);
	struct fw_obj *d = fw_index__by_handle(&fw->ix, &k);
	char dir[PATH_MAX];
	int err;

	if (d && d->is_dir) {
		if (join(out, sz, d->path, f->name))
			return -ENAMETOOLONG;
		return (int)d->tree;
	}
	if (!fallback)
		return -ENOENT;
	err = fw_resolve__kernel_path(fw, &k, dir, sizeof(dir));
	if (err)
		return err;
	if (join(out, sz, dir, f->name))
		return -ENAMETOOLONG;
	return tree_or_enoent(fw, out);
}

int fw_resolve__obj(const struct fanwatch *fw, const struct fan_fid *f, char *out, size_t sz,
		    struct fw_obj **obj, bool fallback)
{
	struct fw_key k = fw_key_of(f);
	struct fw_obj *o = fw_index__by_handle(&fw->ix, &k);
	int err;

	*obj = o;
	if (o) {
		if (join(out, sz, o->path, NULL))
			return -ENAMETOOLONG;
		return (int)o->tree;
	}
	if (!fallback)
		return -ENOENT;
	err = fw_resolve__kernel_path(fw, &k, out, sz);
	if (err)
		return err;
	return tree_or_enoent(fw, out);
}
