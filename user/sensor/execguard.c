/* The exec guard: see execguard.h. One thread answers permission events, so that an
 * exec on the host never waits for the agent's loop (sinks, the collector, the ring). */
#include "sensor/execguard.h"
#include "sensor/fanotify_compat.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/thread.h"
#include "sensor_abi.h"

#define GUARD_MAX_TREES 256
#define REPORT_PIPE_BYTES (1 << 20)

struct guard_tree {
	dev_t dev;
	ino_t ino;
	bool allow; /* an exec.allow tree: after the deny trees, so an index is a deny's */
};

/* The deny trees of p, then its allow trees; the count of both (at most max). */
static size_t guard_trees(const struct bw_policy *p, struct guard_tree *t, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_exec_deny && n < max; i++, n++)
		t[n] = (struct guard_tree){ (dev_t)p->exec_deny[i].dev, (ino_t)p->exec_deny[i].ino,
					    false };
	for (size_t i = 0; i < p->n_exec_allow && n < max; i++, n++)
		t[n] = (struct guard_tree){ (dev_t)p->exec_allow[i].dev,
					    (ino_t)p->exec_allow[i].ino, true };
	return n;
}

struct execguard {
	int fan_fd;
	int stop_pipe[2]; /* the thread polls [0]; free() writes [1] */
	int report_pipe[2]; /* refusals, whole records: [1] written by the thread */
	pthread_t thread;
	bool thread_started;
	execguard_in_build_fn in_build;
	void *ctx;
	pthread_mutex_t mu; /* guards the fields below: the thread reads, a reload writes */
	bool active;
	bool host_scope;
	size_t n_trees;
	struct guard_tree trees[GUARD_MAX_TREES];
	dev_t marked[GUARD_MAX_TREES]; /* file systems marked so far */
	size_t n_marked;
	_Atomic uint64_t lost, answered;
};

/* ---- the decision ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int tree_of_dir(const struct guard_tree *t, size_t n, const struct stat *st)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].dev == st->st_dev && t[i].ino == st->st_ino)
			return (int)i;
	return -1;
}

/* The parents of path, nearest first, against the trees. path is the kernel's name of
 * the opened object (d_path), so no symlink or relative name is left in it. */
static int tree_of_path(const struct guard_tree *t, size_t n, const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	char *slash;
	int i;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -2;
	while ((slash = strrchr(buf, '/'))) {
		*(slash == buf ? slash + 1 : slash) = '\0';
		if (stat(buf, &st) != 0)
			return -1;
		/* the nearest tree decides: an exec.allow subtree of a denied tree allows */
		if ((i = tree_of_dir(t, n, &st)) >= 0)
			return t[i].allow ? -1 : i;
		if (slash == buf)
			break;
	}
	return -1;
}

/* An ELF image of this machine is run as itself, so the kernel's check at
 * sched_process_exec sees it. Anything else that execs is run by an interpreter the
 * kernel swaps in: a #! script, or a file a binfmt_misc handler takes (a .jar, another
 * architecture's ELF through qemu). */
static bool runs_as_itself(int fd)
{
	Elf64_Ehdr eh; /* e_machine sits at the same offset in Elf32_Ehdr */

	if (pread(fd, &eh, sizeof(eh.e_ident) + 4, 0) != (ssize_t)(sizeof(eh.e_ident) + 4) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return false;
#if defined(__x86_64__)
	return eh.e_machine == EM_X86_64 || eh.e_machine == EM_386;
#elif defined(__aarch64__)
	return eh.e_machine == EM_AARCH64 || eh.e_machine == EM_ARM;
#else
	return true; /* unknown build machine: leave every ELF file to the kernel */
#endif
}

static int script_tree(const struct guard_tree *t, size_t n, int fd, const char *path)
{
	if (runs_as_itself(fd))
		return -1;
	if (path[0] != '/' || ends_with(path, " (deleted)"))
		return -2;
	return tree_of_path(t, n, path);
}

int execguard__script_tree(const struct bw_policy *p, int fd, const char *path)
{
	struct guard_tree t[GUARD_MAX_TREES];
	size_t n = guard_trees(p, t, GUARD_MAX_TREES);

	return script_tree(t, n, fd, path);
}

/* ---- the thread ---- */

static void report(struct execguard *g, pid_t pid, int tree, const char *path)
{
	struct bw_exec_event r;
	struct timespec ts;
	struct stat st;
	size_t n;

	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &ts); /* the kernel's ktime_get_ns clock */
	r.hdr.type = BW_EV_EXEC;
	r.hdr.version = BW_ABI_VERSION;
	r.hdr.size = sizeof(r);
	r.hdr.ktime = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	r.pid = (uint32_t)pid;
	r.denied_tree = tree >= 0 ? tree : -1;
	r.flags = BW_EXEC_REFUSED | (tree < 0 ? BW_EXEC_NAMELESS : 0);
	if (stat(path, &st) == 0) {
		r.exe_ino = st.st_ino;
		r.exe_dev = BW_KDEV(major(st.st_dev), minor(st.st_dev));
	}
	r.proc_flags = BW_PROC_IN_BUILD;
	n = strlen(path);
	if (n >= sizeof(r.filename)) {
		n = sizeof(r.filename) - 1;
		r.flags |= BW_EXEC_FILENAME_TRUNCATED;
	}
	memcpy(r.filename, path, n); /* r is zeroed: the NUL is there */
	r.filename_len = (uint16_t)(n + 1);
	/* One record per write, far below PIPE_BUF: never interleaved, never partial. */
	if (write(g->report_pipe[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
		atomic_fetch_add(&g->lost, 1);
}

/* An ELF file is the kernel's to judge at sched_process_exec, now and after any rename
 * or link: an ignore mark on its inode lets its next execs through without waking us.
 * Writing to the file clears the mark (no SURV_MODIFY), so it cannot turn into a script
 * unseen. Evictable where the kernel has it: under memory pressure
 * the mark goes, and the next exec asks again. */
static void ignore_from_now(struct execguard *g, int fd)
{
	unsigned base = FAN_MARK_ADD | FAN_MARK_IGNORED_MASK;

	if (fanotify_mark(g->fan_fd, base | FAN_MARK_EVICTABLE, FAN_OPEN_EXEC_PERM, fd, NULL) == 0)
		return;
	fanotify_mark(g->fan_fd, base, FAN_OPEN_EXEC_PERM, fd, NULL);
}

static void answer(struct execguard *g, const struct fanotify_event_metadata *m)
{
	struct fanotify_response resp = { .fd = m->fd, .response = FAN_ALLOW };
	char link[64], path[PATH_MAX] = "";
	int tree = -1;
	bool refuse = false, script = !runs_as_itself(m->fd);
	ssize_t n;

	if (!script)
		ignore_from_now(g, m->fd);
	pthread_mutex_lock(&g->mu);
	if (script && g->active && (g->host_scope || g->in_build(g->ctx, m->pid))) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
		n = readlink(link, path, sizeof(path) - 1);
		path[n > 0 ? n : 0] = '\0';
		tree = script_tree(g->trees, g->n_trees, m->fd, path);
		refuse = tree != -1;
	}
	pthread_mutex_unlock(&g->mu);
	if (refuse)
		resp.response = FAN_DENY;
	/* Answer first: the exec waits on it. A failed write leaves the open pending until
	 * our descriptor closes, when the kernel lets it through: nothing to retry. */
	if (write(g->fan_fd, &resp, sizeof(resp)) != (ssize_t)sizeof(resp) && refuse)
		refuse = false;
	atomic_fetch_add(&g->answered, 1);
	if (refuse)
		report(g, m->pid, tree, path);
}

static void *guard_main(void *arg)
{
	struct execguard *g = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));

	for (;;) {
		struct pollfd pf[2] = { { .fd = g->fan_fd, .events = POLLIN },
					{ .fd = g->stop_pipe[0], .events = POLLIN } };
		const struct fanotify_event_metadata *m;
		ssize_t len;

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (pf[1].revents)
			return NULL;
		if (!(pf[0].revents & POLLIN))
			continue;
		len = read(g->fan_fd, buf, sizeof(buf));
		if (len <= 0)
			continue;
		for (m = (const void *)buf; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			if (m->vers != FANOTIFY_METADATA_VERSION)
				break;
			if (m->fd < 0)
				continue; /* an overflow: permission events are never dropped */
			if (m->mask & FAN_OPEN_EXEC_PERM)
				answer(g, m);
			close(m->fd);
		}
	}
}

/* ---- set-up ---- */

static int mark_fs(struct execguard *g, const char *path, dev_t dev)
{
	for (size_t i = 0; i < g->n_marked; i++)
		if (g->marked[i] == dev)
			return 0;
	if (g->n_marked >= GUARD_MAX_TREES)
		return -ENOSPC;
	/* The whole file system, not the tree's directories: a directory made in the tree
	 * after start-up is covered at once, and so is every other mount of it. */
	if (fanotify_mark(g->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM,
			  AT_FDCWD, path))
		return -errno;
	g->marked[g->n_marked++] = dev;
	return 0;
}

int execguard__set_policy(struct execguard *g, const struct bw_policy *p, bool active)
{
	size_t n = p->n_exec_deny + p->n_exec_allow;
	int e = 0;

	if (n > GUARD_MAX_TREES)
		return -E2BIG;
	pthread_mutex_lock(&g->mu);
	/* the deny trees' file systems: what lies in an allow tree is never refused */
	for (size_t i = 0; i < p->n_exec_deny && !e; i++)
		e = mark_fs(g, p->exec_deny[i].path, (dev_t)p->exec_deny[i].dev);
	if (!e) {
		g->n_trees = guard_trees(p, g->trees, GUARD_MAX_TREES);
		g->host_scope = p->exec_scope == BW_SCOPE_HOST;
		g->active = active && p->n_exec_deny > 0;
	}
	pthread_mutex_unlock(&g->mu);
	return e;
}

int execguard__new(const struct bw_policy *p, execguard_in_build_fn in_build, void *ctx,
		   struct execguard **out)
{
	struct execguard *g = calloc(1, sizeof(*g));
	int e;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->fan_fd = g->stop_pipe[0] = g->stop_pipe[1] = g->report_pipe[0] = g->report_pipe[1] = -1;
	g->in_build = in_build;
	g->ctx = ctx;
	pthread_mutex_init(&g->mu, NULL);
	g->fan_fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (g->fan_fd < 0 || pipe2(g->stop_pipe, O_CLOEXEC) ||
	    pipe2(g->report_pipe, O_CLOEXEC | O_NONBLOCK)) {
		e = -errno;
		goto fail;
	}
	fcntl(g->report_pipe[1], F_SETPIPE_SZ, REPORT_PIPE_BYTES);
	e = execguard__set_policy(g, p, true);
	if (e)
		goto fail;
	e = thread__start_quiet(&g->thread, guard_main, g);
	if (e)
		goto fail;
	g->thread_started = true;
	*out = g;
	return 0;
fail:
	execguard__free(g);
	return e;
}

int execguard__fd(const struct execguard *g)
{
	return g->report_pipe[0];
}

int execguard__process(struct execguard *g, execguard_cb cb, void *ctx)
{
	struct bw_exec_event r;
	int n = 0;

	while (read(g->report_pipe[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
		cb(&r, ctx);
		n++;
	}
	return n;
}

uint64_t execguard__lost(const struct execguard *g)
{
	return atomic_load(&g->lost);
}

uint64_t execguard__answered(const struct execguard *g)
{
	return atomic_load(&g->answered);
}

void execguard__free(struct execguard *g)
{
	if (!g)
		return;
	if (g->thread_started && write(g->stop_pipe[1], "x", 1) == 1)
		pthread_join(g->thread, NULL);
	/* Closing the group lets every exec still waiting on it through. */
	int fds[] = { g->fan_fd, g->stop_pipe[0], g->stop_pipe[1], g->report_pipe[0],
		      g->report_pipe[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
