/* bench/micro.c: syscall-level micro-benchmarks for `make bench`.
 *
 * Each test runs a fixed number of iterations of one operation and prints
 *   <name> <iterations> <wall ns per iteration> <cpu ns per iteration>
 * (cpu = user+sys of this process and of its reaped children)
 * on stdout. bench/run.sh runs this program alternately without and with the
 * sensor and compares the medians of the per-iteration times.
 *
 * usage: micro UNPROT_DIR PROT_DIR FILE_ITERS EXEC_ITERS CONNECT_ITERS [TEST...]
 * tests: null_syscall write_unprot write_prot open_ro_unprot open_ro_prot exec connect
 *        (default: all; null_syscall runs 4 x FILE_ITERS getppid() calls: the
 *        fixed cost that any sys_enter/sys_exit hook adds to every syscall)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFILES 64

static char buf[4096];

static void die(const char *what)
{
	fprintf(stderr, "micro: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU time of this process and of its waited-for children (the exec loop's
 * /bin/true), in ns: less sensitive than wall time to other load on the host. */
static double cpu_ns(void)
{
	struct rusage s, c;
	getrusage(RUSAGE_SELF, &s);
	getrusage(RUSAGE_CHILDREN, &c);
	return (s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec + c.ru_stime.tv_sec) * 1e9 +
	       (s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec + c.ru_stime.tv_usec) * 1e3;
}

static double cpu0;

static double start(void)
{
	cpu0 = cpu_ns();
	return now_ns();
}

static void report(const char *name, long iters, double t0, double t1)
{
	double c1 = cpu_ns();
	printf("%s %ld %.1f %.1f\n", name, iters, (t1 - t0) / (double)iters, (c1 - cpu0) / (double)iters);
	fflush(stdout);
}

/* (a)/(b): open(O_CREAT|O_WRONLY) + write 4 KiB + close, over a
 * rotating set of NFILES names (created by an untimed warm-up pass). */
static void one_write(const char *dir, long i)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/f%ld", dir, i % NFILES);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		die("write");
	if (close(fd) < 0)
		die("close");
}

static void bench_write(const char *name, const char *dir, long iters)
{
	for (long i = 0; i < NFILES; i++)
		one_write(dir, i);
	double t0 = start();
	for (long i = 0; i < iters; i++)
		one_write(dir, i);
	report(name, iters, t0, now_ns());
}

/* (c): read-only open + close of an existing file. */
static void bench_open_ro(const char *name, const char *dir, long iters)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/ro", dir);
	int fd;
	if (access(path, R_OK) != 0) { /* created once, by a build-process run */
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			die(path);
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write");
		close(fd);
	}
	double t0 = start();
	for (long i = 0; i < iters; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(path);
		close(fd);
	}
	report(name, iters, t0, now_ns());
}

/* getppid(): the cheapest syscall, i.e. the per-syscall entry/exit cost. */
static void bench_null(long iters)
{
	double t0 = start();
	for (long i = 0; i < iters; i++)
		syscall(SYS_getppid);
	report("null_syscall", iters, t0, now_ns());
}

/* (d): fork + exec /bin/true + wait. */
static void bench_exec(long iters)
{
	char *const argv[] = { (char *)"true", NULL };
	extern char **environ;
	double t0 = start();
	for (long i = 0; i < iters; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execve("/bin/true", argv, environ);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "micro: /bin/true failed (status 0x%x)\n", st);
			exit(2);
		}
	}
	report("exec", iters, t0, now_ns());
}

/* (e): TCP connect to a loopback listener (accepted by a thread) + close. */
static void *acceptor(void *arg)
{
	int lfd = *(int *)arg;
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED)
			return NULL;
	}
}

static void bench_connect(long iters)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	socklen_t al = sizeof(a);
	if (getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		die("getsockname");
	pthread_t th;
	if (pthread_create(&th, NULL, acceptor, &lfd) != 0)
		die("pthread_create");
	/* SO_LINGER 0: close sends RST, so the loop leaves no TIME_WAIT sockets
	 * behind and cannot run out of ephemeral ports. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	double t0 = start();
	for (long i = 0; i < iters; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("connect 127.0.0.1");
		close(fd);
	}
	report("connect", iters, t0, now_ns());
	/* the acceptor thread dies with the process */
}

static int want(int argc, char **argv, const char *name)
{
	if (argc <= 6)
		return 1;
	for (int i = 6; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: micro UNPROT_DIR PROT_DIR FILE_ITERS EXEC_ITERS CONNECT_ITERS [TEST...]\n");
		return 64;
	}
	const char *unprot = argv[1], *prot = argv[2];
	long fit = atol(argv[3]), eit = atol(argv[4]), cit = atol(argv[5]);
	memset(buf, 'x', sizeof(buf));

	if (want(argc, argv, "null_syscall"))
		bench_null(4 * fit);
	if (want(argc, argv, "write_unprot"))
		bench_write("write_unprot", unprot, fit);
	if (want(argc, argv, "write_prot"))
		bench_write("write_prot", prot, fit);
	if (want(argc, argv, "open_ro_unprot"))
		bench_open_ro("open_ro_unprot", unprot, fit);
	if (want(argc, argv, "open_ro_prot"))
		bench_open_ro("open_ro_prot", prot, fit);
	if (want(argc, argv, "exec"))
		bench_exec(eit);
	if (want(argc, argv, "connect"))
		bench_connect(cit);
	return 0;
}
