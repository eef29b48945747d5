#include "sensor/procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

struct procmem {
	int fd;
	char proc_path[64];
	uint64_t overflows;
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
	pm->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (pm->fd < 0) {
		e = -errno;
		free(pm);
		return e;
	}
	if (fanotify_mark(pm->fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_MODIFY, AT_FDCWD, proc_path)) {
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
	return pm->overflows;
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

	if (strncmp(path, proc_path, n) != 0 || path[n] != '/')
		return 0;
	p = path + n + 1;
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

		if (len < 0)
			return errno == EAGAIN ? reported : -errno;
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
			if (md->fd < 0)
				continue;
			snprintf(link, sizeof(link), "/proc/self/fd/%d", md->fd);
			n = readlink(link, path, sizeof(path) - 1);
			close(md->fd);
			if (n <= 0)
				continue;
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
