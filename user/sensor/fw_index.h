/* fw_index: every marked object, found by how fanotify names it (fsid + file handle) or
 * by where it is in a tree (its path). Pure: no syscalls. Ids are reused; the serial of
 * an object is not, so it keys whatever outlives a slot (the write coalescing). */
#ifndef BUILDWARDEN_FW_INDEX_H
#define BUILDWARDEN_FW_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fw_obj {
	char *path;		/* absolute, inside a tree */
	uint64_t fsid;
	uint64_t serial;	/* unique for the index's lifetime */
	uint64_t gen;		/* last full scan that saw it */
	nlink_t nlink;		/* 0: not known yet */
	uint64_t dev, ino;	/* stat() identity: of a directory always, of a file only with an inode callback (0: unknown) */
	uint32_t igen;		/* with ino: its inode generation, from the handle (0: unknown) */
	uint32_t id;		/* slot in the index */
	int32_t htype;
	uint32_t hlen;
	unsigned tree;
	bool is_dir;
	bool root;
	unsigned char handle[];
};

/* A file handle as fanotify and name_to_handle_at report it. */
struct fw_key {
	uint64_t fsid;
	int32_t type;
	uint32_t len;
	const void *h;
};

struct fw_index {
	struct fw_obj **objs;	/* id -> object; NULL slots are free */
	size_t n_objs, cap_objs, live;
	uint32_t *free_ids;
	size_t n_free, cap_free;
	uint32_t *hidx;		/* handle -> id + 1 (open addressing) */
	size_t hcap, hused;
	uint32_t *pidx;		/* path -> id + 1 */
	size_t pcap, pused;
	uint64_t serial;
};

/* Inserts an object, or finds it by handle and moves it to path (stamping gen either
 * way). *out (if given) is the object. Returns 1 if new, 0 if known, or -errno. */
int fw_index__upsert(struct fw_index *ix, const struct fw_key *key, const char *path,
		     unsigned tree, bool is_dir, nlink_t nlink, uint64_t gen, struct fw_obj **out);
/* Renames o; on failure (-ENOMEM) it keeps its old path. */
int fw_index__set_path(struct fw_index *ix, struct fw_obj *o, const char *path, unsigned tree);
struct fw_obj *fw_index__by_handle(const struct fw_index *ix, const struct fw_key *key);
/* One object at path (paths are unique unless the trees changed under a lost event). */
struct fw_obj *fw_index__by_path(const struct fw_index *ix, const char *path);
/* Forgets o and frees it. */
void fw_index__remove(struct fw_index *ix, struct fw_obj *o);
/* o's handle as a key. */
struct fw_key fw_index__key(const struct fw_obj *o);
void fw_index__free(struct fw_index *ix);

#endif
