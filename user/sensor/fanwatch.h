/* fanwatch: every change to the protected trees, with the acting process and the
 * resolved in-tree path, from fanotify notification events. No BPF, no policy types:
 * the caller passes plain paths, so this module is testable alone.
 *
 * How it sees everything:
 *  - an inode mark on every directory of every tree (dirent changes, attribute
 *    changes and writes of children), crossing mounts inside the trees;
 *  - an inode mark on every regular file, so a write through a hard link that
 *    lives outside the trees (or a descriptor opened before we started) is seen;
 *  - a table file-handle -> in-tree path built at mark time and kept current on
 *    create, rename and delete; events are resolved through it, never through
 *    the (attacker-chosen) name the actor used.
 * Directories outside the trees carry no mark and cost nothing.
 *
 * Coalescing: FW_WRITE is reported once per (process, file) until that process
 * closes the file after writing (FAN_CLOSE_WRITE), so a build writing a large
 * output produces one event, not thousands. The (process, file) table is bounded
 * (FW_COALESCE_SLOTS); when it fills it is cleared, so writes are reported again,
 * never dropped.
 *
 * Not seen (fsnotify limits): stores through a shared writable mmap produce no
 * FAN_MODIFY; they are reported as FW_CLOSE_WRITE when the descriptor is closed
 * without a write() having been seen. Changes made while the queue overflowed are
 * lost; they are counted (fanwatch__overflows) and the trees are re-scanned so
 * later changes are seen again.
 */
#ifndef BUILDWARDEN_FANWATCH_H
#define BUILDWARDEN_FANWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum fw_op {
	FW_WRITE = 1,	/* content changed: write, pwrite, O_TRUNC, truncate, fallocate, copy_file_range, io_uring */
	FW_CREATE,	/* a non-directory entry appeared (file, symlink, hard link, node) */
	FW_UNLINK,
	FW_RENAME,
	FW_ATTRIB,	/* mode, owner, times, xattrs */
	FW_MKDIR,
	FW_RMDIR,
	FW_LINK_COUNT,	/* nlink changed: a hard link to this file made or removed elsewhere */
	FW_CLOSE_WRITE,	/* closed after being opened for writing with no write() seen: may be an mmap store */
	FW_LINK,	/* a hard link to an existing file made in a tree: path is the new name */
};

/* fw_event.flags */
#define FW_EV_FROM_OUTSIDE (1u << 0)	/* FW_RENAME: the object moved into a tree; path is its new name */
#define FW_EV_TO_OUTSIDE (1u << 1)	/* FW_RENAME: the object left the trees; path is its old name */
#define FW_EV_PID_GUESSED (1u << 2)	/* found by scanning a new directory: pid is the mkdir's actor */
#define FW_EV_ROOT (1u << 3)		/* the event is on a tree root itself (moved or deleted) */
#define FW_EV_ACTOR_EXITED (1u << 4)	/* the actor had exited when the event was read: its pid
					 * may be another process's by now (FAN_REPORT_PIDFD) */

struct fw_event {
	enum fw_op op;
	pid_t pid;		/* acting process: the thread group id (FAN_REPORT_TID is not used) */
	unsigned tree;		/* index into the tree_paths given to fanwatch__new */
	const char *path;	/* resolved absolute path inside the protected tree */
	const char *new_path;	/* FW_RENAME within the trees: the new in-tree path; else NULL */
	const char *outside_path; /* FW_RENAME across the tree boundary: the outside side, or NULL if unknown */
	int is_dir;
	unsigned flags;		/* FW_EV_* */
	/* A pidfd of the process that acted (FAN_REPORT_PIDFD), valid during the callback
	 * only and closed by fanwatch; -1 when there is none: the actor had exited
	 * (FW_EV_ACTOR_EXITED), the group has no FAN_REPORT_PIDFD, or the kernel could
	 * not make one. The same record gives both: one pidfd design for attribution
	 * and for enforce mode's kill. */
	int pidfd;
};

/* Strings in *ev are valid only during the callback. */
typedef void (*fw_event_cb)(const struct fw_event *ev, void *ctx);

/* Called after every read() of the fanotify queue, before the events read are handled.
 * Whatever another source recorded before one of those changes happened (the new name
 * a link() records at syscall entry in the BPF ring buffer, the exec of the actor) is
 * readable by then: the caller drains it here, so the handling of each event finds it.
 * Draining only before the read is not enough: the change may happen in between. */
typedef void (*fw_sync_cb)(void *ctx);

struct fanwatch;

/* Marks every directory and regular file under each tree. Returns 0 or -errno. */
int fanwatch__new(const char *const *tree_paths, size_t n_trees, struct fanwatch **out);
/* Enforce mode (issue 7): also a fanotify permission group with the same objects
 * marked, so opens (and, where the kernel has pre-content events, truncates) of
 * protected objects wait for an answer on fanwatch__perm_fd (sensor/permwatch.h).
 * Inode marks only: nothing outside the trees is asked about. */
int fanwatch__new_perm(const char *const *tree_paths, size_t n_trees, bool perm,
		       struct fanwatch **out);
/* How fanwatch__new_perm makes its group: an fd or -errno; *extra: the pre-content
 * events files are marked with (0: content class only). */
typedef int (*fw_perm_group_fn)(uint64_t *extra);
int fanwatch__new_with(const char *const *tree_paths, size_t n_trees, fw_perm_group_fn perm,
		       struct fanwatch **out);
/* The permission group's fd (-1: none); whether its files have FAN_PRE_ACCESS; how many
 * objects are marked without it (their filesystem refused it). Closed by
 * fanwatch__free: whoever answers on it must have stopped by then. */
int fanwatch__perm_fd(const struct fanwatch *fw);
bool fanwatch__perm_pre_content(const struct fanwatch *fw);
uint64_t fanwatch__perm_no_pre(const struct fanwatch *fw);
/* -errno when a permission group was asked for and could not be made (the watcher
 * works without it), else 0. */
int fanwatch__perm_err(const struct fanwatch *fw);
/* Nobody will answer (the answering thread could not start): closes the group, so no
 * open waits for an answer that never comes; err is what fanwatch__perm_err says. */
void fanwatch__perm_close(struct fanwatch *fw, int err);
/* The canonical root of tree i, NULL past the last; fixed for fw's life. */
const char *fanwatch__root(const struct fanwatch *fw, size_t i);
/* The fanotify descriptor, for poll/epoll (readable when events are pending). */
int fanwatch__fd(const struct fanwatch *fw);
/* Reads and handles the pending events without blocking; returns the number of
 * events reported to cb, or -errno. Reads at most a bounded batch per call, so a
 * writer that never stops cannot starve the caller: poll again. */
int fanwatch__process(struct fanwatch *fw, fw_event_cb cb, void *ctx);
/* Set (or clear, with NULL) the sync callback; none by default. */
void fanwatch__set_sync(struct fanwatch *fw, fw_sync_cb sync, void *ctx);
/* The exact set of regular files marked in the trees, for a kernel-side check by inode
 * (enforce mode: bpf/write.bpf.c). present: the file (st_dev, ino as stat() reports
 * them) is marked in tree; else it left the trees or is gone. The same file may be
 * reported present again with another tree (moved between trees). A non-zero return
 * (the set is full) counts the file in skipped: its writes are not guarded. */
/* igen: the file's inode generation, 0 when its handle does not say
 * (fanotify_parse__handle_gen); a file gone is told with the igen it was told with. */
typedef int (*fw_inode_cb)(void *ctx, bool present, unsigned tree, uint64_t dev, uint64_t ino,
			   uint32_t igen);
/* Sets the callback and reports every file marked so far to it, then every change as
 * it is handled (files the build creates, renames, deletions, rescans). NULL stops it. */
void fanwatch__set_inode_cb(struct fanwatch *fw, fw_inode_cb cb, void *ctx);
/* The in-tree path of the marked object (st_dev, ino): a directory, or a file while an
 * inode callback is set; returns its tree index, or -ENOENT. Linear: for rare events
 * only. */
int fanwatch__path_of_inode(const struct fanwatch *fw, uint64_t dev, uint64_t ino, char *out,
			    size_t sz);

struct fanwatch_stats {
	/* FAN_Q_OVERFLOW seen: events were lost and must be reported as such. */
	uint64_t overflows;
	/* Events dropped because they could not be used: on a marked object whose
	 * in-tree path could not be resolved, or malformed (unknown metadata version,
	 * a bad info record). Changes that may have been lost: report them as drops. */
	uint64_t unresolved;
	/* Objects under the trees that could not be marked (too deep, path too long,
	 * filesystem without file handles, mark limit): changes to them are not seen. */
	uint64_t skipped;
	/* Marks currently held (directories + files). */
	size_t marks;
};

/* Every counter at once, for stats and runEnd events. */
void fanwatch__stats(const struct fanwatch *fw, struct fanwatch_stats *out);
/* The same counters one by one. */
uint64_t fanwatch__overflows(const struct fanwatch *fw);
uint64_t fanwatch__unresolved(const struct fanwatch *fw);
uint64_t fanwatch__skipped(const struct fanwatch *fw);
/* true: events say when their actor had exited before the read (FAN_REPORT_PIDFD,
 * Linux 5.15): FW_EV_ACTOR_EXITED is then set; false: the kernel cannot tell. */
bool fanwatch__reports_pidfd(const struct fanwatch *fw);

size_t fanwatch__marks(const struct fanwatch *fw);
void fanwatch__free(struct fanwatch *fw);

#endif
