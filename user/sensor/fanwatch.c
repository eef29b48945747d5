// SPDX-License-Identifier: GPL-2.0
/* fanwatch: protected-tree changes from fanotify, resolved to the in-tree object.
 * See fanwatch.h for what is seen and how, and fw_private.h for the parts: this file
 * is the lifecycle and the read loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sensor/fw_private.h"

#define FW_INIT_FLAGS (FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET)
#define FW_MAX_READS 16		/* buffers per fanwatch__process call: bounded latency for the caller */

/* The pidfd of an actor of the read being handled, or -1 (pidfds_collect). */
static int pidfd_of(const struct fanwatch *fw, pid_t pid)
{
	for (size_t i = 0; i < fw->n_pidfds; i++)
		if (fw->pidfds[i].pid == pid)
			return fw->pidfds[i].fd;
	return -1;
}

void fanwatch__emit(struct fanwatch *fw, enum fw_op op, pid_t pid, unsigned tree,
		    const char *path, const char *new_path, const char *outside, bool is_dir,
		    unsigned flags)
{
	struct fw_event ev = {
		.op = op, .pid = pid, .tree = tree, .path = path, .new_path = new_path,
		.outside_path = outside, .is_dir = is_dir,
		.flags = flags | (pid == fw->cur_pid && fw->actor_exited ? FW_EV_ACTOR_EXITED : 0),
		.pidfd = pid == fw->cur_pid ? fw->cur_pidfd : -1,
	};

	if (fw->cb)
		fw->cb(&ev, fw->ctx);
	fw->reported++;
}

bool fanwatch__reports_pidfd(const struct fanwatch *fw)
{
	return fw->pidfd_reports;
}

/* The kernel installs a pidfd for every event of a read before read() returns: hundreds
 * for a busy build. One per process is kept (the others closed at once, before any
 * handling opens a /proc file), and all of them are closed after the read is handled.
 * Closes the event descriptors too (FID mode has none, but a record may say otherwise). */
static void pidfds_collect(struct fanwatch *fw, size_t len)
{
	struct fan_cursor cur;
	struct fan_record rec;

	fw->n_pidfds = 0;
	fanotify_parse__init(&cur, fw->buf, len);
	while (fanotify_parse__next(&cur, &rec) == 1) {
		int fd = rec.info.pidfd;
		size_t i;

		if (rec.fd >= 0)
			close(rec.fd);
		if (fd < 0)
			continue;
		for (i = 0; i < fw->n_pidfds && fw->pidfds[i].pid != rec.pid; i++)
			;
		if (i < fw->n_pidfds || i == FW_MAX_PIDFDS) {
			close(fd);
			continue;
		}
		fw->pidfds[fw->n_pidfds++] = (struct fw_pidfd){ .pid = rec.pid, .fd = fd };
	}
}

static void pidfds_close(struct fanwatch *fw)
{
	for (size_t i = 0; i < fw->n_pidfds; i++)
		close(fw->pidfds[i].fd);
	fw->n_pidfds = 0;
}

int fanwatch__process(struct fanwatch *fw, fw_event_cb cb, void *ctx)
{
	int r;

	fw->cb = cb;
	fw->ctx = ctx;
	fw->reported = 0;
	for (r = 0; r < FW_MAX_READS; r++) {
		ssize_t len = read(fw->fd, fw->buf, sizeof(fw->buf));
		struct fan_cursor cur;
		struct fan_record rec;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		if (len == 0)
			break;
		pidfds_collect(fw, (size_t)len);
		if (fw->sync)
			fw->sync(fw->sync_ctx);
		fanotify_parse__init(&cur, fw->buf, (size_t)len);
		while (fanotify_parse__next(&cur, &rec) == 1) {
			/* Per record, never per pid number: two records of one read may have
			 * the same pid and different actors (one exited, its pid reused). A
			 * pidfd says the actor was alive at the read, so its pid still names
			 * it (and the kept pidfd of that pid is the same process); FAN_NOPIDFD
			 * says it had exited: no pidfd to kill through, and its pid may be a
			 * stranger's now (event_build.c looks it up among exited processes). */
			fw->cur_pid = rec.pid;
			fw->cur_pidfd = rec.info.has_pidfd && rec.info.pidfd >= 0 ? pidfd_of(fw, rec.pid) : -1;
			fw->actor_exited = rec.info.has_pidfd && rec.info.pidfd == FAN_NOPIDFD;
			fw_ops__event(fw, &rec);
			fw->actor_exited = false;
			fw->cur_pidfd = -1;
			fw->cur_pid = 0;
		}
		pidfds_close(fw);
	}
	if (fw->rescan)
		fw_mark__rescan(fw);
	return fw->reported;
}

/* ---- lifecycle ------------------------------------------------------------ */

int fanwatch__new(const char *const *tree_paths, size_t n_trees, struct fanwatch **out)
{
	return fanwatch__new_with(tree_paths, n_trees, NULL, out);
}

int fanwatch__new_with(const char *const *tree_paths, size_t n_trees, fw_perm_group_fn perm,
		       struct fanwatch **out)
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
	fw->perm_fd = -1;
	fw->perm_probe_fd = -1;
	fw->cur_pidfd = -1;
	/* An unlimited queue where allowed (CAP_SYS_ADMIN): an overflow loses events.
	 * FAN_REPORT_PIDFD (≥5.15): each event carries a pidfd of the very process that
	 * acted, taken while the event is read. It tells an actor that exited before the
	 * read, whose pid may have been reused since, from one still alive (attribution),
	 * and lets enforce mode kill the actor without racing pid reuse (agent/taint.c).
	 * Older kernels refuse the flag: events then have none. */
	fw->fd = -1;
	for (i = 0; i < 4 && fw->fd < 0; i++) {
		unsigned int fl = FW_INIT_FLAGS | (i < 2 ? FAN_REPORT_PIDFD : 0) |
				  (i % 2 ? 0 : FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS);

		fw->fd = fanotify_init(fl, O_RDONLY | O_LARGEFILE);
		fw->pidfd_reports = fw->fd >= 0 && (fl & FAN_REPORT_PIDFD);
		if (fw->fd < 0 && errno != EPERM && errno != EINVAL)
			break;
	}
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
	/* Before the walk: every object it marks gets its permission mark at once. */
	if (perm) {
		fw->perm_fd = perm(&fw->perm_extra);
		if (fw->perm_fd < 0) {
			/* Watching goes on without: the caller sees fanwatch__perm_fd < 0 and
			 * says that opens are not refused. */
			fw->perm_err = fw->perm_fd;
			fw->perm_fd = -1;
		} else {
			fw_perm__probe_open(fw);
		}
	}
	for (i = 0; i < n_trees; i++) {
		err = fw_mark__walk(fw, fw->roots[i], true, false, 0);
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

void fanwatch__stats(const struct fanwatch *fw, struct fanwatch_stats *out)
{
	out->overflows = fw->overflows;
	out->unresolved = fw->unresolved;
	out->skipped = fw->skipped;
	out->marks = fw->ix.live;
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
	return fw->ix.live;
}

void fanwatch__free(struct fanwatch *fw)
{
	size_t i;

	if (!fw)
		return;
	if (fw->fd >= 0)
		close(fw->fd); /* drops every mark */
	/* The kernel allows what is still pending: stop the answering thread first. */
	if (fw->perm_fd >= 0)
		close(fw->perm_fd);
	if (fw->perm_probe_fd >= 0)
		close(fw->perm_probe_fd);
	fw_handle__close_all(fw);
	fw_index__free(&fw->ix);
	for (i = 0; fw->roots && i < fw->n_trees; i++)
		free(fw->roots[i]);
	free(fw->roots);
	free(fw->root_len);
	free(fw);
}
