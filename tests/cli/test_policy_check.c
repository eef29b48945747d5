// SPDX-License-Identifier: MIT
/* `buildwarden policy check` for platform teams (issue 10, pain 3): --offline checks a
 * policy where its paths do not exist (a pull request's CI), ${VAR} comes from the
 * environment or --set, dangerous or dead rules are warnings printed as
 * FILE:LINE:COL: warning: ..., --strict refuses them (78), the ambiguous IPv6 form is an
 * error, and every cookbook policy of examples/policies passes --offline --strict.
 * Before issue 10 each of these was accepted silently or refused as a usage error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clicase.h"

#define EXIT_BAD_POLICY 78
#define RUN_TIMEOUT 20

static struct bw_cli S;

static void diag(void)
{
	bw_cli_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	if (bw_cli_begin(&S))
		return -1;
	*state = &S;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bw_cli_end(&S);
	return 0;
}

static void run_bw(const char *const args[])
{
	bw_result_free(&S.res);
	bw_cli_run(&S, args, RUN_TIMEOUT, 0);
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish within %u s", RUN_TIMEOUT);
}

static const char *pol(void)
{
	return bw_ws_tmp(&S.ws, "policy.yaml");
}

/* A policy that loads but leaves holes: each finding a warning with its position. */
static void test_warnings_and_strict(void **state)
{
	const char *check[] = { "policy", "check", "--offline", pol(), NULL };
	const char *strict[] = { "policy", "check", "--offline", "--strict", pol(), NULL };

	(void)state;
	alarm(3 * RUN_TIMEOUT);
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\n"
			      "protect:\n"
			      "  - path: /nonexistent/ws/out\n"
			      "    writers:\n"
			      "      - exe: /bin/sh\n"
			      "        descendants: true\n"
			      "network:\n"
			      "  default: allow\n"
			      "  allow: [\"10.0.0.0/8:443\"]\n"
			      "  deny: [\"0.0.0.0/0\", \"10.0.0.0/8:443\"]\n") == 0, "write policy");
	run_bw(check);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0: warnings do not refuse", S.res.exit_code);
	CHECK(strstr(S.res.err, "policy.yaml:5:14: warning: writer exe '/bin/sh' is a shell or interpreter"),
	      "no warning for a shell writer with descendants");
	CHECK(strstr(S.res.err, "policy.yaml:10:10: warning: '0.0.0.0/0' denies every IPv4 destination, but IPv6 stays open"),
	      "no warning for IPv6 left open");
	CHECK(strstr(S.res.err, "policy.yaml:9:11: warning: network.allow '10.0.0.0/8:443' is shadowed by network.deny"),
	      "no warning for the same destination allowed and denied");
	run_bw(strict);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "--strict: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(strstr(S.res.err, "refused with --strict"), "--strict does not say why it refused");
}

static void test_ambiguous_ipv6(void **state)
{
	const char *check[] = { "policy", "check", "--offline", pol(), NULL };

	(void)state;
	alarm(2 * RUN_TIMEOUT);
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nnetwork:\n  default: deny\n"
					   "  allow: [\"2001:db8::1:443\"]\n") == 0, "write policy");
	run_bw(check);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(strstr(S.res.err, "policy.yaml:4:11: error: ambiguous network rule '2001:db8::1:443'") &&
	      strstr(S.res.err, "write '[2001:db8::1]:443' for the port"),
	      "the ambiguous form is not refused with the reason");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nnetwork:\n  default: deny\n"
					   "  allow: [\"[2001:db8::1]:443\"]\n") == 0, "write policy");
	run_bw(check);
	CHECK(S.res.exit_code == 0, "bracketed IPv6 with a port: exit code %d", S.res.exit_code);
}

/* --offline: no file-system lookups; without it the same policy needs its paths. The
 * workspace variable comes from the environment, or --set, in both modes. */
static void test_offline_and_variables(void **state)
{
	const char *offline[] = { "policy", "check", "--offline", pol(), NULL };
	const char *online[] = { "policy", "check", pol(), NULL };
	char set[PATH_MAX + 32];
	const char *with_set[] = { "policy", "check", "--set", set, pol(), NULL };

	(void)state;
	alarm(4 * RUN_TIMEOUT);
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nprotect:\n  - path: ${BW_TEST_WS}/src\n"
					   "exec:\n  deny: [/nonexistent/drop]\n") == 0, "write policy");
	unsetenv("BW_TEST_WS");
	run_bw(offline);
	CHECK(S.res.exit_code == 0, "--offline: exit code %d, expected 0", S.res.exit_code);
	run_bw(online);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "online: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(strstr(S.res.err, "variable 'BW_TEST_WS' is not set"), "online: the unset variable is not named");
	CHECK(strstr(S.res.err, "policy.yaml:5:10: error: exec deny path '/nonexistent/drop' does not exist"),
	      "online: the missing path is not named");

	CHECK(bw_ws_mkdir(&S.ws, "src") == 0 && bw_ws_mkdir(&S.ws, "drop") == 0, "mkdir");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nprotect:\n  - path: ${BW_TEST_WS}/src\n"
					   "exec:\n  deny: [$BW_TEST_WS/drop]\n") == 0, "write policy");
	setenv("BW_TEST_WS", S.ws.path, 1);
	run_bw(online);
	CHECK(S.res.exit_code == 0, "from the environment: exit code %d, expected 0", S.res.exit_code);
	unsetenv("BW_TEST_WS");
	snprintf(set, sizeof(set), "BW_TEST_WS=%s", S.ws.path);
	run_bw(with_set);
	CHECK(S.res.exit_code == 0, "--set: exit code %d, expected 0", S.res.exit_code);
}

/* docs/policy.md's cookbook: every policy in examples/policies checks clean. */
static void test_cookbook(void **state)
{
	char dir[PATH_MAX + 32], file[PATH_MAX * 2];
	const char *args[] = { "policy", "check", "--offline", "--strict", "--set",
			       "GOTMPDIR=/tmp/go-build", file, NULL };
	unsigned n = 0;
	struct dirent *de;
	DIR *d;

	(void)state;
	alarm(10 * RUN_TIMEOUT);
	/* the source tree: the current directory (make, tests/run.sh), else the binary's */
	snprintf(dir, sizeof(dir), "examples/policies");
	if (access(dir, R_OK)) {
		char self[PATH_MAX];

		snprintf(self, sizeof(self), "%s", bw_self_exe());
		for (int up = 0; up < 4; up++)
			*strrchr(self, '/') = '\0';
		snprintf(dir, sizeof(dir), "%s/examples/policies", self);
	}
	d = opendir(dir);
	CHECK(d, "cannot open %s", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
		run_bw(args);
		CHECK(S.res.exit_code == 0 && !strstr(S.res.err, "warning"),
		      "%s: exit code %d, expected 0 without warnings", file, S.res.exit_code);
		n++;
	}
	closedir(d);
	CHECK(n >= 4, "%u cookbook policies in %s, expected 4", n, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_warnings_and_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_and_variables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cookbook, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
