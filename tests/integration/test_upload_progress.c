/* `run` with a collector that does not answer: the person at a terminal waiting on the
 * final upload sees where it is, once a second, and how it ended; a log (stderr not a
 * terminal) gets none of those carriage-return lines. The terminal is a real pty from
 * util-linux's script(1); the collector address is a loopback port nothing listens on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/bwtest.h"
#include "lib/collector_fixture.h"

static struct bw_ws ws;

static int setup(void **state)
{
	(void)state;
	return bw_case_setup(&ws);
}

static int teardown(void **state)
{
	(void)state;
	bw_case_teardown();
	return 0;
}

/* the run command line, for script -c or for argv */
static void run_line(char *out, size_t len, const char *spool, int port)
{
	snprintf(out, len, "%s run --collector 127.0.0.1:%d --insecure --spool %s --drain-timeout 2 -- true",
		 bw_bin(), port, spool);
}

static void test_progress_on_a_terminal(void **state)
{
	char spool[PATH_MAX], cmd[PATH_MAX * 2 + 128];
	struct bw_result r = { 0 };
	int port = cf_free_port();

	(void)state;
	assert_true(port > 0);
	bw_ws_path(&ws, "spool", spool, sizeof(spool));
	assert_int_equal(mkdir(spool, 0700), 0);
	run_line(cmd, sizeof(cmd), spool, port);
	{
		const char *argv[] = { "/usr/bin/script", "-qec", cmd, "/dev/null", NULL };

		assert_int_equal(bw_spawn(argv, 60, 0, &r), 0);
	}
	if (!strstr(r.out, "events acknowledged") || !strstr(r.out, "out of time"))
		bw_result_print(cmd, &r);
	/* the pty carries the agent's stderr into script's stdout */
	assert_non_null(strstr(r.out, "buildwarden: sending to the collector (not connected): 0 of 4 events acknowledged"));
	assert_non_null(strstr(r.out, ", out of time: the rest stays in the spool"));
	assert_non_null(strstr(r.out, "4 left in the spool"));
	bw_result_free(&r);
}

static void test_no_progress_in_a_log(void **state)
{
	char spool[PATH_MAX], cmd[PATH_MAX * 2 + 128], port_s[16];
	struct bw_result r = { 0 };
	int port = cf_free_port();

	(void)state;
	assert_true(port > 0);
	bw_ws_path(&ws, "spool", spool, sizeof(spool));
	assert_int_equal(mkdir(spool, 0700), 0);
	run_line(cmd, sizeof(cmd), spool, port);
	snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", port);
	{
		const char *args[] = { "run", "--collector", port_s, "--insecure", "--spool", spool,
				       "--drain-timeout", "2", "--", "true", NULL };

		assert_int_equal(bw_run(args, 60, &r), 0);
	}
	/* the outcome is still said, in the summary */
	if (!strstr(r.err, "4 left in the spool"))
		bw_result_print(cmd, &r);
	assert_non_null(strstr(r.err, "4 left in the spool"));
	assert_null(strstr(r.err, "sending to the collector"));
	assert_null(strchr(r.err, '\r'));
	bw_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_progress_on_a_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_progress_in_a_log, setup, teardown),
	};

	bw_install_alarm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
