// SPDX-License-Identifier: GPL-2.0
/* fanwatch: protected-tree changes from fanotify, resolved to the in-tree object.
 * See fanwatch.h for what is seen and how; this file explains the why of each step.
 *
 * Cost: marking is O(objects) at start: fanotify_mark + name_to_handle_at per file
 * (readdir's d_type spares a stat). Measured by tests/integration/test_fanwatch.c
 * (which prints it on every run) on the 6.18/ext4 2-CPU VM: 10,104 objects in
 * ~77 ms of CPU (~7.6 us/object), 100-300 ms wall depending on host load. Each
 * mark pins its inode in memory (fsnotify holds an inode reference).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sensor/fanwatch.h"

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200 /* linux ≥6.5: the handle fanotify reports, no export needed */
#endif

#define FW_MAX_HANDLE 128	/* MAX_HANDLE_SZ */
#define FW_MAX_FS 64		/* filesystems under the trees we keep a mount fd for */
#define FW_MAX_DEPTH 1024	/* deeper directories are counted in skipped, not walked */
#define FW_COALESCE_SLOTS 4096
#define FW_BUF_SIZE (64 * 1024)
#define FW_MAX_READS 16		/* buffers per fanwatch__process call: bounded latency for the caller */

/* Every directory: dirent changes, and attribute/content changes of children. */
#define FW_DIR_MASK (FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_ATTRIB | FAN_MODIFY | \
		     FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD | FAN_ONDIR)
/* A tree root has no marked parent: its own moves and deletion come from itself. */
#define FW_ROOT_MASK (FW_DIR_MASK | FAN_DELETE_SELF | FAN_MOVE_SELF)
/* Every regular file itself: a write through a hard link outside the trees, or a
 * link count change made elsewhere, does not pass a marked directory. */
#define FW_FILE_MASK (FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE)

#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX

/* One marked object: how fanotify names it (fsid + handle) and where it is in a tree. */
struct fw_obj {
	char *path;
	uint64_t fsid;
	uint64_t serial;	/* unique for the agent's lifetime: coalescing key, ids are reused */
	uint64_t gen;		/* last full scan that saw it */
	nlink_t nlink;
	int32_t htype;
	uint32_t hlen;
	unsigned tree;
	bool is_dir;
	bool root;
	unsigned char handle[];
};

struct fw_mnt {
	dev_t dev;
	uint64_t fsid;
	int fd;
};

struct fw_coal {
	uint64_t serial;	/* 0: empty */
	pid_t pid;
	bool tomb;
};

struct fanwatch {
	int fd;
	size_t n_trees;
	char **roots;		/* canonical tree roots */
	size_t *root_len;

	struct fw_obj **objs;	/* id -> object; NULL slots are free */
	size_t n_objs, cap_objs, live;
	uint32_t *free_ids;
	size_t n_free;

	uint32_t *hidx;		/* handle -> id + 1 (open addressing) */
	size_t hcap, hused;
	uint32_t *pidx;		/* path -> id + 1 */
	size_t pcap, pused;

	struct fw_mnt mnts[FW_MAX_FS];
	size_t n_mnts;

	struct fw_coal coal[FW_COALESCE_SLOTS];
	size_t coal_used;

	uint64_t serial, gen;
	uint64_t overflows, unresolved, skipped;
	bool rescan;

	fw_event_cb cb;
	void *ctx;
	fw_sync_cb sync;
	void *sync_ctx;
	int reported;

	char buf[FW_BUF_SIZE] __attribute__((aligned(8)));
};

/* ---- hashing ------------------------------------------------------------ */

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ULL;
	return h;
}

static uint64_t handle_hash(uint64_t fsid, int32_t type, const void *h, size_t len)
{
	uint64_t x = fnv(&fsid, sizeof(fsid), 0xcbf29ce484222325ULL);

	x = fnv(&type, sizeof(type), x);
	return fnv(h, len, x);
}

static uint64_t path_hash(const char *p)
{
	return fnv(p, strlen(p), 0xcbf29ce484222325ULL);
}

static bool obj_has_handle(const struct fw_obj *o, uint64_t fsid, int32_t type,
			   const void *h, size_t len)
{
	return o->fsid == fsid && o->htype == type && o->hlen == len &&
	       !memcmp(o->handle, h, len);
}

/* Grow an index to twice the live entries, dropping tombstones. */
static int index_rebuild(struct fanwatch *fw, bool by_path)
{
	uint32_t **slots = by_path ? &fw->pidx : &fw->hidx;
	size_t *cap = by_path ? &fw->pcap : &fw->hcap;
	size_t *used = by_path ? &fw->pused : &fw->hused;
	size_t ncap = 1024, i;
	uint32_t *n;

	while (ncap < 4 * (fw->live + 1))
		ncap *= 2;
	n = calloc(ncap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	*used = 0;
	for (i = 0; i < fw->n_objs; i++) {
		struct fw_obj *o = fw->objs[i];
		uint64_t h;
		size_t s;

		if (!o || (by_path && !o->path))
			continue;
		h = by_path ? path_hash(o->path) : handle_hash(o->fsid, o->htype, o->handle, o->hlen);
		for (s = h & (ncap - 1); n[s] != SLOT_EMPTY; s = (s + 1) & (ncap - 1))
			;
		n[s] = (uint32_t)i + 1;
		(*used)++;
	}
	free(*slots);
	*slots = n;
	*cap = ncap;
	return 0;
}

static int index_insert(struct fanwatch *fw, bool by_path, uint32_t id)
{
	struct fw_obj *o = fw->objs[id];
	uint32_t *slots;
	size_t cap, s;
	uint64_t h;
	int err;

	if ((by_path ? fw->pused : fw->hused) * 2 + 2 > (by_path ? fw->pcap : fw->hcap)) {
		err = index_rebuild(fw, by_path); /* already holds id if live */
		if (err)
			return err;
		return 0;
	}
	slots = by_path ? fw->pidx : fw->hidx;
	cap = by_path ? fw->pcap : fw->hcap;
	h = by_path ? path_hash(o->path) : handle_hash(o->fsid, o->htype, o->handle, o->hlen);
	for (s = h & (cap - 1); slots[s] != SLOT_EMPTY && slots[s] != SLOT_TOMB; s = (s + 1) & (cap - 1))
		;
	if (slots[s] == SLOT_EMPTY)
		(*(by_path ? &fw->pused : &fw->hused))++;
	slots[s] = id + 1;
	return 0;
}

static void index_remove(struct fanwatch *fw, bool by_path, uint32_t id)
{
	struct fw_obj *o = fw->objs[id];
	uint32_t *slots = by_path ? fw->pidx : fw->hidx;
	size_t cap = by_path ? fw->pcap : fw->hcap, s, n;
	uint64_t h;

	if (!slots)
		return;
	h = by_path ? path_hash(o->path) : handle_hash(o->fsid, o->htype, o->handle, o->hlen);
	for (s = h & (cap - 1), n = 0; slots[s] != SLOT_EMPTY && n < cap; s = (s + 1) & (cap - 1), n++) {
		if (slots[s] == id + 1) {
			slots[s] = SLOT_TOMB;
			return;
		}
	}
}

static struct fw_obj *lookup_handle(const struct fanwatch *fw, uint64_t fsid, int32_t type,
				    const void *h, size_t len)
{
	size_t s, n;

	if (!fw->hidx)
		return NULL;
	s = handle_hash(fsid, type, h, len) & (fw->hcap - 1);
	for (n = 0; fw->hidx[s] != SLOT_EMPTY && n < fw->hcap; s = (s + 1) & (fw->hcap - 1), n++) {
		uint32_t v = fw->hidx[s];

		if (v != SLOT_TOMB && obj_has_handle(fw->objs[v - 1], fsid, type, h, len))
			return fw->objs[v - 1];
	}
	return NULL;
}

static struct fw_obj *lookup_path(const struct fanwatch *fw, const char *path)
{
	size_t s, n;

	if (!fw->pidx)
		return NULL;
	s = path_hash(path) & (fw->pcap - 1);
	for (n = 0; fw->pidx[s] != SLOT_EMPTY && n < fw->pcap; s = (s + 1) & (fw->pcap - 1), n++) {
		uint32_t v = fw->pidx[s];

		if (v != SLOT_TOMB && !strcmp(fw->objs[v - 1]->path, path))
			return fw->objs[v - 1];
	}
	return NULL;
}

static uint32_t obj_id(const struct fanwatch *fw, const struct fw_obj *o)
{
	size_t s, n;

	/* The handle index knows every live object: find its id there. */
	s = handle_hash(o->fsid, o->htype, o->handle, o->hlen) & (fw->hcap - 1);
	for (n = 0; n < fw->hcap; s = (s + 1) & (fw->hcap - 1), n++) {
		uint32_t v = fw->hidx[s];

		if (v != SLOT_EMPTY && v != SLOT_TOMB && fw->objs[v - 1] == o)
			return v - 1;
	}
	return UINT32_MAX;
}

/* ---- trees and filesystems ---------------------------------------------- */

/* Longest root that contains path (with a '/' boundary), or -1. */
static int tree_of(const struct fanwatch *fw, const char *path)
{
	int best = -1;
	size_t best_len = 0, i;

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

static uint64_t pack_fsid(const int val[2])
{
	return (uint64_t)(uint32_t)val[0] | (uint64_t)(uint32_t)val[1] << 32;
}

/* fsid of the filesystem dfd lies on; remembers dfd's filesystem for open_by_handle_at. */
static int fs_of(struct fanwatch *fw, int dfd, dev_t dev, uint64_t *fsid)
{
	struct statfs sfs;
	size_t i;

	for (i = 0; i < fw->n_mnts; i++) {
		if (fw->mnts[i].dev == dev) {
			*fsid = fw->mnts[i].fsid;
			return 0;
		}
	}
	if (fw->n_mnts == FW_MAX_FS)
		return -ENOSPC;
	if (fstatfs(dfd, &sfs))
		return -errno;
	fw->mnts[fw->n_mnts].dev = dev;
	fw->mnts[fw->n_mnts].fsid = pack_fsid((const int *)&sfs.f_fsid);
	fw->mnts[fw->n_mnts].fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fw->mnts[fw->n_mnts].fd < 0)
		return -errno;
	*fsid = fw->mnts[fw->n_mnts++].fsid;
	return 0;
}

static int mount_fd(const struct fanwatch *fw, uint64_t fsid)
{
	size_t i;

	for (i = 0; i < fw->n_mnts; i++)
		if (fw->mnts[i].fsid == fsid)
			return fw->mnts[i].fd;
	return -1;
}

/* Opens the object behind a handle (O_PATH: no open event, no access needed). */
static int open_handle(const struct fanwatch *fw, uint64_t fsid, int32_t type,
		       const void *h, size_t len)
{
	struct {
		struct file_handle fh;
		unsigned char b[FW_MAX_HANDLE];
	} k;
	int mfd = mount_fd(fw, fsid);

	if (mfd < 0 || len > FW_MAX_HANDLE)
		return -ENODEV;
	k.fh.handle_bytes = (unsigned)len;
	k.fh.handle_type = type;
	memcpy(k.fh.f_handle, h, len);
	mfd = open_by_handle_at(mfd, &k.fh, O_PATH | O_CLOEXEC);
	return mfd < 0 ? -errno : mfd;
}

/* ---- the object table ---------------------------------------------------- */

static void obj_unmark(struct fanwatch *fw, const struct fw_obj *o)
{
	int fd = open_handle(fw, o->fsid, o->htype, o->handle, o->hlen);

	/* Gone (ESTALE): its mark went with the inode. Otherwise it still exists
	 * outside the trees (another hard link, moved out): stop paying for it. */
	if (fd < 0)
		return;
	fanotify_mark(fw->fd, FAN_MARK_REMOVE, o->is_dir ? FW_ROOT_MASK : FW_FILE_MASK,
		      fd, NULL);
	close(fd);
}

static void obj_drop(struct fanwatch *fw, struct fw_obj *o, bool unmark)
{
	uint32_t id = obj_id(fw, o);

	if (id == UINT32_MAX)
		return;
	if (unmark)
		obj_unmark(fw, o);
	index_remove(fw, false, id);
	index_remove(fw, true, id);
	fw->objs[id] = NULL;
	fw->live--;
	if (fw->free_ids)
		fw->free_ids[fw->n_free++] = id;
	free(o->path);
	free(o);
}

static int obj_set_path(struct fanwatch *fw, struct fw_obj *o, const char *path)
{
	uint32_t id = obj_id(fw, o);
	char *p = strdup(path);
	int t = tree_of(fw, path);

	if (!p || id == UINT32_MAX) {
		free(p);
		return -ENOMEM;
	}
	index_remove(fw, true, id);
	free(o->path);
	o->path = p;
	o->tree = t < 0 ? 0 : (unsigned)t;
	return index_insert(fw, true, id);
}

/* Inserts or updates; returns 1 if the object is new, 0 if known, -errno. */
static int obj_upsert(struct fanwatch *fw, uint64_t fsid, const struct file_handle *fh,
		      const char *path, bool is_dir, nlink_t nlink, struct fw_obj **out)
{
	struct fw_obj *o = lookup_handle(fw, fsid, fh->handle_type, fh->f_handle, fh->handle_bytes);
	uint32_t id;
	int err, t;

	if (o) {
		o->gen = fw->gen;
		if (out)
			*out = o;
		if (strcmp(o->path, path))
			return obj_set_path(fw, o, path);
		return 0;
	}
	t = tree_of(fw, path);
	o = calloc(1, sizeof(*o) + fh->handle_bytes);
	if (!o || !(o->path = strdup(path))) {
		free(o);
		return -ENOMEM;
	}
	o->fsid = fsid;
	o->htype = fh->handle_type;
	o->hlen = fh->handle_bytes;
	memcpy(o->handle, fh->f_handle, fh->handle_bytes);
	o->serial = ++fw->serial;
	o->gen = fw->gen;
	o->nlink = nlink;
	o->is_dir = is_dir;
	o->tree = t < 0 ? 0 : (unsigned)t;
	if (fw->n_free) {
		id = fw->free_ids[--fw->n_free];
	} else {
		if (fw->n_objs == fw->cap_objs) {
			size_t ncap = fw->cap_objs ? fw->cap_objs * 2 : 1024;
			struct fw_obj **n = realloc(fw->objs, ncap * sizeof(*n));
			uint32_t *f = realloc(fw->free_ids, ncap * sizeof(*f));

			if (n)
				fw->objs = n;
			if (f)
				fw->free_ids = f;
			if (!n || !f) {
				free(o->path);
				free(o);
				return -ENOMEM;
			}
			fw->cap_objs = ncap;
		}
		id = (uint32_t)fw->n_objs++;
	}
	fw->objs[id] = o;
	fw->live++;
	err = index_insert(fw, false, id);
	if (!err)
		err = index_insert(fw, true, id);
	if (err)
		return err;
	if (out)
		*out = o;
	return 1;
}

/* ---- marking -------------------------------------------------------------- */

struct fw_fh {
	struct file_handle fh;
	unsigned char b[FW_MAX_HANDLE];
};

static int get_handle(int dfd, const char *name, struct fw_fh *h, int *mnt_id)
{
	int mnt;

	if (!mnt_id)
		mnt_id = &mnt;
	h->fh.handle_bytes = FW_MAX_HANDLE;
	if (name_to_handle_at(dfd, name, &h->fh, mnt_id,
			      AT_HANDLE_FID | (*name ? 0 : AT_EMPTY_PATH)) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernel before 6.5: the export handle is the same bytes for the filesystems
	 * that support both. */
	h->fh.handle_bytes = FW_MAX_HANDLE;
	if (name_to_handle_at(dfd, name, &h->fh, mnt_id, *name ? 0 : AT_EMPTY_PATH))
		return -errno;
	return 0;
}

static void emit(struct fanwatch *fw, enum fw_op op, pid_t pid, unsigned tree, const char *path,
		 const char *new_path, const char *outside, bool is_dir, unsigned flags)
{
	struct fw_event ev = {
		.op = op, .pid = pid, .tree = tree, .path = path, .new_path = new_path,
		.outside_path = outside, .is_dir = is_dir, .flags = flags,
	};

	if (fw->cb)
		fw->cb(&ev, fw->ctx);
	fw->reported++;
}

/* Marks one directory (already open as dfd) and records it. */
static int mark_dir(struct fanwatch *fw, int dfd, const char *path, bool root, uint64_t *fsid_out,
		    int *mnt_id)
{
	struct fw_obj *o = NULL;
	struct fw_fh h;
	struct stat st;
	uint64_t fsid;
	int err;

	if (fstat(dfd, &st))
		return -errno;
	err = fs_of(fw, dfd, st.st_dev, &fsid);
	if (err)
		return err;
	if (fanotify_mark(fw->fd, FAN_MARK_ADD, root ? FW_ROOT_MASK : FW_DIR_MASK, dfd, NULL))
		return -errno;
	err = get_handle(dfd, "", &h, mnt_id);
	if (err)
		return err;
	err = obj_upsert(fw, fsid, &h.fh, path, true, st.st_nlink, &o);
	if (err >= 0 && o && root)
		o->root = true;
	*fsid_out = fsid;
	return err;
}

/* Marks one regular file dfd/name and records it; 1 if it was new. nlink 0: not
 * known yet (the walk saves a stat per file; see the FAN_ATTRIB handling). */
static int mark_file(struct fanwatch *fw, int dfd, const char *name, const char *path,
		     nlink_t nlink, uint64_t dir_fsid, int dir_mnt)
{
	uint64_t fsid = dir_fsid;
	struct fw_fh h;
	int err, mnt;

	/* Mark first, then take the handle: if the name is replaced in between, the
	 * directory (marked before its entries are read) reports the new entry. */
	if (fanotify_mark(fw->fd, FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW, FW_FILE_MASK, dfd, name))
		return -errno;
	err = get_handle(dfd, name, &h, &mnt);
	if (err)
		return err;
	if (mnt != dir_mnt) {
		/* A file bind-mounted over a file in the tree: its own filesystem. */
		struct stat st;
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

		if (fd < 0)
			return -errno;
		err = fstat(fd, &st) ? -errno : fs_of(fw, fd, st.st_dev, &fsid);
		close(fd);
		if (err)
			return err;
	}
	return obj_upsert(fw, fsid, &h.fh, path, false, nlink, NULL);
}

struct fw_walk_item {
	char *path;
	unsigned depth;
};

/*
 * Marks the directory at path and everything under it, breadth first with an
 * explicit queue (no recursion: a hostile deep tree cannot exhaust the stack).
 * Crosses mounts inside the tree; never follows symlinks. With report, every
 * object found that was not known is reported as created by pid (guessed).
 */
static int walk(struct fanwatch *fw, const char *path, bool root, bool report, pid_t pid)
{
	struct fw_walk_item *q;
	size_t head = 0, tail = 0, cap = 64;
	int ret = 0;

	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	q[tail].path = strdup(path);
	q[tail++].depth = 0;
	if (!q[0].path) {
		free(q);
		return -ENOMEM;
	}
	while (head < tail) {
		struct fw_walk_item it = q[head++];
		struct dirent *de;
		uint64_t fsid = 0;
		DIR *d;
		int dfd, err, mnt = -1;

		dfd = open(it.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			/* Vanished since listed: its removal is an event of its own. */
			if (errno != ENOENT && errno != ENOTDIR)
				fw->skipped++;
			if (root && it.depth == 0)
				ret = -errno;
			free(it.path);
			continue;
		}
		err = mark_dir(fw, dfd, it.path, root && it.depth == 0, &fsid, &mnt);
		if (err < 0) {
			fw->skipped++;
			if (root && it.depth == 0)
				ret = err;
			close(dfd);
			free(it.path);
			continue;
		}
		d = fdopendir(dfd);
		if (!d) {
			close(dfd);
			free(it.path);
			fw->skipped++;
			continue;
		}
		while ((de = readdir(d))) {
			char child[PATH_MAX];
			unsigned char type = de->d_type;
			struct stat st;
			int n;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			n = snprintf(child, sizeof(child), "%s/%s",
				     strcmp(it.path, "/") ? it.path : "", de->d_name);
			if (n < 0 || (size_t)n >= sizeof(child)) {
				fw->skipped++;
				continue;
			}
			/* d_type spares a stat per file on the filesystems that fill it. */
			if (type == DT_UNKNOWN) {
				if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
					continue;
				type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
			}
			if (type == DT_DIR) {
				if (it.depth + 1 > FW_MAX_DEPTH) {
					fw->skipped++;
					continue;
				}
				if (tail == cap) {
					struct fw_walk_item *nq;

					/* Compact before growing: the queue holds only pending dirs. */
					memmove(q, q + head, (tail - head) * sizeof(*q));
					tail -= head;
					head = 0;
					if (tail == cap) {
						nq = realloc(q, 2 * cap * sizeof(*q));
						if (!nq) {
							fw->skipped++;
							continue;
						}
						q = nq;
						cap *= 2;
					}
				}
				q[tail].path = strdup(child);
				if (!q[tail].path) {
					fw->skipped++;
					continue;
				}
				q[tail++].depth = it.depth + 1;
				if (report && !lookup_path(fw, child))
					emit(fw, FW_MKDIR, pid, (unsigned)tree_of(fw, child), child,
					     NULL, NULL, true, FW_EV_PID_GUESSED);
			} else if (type == DT_REG) {
				err = mark_file(fw, dirfd(d), de->d_name, child, 0, fsid, mnt);
				if (err < 0)
					fw->skipped++;
				else if (err == 1 && report)
					emit(fw, FW_CREATE, pid, (unsigned)tree_of(fw, child), child,
					     NULL, NULL, false, FW_EV_PID_GUESSED);
			} else if (report) {
				/* Symlinks and nodes need no mark: their changes are dirent events. */
				emit(fw, FW_CREATE, pid, (unsigned)tree_of(fw, child), child,
				     NULL, NULL, false, FW_EV_PID_GUESSED);
			}
		}
		closedir(d);
		free(it.path);
	}
	while (head < tail)
		free(q[head++].path);
	free(q);
	return ret;
}

/* ---- event parsing -------------------------------------------------------- */

struct fw_fid {
	bool ok;
	uint64_t fsid;
	int32_t type;
	uint32_t len;
	const unsigned char *h;
	const char *name;	/* *_DFID_NAME only */
};

/* One info record, every length checked against the record and the event. */
static int parse_fid(const struct fanotify_event_info_header *hdr, size_t rec_len, struct fw_fid *f)
{
	const struct fanotify_event_info_fid *fid = (const void *)hdr;
	const struct file_handle *fh;
	size_t off = sizeof(*fid) + sizeof(struct file_handle);

	if (rec_len < off)
		return -EINVAL;
	fh = (const void *)fid->handle;
	if (fh->handle_bytes > FW_MAX_HANDLE || fh->handle_bytes > rec_len - off)
		return -EINVAL;
	f->fsid = pack_fsid((const int *)&fid->fsid);
	f->type = fh->handle_type;
	f->len = fh->handle_bytes;
	f->h = fh->f_handle;
	f->name = NULL;
	if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
	    hdr->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
	    hdr->info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
		const char *name = (const char *)fh->f_handle + fh->handle_bytes;
		size_t room = rec_len - off - fh->handle_bytes;

		if (!room || !memchr(name, '\0', room))
			return -EINVAL;
		f->name = name;
	}
	f->ok = true;
	return 0;
}

struct fw_info {
	struct fw_fid fid, dfid_name, dfid, old, new;
};

/* m is an aligned copy of the metadata at raw; records follow raw (4-byte aligned). */
static int parse_info(const struct fanotify_event_metadata *m, const char *raw, struct fw_info *in)
{
	const char *p = raw + m->metadata_len;
	const char *end = raw + m->event_len;

	memset(in, 0, sizeof(*in));
	if (m->metadata_len < sizeof(*m) || m->metadata_len > m->event_len)
		return -EINVAL;
	while ((size_t)(end - p) >= sizeof(struct fanotify_event_info_header)) {
		const struct fanotify_event_info_header *hdr = (const void *)p;
		struct fw_fid *dst = NULL;

		if (hdr->len < sizeof(*hdr) || hdr->len > (size_t)(end - p))
			return -EINVAL;
		switch (hdr->info_type) {
		case FAN_EVENT_INFO_TYPE_FID:
			dst = &in->fid;
			break;
		case FAN_EVENT_INFO_TYPE_DFID_NAME:
			dst = &in->dfid_name;
			break;
		case FAN_EVENT_INFO_TYPE_DFID:
			dst = &in->dfid;
			break;
		case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
			dst = &in->old;
			break;
		case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
			dst = &in->new;
			break;
		default:
			break; /* unknown records are skipped by length */
		}
		if (dst && parse_fid(hdr, hdr->len, dst))
			return -EINVAL;
		p += hdr->len;
	}
	return 0;
}

/* ---- resolution ----------------------------------------------------------- */

/* Where an object is now, from the kernel's view of it, if that lies in a tree. */
static int fallback_path(struct fanwatch *fw, const struct fw_fid *f, char *out, size_t sz)
{
	char proc[64];
	ssize_t n;
	int fd = open_handle(fw, f->fsid, f->type, f->h, f->len);

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

/* Path of dir-fid (+ name): via the table, else via the kernel. In a tree or not:
 * returns the tree index, -ENOENT if outside every tree, or -errno. */
static int resolve_dir(struct fanwatch *fw, const struct fw_fid *f, char *out, size_t sz,
		       bool fallback)
{
	struct fw_obj *d = lookup_handle(fw, f->fsid, f->type, f->h, f->len);
	char dir[PATH_MAX];
	int t, err;

	if (d && d->is_dir) {
		if (join(out, sz, d->path, f->name))
			return -ENAMETOOLONG;
		return (int)d->tree;
	}
	if (!fallback)
		return -ENOENT;
	err = fallback_path(fw, f, dir, sizeof(dir));
	if (err)
		return err;
	if (join(out, sz, dir, f->name))
		return -ENAMETOOLONG;
	t = tree_of(fw, out);
	return t < 0 ? -ENOENT : t;
}

/* Path of an object by its own fid: table first, else the kernel. */
static int resolve_obj(struct fanwatch *fw, const struct fw_fid *f, char *out, size_t sz,
		       struct fw_obj **obj, bool fallback)
{
	struct fw_obj *o = lookup_handle(fw, f->fsid, f->type, f->h, f->len);
	int t, err;

	*obj = o;
	if (o) {
		if (join(out, sz, o->path, NULL))
			return -ENAMETOOLONG;
		return (int)o->tree;
	}
	if (!fallback)
		return -ENOENT;
	err = fallback_path(fw, f, out, sz);
	if (err)
		return err;
	t = tree_of(fw, out);
	return t < 0 ? -ENOENT : t;
}

/* ---- coalescing ----------------------------------------------------------- */

static size_t coal_slot(uint64_t serial, pid_t pid)
{
	return (size_t)((serial * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uint32_t)pid) &
	       (FW_COALESCE_SLOTS - 1);
}

static struct fw_coal *coal_find(struct fanwatch *fw, uint64_t serial, pid_t pid)
{
	size_t s = coal_slot(serial, pid), n;

	for (n = 0; n < FW_COALESCE_SLOTS; n++, s = (s + 1) & (FW_COALESCE_SLOTS - 1)) {
		struct fw_coal *c = &fw->coal[s];

		if (!c->serial && !c->tomb)
			return NULL;
		if (c->serial == serial && c->pid == pid)
			return c;
	}
	return NULL;
}

/* true: first write of pid to this file since its last close-after-write. */
static bool coal_first_write(struct fanwatch *fw, uint64_t serial, pid_t pid)
{
	size_t s;

	if (coal_find(fw, serial, pid))
		return false;
	if (fw->coal_used + 1 > FW_COALESCE_SLOTS * 3 / 4) {
		/* Full: forget everything, so writes are reported again rather than lost. */
		memset(fw->coal, 0, sizeof(fw->coal));
		fw->coal_used = 0;
	}
	for (s = coal_slot(serial, pid); fw->coal[s].serial; s = (s + 1) & (FW_COALESCE_SLOTS - 1))
		;
	if (!fw->coal[s].tomb)
		fw->coal_used++;
	fw->coal[s] = (struct fw_coal){ .serial = serial, .pid = pid };
	return true;
}

/* true if pid had written the file (and the write was reported). */
static bool coal_close(struct fanwatch *fw, uint64_t serial, pid_t pid)
{
	struct fw_coal *c = coal_find(fw, serial, pid);

	if (!c)
		return false;
	c->serial = 0;
	c->tomb = true;
	return true;
}

/* ---- event handling ------------------------------------------------------- */

static void drop_subtree(struct fanwatch *fw, const char *path)
{
	size_t l = strlen(path), i;

	for (i = 0; i < fw->n_objs; i++) {
		struct fw_obj *o = fw->objs[i];

		if (o && !strncmp(o->path, path, l) && o->path[l] == '/')
			obj_drop(fw, o, true);
	}
}

static void move_subtree(struct fanwatch *fw, const char *from, const char *to)
{
	size_t l = strlen(from), i;
	char np[PATH_MAX];

	for (i = 0; i < fw->n_objs; i++) {
		struct fw_obj *o = fw->objs[i];

		if (!o || strncmp(o->path, from, l) || o->path[l] != '/')
			continue;
		if (snprintf(np, sizeof(np), "%s%s", to, o->path + l) >= (int)sizeof(np)) {
			obj_drop(fw, o, true);
			fw->skipped++;
			continue;
		}
		obj_set_path(fw, o, np);
	}
}

/* Marks a single object that appeared at path (create, link, move in). */
static void adopt(struct fanwatch *fw, const char *path, bool report, pid_t pid)
{
	char dir[PATH_MAX];
	const char *name;
	struct fw_fh h;
	struct stat st, dst;
	uint64_t fsid;
	char *slash;
	int dfd, err, mnt;

	if (lstat(path, &st))
		return; /* already gone again: its deletion is its own event */
	if (S_ISDIR(st.st_mode)) {
		if (walk(fw, path, false, report, pid))
			fw->skipped++;
		return;
	}
	if (!S_ISREG(st.st_mode) || strlen(path) >= sizeof(dir))
		return;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	name = path + (slash - dir) + 1;
	*slash = '\0';
	dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	if (fstat(dfd, &dst) || fs_of(fw, dfd, dst.st_dev, &fsid) || get_handle(dfd, "", &h, &mnt))
		err = -EIO;
	else
		err = mark_file(fw, dfd, name, path, st.st_nlink, fsid, mnt);
	if (err < 0)
		fw->skipped++;
	close(dfd);
}

static void on_rename(struct fanwatch *fw, pid_t pid, const struct fw_info *in, bool is_dir)
{
	char from[PATH_MAX], to[PATH_MAX], outside[PATH_MAX];
	int tf = -ENOENT, tt = -ENOENT;
	struct fw_obj *o = NULL, *over;
	const char *out = NULL;

	/* With inode marks the kernel reports only the watched side(s) of a rename:
	 * a missing record means that side lies outside every tree. */
	if (in->old.ok)
		tf = resolve_dir(fw, &in->old, from, sizeof(from), true);
	if (in->new.ok)
		tt = resolve_dir(fw, &in->new, to, sizeof(to), true);
	if (tf < 0 && tt < 0) {
		if ((tf != -ENOENT && tf != -ESTALE) || (tt != -ENOENT && tt != -ESTALE))
			fw->unresolved++;
		return;
	}
	if (tf >= 0 && tt >= 0) {
		emit(fw, FW_RENAME, pid, (unsigned)tf, from, to, NULL, is_dir, 0);
	} else if (tf >= 0) {
		/* Moved out: where it went is where the object is now (best effort). */
		if (in->fid.ok && !fallback_path(fw, &in->fid, outside, sizeof(outside)))
			out = outside;
		else if (tt == -ENOENT && in->new.ok)
			out = to;
		emit(fw, FW_RENAME, pid, (unsigned)tf, from, NULL, out, is_dir, FW_EV_TO_OUTSIDE);
	} else {
		/* Moved in: the kernel does not say from where (the old directory is
		 * not watched); outside_path is NULL unless the old side was reported. */
		if (tf == -ENOENT && in->old.ok)
			out = from;
		emit(fw, FW_RENAME, pid, (unsigned)tt, to, NULL, out, is_dir, FW_EV_FROM_OUTSIDE);
	}

	/* Keep the table true: the moved object, and whatever it replaced. */
	if (in->fid.ok)
		o = lookup_handle(fw, in->fid.fsid, in->fid.type, in->fid.h, in->fid.len);
	if (!o && tf >= 0)
		o = lookup_path(fw, from);
	if (tt >= 0) {
		over = lookup_path(fw, to);
		if (over && over != o) {
			if (over->is_dir)
				drop_subtree(fw, to);
			obj_drop(fw, over, true);
		}
	}
	if (o && tt >= 0) {
		char old[PATH_MAX];

		snprintf(old, sizeof(old), "%s", o->path);
		obj_set_path(fw, o, to);
		if (o->is_dir)
			move_subtree(fw, old, to);
	} else if (o) {
		if (o->is_dir)
			drop_subtree(fw, o->path);
		obj_drop(fw, o, true);
	} else if (tt >= 0) {
		adopt(fw, to, false, pid);
	}
}

static void on_event(struct fanwatch *fw, const struct fanotify_event_metadata *m, const char *raw)
{
	uint64_t mask = m->mask;
	bool is_dir = mask & FAN_ONDIR;
	char path[PATH_MAX];
	struct fw_obj *obj = NULL;
	struct fw_info in;
	int t = -ENOENT, pass;
	pid_t pid = m->pid;

	if (mask & FAN_Q_OVERFLOW) {
		fw->overflows++;
		fw->rescan = true;
		return;
	}
	if (parse_info(m, raw, &in)) {
		fw->unresolved++;
		return;
	}
	if (mask & FAN_RENAME) {
		on_rename(fw, pid, &in, is_dir);
		mask &= ~(uint64_t)FAN_RENAME;
		if (!(mask & ~(uint64_t)FAN_ONDIR))
			return;
	}

	/* The name the actor used is authoritative when its directory is in a tree;
	 * otherwise (a hard link outside) the object's own handle says where it is.
	 * The table answers first; the kernel (open_by_handle_at) only if it can't. */
	for (pass = 0; pass < 2 && t < 0; pass++) {
		bool fb = pass == 1;

		if (in.dfid_name.ok)
			t = resolve_dir(fw, &in.dfid_name, path, sizeof(path), fb);
		if (t < 0 && in.fid.ok && !(mask & (FAN_CREATE | FAN_DELETE)))
			t = resolve_obj(fw, &in.fid, path, sizeof(path), &obj, fb);
		if (t < 0 && in.dfid.ok)
			t = resolve_obj(fw, &in.dfid, path, sizeof(path), &obj, fb);
	}
	if (in.fid.ok)
		obj = lookup_handle(fw, in.fid.fsid, in.fid.type, in.fid.h, in.fid.len);
	if (t < 0) {
		/* Outside every tree (ENOENT), or gone before we looked (ESTALE): the
		 * change to the tree, if any, was its own event. */
		if (t != -ENOENT && t != -ESTALE)
			fw->unresolved++;
		return;
	}
	if (!obj && !(mask & FAN_CREATE))
		obj = lookup_path(fw, path);

	if (mask & FAN_CREATE) {
		bool known = obj && !strcmp(obj->path, path);

		/* Known already: a scan of its new parent found and reported it. */
		if (!known)
			emit(fw, is_dir ? FW_MKDIR : FW_CREATE, pid, (unsigned)t, path, NULL, NULL,
			     is_dir, 0);
		adopt(fw, path, true, pid);
		if (!obj)
			obj = lookup_path(fw, path);
	}
	if (mask & FAN_MODIFY) {
		if (!obj || coal_first_write(fw, obj->serial, pid))
			emit(fw, FW_WRITE, pid, (unsigned)t, path, NULL, NULL, false, 0);
	}
	if (mask & FAN_ATTRIB) {
		enum fw_op op = FW_ATTRIB;

		bool by_unlink = false;

		if (obj && !obj->is_dir) {
			struct stat st, named;
			int fd = open_handle(fw, obj->fsid, obj->htype, obj->handle, obj->hlen);
			nlink_t n = 0, before = obj->nlink; /* n 0: gone, the last link went */
			bool have_st = false, changed;

			if (fd >= 0) {
				have_st = fstat(fd, &st) == 0;
				n = have_st ? st.st_nlink : obj->nlink;
				close(fd);
			}
			/* Without a baseline, the kernel's shape of the event decides: a
			 * link count change (fsnotify_link_count) carries no parent, every
			 * other attribute change (fsnotify_change, _xattr) does. */
			if (obj->nlink)
				changed = n != obj->nlink;
			else
				changed = !in.dfid_name.ok && !in.dfid.ok;
			obj->nlink = n;
			if (changed)
				op = FW_LINK_COUNT;
			/* An unlink or rename-over of the in-tree name drops the count too;
			 * its own DELETE/RENAME event reports that change, so this one would
			 * only say it twice. A link made or removed elsewhere leaves the
			 * in-tree name on this inode. */
			if (changed && (before == 0 || n < before))
				by_unlink = n == 0 || lstat(path, &named) != 0 ||
					    (have_st && (named.st_ino != st.st_ino ||
							 named.st_dev != st.st_dev));
		}
		if (!by_unlink)
			emit(fw, op, pid, (unsigned)t, path, NULL, NULL, is_dir, 0);
	}
	if (mask & FAN_CLOSE_WRITE) {
		if (!obj || !coal_close(fw, obj->serial, pid))
			emit(fw, FW_CLOSE_WRITE, pid, (unsigned)t, path, NULL, NULL, false, 0);
	}
	if (mask & FAN_DELETE) {
		emit(fw, is_dir ? FW_RMDIR : FW_UNLINK, pid, (unsigned)t, path, NULL, NULL, is_dir, 0);
		/* Drop the name that went; the object may live on under another
		 * in-tree name (then keep it, under that name). */
		obj = lookup_path(fw, path);
		if (obj && !obj->is_dir) {
			struct fw_fid f = { .ok = true, .fsid = obj->fsid, .type = obj->htype,
					    .len = obj->hlen, .h = obj->handle };
			char other[PATH_MAX];

			if (!fallback_path(fw, &f, other, sizeof(other)) && tree_of(fw, other) >= 0) {
				obj_set_path(fw, obj, other);
				obj = NULL;
			}
		}
		if (obj) {
			if (obj->is_dir)
				drop_subtree(fw, path);
			obj_drop(fw, obj, true);
		}
	}
	if (mask & (FAN_DELETE_SELF | FAN_MOVE_SELF)) {
		/* Only tree roots carry these: the tree itself went away or moved. */
		emit(fw, mask & FAN_DELETE_SELF ? FW_RMDIR : FW_RENAME, pid, (unsigned)t, path,
		     NULL, NULL, true, FW_EV_ROOT | (mask & FAN_MOVE_SELF ? FW_EV_TO_OUTSIDE : 0));
	}
}

/* After lost events: mark what appeared, forget what went. */
static void rescan(struct fanwatch *fw)
{
	size_t i;

	fw->gen++;
	for (i = 0; i < fw->n_trees; i++)
		walk(fw, fw->roots[i], true, false, 0);
	for (i = 0; i < fw->n_objs; i++)
		if (fw->objs[i] && fw->objs[i]->gen != fw->gen)
			obj_drop(fw, fw->objs[i], true);
	memset(fw->coal, 0, sizeof(fw->coal));
	fw->coal_used = 0;
	fw->rescan = false;
}

int fanwatch__process(struct fanwatch *fw, fw_event_cb cb, void *ctx)
{
	int r;

	fw->cb = cb;
	fw->ctx = ctx;
	fw->reported = 0;
	for (r = 0; r < FW_MAX_READS; r++) {
		ssize_t len = read(fw->fd, fw->buf, sizeof(fw->buf));
		size_t off = 0;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		if (len == 0)
			break;
		if (fw->sync)
			fw->sync(fw->sync_ctx);
		/* Records are only 4-byte aligned (FANOTIFY_EVENT_ALIGN): copy each
		 * metadata header out rather than cast (FAN_EVENT_NEXT would). */
		while ((size_t)len - off >= sizeof(struct fanotify_event_metadata)) {
			struct fanotify_event_metadata m;

			memcpy(&m, fw->buf + off, sizeof(m));
			if (m.event_len < sizeof(m) || m.event_len > (size_t)len - off)
				break;
			if (m.fd >= 0)
				close(m.fd);
			if (m.vers != FANOTIFY_METADATA_VERSION)
				fw->unresolved++;
			else
				on_event(fw, &m, fw->buf + off);
			off += m.event_len;
		}
	}
	if (fw->rescan)
		rescan(fw);
	return fw->reported;
}

/* ---- lifecycle ------------------------------------------------------------ */

int fanwatch__new(const char *const *tree_paths, size_t n_trees, struct fanwatch **out)
{
	struct fanwatch *fw;
	size_t i;
	int err;

	*out = NULL;
	if (!tree_paths || !n_trees)
		return -EINVAL;
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	fw->gen = 1;
	/* An unlimited queue where allowed (CAP_SYS_ADMIN): an overflow loses events. */
	fw->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET |
			       FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS, O_RDONLY | O_LARGEFILE);
	if (fw->fd < 0 && errno == EPERM)
		fw->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK |
				       FAN_REPORT_DFID_NAME_TARGET, O_RDONLY | O_LARGEFILE);
	if (fw->fd < 0) {
		err = -errno;
		free(fw);
		return err;
	}
	fw->roots = calloc(n_trees, sizeof(*fw->roots));
	fw->root_len = calloc(n_trees, sizeof(*fw->root_len));
	if (!fw->roots || !fw->root_len) {
		err = -ENOMEM;
		goto fail;
	}
	fw->n_trees = n_trees;
	for (i = 0; i < n_trees; i++) {
		/* Canonical: the trees are matched as resolved objects, and readlink of
		 * /proc/self/fd gives canonical paths. */
		fw->roots[i] = realpath(tree_paths[i], NULL);
		if (!fw->roots[i]) {
			err = -errno;
			goto fail;
		}
		fw->root_len[i] = strlen(fw->roots[i]);
	}
	for (i = 0; i < n_trees; i++) {
		err = walk(fw, fw->roots[i], true, false, 0);
		if (err)
			goto fail;
	}
	*out = fw;
	return 0;
fail:
	fanwatch__free(fw);
	return err;
}

void fanwatch__set_sync(struct fanwatch *fw, fw_sync_cb sync, void *ctx)
{
	fw->sync = sync;
	fw->sync_ctx = ctx;
}

int fanwatch__fd(const struct fanwatch *fw)
{
	return fw->fd;
}

uint64_t fanwatch__overflows(const struct fanwatch *fw)
{
	return fw->overflows;
}

uint64_t fanwatch__unresolved(const struct fanwatch *fw)
{
	return fw->unresolved;
}

uint64_t fanwatch__skipped(const struct fanwatch *fw)
{
	return fw->skipped;
}

size_t fanwatch__marks(const struct fanwatch *fw)
{
	return fw->live;
}

void fanwatch__free(struct fanwatch *fw)
{
	size_t i;

	if (!fw)
		return;
	if (fw->fd >= 0)
		close(fw->fd); /* drops every mark */
	for (i = 0; i < fw->n_mnts; i++)
		close(fw->mnts[i].fd);
	for (i = 0; i < fw->n_objs; i++) {
		if (fw->objs[i]) {
			free(fw->objs[i]->path);
			free(fw->objs[i]);
		}
	}
	for (i = 0; fw->roots && i < fw->n_trees; i++)
		free(fw->roots[i]);
	free(fw->roots);
	free(fw->root_len);
	free(fw->objs);
	free(fw->free_ids);
	free(fw->hidx);
	free(fw->pidx);
	free(fw);
}
