#include "sensor/procmem.h"
#include "sensor/fanotify_compat.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

/* Linux 6.13: an event whose descriptor cannot be opened (the writer's target exited)
 * comes with fd = -errno instead of failing the whole read(). Older uapi headers lack it. */

struct procmem {
	int fd;
	char proc_path[64];
	uint64_t overflows;
	uint64_t unreadable; /* events that reached us without a usable descriptor */
	bool fs_mark; /* the whole procfs, every mount of it; else only the mount at proc_path */
};

int procmem__new(const char *proc_path, struct procmem **out)
{
	struct procmem *pm;
	int e;

	*out = NULL;
	if (strlen(proc_path) >= sizeof(pm->proc_path))
		return -ENAMETOOLONG;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	snprintf(pm->proc_path, sizeof(pm->proc_path), "%s", proc_path);
	/* No FID reporting: procfs has no file handles; the event's descriptor names it. */
	pm->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FD_ERROR,
			       O_RDONLY | O_LARGEFILE);
	if (pm->fd < 0 && errno == EINVAL)
		pm->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (pm->fd < 0) {
		e = -errno;
		free(pm);
		return e;
	}
	/* The file system, not the mount: a writer in a mount namespace of its own
	 * (unshare -m) writes through another mount of the same procfs, which a mount mark
	 * does not see. The mount mark is the fallback for a kernel that refuses. */
	pm->fs_mark = fanotify_mark(pm->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MODIFY,
				    AT_FDCWD, proc_path) == 0;
	if (!pm->fs_mark &&
	    fanotify_mark(pm->fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_MODIFY, AT_FDCWD, proc_path)) {
		e = -errno;
		close(pm->fd);
		free(pm);
		return e;
	}
	*out = pm;
	return 0;
}

int procmem__fd(const struct procmem *pm)
{
	return pm->fd;
}

uint64_t procmem__overflows(const struct procmem *pm)
{
	return pm->overflows + pm->unreadable;
}

void procmem__count_unreadable(struct procmem *pm)
{
	pm->unreadable++;
}

bool procmem__whole_fs(const struct procmem *pm)
{
	return pm->fs_mark;
}

static pid_t parse_pid(const char **s)
{
	long v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return 0;
		p++;
	}
	*s = p;
	return (pid_t)v;
}

pid_t procmem__target(const char *proc_path, const char *path)
{
	size_t n = strlen(proc_path);
	const char *p;
	pid_t pid;

	/* A file of a procfs mount outside the agent's mount namespace (the writer ran
	 * unshare -m) reads back relative to that mount's root: "/PID/mem". Every event
	 * comes from a procfs mark, so that form names a procfs file too. */
	if (strncmp(path, proc_path, n) == 0 && path[n] == '/')
		p = path + n + 1;
	else if (path[0] == '/')
		p = path + 1;
	else
		return 0;
	pid = parse_pid(&p);
	if (!pid)
		return 0;
	if (strncmp(p, "/task/", 6) == 0) {
		p += 6;
		if (!parse_pid(&p))
			return 0;
	}
	return strcmp(p, "/mem") == 0 ? pid : 0;
}

int procmem__process(struct procmem *pm, procmem_cb cb, void *ctx)
{
	_Alignas(struct fanotify_event_metadata) char buf[8192];
	int reported = 0;

	for (int pass = 0; pass < 16; pass++) {
		ssize_t len = read(pm->fd, buf, sizeof(buf));
		struct fanotify_event_metadata *md;

		/* Before 6.13 an event whose descriptor cannot be opened fails the read and
		 * is gone: it may have been a write to a build's memory, so it is counted. */
		if (len < 0 && errno == EAGAIN)
			return reported;
		if (len < 0) {
			if (errno == EINTR)
				continue;
			pm->unreadable++;
			continue;
		}
		if (len == 0)
			break;
		for (md = (struct fanotify_event_metadata *)buf; FAN_EVENT_OK(md, len);
		     md = FAN_EVENT_NEXT(md, len)) {
			char link[64], path[PATH_MAX];
			ssize_t n;
			pid_t target;

			if (md->vers != FANOTIFY_METADATA_VERSION)
				return -EPROTO;
			if (md->mask & FAN_Q_OVERFLOW)
				pm->overflows++;
			if (md->fd == FAN_NOFD)
				continue;
			if (md->fd < 0) {
				/* FAN_REPORT_FD_ERROR: -errno; the file is unknown, the writer is
				 * not, and the caller decides whether it could matter */
				cb(md->pid, 0, ctx);
				continue;
			}
			snprintf(link, sizeof(link), "/proc/self/fd/%d", md->fd);
			n = readlink(link, path, sizeof(path) - 1);
			close(md->fd);
			if (n <= 0) {
				cb(md->pid, 0, ctx);
				continue;
			}
			path[n] = '\0';
			target = procmem__target(pm->proc_path, path);
			if (target && (md->mask & FAN_MODIFY)) {
				cb(md->pid, target, ctx);
				reported++;
			}
		}
	}
	return reported;
}

void procmem__free(struct procmem *pm)
{
	if (!pm)
		return;
	close(pm->fd);
	free(pm);
}
