// SPDX-License-Identifier: MIT
/* Test helpers: see bwtest.h. */
#include "lib/bwtest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BW_MAX_TRACKED 64
#define BW_MAX_WS 16
#define BW_WS_PREFIX "/tmp/bwtest."
#define BW_MAX_CAPTURE (64u << 20)
#define BW_MAX_EVENTS_FILE (256u << 20)
#define BW_MAX_FRAME (64u << 20)

static pid_t tracked[BW_MAX_TRACKED];
static char ws_registry[BW_MAX_WS][PATH_MAX];
static volatile sig_atomic_t alarm_count;

/* ---- small utilities ----------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *s)
{
	ssize_t r = write(STDOUT_FILENO, s, strlen(s));

	(void)r;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static int mkdir_parent(const char *path)
{
	char tmp[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = '\0';
	return mkdir_p(tmp, 0755);
}

int bw_write_file(const char *path, const char *content, mode_t mode)
{
	size_t len = strlen(content), off = 0;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, content + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && fchmodat(AT_FDCWD, path, mode, 0))
		rc = -errno;
	return rc;
}

char *bw_read_file(const char *path, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb;

			if (cap >= (16u << 20))
				goto fail;
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* ---- workspaces ---------------------------------------------------------- */

int bw_ws_create(struct bw_ws *ws)
{
	char tmpl[] = BW_WS_PREFIX "XXXXXX";
	char *real;

	if (!mkdtemp(tmpl))
		return -errno;
	real = realpath(tmpl, NULL);
	if (!real || strlen(real) >= sizeof(ws->path)) {
		free(real);
		rmdir(tmpl);
		return -ENAMETOOLONG;
	}
	strcpy(ws->path, real);
	free(real);
	/* other users (the non-root test) may need to traverse it */
	chmod(ws->path, 0755);
	ws->slot = -1;
	for (int i = 0; i < BW_MAX_WS; i++) {
		if (!ws_registry[i][0]) {
			strcpy(ws_registry[i], tmpl);
			ws->slot = i;
			break;
		}
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *path)
{
	/* Only what bw_ws_create made: never anything else. */
	if (strncmp(path, BW_WS_PREFIX, strlen(BW_WS_PREFIX)) || strchr(path + strlen(BW_WS_PREFIX), '/'))
		return;
	if (getenv("BW_TEST_KEEP")) {
		printf("bwtest: kept %s (BW_TEST_KEEP)\n", path);
		return;
	}
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void bw_ws_destroy(struct bw_ws *ws)
{
	if (!ws->path[0])
		return;
	if (ws->slot >= 0 && ws->slot < BW_MAX_WS && ws_registry[ws->slot][0]) {
		rm_tree(ws_registry[ws->slot]);
		ws_registry[ws->slot][0] = '\0';
	}
	ws->path[0] = '\0';
	ws->slot = -1;
}

const char *bw_ws_path(const struct bw_ws *ws, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", ws->path, rel);
	return buf;
}

const char *bw_ws_tmp(const struct bw_ws *ws, const char *rel)
{
	static char bufs[16][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 16];

	return bw_ws_path(ws, rel, b, PATH_MAX);
}

int bw_ws_mkdir(const struct bw_ws *ws, const char *rel)
{
	char p[PATH_MAX];

	return mkdir_p(bw_ws_path(ws, rel, p, sizeof(p)), 0755);
}

/* "<ws>/<rel>" into p (PATH_MAX), its parent folders made. */
static int ws_path_in_dir(const struct bw_ws *ws, const char *rel, char *p)
{
	return mkdir_parent(bw_ws_path(ws, rel, p, PATH_MAX));
}

int bw_ws_write(const struct bw_ws *ws, const char *rel, const char *content, bool exec)
{
	char p[PATH_MAX];
	int rc = ws_path_in_dir(ws, rel, p);

	return rc ? rc : bw_write_file(p, content, exec ? 0755 : 0644);
}

int bw_ws_mkfifo(const struct bw_ws *ws, const char *rel)
{
	char p[PATH_MAX];
	int rc = ws_path_in_dir(ws, rel, p);

	if (rc)
		return rc;
	return mkfifo(p, 0666) ? -errno : 0;
}

int bw_write_policy(const struct bw_ws *ws, const char *name, const char *fmt, ...)
{
	char body[16384];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -E2BIG;
	return bw_ws_write(ws, name ? name : "policy.yaml", body, false);
}

/* ---- processes ----------------------------------------------------------- */

const char *bw_bin(void)
{
	const char *b = getenv("BW_BIN");

	return b && *b ? b : "build/buildwarden";
}

const char *bw_self_exe(void)
{
	static char self[PATH_MAX];

	if (!self[0]) {
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n < 0)
			n = 0;
		self[n] = '\0';
	}
	return self;
}

void bw_track_pid(pid_t pid)
{
	for (int i = 0; i < BW_MAX_TRACKED; i++) {
		if (!tracked[i]) {
			tracked[i] = pid;
			return;
		}
	}
}

void bw_untrack_pid(pid_t pid)
{
	for (int i = 0; i < BW_MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

void bw_kill_tracked(void)
{
	for (int i = 0; i < BW_MAX_TRACKED; i++) {
		pid_t p = tracked[i];

		if (p > 1) {
			kill(-p, SIGKILL); /* the group it leads, if any (we made it leader) */
			kill(p, SIGKILL);
		}
	}
}

int bw_wait_bounded(pid_t pid, unsigned timeout_s)
{
	long long deadline = now_ms() + (long long)timeout_s * 1000;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			bw_untrack_pid(pid);
			return status;
		}
		if (r < 0 && errno != EINTR) {
			bw_untrack_pid(pid);
			return -1;
		}
		if (now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			bw_untrack_pid(pid);
			return -1;
		}
		usleep(10000);
	}
}

void bw_reap_tracked(void)
{
	for (int i = 0; i < BW_MAX_TRACKED; i++) {
		pid_t p = tracked[i];

		if (p > 1)
			bw_wait_bounded(p, 5);
		tracked[i] = 0;
	}
}

pid_t bw_fork(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		signal(SIGALRM, SIG_DFL);
	return pid;
}

pid_t bw_fork_outsider(int (*fn)(void *), void *arg)
{
	pid_t pid = bw_fork();

	if (pid < 0)
		return pid;
	if (pid == 0) {
		setsid();
		_exit(fn(arg) & 0xff);
	}
	bw_track_pid(pid);
	return pid;
}

pid_t bw_start_outsider_ready(int (*fn)(void *), void *arg, int *ready_fd)
{
	struct pollfd pf;
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	*ready_fd = p[1];
	pid = bw_fork_outsider(fn, arg);
	close(p[1]);
	*ready_fd = -1;
	if (pid > 0) {
		pf = (struct pollfd){ .fd = p[0], .events = POLLIN };
		if (poll(&pf, 1, 10000) != 1 || read(p[0], &c, 1) != 1)
			pid = -ETIMEDOUT;
	}
	close(p[0]);
	return pid;
}

static void on_alarm(int sig)
{
	(void)sig;
	alarm_count++;
	if (alarm_count == 1) {
		say("bwtest: test time bound reached: killing every process this test started\n");
		bw_kill_tracked();
		alarm(10);
	} else {
		say("bwtest: test still stuck 10 s after its time bound: giving up on the binary\n");
		_exit(70);
	}
}

void bw_install_alarm(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	alarm(0);
	alarm_count = 0;
}

bool bw_alarm_fired(void)
{
	return alarm_count > 0;
}

void bw_cleanup_all(void)
{
	bw_kill_tracked();
	bw_reap_tracked();
	for (int i = 0; i < BW_MAX_WS; i++) {
		if (ws_registry[i][0]) {
			rm_tree(ws_registry[i]);
			ws_registry[i][0] = '\0';
		}
	}
}

int bw_case_setup(struct bw_ws *ws)
{
	bw_cleanup_all();
	bw_install_alarm();
	return bw_ws_create(ws) ? -1 : 0;
}

void bw_case_teardown(void)
{
	alarm(0);
	bw_cleanup_all();
}

struct capture {
	int fd;
	char **buf;
	size_t *len;
	size_t cap;
};

static int capture_read(struct capture *c)
{
	char tmp[65536];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (*c->len + (size_t)n + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap : 4096;
		char *nb;

		while (ncap < *c->len + (size_t)n + 1)
			ncap *= 2;
		if (ncap > BW_MAX_CAPTURE)
			return 1; /* drop the excess, keep draining */
		nb = realloc(*c->buf, ncap);
		if (!nb)
			return 1;
		*c->buf = nb;
		c->cap = ncap;
	}
	memcpy(*c->buf + *c->len, tmp, (size_t)n);
	*c->len += (size_t)n;
	(*c->buf)[*c->len] = '\0';
	return 1;
}

static void drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
		dprintf(STDERR_FILENO, "bwtest: cannot drop to uid 65534: %s\n", strerror(errno));
		_exit(126);
	}
}

int bw_spawn(const char *const argv[], unsigned timeout_s, unsigned flags, struct bw_result *r)
{
	int outp[2], errp[2];
	struct capture cap[2];
	long long deadline, grace = -1;
	bool reaped = false;
	int open_fds = 2;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	/* `sudo make test` must not turn every build into the sudo caller's (run's default
	 * user): the suites make root-owned workspaces. A case that wants the default sets
	 * these itself, through env(1). */
	unsetenv("SUDO_UID");
	unsetenv("SUDO_GID");
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	if (!r->out || !r->err)
		return -ENOMEM;
	if (pipe2(outp, O_CLOEXEC))
		return -errno;
	if (pipe2(errp, O_CLOEXEC)) {
		close(outp[0]);
		close(outp[1]);
		return -errno;
	}
	pid = bw_fork();
	if (pid < 0) {
		close(outp[0]);
		close(outp[1]);
		close(errp[0]);
		close(errp[1]);
		return pid;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(outp[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		if (flags & BW_SPAWN_AS_NOBODY)
			drop_to_nobody();
		execv(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "bwtest: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	bw_track_pid(pid);
	close(outp[1]);
	close(errp[1]);
	cap[0] = (struct capture){ .fd = outp[0], .buf = &r->out, .len = &r->out_len };
	cap[1] = (struct capture){ .fd = errp[0], .buf = &r->err, .len = &r->err_len };

	deadline = now_ms() + (long long)timeout_s * 1000;
	while (!reaped || open_fds > 0) {
		struct pollfd pfd[2];
		int nfds = 0, map[2];
		long long now = now_ms();

		if (!reaped && now >= deadline) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
		/* A descendant the product failed to wait for may hold the pipes:
		 * stop reading 2 s after the child is gone. */
		if (reaped && grace >= 0 && now >= grace)
			break;
		for (int i = 0; i < 2; i++) {
			if (cap[i].fd >= 0) {
				pfd[nfds] = (struct pollfd){ .fd = cap[i].fd, .events = POLLIN };
				map[nfds++] = i;
			}
		}
		if (nfds && poll(pfd, (nfds_t)nfds, 50) > 0) {
			for (int k = 0; k < nfds; k++) {
				struct capture *c = &cap[map[k]];

				if (pfd[k].revents && !capture_read(c)) {
					close(c->fd);
					c->fd = -1;
					open_fds--;
				}
			}
		} else if (!nfds) {
			usleep(10000);
		}
		if (!reaped) {
			pid_t w = waitpid(pid, &r->status, WNOHANG);

			if (w == pid || (w < 0 && errno == ECHILD)) {
				reaped = w == pid;
				if (!reaped)
					break;
				grace = now_ms() + 2000;
				bw_untrack_pid(pid);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (cap[i].fd >= 0)
			close(cap[i].fd);
	if (!reaped) {
		r->exit_code = -1;
		return 0;
	}
	if (WIFEXITED(r->status))
		r->exit_code = WEXITSTATUS(r->status);
	else if (WIFSIGNALED(r->status))
		r->exit_code = 128 + WTERMSIG(r->status);
	return 0;
}

#define BW_MAX_ARGS 128

/* { bw_bin(), args..., NULL } into argv[BW_MAX_ARGS]; 0 or -E2BIG. */
static int bin_argv(const char *argv[], const char *const args[])
{
	size_t n = 0;

	argv[n++] = bw_bin();
	for (size_t i = 0; args[i]; i++) {
		if (n >= BW_MAX_ARGS - 1)
			return -E2BIG;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return 0;
}

int bw_run(const char *const args[], unsigned timeout_s, struct bw_result *r)
{
	const char *argv[BW_MAX_ARGS];
	int rc = bin_argv(argv, args);

	return rc ? rc : bw_spawn(argv, timeout_s, 0, r);
}

/* argv joined by spaces into buf, cut to fit. */
static void join_argv(char *buf, size_t len, const char *const argv[])
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; argv[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);
}

int bw_run_logged(const char *const args[], unsigned timeout_s, unsigned flags, struct bw_result *r,
		  char *line, size_t len)
{
	const char *argv[BW_MAX_ARGS];
	int rc = bin_argv(argv, args);

	bw_result_free(r);
	if (rc) {
		snprintf(line, len, "%s with more than %d arguments", bw_bin(), BW_MAX_ARGS - 2);
		return rc;
	}
	join_argv(line, len, argv);
	return bw_spawn(argv, timeout_s, flags, r);
}

void bw_result_free(struct bw_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void bw_result_print(const char *cmdline, const struct bw_result *r)
{
	printf("---- command: %s\n", cmdline);
	if (!r)
		return;
	printf("---- exit code %d%s\n", r->exit_code, r->timed_out ? " (timed out: killed)" : "");
	printf("---- stderr (%zu bytes):\n%.6000s\n", r->err_len, r->err);
	if (r->out_len)
		printf("---- stdout (%zu bytes):\n%.2000s\n", r->out_len, r->out);
}

/* ---- events -------------------------------------------------------------- */

/* Our own varint: at most 10 bytes, the 10th may carry only one bit. */
static int read_varint(const uint8_t *p, size_t avail, uint64_t *v, size_t *used)
{
	uint64_t x = 0;

	for (size_t i = 0; i < 10; i++) {
		if (i >= avail)
			return -ENODATA;
		if (i == 9 && p[i] > 1)
			return -EOVERFLOW;
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			*used = i + 1;
			return 0;
		}
	}
	return -EOVERFLOW;
}

static int push_event(struct bw_events *out, Buildwarden__V1__Event *ev)
{
	if ((out->n & (out->n - 1)) == 0) { /* 0 or a power of two: grow */
		size_t ncap = out->n ? out->n * 2 : 64;
		Buildwarden__V1__Event **nv = realloc(out->ev, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		out->ev = nv;
	}
	out->ev[out->n++] = ev;
	return 0;
}

int bw_events_parse(const uint8_t *buf, size_t len, struct bw_events *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	out->err_offset = -1;
	out->bytes = len;
	while (off < len) {
		Buildwarden__V1__Event *ev;
		uint64_t flen;
		size_t used;
		int rc = read_varint(buf + off, len - off, &flen, &used);

		if (rc) {
			snprintf(out->err, sizeof(out->err), "bad length varint (%s)",
				 rc == -ENODATA ? "truncated" : "overflow");
			goto bad;
		}
		if (flen > BW_MAX_FRAME || flen > len - off - used) {
			snprintf(out->err, sizeof(out->err), "frame of %llu bytes, %zu left",
				 (unsigned long long)flen, len - off - used);
			goto bad;
		}
		ev = buildwarden__v1__event__unpack(NULL, (size_t)flen, buf + off + used);
		if (!ev) {
			snprintf(out->err, sizeof(out->err), "frame of %llu bytes does not unpack",
				 (unsigned long long)flen);
			goto bad;
		}
		if (push_event(out, ev)) {
			buildwarden__v1__event__free_unpacked(ev, NULL);
			snprintf(out->err, sizeof(out->err), "out of memory");
			goto bad;
		}
		off += used + (size_t)flen;
	}
	return 0;
bad:
	out->err_offset = (long)off;
	return -1;
}

int bw_events_read(const char *path, struct bw_events *out)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	out->err_offset = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || st.st_size > (off_t)BW_MAX_EVENTS_FILE) {
		snprintf(out->err, sizeof(out->err), "cannot read %s: %s", path,
			 fd < 0 ? strerror(errno) : "too big or stat failed");
		if (fd >= 0)
			close(fd);
		out->err_offset = 0;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	rc = bw_events_parse(buf, len, out);
	free(buf);
	return rc;
}

void bw_events_free(struct bw_events *evs)
{
	for (size_t i = 0; i < evs->n; i++)
		buildwarden__v1__event__free_unpacked(evs->ev[i], NULL);
	free(evs->ev);
	evs->ev = NULL;
	evs->n = 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return path && !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static bool tri_ok(enum bw_tri t, bool v)
{
	return t == BW_ANY || (t == BW_YES) == v;
}

bool bw_ev_match(const Buildwarden__V1__Event *ev, const struct bw_filter *f)
{
	const Buildwarden__V1__FileBody *fb = NULL;

	if (f->body && ev->body_case != f->body)
		return false;
	if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE)
		fb = ev->file;
	if (f->op || f->ops || f->path || f->path_prefix || f->any_path || f->new_path) {
		if (!fb)
			return false;
		if (f->op && fb->op != f->op)
			return false;
		if (f->ops) {
			bool any = false;

			for (const Buildwarden__V1__FileOp *o = f->ops; *o; o++)
				any |= fb->op == *o;
			if (!any)
				return false;
		}
		if (f->path && !str_eq(fb->path, f->path))
			return false;
		if (f->new_path && !str_eq(fb->new_path, f->new_path))
			return false;
		if (f->any_path && !str_eq(fb->path, f->any_path) && !str_eq(fb->new_path, f->any_path))
			return false;
		if (f->path_prefix && !under(fb->path, f->path_prefix) &&
		    !under(fb->new_path, f->path_prefix))
			return false;
	}
	if (f->filename && (ev->body_case != BUILDWARDEN__V1__EVENT__BODY_EXEC ||
			    !str_eq(ev->exec->filename, f->filename)))
		return false;
	if (f->address || f->port) {
		if (ev->body_case != BUILDWARDEN__V1__EVENT__BODY_CONNECT)
			return false;
		if (f->address && !str_eq(ev->connect->address, f->address))
			return false;
		if (f->port && ev->connect->port != f->port)
			return false;
	}
	if (f->pid && (!ev->process || ev->process->pid != f->pid))
		return false;
	if (!tri_ok(f->violation, ev->verdict && ev->verdict->violation))
		return false;
	if (f->in_build && (!ev->process || !tri_ok(f->in_build, ev->process->in_build)))
		return false;
	return true;
}

size_t bw_ev_count(const struct bw_events *evs, const struct bw_filter *f)
{
	size_t n = 0;

	for (size_t i = 0; i < evs->n; i++)
		n += bw_ev_match(evs->ev[i], f);
	return n;
}

long bw_ev_find(const struct bw_events *evs, const struct bw_filter *f, size_t start)
{
	for (size_t i = start; i < evs->n; i++)
		if (bw_ev_match(evs->ev[i], f))
			return (long)i;
	return -1;
}

const char *bw_body_name(Buildwarden__V1__Event__BodyCase body)
{
	switch (body) {
	case BUILDWARDEN__V1__EVENT__BODY_EXEC: return "exec";
	case BUILDWARDEN__V1__EVENT__BODY_FILE: return "file";
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT: return "connect";
	case BUILDWARDEN__V1__EVENT__BODY_RUN_START: return "runStart";
	case BUILDWARDEN__V1__EVENT__BODY_RUN_END: return "runEnd";
	case BUILDWARDEN__V1__EVENT__BODY_STATS: return "stats";
	case BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS: return "processAccess";
	case BUILDWARDEN__V1__EVENT__BODY_ENROLL: return "enroll";
	default: return "none";
	}
}

const char *bw_op_name(Buildwarden__V1__FileOp op)
{
	static const char *const names[] = {
		"UNSPECIFIED", "OPEN_WRITE", "CREATE", "TRUNCATE", "WRITE", "RENAME",
		"UNLINK", "LINK", "ATTRIB", "MKDIR", "RMDIR", "MMAP_WRITE",
	};

	return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *bw_ev_describe(const Buildwarden__V1__Event *ev, char *buf, size_t len)
{
	const Buildwarden__V1__Process *p = ev->process;
	const Buildwarden__V1__Verdict *v = ev->verdict;
	char body[PATH_MAX * 2 + 64] = "";

	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		snprintf(body, sizeof(body), "filename=%s", ev->exec->filename);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		snprintf(body, sizeof(body), "op=%s path=%s newPath=%s tree=%s",
			 bw_op_name(ev->file->op), ev->file->path, ev->file->new_path, ev->file->tree);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		snprintf(body, sizeof(body), "address=%s port=%u proto=%d", ev->connect->address,
			 ev->connect->port, ev->connect->protocol);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_RUN_END:
		snprintf(body, sizeof(body), "exit=%d events=%llu violations=%llu drops=%llu",
			 ev->run_end->exit_status, (unsigned long long)ev->run_end->events,
			 (unsigned long long)ev->run_end->violations,
			 (unsigned long long)ev->run_end->drops);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_STATS:
		snprintf(body, sizeof(body), "events=%llu ringbufDrops=%llu unattributed=%llu",
			 (unsigned long long)ev->stats->events,
			 (unsigned long long)ev->stats->ringbuf_drops,
			 (unsigned long long)ev->stats->unattributed);
		break;
	default:
		break;
	}
	snprintf(buf, len, "#%llu %s %s | pid=%u ppid=%u exe=%s inBuild=%d | violation=%d rule=%s action=%d",
		 (unsigned long long)ev->seq, bw_body_name(ev->body_case), body,
		 p ? p->pid : 0, p ? p->ppid : 0, p ? p->exe : "-", p ? p->in_build : -1,
		 v ? v->violation : 0, v ? v->rule : "-", v ? (int)v->action : -1);
	return buf;
}

void bw_ev_dump(const struct bw_events *evs, size_t max)
{
	char line[PATH_MAX * 3];

	printf("bwtest: %zu events (%zu bytes)%s%s\n", evs->n, evs->bytes,
	       evs->err_offset >= 0 ? "; parse error: " : "", evs->err_offset >= 0 ? evs->err : "");
	for (size_t i = 0; i < evs->n && (!max || i < max); i++)
		printf("  %s\n", bw_ev_describe(evs->ev[i], line, sizeof(line)));
	if (max && evs->n > max)
		printf("  ... %zu more\n", evs->n - max);
	fflush(stdout);
}

int bw_helper_spawn(const char *tag, char **argv)
{
	int st, pfd[2], e = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return 3;
	pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		execv(argv[0], argv);
		e = errno;
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	if (read(pfd[0], &e, sizeof(e)) != sizeof(e))
		e = 0;
	close(pfd[0]);
	if (waitpid(pid, &st, 0) != pid)
		return 3;
	if (e)
		printf("RESULT %s exec %s\n", tag, e == EPERM ? "EPERM" : e == EACCES ? "EACCES" : strerror(e));
	else if (WIFSIGNALED(st))
		printf("RESULT %s signal %d\n", tag, WTERMSIG(st));
	else
		printf("RESULT %s exit %d\n", tag, WEXITSTATUS(st));
	fflush(stdout);
	return 0;
}
