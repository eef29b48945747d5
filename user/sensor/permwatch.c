/* permwatch: the answering thread (see permwatch.h for what it answers and why). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "sensor/fanwatch.h"
#include "sensor/fanotify_compat.h"
#include "sensor/loader.h"
#include "sensor/permwatch.h"
#include "base/thread.h"
#include "sensor_abi.h"


#define PW_BUF (16 * 1024)
#define PW_QUEUE 1024		/* refusals waiting for the main loop */
#define PW_MAX_TREES 64
#define PW_LAT_BUCKETS 2048	/* 1 us each; slower answers land in the last and in max */
#define PW_MAX_THREADS 8	/* answering threads, one per CPU the agent may run on */
/* The kernel stamps birth times with the coarse clock: a file made by the refused open
 * may look up to a tick older than the open's entry. */
#define PW_BTIME_SLACK_NS (20 * 1000 * 1000ull)

struct pw_fs_root {
	char *path;
	size_t len;
	dev_t dev;
	ino_t ino;
};

struct permwatch {
	const struct sensor *s;
	int group, efd, stop_fd;
	pid_t self;
	struct pw_fs_root roots[PW_MAX_TREES];
	size_t n_roots;
	struct pw_worker {
		struct permwatch *pw;
		int cpu; /* the CPU it is pinned to; -1: not pinned */
		pthread_t thread;
	} workers[PW_MAX_THREADS];
	size_t n_started;
	bool realtime; /* a thread runs SCHED_FIFO (prioritize); under mu */

	pthread_mutex_t mu; /* the queue and the stats */
	struct perm_violation *q;
	size_t q_head, q_len;
	struct permwatch_stats st;
	uint64_t lat[PW_LAT_BUCKETS];	/* read -> answer, every event */
	uint64_t entry[PW_LAT_BUCKETS];	/* the open's syscall entry -> answer */
	uint64_t n_entry;
};

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum perm_answer permwatch__decide(const struct perm_input *in, bool writer_known)
{
	bool write;

	if (in->self || (in->proc_known && (in->proc_flags & BW_PROC_IN_BUILD)))
		return PERM_ALLOW;
	if (in->pre_access) {
		/* A read of a file opened during the run: an outsider cannot have opened it
		 * for writing then (refused at open); writes through older descriptors are
		 * the kill layer's (bpf/write.bpf.c). count 0 is a truncate. */
		if (in->range_count)
			return PERM_ALLOW;
		write = true;
	} else if (!in->have_intent || (in->intent_flags & BW_INTENT_FLAGS_UNKNOWN)) {
		write = true; /* cannot be told apart: the documented default */
	} else if (in->intent_flags & BW_INTENT_EXEC) {
		write = false;
	} else {
		write = (in->open_flags & O_ACCMODE) != O_RDONLY ||
			(in->open_flags & (O_CREAT | O_TRUNC));
	}
	if (!write)
		return PERM_ALLOW;
	if (!writer_known)
		return PERM_NEED_WRITER;
	return in->writer ? PERM_ALLOW : PERM_DENY;
}

/* The thread group of a thread (FAN_REPORT_TID gives the thread); procfs is memory. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nTgid:");
	return p ? (pid_t)strtol(p + 6, NULL, 10) : -1;
}

/* The common case, first: the build opening or reading its own files. Most build
 * processes (compilers, make, the shell) have one thread, which is its group's leader,
 * so the thread id fanotify reports is the key of the process table: one map lookup,
 * no procfs read (tgid_of renders the whole status page: the decision's p50 went from
 * 18-21 us to 5 us without it, docs/PERFORMANCE.md). tgkill(tid, tid, 0) succeeds
 * only for a live thread-group leader, so the live entry under tid describes the
 * opener's own group: the same entry tgid_of would have led to. The table's recently
 * exited entries are not looked at: an exited build process's pid is no proof. */
static bool build_leader(const struct permwatch *pw, pid_t tid)
{
	struct bw_proc p;

	return sensor__proc_lookup_live(pw->s, tid, &p) == 0 && (p.flags & BW_PROC_IN_BUILD) &&
	       !(p.flags & BW_PROC_EXITED) && syscall(SYS_tgkill, tid, tid, 0) == 0;
}

static int tree_of_path(const struct permwatch *pw, const char *path)
{
	for (size_t i = 0; i < pw->n_roots; i++) {
		size_t l = pw->roots[i].len;

		if (!strncmp(path, pw->roots[i].path, l) && (path[l] == '/' || !path[l] || l == 1))
			return (int)i;
	}
	return -1;
}

static void fd_path(int fd, char *out, size_t sz)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, sz - 1);
	out[n > 0 ? n : 0] = '\0';
}

/* A new name through another way in (a bind mount of a tree, a symlink resolved by
 * the kernel to it): the directories above it, by identity, up to a tree root. */
static int tree_of_ancestors(const struct permwatch *pw, char *path)
{
	char *slash;
	struct stat st;

	while ((slash = strrchr(path, '/')) && slash != path) {
		*slash = '\0';
		if (stat(path, &st))
			continue;
		for (size_t i = 0; i < pw->n_roots; i++)
			if (pw->roots[i].dev == st.st_dev && pw->roots[i].ino == st.st_ino)
				return (int)i;
	}
	return -1;
}

/* The object's tree: the protected-inode map (exact, whatever name it was opened by),
 * else its name (a new file is not in the map yet), else the identity of the
 * directories above that name. */
static int tree_of_fd(const struct permwatch *pw, int fd, const struct stat *st)
{
	char path[PATH_MAX];
	int t = sensor__protected_tree(pw->s, st->st_dev, st->st_ino);

	if (t >= 0)
		return t;
	fd_path(fd, path, sizeof(path));
	t = tree_of_path(pw, path);
	return t >= 0 ? t : tree_of_ancestors(pw, path);
}

/* A listed writer of the object's tree: by lineage (writer_mask), or, for a process
 * whose entry did not come from a fork the sensor saw, by its executable, as the
 * kernel's write guard decides (bpf/write.bpf.c may_write). -errno: cannot tell. */
static int is_writer(const struct permwatch *pw, int fd, pid_t tgid, bool known,
		     const struct bw_proc *p, int *tree)
{
	uint64_t mask = known ? p->writer_mask : 0, exe_mask = 0;
	struct stat st;

	if (!known || !(p->flags & BW_PROC_FROM_FORK)) {
		uint64_t dev = 0, ino = 0;
		char path[64];
		struct stat es;

		if (known && (p->flags & BW_PROC_EXEC_SEEN)) {
			dev = makedev(BW_KDEV_MAJOR(p->exe_dev), BW_KDEV_MINOR(p->exe_dev));
			ino = p->exe_ino;
		} else {
			snprintf(path, sizeof(path), "/proc/%d/exe", tgid);
			if (stat(path, &es) == 0) {
				dev = es.st_dev;
				ino = es.st_ino;
			}
		}
		if (ino && sensor__writer_exe_mask(pw->s, dev, ino, &exe_mask) == 0)
			mask |= exe_mask;
	}
	if (!mask)
		return 0;
	if (fstat(fd, &st))
		return -errno;
	*tree = tree_of_fd(pw, fd, &st);
	if (*tree < 0 || *tree >= 64)
		return -ENOENT;
	return (mask >> *tree) & 1;
}

/* The range record of a pre-content event: its count (0: a truncate). */
static uint64_t range_count(const struct fanotify_event_metadata *m, bool *ok)
{
	const char *p = (const char *)m + m->metadata_len, *end = (const char *)m + m->event_len;

	*ok = false;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;
		uint64_t count;

		if (h->len < sizeof(*h) || p + h->len > end)
			break;
		if (h->info_type == FAN_EVENT_INFO_TYPE_RANGE && h->len >= 4 + 4 + 16) {
			memcpy(&count, p + 4 + 4 + 8, sizeof(count));
			*ok = true;
			return count;
		}
		p += h->len;
	}
	return 0;
}

struct pw_pending {
	int fd;
	pid_t tid, tgid;
	bool denied, fail_safe, pre_access, no_intent;
	bool access; /* a pre-content read or write (not a truncate): allowed, no lookup */
	bool by_leader; /* an open answered by build_leader alone */
	int tree;
	struct bw_open_intent in;
	bool have_intent;
};

/* Decides one event from memory. */
static void decide(struct permwatch *pw, const struct fanotify_event_metadata *m,
		   struct pw_pending *e)
{
	struct perm_input in = { 0 };
	struct bw_proc p;
	enum perm_answer a;
	int r;

	memset(e, 0, sizeof(*e));
	e->fd = m->fd;
	e->tid = m->pid;
	e->tree = -1;
	in.pre_access = (m->mask & FAN_PRE_ACCESS) != 0;
	if (in.pre_access) {
		bool ok;

		in.range_count = range_count(m, &ok);
		if (ok && in.range_count) {
			/* a read: the common case pays no lookup at all */
			e->pre_access = e->access = true;
			return;
		}
	}
	e->pre_access = in.pre_access;
	if (build_leader(pw, e->tid)) {
		e->tgid = e->tid; /* allowed: denied, fail_safe stay false */
		e->by_leader = !in.pre_access;
		return;
	}
	if (!in.pre_access && sensor__open_intent(pw->s, e->tid, &e->in) == 0) {
		e->have_intent = in.have_intent = true;
		in.open_flags = e->in.open_flags;
		in.intent_flags = e->in.intent_flags;
		e->tgid = (pid_t)e->in.tgid;
	} else {
		e->tgid = tgid_of(e->tid);
		if (e->tgid <= 0)
			e->tgid = e->tid;
	}
	in.self = e->tgid == pw->self;
	r = sensor__proc_lookup(pw->s, e->tgid, &p);
	in.proc_known = r == 0;
	in.proc_flags = in.proc_known ? p.flags : 0;
	if (r && r != -ENOENT) {
		/* cannot tell build from outsider: the fail-safe refuses the write below */
		e->fail_safe = true;
	}
	a = permwatch__decide(&in, false);
	if (a == PERM_NEED_WRITER) {
		r = is_writer(pw, e->fd, e->tgid, in.proc_known, &p, &e->tree);
		if (r < 0) {
			e->fail_safe = true;
			in.writer = false;
		} else {
			in.writer = r == 1;
		}
		a = permwatch__decide(&in, true);
		e->no_intent = a == PERM_DENY && !in.pre_access && !in.have_intent;
	} else {
		e->fail_safe = false;
	}
	e->denied = a == PERM_DENY;
}

/* Whether the refused open made the name it was refused on (the kernel creates it
 * before it asks): O_EXCL says so; else an empty file born after the open began. An
 * open with no intent (io_uring) has no start time: born within the slack before now.
 * (A name the build made empty an instant earlier could match that: removing it is
 * no more than the unlink any outsider can do anyway, and it is reported.) */
static bool made_by_open(const struct pw_pending *e, int fd, const struct stat *st)
{
	struct statx sx;
	uint64_t born, began, now = now_ns(CLOCK_REALTIME);

	if ((e->have_intent && !(e->in.open_flags & O_CREAT)) || st->st_size != 0 ||
	    st->st_nlink != 1 || !S_ISREG(st->st_mode))
		return false;
	if (e->have_intent && (e->in.open_flags & O_EXCL))
		return true;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) || !(sx.stx_mask & STATX_BTIME))
		return false;
	born = (uint64_t)sx.stx_btime.tv_sec * 1000000000ull + sx.stx_btime.tv_nsec;
	began = e->have_intent ? now - (now_ns(CLOCK_BOOTTIME) - e->in.ktime) : now;
	return born + PW_BTIME_SLACK_NS >= began;
}

/* After the answer: what the main loop needs to report the refusal. */
static void report(struct permwatch *pw, const struct pw_pending *e)
{
	struct perm_violation v = { 0 };
	struct stat st, now;

	v.pid = e->tgid;
	v.tid = e->tid;
	v.tree = e->tree;
	v.fail_safe = e->fail_safe;
	v.no_intent = e->no_intent;
	fd_path(e->fd, v.path, sizeof(v.path));
	if (fstat(e->fd, &st) == 0) {
		v.dev = st.st_dev;
		v.ino = st.st_ino;
		if (v.tree < 0)
			v.tree = tree_of_fd(pw, e->fd, &st);
	}
	if (e->pre_access)
		v.op = PERM_TRUNCATE;
	else if (v.ino && made_by_open(e, e->fd, &st))
		v.op = PERM_CREATE;
	else if (e->have_intent && (e->in.open_flags & O_TRUNC))
		v.op = PERM_TRUNCATE;
	else
		v.op = PERM_OPEN_WRITE;
	/* Remove the name only while it still is the refused open's file. */
	if (v.op == PERM_CREATE && v.path[0] == '/' && lstat(v.path, &now) == 0 &&
	    now.st_dev == st.st_dev && now.st_ino == st.st_ino && unlink(v.path) == 0)
		v.removed = true;
	pthread_mutex_lock(&pw->mu);
	if (pw->q_len < PW_QUEUE) {
		pw->q[(pw->q_head + pw->q_len) % PW_QUEUE] = v;
		pw->q_len++;
	} else {
		pw->st.lost++;
	}
	pthread_mutex_unlock(&pw->mu);
}

static void count(struct permwatch *pw, const struct pw_pending *e, uint64_t lat_ns)
{
	uint64_t us = lat_ns / 1000;

	pthread_mutex_lock(&pw->mu);
	if (e->have_intent) {
		/* What the opener waits: from its open's entry (the intent's time) to the
		 * answer: path walk, the queue, the wake-up of this thread, the decision. */
		uint64_t now = now_ns(CLOCK_BOOTTIME), w = now > e->in.ktime ? now - e->in.ktime : 0;

		pw->entry[w / 1000 < PW_LAT_BUCKETS ? w / 1000 : PW_LAT_BUCKETS - 1]++;
		pw->n_entry++;
		if (w > pw->st.entry_max_ns)
			pw->st.entry_max_ns = w;
	}
	pw->st.asked++;
	if (e->access)
		pw->st.asked_access++;
	else if (e->pre_access)
		pw->st.asked_truncate++;
	else if (e->by_leader)
		pw->st.asked_open_build++;
	else
		pw->st.asked_open_other++;
	pw->st.denied += e->denied;
	pw->st.fail_safe += e->fail_safe;
	pw->st.no_intent += e->no_intent;
	pw->lat[us < PW_LAT_BUCKETS ? us : PW_LAT_BUCKETS - 1]++;
	if (lat_ns > pw->st.answer_max_ns)
		pw->st.answer_max_ns = lat_ns;
	pthread_mutex_unlock(&pw->mu);
}

/* One read of the group: every event is answered before anything else is done. */
static void handle(struct permwatch *pw, char *buf, ssize_t len, uint64_t t0)
{
	struct pw_pending pend[PW_BUF / FAN_EVENT_METADATA_LEN];
	struct fanotify_event_metadata *m = (void *)buf;
	size_t n = 0, denied = 0;

	for (; FAN_EVENT_OK(m, len) && n < sizeof(pend) / sizeof(pend[0]);
	     m = FAN_EVENT_NEXT(m, len)) {
		struct pw_pending *e = &pend[n];
		struct fanotify_response r;

		if (m->vers != FANOTIFY_METADATA_VERSION || m->fd < 0) {
			if (m->fd >= 0)
				close(m->fd);
			continue; /* not a permission event: nothing to answer */
		}
		decide(pw, m, e);
		r.fd = m->fd;
		r.response = e->denied ? FAN_DENY : FAN_ALLOW;
		/* The answer cannot be lost: EINTR is the only retry, and a write that
		 * fails otherwise means the kernel no longer waits for it. */
		while (write(pw->group, &r, sizeof(r)) < 0 && errno == EINTR)
			;
		count(pw, e, now_ns(CLOCK_MONOTONIC) - t0);
		denied += e->denied;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		if (pend[i].denied)
			report(pw, &pend[i]);
		close(pend[i].fd);
	}
	if (denied) {
		uint64_t one = 1;

		if (write(pw->efd, &one, sizeof(one)) < 0) {
			/* the counter is already non-zero: the main loop will read */
		}
	}
}

/* An opener waits while the answer waits for a CPU: under a build's full load a
 * normal thread queued behind the compilers for up to tens of milliseconds (measured,
 * docs/PERFORMANCE.md). The lowest real-time priority runs it as soon as it is woken;
 * its work per event is a few map lookups, and the kernel's real-time throttling still
 * bounds it. Where that is refused (a cgroup without a real-time budget), the highest
 * normal priority.
 *
 * One thread per CPU, each pinned to its CPU: the opener's wake-up of the group's
 * waiters finds one on its own CPU, which runs as soon as the opener sleeps and whose
 * answer wakes the opener on that CPU again. With one thread, an answer crossed CPUs
 * twice whenever the scheduler had left the thread on the other CPU, and a wake-up of an
 * idle virtual CPU costs tens of microseconds (guest halt polling off, as on our VMs):
 * a bare answering loop measured 85-210 us per open that way against 19-54 us for the
 * same loop with a thread per CPU (docs/PERFORMANCE.md, "Enforce mode: the answer
 * path"). The other threads are woken too (the group's wait queue wakes every poller);
 * they find the queue empty and sleep again inside poll. */
static void prioritize(struct pw_worker *w)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) {
			/* not pinned (a cpuset changed under us): it answers from anywhere */
		}
	}
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0) {
		pthread_mutex_lock(&w->pw->mu);
		w->pw->realtime = true;
		pthread_mutex_unlock(&w->pw->mu);
		return;
	}
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), -20)) {
		/* stays at the agent's priority: the latency figures will show it */
	}
}

static void *run(void *arg)
{
	struct pw_worker *w = arg;
	struct permwatch *pw = w->pw;
	static __thread char buf[PW_BUF] __attribute__((aligned(8)));

	prioritize(w);

	for (;;) {
		struct pollfd fds[2] = { { pw->group, POLLIN, 0 }, { pw->stop_fd, POLLIN, 0 } };
		ssize_t len;

		/* Never leaves but on stop: a thread gone would leave openers hanging.
		 * A read that fails (no descriptor left for the event) has the kernel
		 * refuse that event itself; the next read goes on. EAGAIN: another
		 * thread took the events this wake-up was for. */
		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[1].revents)
			break;
		/* One read per wake-up: a read that finds the queue empty (EAGAIN) would be
		 * a syscall per event for nothing; poll returns at once if more is queued. */
		if ((len = read(pw->group, buf, sizeof(buf))) > 0)
			handle(pw, buf, len, now_ns(CLOCK_MONOTONIC));
	}
	return NULL;
}

/* The CPUs this process may run on, at most max of them; none known: one unpinned. */
static size_t answer_cpus(int *cpus, size_t max)
{
	cpu_set_t set;
	size_t n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && n < max; c++)
			if (CPU_ISSET(c, &set))
				cpus[n++] = c;
	if (!n)
		cpus[n++] = -1;
	return n;
}

int permwatch__start(const struct sensor *s, const struct fanwatch *fw, struct permwatch **out)
{
	struct permwatch *pw;
	const char *root;
	int err;

	*out = NULL;
	if (fanwatch__perm_fd(fw) < 0)
		return -EINVAL;
	pw = calloc(1, sizeof(*pw));
	if (!pw)
		return -ENOMEM;
	pw->s = s;
	pw->group = fanwatch__perm_fd(fw);
	pw->self = getpid();
	pw->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pw->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pw->q = calloc(PW_QUEUE, sizeof(*pw->q));
	pthread_mutex_init(&pw->mu, NULL);
	err = pw->efd < 0 || pw->stop_fd < 0 ? -errno : pw->q ? 0 : -ENOMEM;
	for (size_t i = 0; !err && (root = fanwatch__root(fw, i)) && i < PW_MAX_TREES; i++) {
		struct stat st;

		pw->roots[i].path = strdup(root);
		if (!pw->roots[i].path)
			err = -ENOMEM;
		else
			pw->roots[i].len = strlen(root);
		if (stat(root, &st) == 0) {
			pw->roots[i].dev = st.st_dev;
			pw->roots[i].ino = st.st_ino;
		}
		pw->n_roots = i + 1;
	}
	if (!err) {
		int cpus[PW_MAX_THREADS];
		size_t n = answer_cpus(cpus, PW_MAX_THREADS);

		for (size_t i = 0; i < n && !err; i++) {
			struct pw_worker *w = &pw->workers[pw->n_started];

			w->pw = pw;
			w->cpu = n > 1 ? cpus[i] : -1;
			err = thread__start_quiet(&w->thread, run, w);
			pw->n_started += err == 0;
		}
	}
	if (err) {
		permwatch__stop(pw);
		return err;
	}
	*out = pw;
	return 0;
}

int permwatch__fd(const struct permwatch *pw)
{
	return pw->efd;
}

size_t permwatch__take(struct permwatch *pw, struct perm_violation *out, size_t max)
{
	size_t n = 0;
	uint64_t v;

	if (read(pw->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled, the queue may still hold a few */
	}
	pthread_mutex_lock(&pw->mu);
	while (n < max && pw->q_len) {
		out[n++] = pw->q[pw->q_head];
		pw->q_head = (pw->q_head + 1) % PW_QUEUE;
		pw->q_len--;
	}
	pthread_mutex_unlock(&pw->mu);
	return n;
}

static uint64_t pct(const uint64_t *lat, uint64_t total, unsigned per_mille)
{
	uint64_t want = (total * per_mille + 999) / 1000, seen = 0;

	for (size_t i = 0; i < PW_LAT_BUCKETS; i++) {
		seen += lat[i];
		if (seen >= want && want)
			return (i + 1) * 1000; /* the bucket's upper bound */
	}
	return 0;
}

void permwatch__stats(struct permwatch *pw, struct permwatch_stats *out)
{
	pthread_mutex_lock(&pw->mu);
	*out = pw->st;
	out->answer_p50_ns = pct(pw->lat, pw->st.asked, 500);
	out->answer_p99_ns = pct(pw->lat, pw->st.asked, 990);
	out->entry_p50_ns = pct(pw->entry, pw->n_entry, 500);
	out->entry_p99_ns = pct(pw->entry, pw->n_entry, 990);
	out->entry_n = pw->n_entry;
	pthread_mutex_unlock(&pw->mu);
}

void permwatch__stop(struct permwatch *pw)
{
	uint64_t one = 1;

	if (!pw)
		return;
	if (pw->n_started) {
		if (write(pw->stop_fd, &one, sizeof(one)) < 0) {
			/* cannot fail for a fresh eventfd; the join would then hang: say so */
			perror("buildwarden: permwatch stop");
		}
		for (size_t i = 0; i < pw->n_started; i++)
			pthread_join(pw->workers[i].thread, NULL);
	}
	if (pw->efd >= 0)
		close(pw->efd);
	if (pw->stop_fd >= 0)
		close(pw->stop_fd);
	for (size_t i = 0; i < pw->n_roots; i++)
		free(pw->roots[i].path);
	pthread_mutex_destroy(&pw->mu);
	free(pw->q);
	free(pw);
}
