/* bench/perm_roundtrip.c: the floor of a fanotify permission round trip on this host,
 * with no buildwarden at all: a child opens and closes one file N times while a
 * fanotify FAN_OPEN_PERM mark on it makes each open wait for this program's answer
 * (FAN_ALLOW, no decision). Whatever an enforce-mode sensor adds per asked open sits
 * on top of this (docs/PERFORMANCE.md, "Enforce mode: where the time goes").
 *
 * usage: perm_roundtrip FILE N [rt 0|1] [cpu -1|N]
 *   rt 1: the answering thread runs SCHED_FIFO 1 (as buildwarden's does)
 *   cpu N: pin the answerer and the opener to CPU N (same-CPU wake-ups); -1: not pinned
 * prints: per open <us> (wall time of the child's loop / N)
 * Root only (fanotify permission events). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "perm_bench.h"

int main(int argc, char **argv)
{
	char buf[4096] __attribute__((aligned(8)));
	int g, n, rt, cpu, status;
	pid_t child;

	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE N [rt 0|1] [cpu -1|N]\n", argv[0]);
		return 2;
	}
	n = atoi(argv[2]);
	rt = argc > 3 ? atoi(argv[3]) : 0;
	cpu = argc > 4 ? atoi(argv[4]) : -1;
	g = perm_group(argv[1], FAN_CLASS_CONTENT, O_RDONLY, FAN_OPEN_PERM);
	if (g < 0)
		return 1;
	pin_cpu(cpu);
	child = fork();
	if (child == 0) {
		double per = open_loop(argv[1], n, 0);

		if (per < 0)
			_exit(1);
		printf("per open %.1f us\n", per);
		fflush(stdout);
		_exit(0);
	}
	if (rt)
		realtime();
	for (;;) {
		struct pollfd p = { g, POLLIN, 0 };

		if (waitpid(child, &status, WNOHANG) == child)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		if (poll(&p, 1, 100) <= 0)
			continue;
		allow_events(g, buf, read(g, buf, sizeof(buf)));
	}
}
