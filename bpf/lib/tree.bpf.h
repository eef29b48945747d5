/* Is a file inside one of a set of directories? Decided on the resolved object: walk the
 * dentry parents of the file actually used, hopping from each file system's root to
 * the mount point it is mounted on, and look each (dev, inode) up in the set. No path
 * string is ever compared, so symlinks, relative paths, bind mounts and /proc/self/fd
 * spellings all land on the same answer. */
#ifndef BW_TREE_BPF_H
#define BW_TREE_BPF_H

#include "lib/common.bpf.h"

/* Read through locals: BPF_CORE_READ(pos->d, ...) would ask CO-RE to relocate
 * tree_pos.d, a type the kernel does not have. */
struct tree_pos {
	struct dentry *d;
	struct mount *mnt;
};

static __always_inline void tree_pos__id(const struct tree_pos *pos, struct bw_inode_key *key)
{
	struct dentry *d = pos->d;

	key->ino = BPF_CORE_READ(d, d_inode, i_ino);
	key->dev = BPF_CORE_READ(d, d_sb, s_dev);
}

/* The parent dentry; at a file system's root, the mount point in the parent mount. */
static __always_inline bool tree_pos__up(struct tree_pos *pos)
{
	struct dentry *d = pos->d, *parent = BPF_CORE_READ(d, d_parent);
	struct mount *mnt = pos->mnt, *up;

	if (parent != d) {
		pos->d = parent;
		return true;
	}
	up = BPF_CORE_READ(mnt, mnt_parent);
	if (up == mnt)
		return false;
	pos->d = BPF_CORE_READ(mnt, mnt_mountpoint);
	pos->mnt = up;
	return true;
}

#include "lib/treewalk.bpf.h"

/* Returns the value stored for the first ancestor found in dirs, TREE_OUTSIDE, or
 * TREE_TOO_DEEP for a file deeper than the walk goes: the caller treats that as a
 * violation, and it is also counted (stats depth_exceeded, a loss that fails the run). */
static __always_inline int tree_lookup(void *dirs, struct file *file, __u32 gen)
{
	struct vfsmount *vmnt = BPF_CORE_READ(file, f_path.mnt);
	struct tree_pos pos = {
		.d = BPF_CORE_READ(file, f_path.dentry),
		.mnt = container_of(vmnt, struct mount, mnt),
	};
	int r = tree_walk(dirs, gen, &pos);

	if (r == TREE_TOO_DEEP)
		count(BW_CNT_DEPTH_EXCEEDED);
	return r;
}

#endif
