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

#define FW_MAX_READS 16		/* buffers per fanwatch__process call: bounded latency for the caller */

void fanwatch__emit(struct fanwatch *fw, enum fw_op op, pid_t pid, unsigned tree,
		    const char *path, const char *new_path, const char *outside, bool is_dir,
		    unsigned flags)
{
	struct fw_event ev = {
		.op = op, .pid = pid, .tree = tree, .path = path, .new_path = new_path,
		.outside_path = outside, .is_dir = is_dir, .flags = flags,
	};

	if (fw->cb)
		fw->cb(&ev, fw->ctx);
	fw->reported++;
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
		if (fw->sync)
			fw->sync(fw->sync_ctx);
		fanotify_parse__init(&cur, fw->buf, (size_t)len);
		while (fanotify_parse__next(&cur, &rec) == 1) {
			if (rec.fd >= 0)
				close(rec.fd);
			fw_ops__event(fw, &rec);
		}
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
	/* Before the walk: every object it marks gets its permission mark at once. */
	if (perm) {
		fw->perm_fd = perm(&fw->perm_extra);
		if (fw->perm_fd < 0) {
			/* Watching goes on without: the caller sees fanwatch__perm_fd < 0 and
			 * says that opens are not refused. */
			fw->perm_err = fw->perm_fd;
			fw->perm_fd = -1;
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
	fw_handle__close_all(fw);
	fw_index__free(&fw->ix);
	for (i = 0; fw->roots && i < fw->n_trees; i++)
		free(fw->roots[i]);
	free(fw->roots);
	free(fw->root_len);
	free(fw);
}
