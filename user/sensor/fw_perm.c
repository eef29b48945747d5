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
 * (counted: fanwatch__perm_no_pre); its truncates are left to the kill at entry. */
#include <errno.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "sensor/fw_private.h"

void fw_perm__mark(struct fanwatch *fw, int dfd, const char *name, bool is_dir)
{
	unsigned flags = FAN_MARK_ADD | (name ? FAN_MARK_DONT_FOLLOW : 0);
	uint64_t mask = is_dir ? FW_PERM_DIR_MASK : FW_PERM_FILE_MASK | fw->perm_extra;

	if (fw->perm_fd < 0)
		return;
	if (!fanotify_mark(fw->perm_fd, flags, mask, dfd, name))
		return;
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
	if (fw->perm_fd >= 0)
		fanotify_mark(fw->perm_fd, FAN_MARK_REMOVE,
			      is_dir ? FW_PERM_DIR_MASK : FW_PERM_FILE_MASK | fw->perm_extra, fd,
			      NULL);
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
