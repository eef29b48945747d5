/* The enroll socket: see enroll.h. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/enroll.h"
#include "base/log.h"

/* A request that does not arrive in this long is dropped: the agent's loop waits. */
#define ENROLL_RECV_TIMEOUT_US 500000
#define ENROLL_MAX_PER_WAKE 16

struct enroll_server {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino; /* of the socket file we bound: removed at close only if still ours */
};

static int sun_of(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* The directory holds the socket: it must be root's alone, so that no one else can
 * replace the socket or reach it. */
static int enroll__check_dir(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		snprintf(err, errlen, "enroll socket '%s' must be an absolute path in a directory of its own", path);
		return -EINVAL;
	}
	*slash = '\0';
	if (mkdir(dir, 0700) && errno != EEXIST) {
		int e = -errno;

		snprintf(err, errlen, "cannot create enroll socket directory '%s': %s", dir, strerror(-e));
		return e;
	}
	if (lstat(dir, &st)) {
		int e = -errno;

		snprintf(err, errlen, "cannot stat enroll socket directory '%s': %s", dir, strerror(-e));
		return e;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "enroll socket directory '%s' must be a directory owned by root with mode "
			 "0700 (it is uid %u, mode %04o)",
			 dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* A socket file left by an agent that died is removed; one an agent still serves is
 * not taken over. */
static int enroll__clear_stale(const char *path, const struct sockaddr_un *sun, char *err,
			       size_t errlen)
{
	struct stat st;
	int fd, e;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		e = -errno;
		snprintf(err, errlen, "cannot stat enroll socket '%s': %s", path, strerror(-e));
		return e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "enroll socket '%s' exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = -errno;
		snprintf(err, errlen, "cannot create a socket: %s", strerror(-e));
		return e;
	}
	e = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ? -EADDRINUSE : 0;
	close(fd);
	if (e) {
		snprintf(err, errlen, "another agent serves enroll socket '%s'", path);
		return e;
	}
	if (unlink(path) && errno != ENOENT) {
		e = -errno;
		snprintf(err, errlen, "cannot remove stale enroll socket '%s': %s", path, strerror(-e));
		return e;
	}
	return 0;
}

int enroll_server__open(const char *path, struct enroll_server **out, char *err, size_t errlen)
{
	struct enroll_server *s;
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int e;

	*out = NULL;
	if (path[0] != '/' || sun_of(path, &sun)) {
		snprintf(err, errlen, "enroll socket '%s' must be an absolute path of at most %zu bytes",
			 path, sizeof(sun.sun_path) - 1);
		return -EINVAL;
	}
	if ((e = enroll__check_dir(path, err, errlen)) || (e = enroll__clear_stale(path, &sun, err, errlen)))
		return e;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0) {
		e = -errno;
		snprintf(err, errlen, "cannot create a socket: %s", strerror(-e));
		free(s);
		return e;
	}
	/* The file is created 0600 by bind itself: no moment when others may connect. */
	old = umask(0177);
	e = bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old);
	if (!e && (lstat(path, &st) || !S_ISSOCK(st.st_mode)))
		e = -EIO;
	if (!e && listen(s->fd, 8))
		e = -errno;
	if (e) {
		snprintf(err, errlen, "cannot listen on enroll socket '%s': %s", path, strerror(-e));
		close(s->fd);
		free(s);
		return e;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	*out = s;
	return 0;
}

int enroll_server__fd(const struct enroll_server *s)
{
	return s->fd;
}

/* The pid a pidfd refers to, from /proc/self/fdinfo: -ESRCH if it exited, -EINVAL if
 * fd is no pidfd, -EXDEV if it lives in a pid namespace the agent cannot see into. */
static int enroll__pidfd_pid(int fd, pid_t *pid)
{
	char path[64], buf[1024];
	ssize_t n;
	int f;
	char *p;
	long v;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strstr(buf, "\nPid:");
	if (!p)
		return -EINVAL;
	v = strtol(p + 5, NULL, 10);
	if (v == -1)
		return -ESRCH;
	if (v <= 0)
		return -EXDEV;
	*pid = (pid_t)v;
	return 0;
}

static void enroll__reply(int c, struct enroll_reply *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void enroll__reply(int c, struct enroll_reply *r, int err, const char *fmt, ...)
{
	va_list ap;

	r->err = err;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	(void)!send(c, r, sizeof(*r), MSG_NOSIGNAL);
}

static void enroll__one(int c, enroll_fn enroll, enroll_report_fn report, void *ctx)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = ENROLL_RECV_TIMEOUT_US };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct enroll_reply r;
	struct enroll_request req;
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	struct enroll_outcome o;
	char exe[PATH_MAX] = "";
	bool have_cred;
	int fds[4], nfds = 0, e;
	pid_t pid = 0, again = 0;
	ssize_t n;

	memset(&r, 0, sizeof(r));
	/* The request is read before any answer, a refusal too: a unix socket closed with
	 * unread data resets its peer, which would then lose the answer. */
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < 4; i++)
			memcpy(&fds[nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
	}
	have_cred = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && clen == sizeof(cred);
	if (have_cred && cred.pid > 0) {
		/* Before any answer: `buildwarden enroll` waits for it, so the pid is still
		 * its own (after the answer it may exit at once). A caller that gave up
		 * already leaves a pid another process may have taken: callerExe is then
		 * that process's, a limit the event's reader should know (docs/events.md). */
		char link[64];
		ssize_t k;

		snprintf(link, sizeof(link), "/proc/%d/exe", (int)cred.pid);
		k = readlink(link, exe, sizeof(exe) - 1);
		exe[k > 0 ? k : 0] = '\0';
	}
	if (!have_cred) {
		memset(&cred, 0, sizeof(cred));
		cred.uid = (uid_t)-1;
		enroll__reply(c, &r, -EPERM, "refused: the caller's credentials cannot be read");
		goto out;
	}
	if (cred.uid != 0) {
		log__line(stderr, "buildwarden: ", "enroll: refused pid %d (uid %u): only root may enroll",
			  (int)cred.pid, (unsigned)cred.uid);
		enroll__reply(c, &r, -EPERM, "refused: uid %u is not root; only root may enroll a build root",
			      (unsigned)cred.uid);
		goto out;
	}
	if (n != (ssize_t)sizeof(req) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds != 1 ||
	    req.version != ENROLL_VERSION || req.op != ENROLL_OP_PIDFD) {
		enroll__reply(c, &r, -EINVAL, "malformed request: one enroll request with one pidfd expected");
		goto out;
	}
	e = enroll__pidfd_pid(fds[0], &pid);
	if (e) {
		enroll__reply(c, &r, e, e == -ESRCH ? "the process has exited"
				     : e == -EXDEV ? "the process is in a pid namespace the agent does not see"
						   : "the descriptor is not a pidfd");
		goto out;
	}
	r.pid = (uint32_t)pid;
	e = enroll(ctx, pid, cred.pid);
	if (e) {
		enroll__reply(c, &r, e, "cannot enroll pid %d: %s", (int)pid, strerror(-e));
		goto out;
	}
	/* Still the same live process: the pid was not reused while it was entered. */
	if (enroll__pidfd_pid(fds[0], &again) || again != pid) {
		log__line(stderr, "buildwarden: ", "enroll: pid %d exited while it was enrolled", (int)pid);
		enroll__reply(c, &r, -ESRCH, "pid %d exited while it was enrolled", (int)pid);
		goto out;
	}
	log__line(stderr, "buildwarden: ", "enroll: pid %d is a build root (asked by pid %d)", (int)pid,
		  (int)cred.pid);
	enroll__reply(c, &r, 0, "pid %d is a build root", (int)pid);
out:
	o = (struct enroll_outcome){ .pid = (pid_t)r.pid, .caller_pid = cred.pid,
				     .caller_uid = cred.uid, .caller_exe = exe, .err = r.err,
				     .msg = r.msg };
	if (report)
		report(ctx, &o);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

void enroll_server__serve(struct enroll_server *s, enroll_fn enroll, enroll_report_fn report,
			  void *ctx)
{
	for (int i = 0; i < ENROLL_MAX_PER_WAKE; i++) {
		int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			return;
		enroll__one(c, enroll, report, ctx);
		close(c);
	}
}

void enroll_server__close(struct enroll_server *s)
{
	struct stat st;

	if (!s)
		return;
	close(s->fd);
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}

int enroll__request(const char *path, pid_t pid, struct enroll_reply *reply)
{
	struct enroll_request req = { .version = ENROLL_VERSION, .op = ENROLL_OP_PIDFD };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	struct sockaddr_un sun;
	int fd = -1, pfd, e = 0;
	ssize_t n;

	memset(reply, 0, sizeof(*reply));
	if (sun_of(path, &sun)) {
		snprintf(reply->msg, sizeof(reply->msg), "socket path too long");
		return -ENAMETOOLONG;
	}
	/* The pidfd pins the process the caller means, now, while it is alive. */
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0) {
		e = -errno;
		snprintf(reply->msg, sizeof(reply->msg), "cannot open pid %d: %s", (int)pid, strerror(-e));
		return e;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		e = -errno;
		snprintf(reply->msg, sizeof(reply->msg), "cannot reach the agent at '%s': %s", path,
			 strerror(-e));
		goto out;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.h.cmsg_level = SOL_SOCKET;
	ctl.h.cmsg_type = SCM_RIGHTS;
	ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&ctl.h), &pfd, sizeof(int));
	/* A refusal (not root) may already be waiting, and the agent may have closed: the
	 * send's error then matters less than the answer. */
	n = sendmsg(fd, &m, MSG_NOSIGNAL);
	e = n == (ssize_t)sizeof(req) ? 0 : -errno;
	n = recv(fd, reply, sizeof(*reply), 0);
	if (n == (ssize_t)sizeof(*reply)) {
		reply->msg[sizeof(reply->msg) - 1] = '\0';
		e = 0;
	} else {
		if (!e)
			e = n < 0 ? -errno : -EPROTO;
		memset(reply, 0, sizeof(*reply));
		snprintf(reply->msg, sizeof(reply->msg), "no answer from the agent at '%s': %s", path,
			 strerror(-e));
	}
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return e;
}
