/* `buildwarden run` returns when the build's outcome is known, and leaves the kernel's
 * detach of its programs (RCU grace periods: 0.4-1.3 s on our hosts) to a child,
 * "bw-detach", that waits for run's exit (sensor__close_after_exit). What that must
 * not change:
 *  - the programs are disarmed before run returns: an outsider writing a protected file
 *    right after an enforce run is not killed, though the child may still hold them;
 *  - the child ends by itself, with status 0 (it detached everything);
 *  - it holds nothing of run's: run's stdout and stderr pipes reach their end when run
 *    exits (bw_spawn reads them to the end before it reaps run).
 * This test process is a child subreaper, so the orphaned child comes back to it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

static int outsider_appends(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_WRONLY | O_APPEND);

	if (fd < 0)
		return 1;
	if (write(fd, "after\n", 6) != 6)
		return 2;
	return close(fd) ? 3 : 0;
}

/* The child named name among those this process inherits, once it exits (within
 * timeout_s): its pid and wait status; -1 when none came. Others (run's own children
 * it left to exit, e.g. a feature probe's) are reaped and passed over. */
static pid_t inherited_child(const char *name, unsigned timeout_s, int *status)
{
	for (unsigned i = 0; i < timeout_s * 20; i++) {
		siginfo_t si = { 0 };
		char path[64], comm[32] = "";
		FILE *f;

		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid <= 0) {
			usleep(50000);
			continue;
		}
		/* a zombie still has its name */
		snprintf(path, sizeof(path), "/proc/%d/comm", si.si_pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		if (waitpid(si.si_pid, status, 0) != si.si_pid)
			return -1;
		if (!strcmp(comm, name))
			return si.si_pid;
	}
	return -1;
}

static void test_run_returns_before_the_detach(void **state)
{
	char policy[PATH_MAX], src[PATH_MAX], ev[PATH_MAX], file[PATH_MAX];
	const char *argv[] = { bw_bin(), "run", "--mode", "enforce", "--policy", policy, "--events", ev,
			       "--", "/bin/true", NULL };
	struct bw_result r = { 0 };
	pid_t outsider, child;
	int st;
	char *content;

	alarm(120);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_ws_write(&ws, "src/a.c", "int a;\n", false), 0);
	bw_ws_path(&ws, "src", src, sizeof(src));
	bw_ws_path(&ws, "src/a.c", file, sizeof(file));
	bw_ws_path(&ws, "ev.pb", ev, sizeof(ev));
	bw_ws_path(&ws, "policy.yaml", policy, sizeof(policy));
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nprotect:\n  - path: %s\n", src), 0);

	assert_int_equal(bw_spawn(argv, 60, 0, &r), 0);
	if (r.exit_code != 0 || !strstr(r.err, "build finished"))
		fail_msg("run --mode enforce -- /bin/true failed (%d):\n%s", r.exit_code, r.err);

	/* run is over; its programs may still be attached in the child: disarmed */
	outsider = bw_fork_outsider(outsider_appends, file);
	assert_true(outsider > 0);
	st = bw_wait_bounded(outsider, 30);
	bw_untrack_pid(outsider);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("an outsider's write after the run was stopped (wait status %#x): the "
			 "programs left to the detaching child were still armed", st);
	content = bw_read_file(file, NULL);
	assert_non_null(content);
	assert_string_equal(content, "int a;\nafter\n");
	free(content);

	child = inherited_child("bw-detach", 30, &st);
	if (child < 0)
		fail_msg("no bw-detach child of run's came back to this subreaper within 30 s: run "
			 "detached its programs itself, or the child is stuck");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("bw-detach (pid %d) ended with wait status %#x", (int)child, st);
	printf("MEASURED: bw-detach pid %d exited 0 after run had returned\n", (int)child);
	bw_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_returns_before_the_detach, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
