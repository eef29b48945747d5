/* Event loop: see loop.h. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent/loop.h"

struct loop_fd {
	int fd; /* -1: free slot */
	loop_fn fn;
	void *ctx;
};

struct loop {
	int epfd, sigfd;
	struct loop_fd fds[LOOP_MAX_FDS];
};

/* epoll_event.data.ptr of the signalfd: it has no slot */
static char loop__signal_tag;

static int loop__ctl_add(int epfd, int fd, void *ptr)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ptr };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}

int loop__new(const sigset_t *sigs, struct loop **out)
{
	struct loop *l;
	int err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = l->sigfd = -1;
	for (int i = 0; i < LOOP_MAX_FDS; i++)
		l->fds[i].fd = -1;
	sigprocmask(SIG_BLOCK, sigs, NULL);
	l->sigfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sigfd < 0) {
		err = -errno;
		goto fail;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		err = -errno;
		goto fail;
	}
	err = loop__ctl_add(l->epfd, l->sigfd, &loop__signal_tag);
	if (err)
		goto fail;
	*out = l;
	return 0;
fail:
	loop__free(l);
	return err;
}

int loop__add(struct loop *l, int fd, loop_fn fn, void *ctx)
{
	for (int i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].fd >= 0)
			continue;
		l->fds[i] = (struct loop_fd){ .fd = fd, .fn = fn, .ctx = ctx };
		if (loop__ctl_add(l->epfd, fd, &l->fds[i])) {
			int err = -errno;

			l->fds[i].fd = -1;
			return err;
		}
		return 0;
	}
	return -ENOSPC;
}

void loop__del(struct loop *l, int fd)
{
	for (int i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			l->fds[i].fd = -1;
			return;
		}
	}
}

unsigned loop__wait(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_FDS + 1];
	unsigned sigs = 0;
	int n = epoll_wait(l->epfd, evs, LOOP_MAX_FDS + 1, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct loop_fd *f = evs[i].data.ptr;

		if (evs[i].data.ptr == &loop__signal_tag) {
			struct signalfd_siginfo si;

			while (read(l->sigfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo < 32)
					sigs |= 1u << si.ssi_signo;
		} else if (f->fd >= 0) {
			f->fn(f->ctx);
		}
	}
	return sigs;
}

void loop__free(struct loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l);
}
