// SPDX-License-Identifier: MIT
/* `policy learn` and `policy test` as a user meets them, no root: usage errors, a
 * missing or damaged events file (an exit status and nothing half-printed), a bad draft,
 * and both commands on a real run's events (tests/fuzz/corpus/fuzz_draft/learn-run.pb:
 * a make build that fetched from registry.test and unlisted.test, recorded by
 * test_learn_enforce). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clicase.h"

/* the README's exit statuses: the contract, so spelled out here */
#define EXIT_USAGE 64
#define EXIT_CORRUPT 65
#define EXIT_NOINPUT 66
#define EXIT_VIOLATION 77
#define EXIT_BAD_POLICY 78

#define RUN_TIMEOUT 30
#define RUN_EVENTS "tests/fuzz/corpus/fuzz_draft/learn-run.pb"

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

static void bw(const char *const args[])
{
	bw_cli_run(&S, args, RUN_TIMEOUT, 0);
	CHECK(S.ran && !S.res.timed_out, "%s did not run", S.cmdline);
}

static void expect(const char *const args[], int code, const char *in_err)
{
	bw(args);
	CHECK(S.res.exit_code == code, "exit %d, expected %d", S.res.exit_code, code);
	CHECK(!in_err || strstr(S.res.err, in_err), "stderr does not say '%s'", in_err);
}

static void test_usage(void **state)
{
	(void)state;
	expect((const char *const[]){ "policy", "learn", NULL }, EXIT_USAGE, "expected: learn EVENTS...");
	expect((const char *const[]){ "policy", "learn", "--bogus", "x", NULL }, EXIT_USAGE,
	       "unknown flag '--bogus'");
	expect((const char *const[]){ "policy", "test", RUN_EVENTS, NULL }, EXIT_USAGE,
	       "expected: test --policy FILE EVENTS...");
	expect((const char *const[]){ "policy", "test", "--policy", NULL }, EXIT_USAGE,
	       "flag '--policy' needs a value");
	expect((const char *const[]){ "policy", "frobnicate", NULL }, EXIT_USAGE, NULL);
	bw((const char *const[]){ "policy", "--help", NULL });
	CHECK(S.res.exit_code == 0 && strstr(S.res.out, "buildwarden policy learn EVENTS...") &&
	      strstr(S.res.out, "buildwarden policy test --policy FILE EVENTS..."),
	      "policy --help does not show learn and test");
}

static void test_bad_input(void **state)
{
	static const uint8_t damaged[] = { 0x05, 0x0a, 0x03, 'a', 'b' }; /* a frame cut short */
	char path[PATH_MAX];
	FILE *f;

	(void)state;
	expect((const char *const[]){ "policy", "learn", bw_ws_tmp(&S.ws, "none.pb"), NULL },
	       EXIT_NOINPUT, "none.pb");
	CHECK(S.res.out_len == 0, "learn printed a proposal for a missing file");
	snprintf(path, sizeof(path), "%s", bw_ws_tmp(&S.ws, "damaged.pb"));
	f = fopen(path, "we");
	CHECK(f && fwrite(damaged, 1, sizeof(damaged), f) == sizeof(damaged) && fclose(f) == 0,
	      "write damaged.pb");
	/* a good file, then a damaged one: nothing is proposed from half the input */
	expect((const char *const[]){ "policy", "learn", RUN_EVENTS, path, NULL }, EXIT_CORRUPT,
	       "damaged.pb");
	CHECK(S.res.out_len == 0, "learn printed a proposal from a damaged file");
	CHECK(bw_write_file(bw_ws_tmp(&S.ws, "bad.yaml"), "version: 1\nnetwork:\n  default: maybe\n",
			    0644) == 0, "write bad.yaml");
	expect((const char *const[]){ "policy", "test", "--policy", bw_ws_tmp(&S.ws, "bad.yaml"),
				      RUN_EVENTS, NULL }, EXIT_BAD_POLICY, "bad.yaml:3:");
}

static void test_learn_and_test(void **state)
{
	char draft[PATH_MAX];

	(void)state;
	bw((const char *const[]){ "policy", "learn", RUN_EVENTS, NULL });
	CHECK(S.res.exit_code == 0, "learn exited %d", S.res.exit_code);
	CHECK(strstr(S.res.out, "version: 1\n") && strstr(S.res.out, "  default: deny\n"),
	      "learn's proposal is not a policy");
	CHECK(strstr(S.res.out, "    - \"registry.test:") && strstr(S.res.out, "    - \"unlisted.test:"),
	      "learn did not propose both names the build reached");
	CHECK(S.res.err_len == 0, "learn wrote to stderr off a terminal");

	snprintf(draft, sizeof(draft), "%s", bw_ws_tmp(&S.ws, "draft.yaml"));
	/* nothing allowed: both connects would be flagged */
	CHECK(bw_write_file(draft, "version: 1\nnetwork:\n  default: deny\n", 0644) == 0, "write");
	expect((const char *const[]){ "policy", "test", "--policy", draft, RUN_EVENTS, NULL },
	       EXIT_VIOLATION, NULL);
	CHECK(strstr(S.res.out, "newly flagged: connect 127.0.0.2:") &&
	      strstr(S.res.out, "(registry.test) (network.default: deny): 1 time, e.g. "),
	      "policy test does not say the registry's connect would be flagged");
	CHECK(strstr(S.res.out, ": 2 newly flagged, 0 no longer flagged, 2 flagged under the draft\n"),
	      "policy test does not count two changes");
	/* the names allowed, any port: nothing changes */
	CHECK(bw_write_file(draft, "version: 1\nnetwork:\n  default: deny\n"
				   "  allow: [\"registry.test\", \"unlisted.test\"]\n", 0644) == 0, "write");
	expect((const char *const[]){ "policy", "test", "--policy", draft, RUN_EVENTS, NULL }, 0, NULL);
	CHECK(strstr(S.res.out, ": 0 newly flagged, 0 no longer flagged, 0 flagged under the draft\n"),
	      "policy test shows a change under a draft that allows both names");
	/* by address instead of by name: the same decision, through the address rules */
	CHECK(bw_write_file(draft, "version: 1\nnetwork:\n  default: deny\n"
				   "  allow: [\"127.0.0.2\"]\n  deny: [\"127.0.0.4\"]\n", 0644) == 0, "write");
	expect((const char *const[]){ "policy", "test", "--policy", draft, RUN_EVENTS, NULL },
	       EXIT_VIOLATION, NULL);
	CHECK(strstr(S.res.out, "(unlisted.test) (denied by '127.0.0.4'): 1 time"),
	      "policy test does not name the deny rule that decides");
	CHECK(strstr(S.res.out, ": 1 newly flagged, 0 no longer flagged, 1 flagged under the draft\n"),
	      "policy test does not count one change");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_and_test, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
