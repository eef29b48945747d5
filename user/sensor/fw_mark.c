/* Marking: an inode mark on every directory and regular file of the trees, recorded in
 * the table; kept true as objects appear, move and go, and rebuilt after lost events.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/grow.h"
#include "sensor/fw_private.h"

#define FW_MAX_DEPTH 1024	/* deeper directories are counted in skipped, not walked */
#define FW_WALK_FIRST 64	/* queued directories before the queue grows */

static unsigned tree_index(const struct fanwatch *fw, const char *path)
{
	int t = fw_resolve__tree_of(fw, path);

	return t < 0 ? 0 : (unsigned)t;
}

static int upsert(struct fanwatch *fw, uint64_t fsid, const struct fw_fh *h, const char *path,
		  bool is_dir, nlink_t nlink, struct fw_obj **out)
{
	struct fw_key k = { .fsid = fsid, .type = h->fh.handle_type, .len = h->fh.handle_bytes,
			    .h = h->fh.f_handle };

	return fw_index__upsert(&fw->ix, &k, path, tree_index(fw, path), is_dir, nlink, fw->gen,
				out);
}

int fw_mark__set_path(struct fanwatch *fw, struct fw_obj *o, const char *path)
{
	int err = fw_index__set_path(&fw->ix, o, path, tree_index(fw, path));

	if (!err)
		fw_inodes__marked(fw, o, -1, NULL); /* its tree may have changed */
	return err;
}

static void unmark(struct fanwatch *fw, const struct fw_obj *o)
{
	struct fw_key k = fw_index__key(o);
	int fd = fw_handle__open(fw, &k);

	/* Gone (ESTALE): its mark went with the inode. Otherwise it still exists
	 * outside the trees (another hard link, moved out): stop paying for it. */
	if (fd < 0)
		return;
	fanotify_mark(fw->fd, FAN_MARK_REMOVE, o->is_dir ? FW_ROOT_MASK : FW_FILE_MASK, fd, NULL);
	fw_perm__unmark(fw, fd, o->is_dir);
	close(fd);
}

void fw_mark__drop(struct fanwatch *fw, struct fw_obj *o, bool unmark_it)
{
	if (unmark_it)
		unmark(fw, o);
	fw_inodes__dropped(fw, o);
	fw_index__remove(&fw->ix, o);
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
	err = fw_handle__fs_of(fw, dfd, st.st_dev, &fsid);
	if (err)
		return err;
	if (fanotify_mark(fw->fd, FAN_MARK_ADD, root ? FW_ROOT_MASK : FW_DIR_MASK, dfd, NULL))
		return -errno;
	fw_perm__mark(fw, dfd, NULL, true);
	err = fw_handle__get(dfd, "", &h, mnt_id);
	if (err)
		return err;
	err = upsert(fw, fsid, &h, path, true, st.st_nlink, &o);
	if (err >= 0 && o && root)
		o->root = true;
	/* its identity comes free with the stat: the BPF LSM's refusals name a directory
	 * by it (fanwatch__path_of_inode) */
	if (err >= 0 && o) {
		o->dev = st.st_dev;
		o->ino = st.st_ino;
	}
	*fsid_out = fsid;
	return err;
}

/* Marks one regular file dfd/name and records it; 1 if it was new. nlink 0: not
 * known yet (the walk saves a stat per file; see the FAN_ATTRIB handling). */
static int mark_file(struct fanwatch *fw, int dfd, const char *name, const char *path,
		     nlink_t nlink, uint64_t dir_fsid, int dir_mnt)
{
	uint64_t fsid = dir_fsid;
	struct fw_obj *o = NULL;
	struct fw_fh h;
	int err, mnt;

	/* Mark first, then take the handle: if the name is replaced in between, the
	 * directory (marked before its entries are read) reports the new entry. */
	if (fanotify_mark(fw->fd, FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW, FW_FILE_MASK, dfd, name))
		return -errno;
	fw_perm__mark(fw, dfd, name, false);
	err = fw_handle__get(dfd, name, &h, &mnt);
	if (err)
		return err;
	if (mnt != dir_mnt) {
		/* A file bind-mounted over a file in the tree: its own filesystem. */
		struct stat st;
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

		if (fd < 0)
			return -errno;
		err = fstat(fd, &st) ? -errno : fw_handle__fs_of(fw, fd, st.st_dev, &fsid);
		close(fd);
		if (err)
			return err;
	}
	err = upsert(fw, fsid, &h, path, false, nlink, &o);
	if (err >= 0 && o)
		fw_inodes__marked(fw, o, dfd, name);
	return err;
}

struct fw_walk_item {
	char *path;
	unsigned depth;
};

struct fw_walk {
	struct fw_walk_item *q;
	size_t head, tail, cap;
};

/* Queues a directory to visit; false if it cannot be (counted by the caller). */
static bool walk_push(struct fw_walk *w, const char *path, unsigned depth)
{
	if (w->tail == w->cap && w->head) {
		/* Compact before growing: the queue holds only pending dirs. */
		memmove(w->q, w->q + w->head, (w->tail - w->head) * sizeof(*w->q));
		w->tail -= w->head;
		w->head = 0;
	}
	if (w->tail == w->cap) {
		if (grow__reserve((void **)&w->q, &w->cap, w->tail + 1, sizeof(*w->q),
				  FW_WALK_FIRST, 0))
			return false;
	}
	w->q[w->tail].path = strdup(path);
	if (!w->q[w->tail].path)
		return false;
	w->q[w->tail++].depth = depth;
	return true;
}

/* One entry of a directory being walked: queue it (directory), mark it (file), or
 * only report it (symlinks and nodes need no mark: their changes are dirent events). */
static void walk_entry(struct fanwatch *fw, struct fw_walk *w, DIR *d, const struct dirent *de,
		       const struct fw_walk_item *it, uint64_t fsid, int mnt, bool report, pid_t pid)
{
	char child[PATH_MAX];
	unsigned char type = de->d_type;
	struct stat st;
	int n, err;

	n = snprintf(child, sizeof(child), "%s/%s", strcmp(it->path, "/") ? it->path : "",
		     de->d_name);
	if (n < 0 || (size_t)n >= sizeof(child)) {
		fw->skipped++;
		return;
	}
	/* d_type spares a stat per file on the filesystems that fill it. */
	if (type == DT_UNKNOWN) {
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			return;
		type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
	}
	if (type == DT_DIR) {
		if (it->depth + 1 > FW_MAX_DEPTH || !walk_push(w, child, it->depth + 1)) {
			fw->skipped++;
			return;
		}
		if (report && !fw_index__by_path(&fw->ix, child))
			fanwatch__emit(fw, FW_MKDIR, pid, (unsigned)fw_resolve__tree_of(fw, child),
				       child, NULL, NULL, true, FW_EV_PID_GUESSED);
	} else if (type == DT_REG) {
		err = mark_file(fw, dirfd(d), de->d_name, child, 0, fsid, mnt);
		if (err < 0)
			fw->skipped++;
		else if (err == 1 && report)
			fanwatch__emit(fw, FW_CREATE, pid, (unsigned)fw_resolve__tree_of(fw, child),
				       child, NULL, NULL, false, FW_EV_PID_GUESSED);
	} else if (report) {
		fanwatch__emit(fw, FW_CREATE, pid, (unsigned)fw_resolve__tree_of(fw, child), child,
			       NULL, NULL, false, FW_EV_PID_GUESSED);
	}
}

/*
 * Breadth first with an explicit queue (no recursion: a hostile deep tree cannot
 * exhaust the stack). Crosses mounts inside the tree; never follows symlinks.
 */
int fw_mark__walk(struct fanwatch *fw, const char *path, bool root, bool report, pid_t pid)
{
	struct fw_walk w = { 0 };
	int ret = 0;

	if (!walk_push(&w, path, 0)) {
		free(w.q);
		return -ENOMEM;
	}
	while (w.head < w.tail) {
		struct fw_walk_item it = w.q[w.head++];
		bool top = root && it.depth == 0;
		struct dirent *de;
		uint64_t fsid = 0;
		DIR *d;
		int dfd, err, mnt = -1;

		dfd = open(it.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			/* Vanished since listed: its removal is an event of its own. */
			if (errno != ENOENT && errno != ENOTDIR)
				fw->skipped++;
			if (top)
				ret = -errno;
			free(it.path);
			continue;
		}
		err = mark_dir(fw, dfd, it.path, top, &fsid, &mnt);
		if (err < 0) {
			fw->skipped++;
			if (top)
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
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				walk_entry(fw, &w, d, de, &it, fsid, mnt, report, pid);
		}
		closedir(d);
		free(it.path);
	}
	while (w.head < w.tail)
		free(w.q[w.head++].path);
	free(w.q);
	return ret;
}

void fw_mark__adopt(struct fanwatch *fw, const char *path, bool report, pid_t pid)
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
		if (fw_mark__walk(fw, path, false, report, pid))
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
	if (fstat(dfd, &dst) || fw_handle__fs_of(fw, dfd, dst.st_dev, &fsid) ||
	    fw_handle__get(dfd, "", &h, &mnt))
		err = -EIO;
	else
		err = mark_file(fw, dfd, name, path, st.st_nlink, fsid, mnt);
	/* ENOENT: gone again since the lstat (say, a refused create the agent removed):
	 * its deletion is its own event, nothing went unwatched. */
	if (err < 0 && err != -ENOENT)
		fw->skipped++;
	close(dfd);
}

void fw_mark__drop_subtree(struct fanwatch *fw, const char *path)
{
	size_t l = strlen(path), i;

	for (i = 0; i < fw->ix.n_objs; i++) {
		struct fw_obj *o = fw->ix.objs[i];

		if (o && !strncmp(o->path, path, l) && o->path[l] == '/')
			fw_mark__drop(fw, o, true);
	}
}

void fw_mark__move_subtree(struct fanwatch *fw, const char *from, const char *to)
{
	size_t l = strlen(from), i;
	char np[PATH_MAX];

	for (i = 0; i < fw->ix.n_objs; i++) {
		struct fw_obj *o = fw->ix.objs[i];

		if (!o || strncmp(o->path, from, l) || o->path[l] != '/')
			continue;
		if (snprintf(np, sizeof(np), "%s%s", to, o->path + l) >= (int)sizeof(np)) {
			fw_mark__drop(fw, o, true);
			fw->skipped++;
			continue;
		}
		fw_mark__set_path(fw, o, np);
	}
}

void fw_mark__rescan(struct fanwatch *fw)
{
	size_t i;

	fw->gen++;
	for (i = 0; i < fw->n_trees; i++)
		fw_mark__walk(fw, fw->roots[i], true, false, 0);
	for (i = 0; i < fw->ix.n_objs; i++)
		if (fw->ix.objs[i] && fw->ix.objs[i]->gen != fw->gen)
			fw_mark__drop(fw, fw->ix.objs[i], true);
	fw_coalesce__clear(&fw->coal);
	fw->rescan = false;
}
