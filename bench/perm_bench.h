/* bench/perm_bench.h: what the bare fanotify permission benches (perm_roundtrip.c,
 * perm_stamps.c, perm_threads.c; no buildwarden) share: the clock, pinning, the
 * answerer's real-time priority, the group and its mark, allowing what one read
 * returned, and the opener's loop. Header-only, so each bench still builds alone:
 * gcc -O2 [-pthread] -o X bench/X.c */
#ifndef BW_PERM_BENCH_H
#define BW_PERM_BENCH_H

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

static inline double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* The calling thread on CPU cpu; -1: left where the scheduler puts it. */
static inline void pin_cpu(int cpu)
{
	cpu_set_t s;

	if (cpu < 0)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		perror("sched_setaffinity");
}

/* The calling thread at SCHED_FIFO 1, as buildwarden's answering threads run. */
static inline void realtime(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		perror("sched_setscheduler");
}

/* A non-blocking group of init_flags' class (FAN_CLASS_CONTENT, FAN_CLASS_PRE_CONTENT,
 * with FAN_REPORT_TID or not), whose event descriptors are opened with event_flags,
 * marking file with mask; -1 (said on stderr) if the kernel refuses either. */
static inline int perm_group(const char *file, unsigned init_flags, unsigned event_flags,
			     uint64_t mask)
{
	int g = fanotify_init(init_flags | FAN_CLOEXEC | FAN_NONBLOCK, event_flags);

	if (g < 0) {
		perror("fanotify_init");
		return -1;
	}
	if (fanotify_mark(g, FAN_MARK_ADD, mask, AT_FDCWD, file)) {
		perror("fanotify_mark");
		close(g);
		return -1;
	}
	return g;
}

/* Allows every event of one read (buf, len), closing their descriptors; the count. */
static inline int allow_events(int g, const void *buf, ssize_t len)
{
	const struct fanotify_event_metadata *m = buf;
	int n = 0;

	for (; len > 0 && FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len), n++) {
		struct fanotify_response r = { m->fd, FAN_ALLOW };

		if (write(g, &r, sizeof(r)) < 0)
			perror("answer");
		close(m->fd);
	}
	return n;
}

/* The opener's loop: opens file n times, pread()ing each reads times; the mean µs per
 * open, or -1 (said on stderr) when an open fails. */
static inline double open_loop(const char *file, int n, int reads)
{
	double t0 = now_us();
	char b[64];

	for (int i = 0; i < n; i++) {
		int fd = open(file, O_RDONLY);

		if (fd < 0) {
			perror("open");
			return -1;
		}
		for (int k = 0; k < reads; k++)
			if (pread(fd, b, sizeof(b), 0) < 0)
				perror("pread");
		close(fd);
	}
	return (now_us() - t0) / n;
}

#endif
