/* `buildwarden agent`'s events file on a long-lived host: SIGHUP reopens it after an
 * outside tool (logrotate, an operator) moved it away, and --events-max-size /
 * --events-max-files rotate it so it never grows past a bound. Runs the real binary
 * against the real kernel, as root, and reads every file back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"

static struct bw_ws ws;
static char buf[6][PATH_MAX];

static const char *p(int slot, const char *rel)
{
	return bw_ws_path(&ws, rel, buf[slot], sizeof(buf[slot]));
}

static int setup(void **state)
{
	return bw_case_setup(&ws);
}

static int teardown(void **state)
{
	bw_case_teardown();
	return 0;
}

static bool wait_for_text(const char *path, const char *needle, unsigned timeout_ms)
{
	for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
		char *s = bw_read_file(path, NULL);
		bool found = s && strstr(s, needle);

		free(s);
		if (found)
			return true;
		usleep(20000);
	}
	return false;
}

/* events in path whose file.path is file (0 when path cannot be read) */
static size_t count_path(const char *events, const char *file)
{
	struct bw_events evs;
	size_t n;

	if (bw_events_read(events, &evs))
		return 0;
	n = bw_ev_count(&evs, &(struct bw_filter){ .path = file });
	bw_events_free(&evs);
	return n;
}

static bool wait_for_event(const char *events, const char *file, unsigned timeout_ms)
{
	for (unsigned waited = 0; waited < timeout_ms; waited += 50) {
		if (count_path(events, file) > 0)
			return true;
		usleep(50000);
	}
	return false;
}

static pid_t start_agent(const char *const extra[], const char *log)
{
	const char *argv[16] = { bw_bin(), "agent", "--policy", p(0, "policy.yaml"), "--events",
				 p(1, "ev.pb") };
	size_t n = 6;
	pid_t pid;

	for (size_t i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(120);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid > 0)
		bw_track_pid(pid);
	return pid;
}

static int stop_agent(pid_t pid)
{
	int st = -1;

	kill(pid, SIGTERM);
	for (int i = 0; i < 1500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			bw_untrack_pid(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	return -1;
}

/* An outsider (not the build) writes src/<name>: one violation event per file. */
static void outsider_writes(const char *name)
{
	char rel[80];

	snprintf(rel, sizeof(rel), "src/%s", name);
	assert_int_equal(bw_ws_write(&ws, rel, "x\n", false), 0);
}

static void print_log(const char *log)
{
	char *s = bw_read_file(log, NULL);

	printf("agent log:\n%s\n", s ? s : "(none)");
	free(s);
}

static void test_sighup_reopens_moved_file(void **state)
{
	pid_t agent;

	alarm(120);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nprotect:\n  - path: %s\n", p(5, "src")), 0);
	agent = start_agent(NULL, p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 20000));

	outsider_writes("before.c");
	/* in the file before it moves, so which file gets it is not a race */
	if (!wait_for_event(p(1, "ev.pb"), p(3, "src/before.c"), 20000)) {
		print_log(p(2, "agent.log"));
		fail_msg("the first write never reached ev.pb");
	}
	assert_int_equal(rename(p(1, "ev.pb"), p(4, "ev.pb.moved")), 0);
	/* queued in the kernel before the signal is sent: it belongs in the old file, so
	 * the agent takes in what is pending before it reopens */
	outsider_writes("mid.c");
	kill(agent, SIGHUP);
	if (!wait_for_text(p(2, "agent.log"), "events file", 20000) ||
	    !wait_for_text(p(2, "agent.log"), "reopened", 1000)) {
		print_log(p(2, "agent.log"));
		fail_msg("no reopen after SIGHUP");
	}
	outsider_writes("after.c");
	if (!wait_for_event(p(1, "ev.pb"), p(3, "src/after.c"), 20000)) {
		print_log(p(2, "agent.log"));
		fail_msg("the write after SIGHUP never reached the new ev.pb");
	}
	assert_int_equal(stop_agent(agent), 77); /* the outsider's writes are violations */

	/* each event in exactly one file: the old one before, the new one after */
	assert_true(count_path(p(4, "ev.pb.moved"), p(3, "src/before.c")) >= 1);
	assert_int_equal(count_path(p(4, "ev.pb.moved"), p(3, "src/after.c")), 0);
	assert_int_equal(count_path(p(1, "ev.pb"), p(3, "src/before.c")), 0);
	assert_true(count_path(p(4, "ev.pb.moved"), p(3, "src/mid.c")) >= 1);
	assert_int_equal(count_path(p(1, "ev.pb"), p(3, "src/mid.c")), 0);
	assert_true(count_path(p(1, "ev.pb"), p(3, "src/after.c")) >= 1);
	{
		struct bw_events evs;

		/* both decode whole: the old one got its tail before it was closed */
		assert_int_equal(bw_events_read(p(4, "ev.pb.moved"), &evs), 0);
		bw_events_free(&evs);
		assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
		bw_events_free(&evs);
	}
}

#define ROT_FILES 40
#define ROT_WRITES 60

/* Many events through a 4 KiB limit: every file stays under it, each decodes alone,
 * and with enough files kept no event is missing. */
static void test_rotation_bounds_each_file(void **state)
{
	static const char *const extra[] = { "--events-max-size", "4096", "--events-max-files", "40", NULL };
	char name[64], rel[64], last[PATH_MAX];
	size_t seen[ROT_WRITES] = { 0 };
	unsigned files = 0;
	pid_t agent;

	alarm(180);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nprotect:\n  - path: %s\n", p(5, "src")), 0);
	agent = start_agent(extra, p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 20000));
	for (int i = 0; i < ROT_WRITES; i++) {
		snprintf(name, sizeof(name), "f%02d.c", i);
		outsider_writes(name);
	}
	snprintf(last, sizeof(last), "%s/src/f%02d.c", ws.path, ROT_WRITES - 1);
	/* the last write is in the live file: everything before it was handled */
	for (int waited = 0; waited < 30000 && count_path(p(1, "ev.pb"), last) == 0; waited += 100)
		usleep(100000);
	assert_int_equal(stop_agent(agent), 77);

	for (unsigned k = 0; k <= ROT_FILES + 1; k++) {
		struct bw_events evs;
		struct stat st;

		if (k)
			snprintf(rel, sizeof(rel), "ev.pb.%u", k);
		else
			snprintf(rel, sizeof(rel), "ev.pb");
		if (stat(p(5, rel), &st) < 0)
			continue;
		files++;
		assert_true(st.st_size <= 4096);
		assert_int_equal(bw_events_read(p(5, rel), &evs), 0);
		for (int i = 0; i < ROT_WRITES; i++) {
			snprintf(name, sizeof(name), "src/f%02d.c", i);
			seen[i] += bw_ev_count(&evs, &(struct bw_filter){ .path = p(3, name) });
		}
		bw_events_free(&evs);
	}
	printf("%u events files\n", files);
	assert_true(files >= 3);
	for (int i = 0; i < ROT_WRITES; i++)
		if (!seen[i]) {
			print_log(p(2, "agent.log"));
			fail_msg("no event for src/f%02d.c in any events file", i);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sighup_reopens_moved_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_bounds_each_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
