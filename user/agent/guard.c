/* The agent-death guard: see guard.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/guard.h"
#include "base/fdio.h"
#include "base/log.h"

#define GUARD_DONE 'd'

struct run_guard {
	int parent_fd; /* the agent's own cgroup directory */
	int procs_fd;  /* cgroup.procs of the build's cgroup */
	int done_fd;   /* the agent's end of the watchdog's socket */
	char name[64];
};

/* The agent's cgroup v2 path, from the "0::/path" line of /proc/self/cgroup. */
static int guard__self_cgroup(char *out, size_t len)
{
	char line[4096];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int e = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if ((size_t)snprintf(out, len, "%s", line + 3) >= len)
			e = -ENAMETOOLONG;
		else
			e = 0;
		break;
	}
	fclose(f);
	return e;
}

/* In the forked watchdog of a threaded process: only system calls from here on. */
static void __attribute__((noreturn)) guard__watch(int done_rd, int kill_fd, int parent_fd,
						   const char *name)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	char c = 0;
	ssize_t n;
	int oom, fds[3];

	/* Ctrl-C and the agent's own stop signals are for the agent, not for its guard. */
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	/* The OOM killer may take the agent; it must not take the guard with it. */
	oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (oom >= 0) {
		if (write(oom, "-1000", 5) < 0)
			c = 0;
		close(oom);
	}
	/* Hold nothing of the agent's (its BPF links, its end of the socket): keep the three
	 * descriptors as 0, 1 and 2 and close the rest. */
	fds[0] = fcntl(done_rd, F_DUPFD_CLOEXEC, 64);
	fds[1] = fcntl(kill_fd, F_DUPFD_CLOEXEC, 64);
	fds[2] = fcntl(parent_fd, F_DUPFD_CLOEXEC, 64);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
		_exit(3);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			_exit(3);
	close_range(3, ~0U, 0);
	do
		n = read(0, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && c == GUARD_DONE)
		_exit(0);
	/* The agent is gone without finishing: nothing watches the build any more. */
	if (write(1, "1", 1) != 1)
		_exit(1);
	/* The agent cannot remove the cgroup now; once its last process is gone, do it. */
	for (int i = 0; i < 500; i++) {
		if (unlinkat(2, name, AT_REMOVEDIR) == 0 || errno != EBUSY)
			break;
		nanosleep(&tick, NULL);
	}
	_exit(2);
}

/* Forks twice so the watchdog is nobody's child in the agent: the agent's wait for
 * "every build process has exited" must not wait for it. */
static int guard__spawn(int done_rd, int done_wr, int kill_fd, int parent_fd, const char *name)
{
	pid_t mid, p;
	int st;

	mid = fork();
	if (mid < 0)
		return -errno;
	if (mid == 0) {
		close(done_wr);
		setsid();
		p = fork();
		if (p == 0)
			guard__watch(done_rd, kill_fd, parent_fd, name);
		_exit(p < 0 ? 1 : 0);
	}
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

struct run_guard *run_guard__start(const char *cgroup2_root, const char *run_id, char *err,
				   size_t errlen)
{
	char self[2048], path[4096];
	struct run_guard *g;
	int pipefd[2] = { -1, -1 }, kill_fd = -1, e, dfd = -1;

	if (!cgroup2_root || !*cgroup2_root) {
		snprintf(err, errlen, "no cgroup v2 mount");
		return NULL;
	}
	e = guard__self_cgroup(self, sizeof(self));
	if (e) {
		snprintf(err, errlen, "cannot read /proc/self/cgroup: %s", strerror(-e));
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->procs_fd = g->done_fd = -1;
	snprintf(g->name, sizeof(g->name), "buildwarden-%.32s", run_id);
	snprintf(path, sizeof(path), "%s%s", cgroup2_root, self);
	g->parent_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (g->parent_fd < 0) {
		snprintf(err, errlen, "cannot open cgroup '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (mkdirat(g->parent_fd, g->name, 0700) < 0) {
		snprintf(err, errlen, "cannot create cgroup '%s/%s': %s", path, g->name, strerror(errno));
		goto fail;
	}
	dfd = openat(g->parent_fd, g->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0) {
		kill_fd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		g->procs_fd = openat(dfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	}
	if (dfd < 0 || kill_fd < 0 || g->procs_fd < 0) {
		snprintf(err, errlen, "cgroup '%s/%s' has no cgroup.kill (Linux 5.14+): %s", path,
			 g->name, strerror(errno));
		goto fail;
	}
	/* a socket, not a pipe: the agent's last send must not raise SIGPIPE */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipefd) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	e = guard__spawn(pipefd[0], pipefd[1], kill_fd, g->parent_fd, g->name);
	if (e) {
		snprintf(err, errlen, "cannot start the watchdog: %s", strerror(-e));
		goto fail;
	}
	close(pipefd[0]);
	close(kill_fd);
	close(dfd);
	g->done_fd = pipefd[1];
	return g;
fail:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	if (kill_fd >= 0)
		close(kill_fd);
	if (dfd >= 0)
		close(dfd);
	if (g->procs_fd >= 0)
		close(g->procs_fd);
	if (g->parent_fd >= 0) {
		unlinkat(g->parent_fd, g->name, AT_REMOVEDIR);
		close(g->parent_fd);
	}
	free(g);
	return NULL;
}

int run_guard__enter(struct run_guard *g, pid_t pid)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);

	return fdio__write_all(g->procs_fd, buf, (size_t)n);
}

void run_guard__finish(struct run_guard *g)
{
	char done = GUARD_DONE;

	if (!g)
		return;
	/* if this fails the watchdog kills an empty cgroup: harmless */
	send(g->done_fd, &done, 1, MSG_NOSIGNAL);
	close(g->done_fd);
	close(g->procs_fd);
	/* Empty by now: the agent reaped every build process before finishing. */
	if (unlinkat(g->parent_fd, g->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		log__line(stderr, "buildwarden: ", "cannot remove cgroup '%s': %s", g->name,
			  strerror(errno));
	close(g->parent_fd);
	free(g);
}
