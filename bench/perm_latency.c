/* bench/perm_latency.c: how long an outsider's refused open for write waits for its
 * answer (enforce mode, fanotify permission events), measured by the opener itself.
 *
 * usage: perm_latency FILE BASE GO_FIFO N OUT
 * Opens GO_FIFO, waits for one byte (the build is running by then), then N times:
 * open(FILE, O_WRONLY) and open(BASE, O_WRONLY), each timed with CLOCK_MONOTONIC,
 * 2 ms apart (a sample of the answer under the build's load, not a flood of our own).
 * BASE is a file outside the trees: no question is asked, so its times are what the
 * same open costs under the same load without an answer (the scheduler's share).
 * Writes to OUT two lines:
 *   protected refused <n> allowed <n> p50_us <x> p99_us <x> max_us <x>
 *   unprotected refused <n> allowed <n> p50_us <x> p99_us <x> max_us <x>
 * and exits 0; bench/perm.sh runs it in its own session, started before the run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct series {
	double *us;
	long refused, allowed;
};

static void one(const char *path, struct series *s, long i)
{
	struct timespec t0, t1;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->us[i] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
	if (fd >= 0) {
		s->allowed++;
		close(fd);
	} else if (errno == EPERM) {
		s->refused++;
	}
}

static void report(FILE *out, const char *what, struct series *s, long n)
{
	long p99 = (n * 99) / 100;

	qsort(s->us, (size_t)n, sizeof(*s->us), cmp);
	fprintf(out, "%s refused %ld allowed %ld p50_us %.1f p99_us %.1f max_us %.1f\n", what,
		s->refused, s->allowed, s->us[n / 2], s->us[p99 < n ? p99 : n - 1], s->us[n - 1]);
}

int main(int argc, char **argv)
{
	struct timespec gap = { 0, 1000000 };
	struct series prot = { 0 }, base = { 0 };
	FILE *out;
	long n;
	char c;
	int go;

	if (argc != 6 || (n = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: perm_latency FILE BASE GO_FIFO N OUT\n");
		return 2;
	}
	prot.us = calloc((size_t)n, sizeof(double));
	base.us = calloc((size_t)n, sizeof(double));
	go = open(argv[3], O_RDWR | O_CLOEXEC);
	if (!prot.us || !base.us || go < 0 || read(go, &c, 1) != 1) {
		perror("perm_latency: go");
		return 2;
	}
	for (long i = 0; i < n; i++) {
		one(argv[1], &prot, i);
		nanosleep(&gap, NULL);
		one(argv[2], &base, i);
		nanosleep(&gap, NULL);
	}
	out = fopen(argv[5], "we");
	if (!out)
		return 2;
	report(out, "protected", &prot, n);
	report(out, "unprotected", &base, n);
	fclose(out);
	return 0;
}
