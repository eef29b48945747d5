/* Enforce mode's permission marks (issue 7): the objects fanwatch marks for
 * notifications get a second mark in a group of the content (or pre-content) class, so
 * an open of a protected file, or of a new name in a protected directory, waits for the
 * agent's answer (sensor/permwatch.c). The marks follow the notification marks exactly:
 * they are added and removed at the same two places in fw_mark.c, so the set the
 * kernel asks about is the set of objects in the trees, kept true on create, rename,
 * delete and rescan.
 *
 * Pre-content (FAN_PRE_ACCESS, kernel >= 6.14, filesystems that allow it): on files
 * only, it makes a truncate (ftruncate on a descriptor opened before the run, truncate
 * by path) wait for the answer too. A filesystem that refuses it keeps the open marks
 * (counted: fanwatch__perm_no_pre); its truncates are left to the kill at entry.
 *
 * Pre-content is also what made the build slow: the kernel decides at each open whether
 * that file's reads and writes ask, and they do while the inode carries FAN_PRE_ACCESS,
 * so every read() of a protected file the build opened was a round trip to the agent
 * (18,332 of the 30,731 questions of an nginx build; each a sleep and two wake-ups,
 * 15-100 us on our VMs). Those questions are always answered yes (permwatch.c: a read
 * or write with a byte count is one through a descriptor opened during the run, so by
 * the build if for writing). What pre-content adds over the open marks is one thing:
 * refusing a truncate by a process that did not open the file during the run, through
 * a descriptor open for writing (ftruncate) or none at all (truncate by path).
 *
 * So a file that nobody has open for writing once its open mark is in place is
 * "clean": every descriptor for writing it will ever have comes from an open the agent
 * allowed (the build, a listed writer). FAN_PRE_ACCESS leaves its mark, for good: the
 * file's later opens are told at once that nobody watches its content, so its reads
 * and writes do not even enter fsnotify. A file someone has open for writing (an
 * outsider's descriptor from before the run, or the build still writing a new output)
 * keeps FAN_PRE_ACCESS: its truncates, the older descriptor's ftruncate included, ask
 * and are refused, and its reads ask; the next close-write of it (fw_ops.c
 * on_close_write) tests it again.
 *
 * The test, "open for writing now?", is the kernel's own (inode_is_open_for_write,
 * every descriptor counted wherever it is: another process, an SCM_RIGHTS message in
 * flight, an io_uring file table, a shared mapping): fanotify_add_inode_mark skips an
 * ignored mask without FAN_MARK_IGNORED_SURV_MODIFY on such an inode, silently. A
 * group of its own (perm_probe_fd) adds one and removes it: removal finds no mark
 * (ENOENT) if the add was skipped. Every call names the object through an O_PATH
 * descriptor (/proc/self/fd/N), so a name replaced in between cannot move the answer
 * to another inode. Where that cannot be done (no procfs, no probe group), an ignored
 * FAN_PRE_ACCESS without SURV_MODIFY in the permission group's own mark: the kernel's
 * test at that instant, undone by the file's next modification.
 *
 * What is given up: an outsider's truncate(2) by path of a clean file asks nothing and
 * lands; it is detected, its actor killed and the file TAINTED, as on a kernel without
 * pre-content (bpf sys_enter_truncate, fanotify). Also a descriptor for writing the
 * build made and an outsider took from it (pidfd_getfd, which needs ptrace rights over
 * the build) can ftruncate a clean file unasked (the write guard kills it at entry;
 * the truncate lands). Measured: docs/PERFORMANCE.md, "Enforce mode: the answer path". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "sensor/fw_private.h"

void fw_perm__probe_open(struct fanwatch *fw)
{
	if (fw->perm_extra)
		fw->perm_probe_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY);
}

/* 0: nobody has the object open for writing; 1: someone has; -errno: cannot tell. */
static int open_for_writing(const struct fanwatch *fw, const char *self)
{
	unsigned ign = FAN_MARK_IGNORED_MASK;

	if (fw->perm_probe_fd < 0)
		return -ENOSYS;
	if (fanotify_mark(fw->perm_probe_fd, FAN_MARK_ADD | ign, FAN_ACCESS, AT_FDCWD, self))
		return -errno;
	if (!fanotify_mark(fw->perm_probe_fd, FAN_MARK_REMOVE | ign, FAN_ACCESS, AT_FDCWD, self))
		return 0;
	return errno == ENOENT ? 1 : -errno;
}

void fw_perm__quiet(struct fanwatch *fw, int dfd, const char *name)
{
	unsigned ign = FAN_MARK_ADD | FAN_MARK_IGNORED_MASK;
	char self[64];
	int fd, w;

	if (fw->perm_fd < 0 || !fw->perm_extra)
		return;
	fd = name ? openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC) : dfd;
	if (fd < 0)
		return; /* gone: nothing to spare */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	w = open_for_writing(fw, self);
	/* A probe that cannot tell falls back to the kernel's own test: it adds no ignored
	 * mask without SURV_MODIFY to a file open for writing (the file keeps asking), and
	 * the file's next modification clears one it added. Checked on 6.18: a descriptor
	 * for writing opened before the mark still asks at its ftruncate. */
	if (w == 0)
		fanotify_mark(fw->perm_fd, FAN_MARK_REMOVE, FAN_PRE_ACCESS, AT_FDCWD, self);
	else if (w < 0)
		fanotify_mark(fw->perm_fd, ign | (name ? FAN_MARK_DONT_FOLLOW : 0), FAN_PRE_ACCESS,
			      dfd, name);
	if (fd != dfd)
		close(fd);
}

void fw_perm__mark(struct fanwatch *fw, int dfd, const char *name, bool is_dir)
{
	unsigned flags = FAN_MARK_ADD | (name ? FAN_MARK_DONT_FOLLOW : 0);
	uint64_t mask = is_dir ? FW_PERM_DIR_MASK : FW_PERM_FILE_MASK | fw->perm_extra;

	if (fw->perm_fd < 0)
		return;
	if (!fanotify_mark(fw->perm_fd, flags, mask, dfd, name)) {
		if (!is_dir)
			fw_perm__quiet(fw, dfd, name);
		return;
	}
	if (fw->perm_extra && (errno == EINVAL || errno == EOPNOTSUPP) &&
	    !fanotify_mark(fw->perm_fd, flags, mask & ~fw->perm_extra, dfd, name)) {
		fw->perm_no_pre++;
		return;
	}
	if (errno == ENOENT)
		return; /* gone since the notification mark: nothing there to ask about */
	/* Watched for notifications but not asked about: an open there is not refused. */
	fw->skipped++;
}

void fw_perm__unmark(struct fanwatch *fw, int fd, bool is_dir)
{
	if (fw->perm_fd < 0)
		return;
	fanotify_mark(fw->perm_fd, FAN_MARK_REMOVE,
		      is_dir ? FW_PERM_DIR_MASK : FW_PERM_FILE_MASK | fw->perm_extra, fd, NULL);
	/* The ignored mask alone would keep the mark (ENOENT when there is none) */
	if (!is_dir && fw->perm_extra)
		fanotify_mark(fw->perm_fd, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK,
			      fw->perm_extra, fd, NULL);
}

/* Pre-content first: it adds truncates to what is refused; else the content class. */
static int perm_group(uint64_t *extra)
{
	unsigned base = FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID | FAN_UNLIMITED_QUEUE |
			FAN_UNLIMITED_MARKS;
	int fd = fanotify_init(FAN_CLASS_PRE_CONTENT | base, O_RDONLY | O_LARGEFILE);

	if (fd >= 0) {
		*extra = FAN_PRE_ACCESS;
		return fd;
	}
	*extra = 0;
	fd = fanotify_init(FAN_CLASS_CONTENT | base, O_RDONLY | O_LARGEFILE);
	return fd < 0 ? -errno : fd;
}

int fanwatch__new_perm(const char *const *tree_paths, size_t n_trees, bool perm,
		       struct fanwatch **out)
{
	return fanwatch__new_with(tree_paths, n_trees, perm ? perm_group : NULL, out);
}

int fanwatch__perm_fd(const struct fanwatch *fw)
{
	return fw->perm_fd;
}

bool fanwatch__perm_pre_content(const struct fanwatch *fw)
{
	return fw->perm_fd >= 0 && fw->perm_extra != 0;
}

void fanwatch__perm_close(struct fanwatch *fw, int err)
{
	if (fw->perm_fd >= 0)
		close(fw->perm_fd); /* the kernel allows what is pending, drops the marks */
	fw->perm_fd = -1;
	fw->perm_err = err;
}

int fanwatch__perm_err(const struct fanwatch *fw)
{
	return fw->perm_err;
}

uint64_t fanwatch__perm_no_pre(const struct fanwatch *fw)
{
	return fw->perm_no_pre;
}

const char *fanwatch__root(const struct fanwatch *fw, size_t i)
{
	return i < fw->n_trees ? fw->roots[i] : NULL;
}
