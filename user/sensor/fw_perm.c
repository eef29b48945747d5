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
 * that file's reads ask, and they do while the inode carries FAN_PRE_ACCESS, so every
 * read() of a protected file the build opened was a round trip to the agent (18,332 of
 * the 30,731 questions of an nginx build; each is a sleep and two wake-ups, 15-100 us on
 * our VMs). What pre-content adds over the open marks is one thing: refusing a truncate
 * by a process that did not have to open the file during the run. A truncate needs a
 * descriptor open for writing (ftruncate) or no descriptor at all (truncate by path).
 * New descriptors for writing are the open marks' to refuse, so the ones that matter are
 * those opened before the mark: the kernel counts them per inode (i_writecount). So
 * every marked file gets FAN_PRE_ACCESS in its ignored mask too, added without
 * FAN_MARK_IGNORED_SURV_MODIFY: the kernel does not add such an ignored mask while any
 * descriptor has the inode open for writing (fanotify_add_inode_mark), and clears it at
 * the next modification. Then:
 *   - a file nobody has open for writing: reads, and a truncate by path, ask nothing;
 *     an outsider's truncate by path lands, and is reported, its actor killed and the
 *     file TAINTED as on a kernel without pre-content (bpf sys_enter_truncate, fanotify);
 *   - a file someone held open for writing when it was marked (an outsider's
 *     descriptor from before the run, or the build still writing a new output): no
 *     ignored mask, so its truncates (the older descriptor's ftruncate) are refused as
 *     before, and its reads ask;
 *   - after a write, until the next close-write of the file (fw_ops.c on_close_write
 *     calls fw_perm__quiet again): its reads ask.
 * Measured on this kernel (6.18): docs/PERFORMANCE.md, "Enforce mode: the answer path". */
#include <errno.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "sensor/fw_private.h"

void fw_perm__quiet(struct fanwatch *fw, int dfd, const char *name)
{
	unsigned flags = FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | (name ? FAN_MARK_DONT_FOLLOW : 0);

	if (fw->perm_fd < 0 || !fw->perm_extra)
		return;
	/* Success also when the kernel skipped it (open for writing): then reads ask. An
	 * error (the name went) leaves the file asking: the safe side. */
	if (fanotify_mark(fw->perm_fd, flags, FAN_PRE_ACCESS, dfd, name)) {
		/* nothing to undo */
	}
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
