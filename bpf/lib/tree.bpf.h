/* Is a file inside one of a set of directories? Decided on the resolved object: walk the
 * dentry parents of the file actually used, hopping from each file system's root to
 * the mount point it is mounted on, and look each (dev, inode) up in the set. No path
 * string is ever compared, so symlinks, relative paths, bind mounts and /proc/self/fd
 * spellings all land on the same answer. */
#ifndef BW_TREE_BPF_H
#define BW_TREE_BPF_H

#include "lib/common.bpf.h"

/* Returns the value stored for the first ancestor found in dirs, or -1. */
static __always_inline int tree_lookup(void *dirs, struct file *file, __u32 gen)
{
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vmnt = BPF_CORE_READ(file, f_path.mnt);
	struct mount *mnt = container_of(vmnt, struct mount, mnt);
	struct bw_inode_key key = { .gen = gen };

	for (int i = 0; i < BW_MAX_DENTRY_DEPTH; i++) {
		struct dentry *parent;
		__u32 *idx;

		key.ino = BPF_CORE_READ(d, d_inode, i_ino);
		key.dev = BPF_CORE_READ(d, d_sb, s_dev);
		idx = bpf_map_lookup_elem(dirs, &key);
		if (idx)
			return *idx;
		parent = BPF_CORE_READ(d, d_parent);
		if (parent == d) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (up == mnt)
				return -1;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			continue;
		}
		d = parent;
	}
	count(BW_CNT_DEPTH_EXCEEDED);
	return -1;
}

#endif
