/* The marked regular files as (st_dev, ino), for the kernel's write guard in enforce
 * mode (bpf/write.bpf.c): the marks already follow every file of the trees (created,
 * moved, deleted, rescanned), so the guard's set is exactly theirs. Costs nothing
 * without a callback: the walk keeps saving its stat per file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor/fw_private.h"

/* The identity of o: by dfd/name right after marking it, else by its handle (exact,
 * whatever its name is now). */
static int inode_of(struct fanwatch *fw, struct fw_obj *o, int dfd, const char *name)
{
	struct fw_key k;
	struct stat st;
	int fd, err = 0;

	if (o->ino)
		return 0;
	if (dfd >= 0) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
			return -errno;
	} else {
		k = fw_index__key(o);
		fd = fw_handle__open(fw, &k);
		if (fd < 0)
			return fd;
		if (fstat(fd, &st))
			err = -errno;
		close(fd);
		if (err)
			return err;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	/* The handle was taken by the same name just before the stat: if the name was
	 * replaced in between, the inode numbers differ and the generation stays unknown
	 * (0: dev and inode alone decide, as without one). */
	if (fanotify_parse__handle_gen(o->htype, o->handle, o->hlen, o->ino, &o->igen))
		o->igen = 0;
	return 0;
}

void fw_inodes__marked(struct fanwatch *fw, struct fw_obj *o, int dfd, const char *name)
{
	if (!fw->inode_cb || o->is_dir)
		return;
	if (inode_of(fw, o, dfd, name)) {
		/* Marked but not guarded by inode: the write guard would miss it. */
		fw->skipped++;
		return;
	}
	if (fw->inode_cb(fw->inode_ctx, true, o->tree, o->dev, o->ino, o->igen))
		fw->skipped++;
}

void fw_inodes__dropped(struct fanwatch *fw, struct fw_obj *o)
{
	if (fw->inode_cb && !o->is_dir && o->ino)
		(void)fw->inode_cb(fw->inode_ctx, false, o->tree, o->dev, o->ino, o->igen);
}

void fanwatch__set_inode_cb(struct fanwatch *fw, fw_inode_cb cb, void *ctx)
{
	fw->inode_cb = cb;
	fw->inode_ctx = ctx;
	if (!cb)
		return;
	for (size_t i = 0; i < fw->ix.n_objs; i++)
		if (fw->ix.objs[i])
			fw_inodes__marked(fw, fw->ix.objs[i], -1, NULL);
}

int fanwatch__path_of_inode(const struct fanwatch *fw, uint64_t dev, uint64_t ino, char *out,
			    size_t sz)
{
	for (size_t i = 0; i < fw->ix.n_objs; i++) {
		const struct fw_obj *o = fw->ix.objs[i];

		if (o && o->ino == ino && o->dev == dev) {
			if ((size_t)snprintf(out, sz, "%s", o->path) >= sz)
				return -ENAMETOOLONG;
			return (int)o->tree;
		}
	}
	return -ENOENT;
}
