/* bench/perm_threads.c: a bare fanotify permission answerer (no buildwarden), to compare
 * one answering thread with one per CPU (docs/PERFORMANCE.md, "Enforce mode: the answer
 * path"). A child opens FILE N times (and preads it READS times per open); every open
 * (FAN_OPEN_PERM) and, with PRE 1, every read (FAN_PRE_ACCESS) waits for FAN_ALLOW.
 *
 * usage: perm_threads FILE N THREADS PRE READS [OPENER_CPU [REMOTE]]
 *   THREADS 2: two SCHED_FIFO answerers, pinned to CPU 0 and 1, both polling the group;
 *   THREADS 1: one, unpinned, or pinned to CPU 1 with REMOTE 1;
 *   OPENER_CPU: pin the opener (-1: not pinned). Root only; needs 2 CPUs.
 *   gcc -O2 -pthread -o perm_threads perm_threads.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
static int g, nthr, remote;
static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static void *ans(void *a)
{
	long cpu = (long)a;
	char buf[4096] __attribute__((aligned(8)));
	if (nthr > 1 || remote) {
		cpu_set_t s;
		CPU_ZERO(&s);
		CPU_SET(remote ? 1 : cpu, &s);
		pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
	}
	struct sched_param sp = {.sched_priority = 1};
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	for (;;) {
		struct pollfd p = {g, POLLIN, 0};
		if (poll(&p, 1, -1) <= 0)
			continue;
		ssize_t len = read(g, buf, sizeof buf);
		struct fanotify_event_metadata *m = (void *)buf;
		for (; len > 0 && FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			struct fanotify_response r = {m->fd, FAN_ALLOW};
			if (write(g, &r, sizeof r) < 0)
				perror("w");
			close(m->fd);
		}
	}
	return NULL;
}
int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s FILE N THREADS PRE READS [OPENER_CPU [REMOTE]]\n",
			argv[0]);
		return 2;
	}
	int n = atoi(argv[2]);
	nthr = atoi(argv[3]);
	int pre = atoi(argv[4]);
	int reads = atoi(argv[5]);
	int ocpu = argc > 6 ? atoi(argv[6]) : -1;
	remote = argc > 7 ? atoi(argv[7]) : 0;
	g = fanotify_init((pre ? FAN_CLASS_PRE_CONTENT : FAN_CLASS_CONTENT) | FAN_CLOEXEC |
			      FAN_NONBLOCK | FAN_REPORT_TID,
			  O_RDONLY | O_LARGEFILE);
	if (g < 0 || fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM | (pre ? FAN_PRE_ACCESS : 0),
				   AT_FDCWD, argv[1])) {
		perror("fan");
		return 1;
	}
	pthread_t t[2];
	if (nthr < 1 || nthr > 2) {
		fprintf(stderr, "THREADS: 1 or 2\n");
		return 2;
	}
	for (long i = 0; i < nthr; i++)
		pthread_create(&t[i], 0, ans, (void *)i);
	usleep(10000);
	pid_t c = fork();
	if (c == 0) {
		char b[64];
		if (ocpu >= 0) {
			cpu_set_t s;
			CPU_ZERO(&s);
			CPU_SET(ocpu, &s);
			sched_setaffinity(0, sizeof s, &s);
		}
		double t0 = now_us();
		for (int i = 0; i < n; i++) {
			int fd = open(argv[1], O_RDONLY);
			if (fd < 0) {
				perror("open");
				_exit(1);
			}
			for (int k = 0; k < reads; k++)
				pread(fd, b, sizeof b, 0);
			close(fd);
		}
		printf("threads %d remote %d ocpu %d pre %d reads %d: per open %.1f us\n", nthr,
		       remote, ocpu, pre, reads, (now_us() - t0) / n);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	return 0;
}
