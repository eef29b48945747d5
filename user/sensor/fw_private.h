/* What the fanwatch files share: the watcher's state and each part's entry points.
 * Callers use fanwatch.h; nothing here is for them.
 *
 *   fanwatch.c        lifecycle, the read loop, emitting, counters
 *   fanotify_parse.c  bytes of a read() -> records (pure)
 *   fw_index.c        handle -> in-tree path table (pure)
 *   fw_coalesce.c     one FW_WRITE per (process, file) until close (pure)
 *   fw_handle.c       file handles: taking, opening, their filesystems
 *   fw_mark.c         marking the trees and keeping marks and table true
 *   fw_resolve.c      a record's handles -> in-tree path
 *   fw_ops.c          one handler per operation
 */
#ifndef BUILDWARDEN_FW_PRIVATE_H
#define BUILDWARDEN_FW_PRIVATE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/fanotify.h>
#include <sys/types.h>

#include "sensor/fanotify_compat.h"
#include "sensor/fanotify_parse.h"
#include "sensor/fanwatch.h"
#include "sensor/fw_coalesce.h"
#include "sensor/fw_index.h"

#define FW_MAX_FS 64		/* filesystems under the trees we keep a mount fd for */
#define FW_BUF_SIZE (64 * 1024)

/* Every directory: dirent changes, and attribute/content changes of children. */
#define FW_DIR_MASK (FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_ATTRIB | FAN_MODIFY | \
		     FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD | FAN_ONDIR)
/* A tree root has no marked parent: its own moves and deletion come from itself. */
#define FW_ROOT_MASK (FW_DIR_MASK | FAN_DELETE_SELF | FAN_MOVE_SELF)
/* Every regular file itself: a write through a hard link outside the trees, or a
 * link count change made elsewhere, does not pass a marked directory. */
#define FW_FILE_MASK (FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE)

/* A pidfd FAN_REPORT_PIDFD gave for an actor (fanwatch.c). */
struct fw_pidfd {
	pid_t pid;
	int fd;
};
#define FW_MAX_PIDFDS (FW_BUF_SIZE / FAN_EVENT_METADATA_LEN + 1)
/* Enforce mode's permission group (fanwatch__new_perm): the same objects, marked so the
 * kernel asks before an open, and (pre-content) before a truncate, of what they hold.
 * Directories ask for their children: a create or open of a new name fires on the
 * parent's mark. Never a mount or filesystem mark: files outside the trees cost no
 * round trip to user space. */
#define FW_PERM_DIR_MASK (FAN_OPEN_PERM | FAN_EVENT_ON_CHILD)
#define FW_PERM_FILE_MASK (FAN_OPEN_PERM)

struct fw_mnt {
	dev_t dev;
	uint64_t fsid;
	int fd;
};

struct fanwatch {
	int fd;
	size_t n_trees;
	char **roots;		/* canonical tree roots */
	size_t *root_len;

	struct fw_index ix;
	struct fw_mnt mnts[FW_MAX_FS];
	size_t n_mnts;
	struct fw_coalesce coal;

	int perm_fd;		/* the permission group, -1 without one */
	uint64_t perm_extra;	/* FAN_PRE_ACCESS when the group is of the pre-content class */
	uint64_t perm_no_pre;	/* objects marked without FAN_PRE_ACCESS: the fs refused it */
	int perm_err;		/* -errno: the permission group asked for could not be made */
	int perm_probe_fd;	/* a group for fw_perm.c's writer test only; -1: none */

	uint64_t gen;		/* full scans so far: objects not seen by the last one went */
	uint64_t overflows, unresolved, skipped;
	bool rescan;
	/* FAN_REPORT_PIDFD said the record being handled was made by a process that had
	 * exited when it was read: its pid may name another process now */
	bool actor_exited;
	bool pidfd_reports; /* the group was made with FAN_REPORT_PIDFD */

	fw_event_cb cb;
	void *ctx;
	fw_sync_cb sync;
	void *sync_ctx;
	pid_t cur_pid;		/* the actor of the record being handled */
	int cur_pidfd;		/* its pidfd (kept in pidfds), -1: none or it had exited */
	struct fw_pidfd pidfds[FW_MAX_PIDFDS]; /* of the read being handled: one per actor */
	size_t n_pidfds;
	fw_inode_cb inode_cb;
	void *inode_ctx;
	int reported;

	char buf[FW_BUF_SIZE] __attribute__((aligned(8)));
};

static inline struct fw_key fw_key_of(const struct fan_fid *f)
{
	return (struct fw_key){ .fsid = f->fsid, .type = f->type, .len = f->len, .h = f->h };
}

/* fanwatch.c */
void fanwatch__emit(struct fanwatch *fw, enum fw_op op, pid_t pid, unsigned tree,
		    const char *path, const char *new_path, const char *outside, bool is_dir,
		    unsigned flags);

/* fw_handle.c */
struct fw_fh {
	struct file_handle fh;
	unsigned char b[FANOTIFY_PARSE_MAX_HANDLE];
};
/* The handle of dfd/name (name "": dfd itself), as fanotify reports it. */
int fw_handle__get(int dfd, const char *name, struct fw_fh *h, int *mnt_id);
/* fsid of the filesystem dfd lies on; remembers it for fw_handle__open. */
int fw_handle__fs_of(struct fanwatch *fw, int dfd, dev_t dev, uint64_t *fsid);
/* Opens the object behind a handle (O_PATH: no open event, no access needed). */
int fw_handle__open(const struct fanwatch *fw, const struct fw_key *k);
void fw_handle__close_all(struct fanwatch *fw);

/* fw_resolve.c: each returns the tree index, -ENOENT if outside every tree, or -errno */
int fw_resolve__tree_of(const struct fanwatch *fw, const char *path);
/* Where an object is now, from the kernel's view of it (0, -ESTALE if deleted, -errno). */
int fw_resolve__kernel_path(const struct fanwatch *fw, const struct fw_key *k, char *out,
			    size_t sz);
/* Path of dir-fid + name: via the table, else (fallback) via the kernel. */
int fw_resolve__dir(const struct fanwatch *fw, const struct fan_fid *f, char *out, size_t sz,
		    bool fallback);
/* Path of an object by its own fid: the table, else (fallback) the kernel. */
int fw_resolve__obj(const struct fanwatch *fw, const struct fan_fid *f, char *out, size_t sz,
		    struct fw_obj **obj, bool fallback);

/* fw_mark.c */
/* Marks path and everything under it; with report, what was not known is reported as
 * created by pid (guessed). Returns 0, or -errno if root and path itself failed. */
int fw_mark__walk(struct fanwatch *fw, const char *path, bool root, bool report, pid_t pid);
/* Marks a single object that appeared at path (create, link, move in). */
void fw_mark__adopt(struct fanwatch *fw, const char *path, bool report, pid_t pid);
/* Forgets o; with unmark, also stops watching it if it still exists. */
void fw_mark__drop(struct fanwatch *fw, struct fw_obj *o, bool unmark);
int fw_mark__set_path(struct fanwatch *fw, struct fw_obj *o, const char *path);
void fw_mark__drop_subtree(struct fanwatch *fw, const char *path);
void fw_mark__move_subtree(struct fanwatch *fw, const char *from, const char *to);
/* After lost events: mark what appeared, forget what went. */
void fw_mark__rescan(struct fanwatch *fw);

/* fw_perm.c: the permission group's marks on a directory or file that fanwatch marks
 * (dfd/name as fanotify_mark takes them); counts in skipped what cannot be marked. */
void fw_perm__mark(struct fanwatch *fw, int dfd, const char *name, bool is_dir);
void fw_perm__unmark(struct fanwatch *fw, int fd, bool is_dir);
/* Takes FAN_PRE_ACCESS off a file's mark if nobody has it open for writing now (else it
 * stays until a later call finds it so): its reads and writes then ask nothing. fw_perm.c
 * says why that is safe, and what it gives up. */
void fw_perm__quiet(struct fanwatch *fw, int dfd, const char *name);
/* After the permission group is made: the writer test's group (fw_perm.c). */
void fw_perm__probe_open(struct fanwatch *fw);

/* fw_inodes.c: tell the inode callback (if any) about a regular file that is now
 * marked at its tree (dfd/name: where to stat it; dfd < 0: by its handle), or gone. */
void fw_inodes__marked(struct fanwatch *fw, struct fw_obj *o, int dfd, const char *name);
void fw_inodes__dropped(struct fanwatch *fw, struct fw_obj *o);

/* fw_ops.c */
void fw_ops__event(struct fanwatch *fw, const struct fan_record *rec);

#endif
