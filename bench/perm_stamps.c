/* bench/perm_stamps.c: where a bare fanotify permission round trip goes, with no
 * buildwarden (docs/PERFORMANCE.md, "Enforce mode: the answer path"). A child opens FILE
 * N times; a SCHED_FIFO answerer allows each open (FAN_OPEN_PERM). CLOCK_MONOTONIC stamps
 * in shared memory: the open's start, the answerer's read() returning it, the answer
 * written, the open returning. Prints the mean of each leg (the first 100 skipped).
 *
 * usage: perm_stamps FILE N PIN [OPATH]
 *   PIN 1: the opener on CPU 0, the answerer on CPU 1 (every wake-up crosses CPUs);
 *   PIN 0: where the scheduler puts them. OPATH 1: ask for O_PATH event descriptors
 *   (refused by the kernel: EINVAL on 6.18). Root only. gcc -O2 -o perm_stamps perm_stamps.c */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "perm_bench.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s FILE N PIN [OPATH]\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[2]), pinm = atoi(argv[3]), opath = argc > 4 ? atoi(argv[4]) : 0;
	if (n <= 100) {
		fprintf(stderr, "N must be > 100\n");
		return 2;
	}
	volatile double *sh = mmap(0, sizeof(double) * 4 * (n + 1), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int g = perm_group(argv[1], FAN_CLASS_CONTENT | FAN_REPORT_TID,
			   (opath ? O_PATH : O_RDONLY) | O_LARGEFILE, FAN_OPEN_PERM);
	if (g < 0)
		return 1;
	pid_t c = fork();
	if (c == 0) {
		if (pinm)
			pin_cpu(0);
		usleep(20000);
		for (int i = 0; i < n; i++) {
			sh[4 * i] = now_us();
			int fd = open(argv[1], O_RDONLY);
			sh[4 * i + 3] = now_us();
			close(fd);
		}
		_exit(0);
	}
	if (pinm)
		pin_cpu(1);
	realtime();
	char buf[4096] __attribute__((aligned(8)));
	int i = 0;
	double tr = 0, tc = 0;
	while (i < n) {
		struct pollfd p = {g, POLLIN, 0};
		if (poll(&p, 1, 1000) <= 0)
			break;
		double a = now_us();
		ssize_t len = read(g, buf, sizeof buf);
		double b = now_us();
		struct fanotify_event_metadata *m = (void *)buf;
		for (; len > 0 && FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			struct fanotify_response r = {m->fd, FAN_ALLOW};
			sh[4 * i + 1] = b;
			write(g, &r, sizeof r);
			sh[4 * i + 2] = now_us();
			double d = now_us();
			close(m->fd);
			tc += now_us() - d;
			tr += b - a;
			i++;
		}
	}
	waitpid(c, 0, 0);
	double w1 = 0, w2 = 0, proc = 0, tot = 0;
	for (int k = 100; k < n; k++) {
		w1 += sh[4 * k + 1] - sh[4 * k];
		proc += sh[4 * k + 2] - sh[4 * k + 1];
		w2 += sh[4 * k + 3] - sh[4 * k + 2];
		tot += sh[4 * k + 3] - sh[4 * k];
	}
	int m = n - 100;
	printf("pin %d opath %d: total %.1f | open->answerer read done %.1f (read syscall %.1f) | "
	       "write answer %.1f | answer->open returns %.1f | close evfd %.1f us\n",
	       pinm, opath, tot / m, w1 / m, tr / n, proc / m, w2 / m, tc / n);
}
