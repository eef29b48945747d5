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
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "perm_bench.h"

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
static int g, nthr, remote;
static void *ans(void *a)
{
	long cpu = (long)a;
	char buf[4096] __attribute__((aligned(8)));

	if (nthr > 1 || remote)
		pin_cpu(remote ? 1 : (int)cpu);
	realtime();
	for (;;) {
		struct pollfd p = { g, POLLIN, 0 };

		if (poll(&p, 1, -1) <= 0)
			continue;
		allow_events(g, buf, read(g, buf, sizeof(buf)));
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
	g = perm_group(argv[1], (pre ? FAN_CLASS_PRE_CONTENT : FAN_CLASS_CONTENT) | FAN_REPORT_TID,
		       O_RDONLY | O_LARGEFILE, FAN_OPEN_PERM | (pre ? FAN_PRE_ACCESS : 0));
	if (g < 0)
		return 1;
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
		pin_cpu(ocpu);
		double per = open_loop(argv[1], n, reads);
		if (per < 0)
			_exit(1);
		printf("threads %d remote %d ocpu %d pre %d reads %d: per open %.1f us\n", nthr,
		       remote, ocpu, pre, reads, per);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	return 0;
}
