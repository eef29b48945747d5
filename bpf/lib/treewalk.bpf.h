/* The decision of a walk up a file's ancestors, apart from how the ancestors are found,
 * so that a test program (bpf/tests/logic.bpf.c) runs this very loop on a synthetic
 * chain with BPF_PROG_TEST_RUN. The includer defines, before including this file:
 *	struct tree_pos				where the walk is
 *	tree_pos__id(pos, key)			sets key->ino, key->dev of that ancestor
 *	tree_pos__up(pos)			moves to the parent; false at the very top
 * lib/tree.bpf.h walks dentries and mounts. */
#ifndef BW_TREEWALK_BPF_H
#define BW_TREEWALK_BPF_H

#include "lib/maps.bpf.h"

/* tree_walk's answers other than an index in dirs (>= 0) */
#define TREE_OUTSIDE (-1) /* reached the top: in none of the trees */
#define TREE_TOO_DEEP (-2) /* BW_MAX_DENTRY_DEPTH ancestors seen, and the top not reached */

/* Returns the value stored in dirs (a HASH of bw_inode_key -> __u32) for the nearest
 * ancestor found there, the starting object included, else TREE_OUTSIDE/TREE_TOO_DEEP.
 * Only keys of generation gen count: a reload's new entries are invisible until the
 * config flips to them, and the old ones after. */
static __always_inline int tree_walk(void *dirs, __u32 gen, struct tree_pos *pos)
{
	struct bw_inode_key key = { .gen = gen };

	for (int i = 0; i < BW_MAX_DENTRY_DEPTH; i++) {
		__u32 *idx;

		tree_pos__id(pos, &key);
		idx = bpf_map_lookup_elem(dirs, &key);
		if (idx)
			return *idx;
		if (!tree_pos__up(pos))
			return TREE_OUTSIDE;
	}
	return TREE_TOO_DEEP;
}

#endif
