/* One handler per operation. An event is resolved once (to the in-tree path and the
 * table's object), then every operation in its mask is handled in a fixed order:
 * create, modify, attrib, close-write, delete, self. A rename is handled first, apart:
 * it names two places, and the kernel reports only the watched side(s). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor/fw_private.h"

struct fw_change {
	const struct fan_info *in;
	uint64_t mask;
	pid_t pid;
	unsigned tree;
	bool is_dir;
	char path[PATH_MAX];	/* resolved, inside tree */
	struct fw_obj *obj;	/* the changed object in the table, if known */
};

static void emit(struct fanwatch *fw, const struct fw_change *c, enum fw_op op, bool is_dir,
		 unsigned flags)
{
	fanwatch__emit(fw, op, c->pid, c->tree, c->path, NULL, NULL, is_dir, flags);
}

/* ---- rename ---------------------------------------------------------------- */

static void rename_report(struct fanwatch *fw, const struct fw_change *c, int tf, const char *from,
			  int tt, const char *to)
{
	const struct fan_info *in = c->in;
	char outside[PATH_MAX];
	const char *out = NULL;

	if (tf >= 0 && tt >= 0) {
		fanwatch__emit(fw, FW_RENAME, c->pid, (unsigned)tf, from, to, NULL, c->is_dir, 0);
	} else if (tf >= 0) {
		/* Moved out: where it went is where the object is now (best effort). */
		struct fw_key k = fw_key_of(&in->fid);

		if (in->fid.ok && !fw_resolve__kernel_path(fw, &k, outside, sizeof(outside)))
			out = outside;
		else if (tt == -ENOENT && in->new.ok)
			out = to;
		fanwatch__emit(fw, FW_RENAME, c->pid, (unsigned)tf, from, NULL, out, c->is_dir,
			       FW_EV_TO_OUTSIDE);
	} else {
		/* Moved in: the kernel does not say from where (the old directory is
		 * not watched); outside_path is NULL unless the old side was reported. */
		if (tf == -ENOENT && in->old.ok)
			out = from;
		fanwatch__emit(fw, FW_RENAME, c->pid, (unsigned)tt, to, NULL, out, c->is_dir,
			       FW_EV_FROM_OUTSIDE);
	}
}

/* Keep the table true: the moved object, and whatever it replaced. */
static void rename_update(struct fanwatch *fw, const struct fw_change *c, int tf, const char *from,
			  int tt, const char *to)
{
	struct fw_obj *o = NULL, *over;

	if (c->in->fid.ok) {
		struct fw_key k = fw_key_of(&c->in->fid);

		o = fw_index__by_handle(&fw->ix, &k);
	}
	if (!o && tf >= 0)
		o = fw_index__by_path(&fw->ix, from);
	if (tt >= 0) {
		over = fw_index__by_path(&fw->ix, to);
		if (over && over != o) {
			if (over->is_dir)
				fw_mark__drop_subtree(fw, to);
			fw_mark__drop(fw, over, true);
		}
	}
	if (o && tt >= 0) {
		char old[PATH_MAX];

		snprintf(old, sizeof(old), "%s", o->path);
		fw_mark__set_path(fw, o, to);
		if (o->is_dir)
			fw_mark__move_subtree(fw, old, to);
	} else if (o) {
		if (o->is_dir)
			fw_mark__drop_subtree(fw, o->path);
		fw_mark__drop(fw, o, true);
	} else if (tt >= 0) {
		fw_mark__adopt(fw, to, false, c->pid);
	}
}

static void on_rename(struct fanwatch *fw, const struct fw_change *c)
{
	char from[PATH_MAX], to[PATH_MAX];
	int tf = -ENOENT, tt = -ENOENT;

	/* With inode marks the kernel reports only the watched side(s) of a rename:
	 * a missing record means that side lies outside every tree. */
	if (c->in->old.ok)
		tf = fw_resolve__dir(fw, &c->in->old, from, sizeof(from), true);
	if (c->in->new.ok)
		tt = fw_resolve__dir(fw, &c->in->new, to, sizeof(to), true);
	if (tf < 0 && tt < 0) {
		if ((tf != -ENOENT && tf != -ESTALE) || (tt != -ENOENT && tt != -ESTALE))
			fw->unresolved++;
		return;
	}
	rename_report(fw, c, tf, from, tt, to);
	rename_update(fw, c, tf, from, tt, to);
}

/* ---- the other operations --------------------------------------------------- */

static void on_create(struct fanwatch *fw, struct fw_change *c)
{
	/* Known already: a scan of its new parent found and reported it. */
	bool known = c->obj && !strcmp(c->obj->path, c->path);

	struct stat st;

	/* A new name for a file that has another already is a hard link, not a new file
	 * (fsnotify_link reports it as a create of its name). */
	if (!known)
		emit(fw, c,
		     c->is_dir ? FW_MKDIR
		     : (lstat(c->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1)
			     ? FW_LINK
			     : FW_CREATE,
		     c->is_dir, 0);
	fw_mark__adopt(fw, c->path, true, c->pid);
	if (!c->obj)
		c->obj = fw_index__by_path(&fw->ix, c->path);
}

static void on_modify(struct fanwatch *fw, struct fw_change *c)
{
	if (!c->obj || fw_coalesce__first_write(&fw->coal, c->obj->serial, c->pid))
		emit(fw, c, FW_WRITE, false, 0);
}

/* A file's attribute event: did its link count change, and was that the unlink or
 * rename-over of its in-tree name (reported by that name's own DELETE/RENAME, so this
 * one would only say it twice)? A link made or removed elsewhere leaves the in-tree
 * name on this inode. */
static enum fw_op attrib_of_file(struct fanwatch *fw, const struct fw_change *c, bool *by_unlink)
{
	struct fw_obj *obj = c->obj;
	struct fw_key k = fw_index__key(obj);
	struct stat st, named;
	int fd = fw_handle__open(fw, &k);
	nlink_t n = 0, before = obj->nlink; /* n 0: gone, the last link went */
	bool have_st = false, changed;

	if (fd >= 0) {
		have_st = fstat(fd, &st) == 0;
		n = have_st ? st.st_nlink : obj->nlink;
		close(fd);
	}
	/* Without a baseline, the kernel's shape of the event decides: a link count
	 * change (fsnotify_link_count) carries no parent, every other attribute change
	 * (fsnotify_change, _xattr) does. */
	if (obj->nlink)
		changed = n != obj->nlink;
	else
		changed = !c->in->dfid_name.ok && !c->in->dfid.ok;
	obj->nlink = n;
	if (changed && (before == 0 || n < before))
		*by_unlink = n == 0 || lstat(c->path, &named) != 0 ||
			     (have_st && (named.st_ino != st.st_ino || named.st_dev != st.st_dev));
	return changed ? FW_LINK_COUNT : FW_ATTRIB;
}

static void on_attrib(struct fanwatch *fw, struct fw_change *c)
{
	enum fw_op op = FW_ATTRIB;
	bool by_unlink = false;

	if (c->obj && !c->obj->is_dir)
		op = attrib_of_file(fw, c, &by_unlink);
	if (!by_unlink)
		emit(fw, c, op, c->is_dir, 0);
}

static void on_close_write(struct fanwatch *fw, struct fw_change *c)
{
	/* Its reads ask again since its last write (fw_perm.c): stop that, unless it is
	 * still open for writing (the kernel's test). */
	if (c->obj && !c->obj->is_dir)
		fw_perm__quiet(fw, AT_FDCWD, c->path);
	if (!c->obj || !fw_coalesce__close(&fw->coal, c->obj->serial, c->pid))
		emit(fw, c, FW_CLOSE_WRITE, false, 0);
}

static void on_delete(struct fanwatch *fw, struct fw_change *c)
{
	struct fw_obj *obj;

	emit(fw, c, c->is_dir ? FW_RMDIR : FW_UNLINK, c->is_dir, 0);
	/* Drop the name that went; the object may live on under another in-tree name
	 * (then keep it, under that name). */
	obj = fw_index__by_path(&fw->ix, c->path);
	if (obj && !obj->is_dir) {
		struct fw_key k = fw_index__key(obj);
		char other[PATH_MAX];

		if (!fw_resolve__kernel_path(fw, &k, other, sizeof(other)) &&
		    fw_resolve__tree_of(fw, other) >= 0) {
			fw_mark__set_path(fw, obj, other);
			obj = NULL;
		}
	}
	if (obj) {
		if (obj->is_dir)
			fw_mark__drop_subtree(fw, c->path);
		fw_mark__drop(fw, obj, true);
	}
	c->obj = NULL;
}

/* Only tree roots carry these: the tree itself went away or moved. */
static void on_self(struct fanwatch *fw, struct fw_change *c)
{
	bool moved = c->mask & FAN_MOVE_SELF;

	emit(fw, c, c->mask & FAN_DELETE_SELF ? FW_RMDIR : FW_RENAME, true,
	     FW_EV_ROOT | (moved ? FW_EV_TO_OUTSIDE : 0));
}

static const struct {
	uint64_t mask;
	void (*handle)(struct fanwatch *fw, struct fw_change *c);
} handlers[] = {
	{ FAN_CREATE, on_create },
	{ FAN_MODIFY, on_modify },
	{ FAN_ATTRIB, on_attrib },
	{ FAN_CLOSE_WRITE, on_close_write },
	{ FAN_DELETE, on_delete },
	{ FAN_DELETE_SELF | FAN_MOVE_SELF, on_self },
};

/* ---- dispatch ---------------------------------------------------------------- */

/* The name the actor used is authoritative when its directory is in a tree;
 * otherwise (a hard link outside) the object's own handle says where it is.
 * The table answers first; the kernel (open_by_handle_at) only if it can't.
 * Returns the tree index, or -errno (-ENOENT: outside every tree). */
static int resolve(struct fanwatch *fw, struct fw_change *c)
{
	const struct fan_info *in = c->in;
	struct fw_obj *obj = NULL;
	int t = -ENOENT, pass;

	for (pass = 0; pass < 2 && t < 0; pass++) {
		bool fb = pass == 1;

		if (in->dfid_name.ok)
			t = fw_resolve__dir(fw, &in->dfid_name, c->path, sizeof(c->path), fb);
		if (t < 0 && in->fid.ok && !(c->mask & (FAN_CREATE | FAN_DELETE)))
			t = fw_resolve__obj(fw, &in->fid, c->path, sizeof(c->path), &obj, fb);
		if (t < 0 && in->dfid.ok)
			t = fw_resolve__obj(fw, &in->dfid, c->path, sizeof(c->path), &obj, fb);
	}
	if (in->fid.ok) {
		struct fw_key k = fw_key_of(&in->fid);

		obj = fw_index__by_handle(&fw->ix, &k);
	}
	if (t < 0)
		return t;
	if (!obj && !(c->mask & FAN_CREATE))
		obj = fw_index__by_path(&fw->ix, c->path);
	c->obj = obj;
	return t;
}

void fw_ops__event(struct fanwatch *fw, const struct fan_record *rec)
{
	struct fw_change c = {
		.in = &rec->info,
		.mask = rec->mask,
		.pid = rec->pid,
		.is_dir = rec->mask & FAN_ONDIR,
	};
	size_t i;
	int t;

	if (rec->status == FAN_REC_BAD_VERSION) {
		fw->unresolved++;
		return;
	}
	if (c.mask & FAN_Q_OVERFLOW) {
		fw->overflows++;
		fw->rescan = true;
		return;
	}
	if (rec->status != FAN_REC_OK) {
		fw->unresolved++;
		return;
	}
	if (c.mask & FAN_RENAME) {
		on_rename(fw, &c);
		c.mask &= ~(uint64_t)FAN_RENAME;
		if (!(c.mask & ~(uint64_t)FAN_ONDIR))
			return;
	}
	t = resolve(fw, &c);
	if (t < 0) {
		/* Outside every tree (ENOENT), or gone before we looked (ESTALE): the
		 * change to the tree, if any, was its own event. */
		if (t != -ENOENT && t != -ESTALE)
			fw->unresolved++;
		return;
	}
	c.tree = (unsigned)t;
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (c.mask & handlers[i].mask)
			handlers[i].handle(fw, &c);
}
