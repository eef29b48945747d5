/* The guard cannot be switched off by killing it: when the agent of a `run` dies
 * (SIGKILL, as the OOM killer does it), every build process dies too, a daemonized one
 * included, the run's status is not 0 and the stream has no runEnd. A run that ends
 * normally leaves no cgroup behind. Real binary, real kernel, root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"

static struct bw_ws ws;

static int setup(void **state)
{
	return bw_case_setup(&ws);
}

static int teardown(void **state)
{
	bw_case_teardown();
	return 0;
}

/* Dead or a zombie: a zombie runs no code (this machine's init may not reap). */
static bool pid_dead(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool dead = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		dead = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return dead;
}

/* The pids the build wrote, one a line; waits (bounded) until there are n. */
static size_t read_pids(const char *path, pid_t *out, size_t n)
{
	size_t got = 0;

	for (int i = 0; i < 500 && got < n; i++) {
		FILE *f = fopen(path, "re");
		long v;

		got = 0;
		if (f) {
			while (got < n && fscanf(f, "%ld", &v) == 1)
				out[got++] = (pid_t)v;
			fclose(f);
		}
		if (got < n)
			usleep(20000);
	}
	return got;
}

/* buildwarden-* cgroups left under the cgroup v2 mount's top level (where the test's
 * own cgroup is on this machine: 0::/). */
static int leftover_cgroups(void)
{
	char mnt[256] = "", line[512];
	FILE *m = fopen("/proc/mounts", "re");
	struct dirent *d;
	DIR *dir;
	int n = 0;

	assert_non_null(m);
	while (fgets(line, sizeof(line), m)) {
		char dev[128], path[256], type[32];

		if (sscanf(line, "%127s %255s %31s", dev, path, type) == 3 && strcmp(type, "cgroup2") == 0) {
			snprintf(mnt, sizeof(mnt), "%s", path);
			break;
		}
	}
	fclose(m);
	dir = opendir(mnt);
	if (!dir)
		return 0;
	while ((d = readdir(dir)))
		n += strncmp(d->d_name, "buildwarden-", 12) == 0;
	closedir(dir);
	return n;
}

static pid_t start_run(const char *events, const char *script)
{
	pid_t run = bw_fork();

	if (run == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(bw_bin(), bw_bin(), "run", "--events", events, "--", "/bin/sh", "-c", script,
		      (char *)NULL);
		_exit(127);
	}
	assert_true(run > 0);
	bw_track_pid(run);
	return run;
}

static void test_agent_killed_kills_the_build(void **state)
{
	char events[PATH_MAX], pids[PATH_MAX], script[3 * PATH_MAX];
	pid_t run, build[2];
	struct bw_events evs;
	int st, before = leftover_cgroups();

	alarm(60);
	bw_ws_path(&ws, "ev.pb", events, sizeof(events));
	bw_ws_path(&ws, "pids", pids, sizeof(pids));
	/* the build's shell, and a daemon it leaves behind in its own session */
	snprintf(script, sizeof(script),
		 "echo $$ >> '%s'; setsid -f /bin/sh -c 'echo $$ >> \"%s\"; exec sleep 60'; exec sleep 60",
		 pids, pids);
	run = start_run(events, script);
	assert_int_equal(read_pids(pids, build, 2), 2);
	assert_false(pid_dead(build[0]));
	assert_false(pid_dead(build[1]));

	assert_int_equal(kill(run, SIGKILL), 0);
	assert_int_equal(waitpid(run, &st, 0), run);
	bw_untrack_pid(run);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL); /* the caller sees a failure */

	for (int i = 0; i < 250 && !(pid_dead(build[0]) && pid_dead(build[1])); i++)
		usleep(20000);
	if (!pid_dead(build[0]) || !pid_dead(build[1])) {
		kill(build[0], SIGKILL);
		kill(build[1], SIGKILL);
		fail_msg("build processes %d and %d outlived their agent", build[0], build[1]);
	}
	/* the watchdog removes the cgroup once it is empty */
	for (int i = 0; i < 250 && leftover_cgroups() > before; i++)
		usleep(20000);
	assert_int_equal(leftover_cgroups(), before);

	assert_int_equal(bw_events_read(events, &evs), 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_START }) == 1);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_END }), 0);
	bw_events_free(&evs);
}

/* The same build when nothing goes wrong: it runs to its end, the daemon included,
 * and the run's cgroup is gone afterwards. */
static void test_normal_run_leaves_nothing(void **state)
{
	char events[PATH_MAX], pids[PATH_MAX], script[4 * PATH_MAX], done[PATH_MAX];
	pid_t run, build[2];
	int st, before = leftover_cgroups();

	alarm(60);
	bw_ws_path(&ws, "ev.pb", events, sizeof(events));
	bw_ws_path(&ws, "pids", pids, sizeof(pids));
	bw_ws_path(&ws, "done", done, sizeof(done));
	snprintf(script, sizeof(script),
		 "echo $$ >> '%s'; setsid -f /bin/sh -c 'echo $$ >> \"%s\"; sleep 0.5; touch \"%s\"'",
		 pids, pids, done);
	run = start_run(events, script);
	assert_int_equal(read_pids(pids, build, 2), 2);
	st = bw_wait_bounded(run, 30);
	assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(access(done, F_OK), 0); /* the daemon was not killed */
	assert_int_equal(leftover_cgroups(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_killed_kills_the_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_normal_run_leaves_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
