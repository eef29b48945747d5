// SPDX-License-Identifier: MIT
/* The command line as a user meets it, without root: usage errors, `policy check`,
 * `decode`, a bad policy given to `run`, and `run` by a user who cannot load the
 * sensor. Each case execs build/buildwarden ($BW_BIN) and checks the exit status
 * the README promises and that stderr says where the problem is (the flag, the
 * FILE:LINE:COL, the byte offset). Nothing here loads eBPF, so tests/run.sh runs
 * this tier whoever runs it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clicase.h"

/* the README's exit statuses: the contract, so spelled out here, not included */
#define EXIT_USAGE 64
#define EXIT_CORRUPT 65
#define EXIT_NOINPUT 66
#define EXIT_NO_SENSOR 71
#define EXIT_BAD_POLICY 78

#define RUN_TIMEOUT 20

static struct bw_cli S;

/* Prints the command and what it printed once, before a failure. */
static void diag(void)
{
	bw_cli_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&S.ws, rel);
}

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

/* Runs `buildwarden ARGS...` (flags: BW_SPAWN_*) and keeps the result in S. */
static void spawn_bw(const char *const args[], unsigned flags)
{
	bw_cli_run(&S, args, RUN_TIMEOUT, flags);
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish within %u s", RUN_TIMEOUT);
}

static void run_bw(const char *const args[])
{
	spawn_bw(args, 0);
}

static const char *out_and_err_contains(const char *needle)
{
	const char *p = strstr(S.res.err, needle);

	return p ? p : strstr(S.res.out, needle);
}

static const char bad_policy[] =
	"version: 1\n"
	"mode: audit\n"
	"protect:\n"
	"  - path: src\n"
	"    wrtiers:\n"
	"      - exe: /usr/bin/rsync\n";

static const char good_policy[] =
	"version: 1\n"
	"mode: audit\n"
	"protect:\n"
	"  - path: src\n"
	"  - path: out\n";

/* ---- usage errors -------------------------------------------------------- */

struct usage_case {
	const char *args[8];
	const char *where; /* what stderr must name */
};

/* Every bad command line: 64, the problem named, the usage text, and CMD not run. */
static void test_usage_errors(void **state)
{
	const char *marker = wsp("marker");
	const struct usage_case cases[] = {
		{ { NULL }, "missing subcommand" },
		{ { "frob", NULL }, "'frob'" },
		{ { "run", NULL }, "needs a command" },
		{ { "run", "--", NULL }, "needs a command" },
		{ { "run", "--mode", "bogus", "--", "/usr/bin/touch", marker, NULL }, "'bogus'" },
		{ { "run", "--frobnicate", "--", "/usr/bin/touch", marker, NULL }, "'--frobnicate'" },
		{ { "run", "--spool-max", "lots", "--", "/usr/bin/touch", marker, NULL }, "'lots'" },
		{ { "run", "--collector", "127.0.0.1:1", "--", "/usr/bin/touch", marker, NULL }, "--tls-cert" },
		{ { "run", "--spool", marker, "--", "/usr/bin/touch", marker, NULL }, "--collector" },
		{ { "run", "--dns-upstream", "dns.example", "--", "/usr/bin/touch", marker, NULL }, "'dns.example'" },
		{ { "run", "--dns-upstream", "127.0.0.1:0", "--", "/usr/bin/touch", marker, NULL }, "'127.0.0.1:0'" },
		{ { "agent", "--policy", "p.yaml", "--dns-upstream", "[::1", NULL }, "'[::1'" },
		/* the build shares stdout: it could forge frames (a fake runEnd) */
		{ { "run", "--events", "-", "--", "/usr/bin/touch", marker, NULL }, "'--events -'" },
		{ { "run", "--user", "no-such-user-bw", "--", "/usr/bin/touch", marker, NULL }, "'no-such-user-bw'" },
		{ { "run", "--user", "nobody:no-such-group-bw", "--", "/usr/bin/touch", marker, NULL }, "'no-such-group-bw'" },
		{ { "agent", NULL }, "--policy" },
		{ { "agent", "--policy", "p.yaml", "--user", "nobody", NULL }, "--user is a flag of run" },
		{ { "agent", "--policy", "p.yaml", "extra", NULL }, "'extra'" },
		{ { "policy", NULL }, "policy check FILE" },
		{ { "policy", "chek", "p.yaml", NULL }, "policy check FILE" },
		{ { "decode", "a.pb", "b.pb", NULL }, "decode [--emit-defaults] [--format json|text] [FILE|-]" },
		{ { "collector", NULL }, "--listen" },
		{ { "collector", "--listen", "127.0.0.1:1", NULL }, "--db" },
		{ { "query", NULL }, "--db" },
		{ { "query", "--db", marker, NULL }, "--violations" },
		{ { "query", "--db", marker, "--since", "soon", "--violations", NULL }, "'soon'" },
	};

	(void)state;
	alarm(RUN_TIMEOUT * 4 + 10);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_bw(cases[i].args);
		CHECK(S.res.exit_code == EXIT_USAGE, "`%s`: exit code %d, expected %d", S.cmdline, S.res.exit_code,
		      EXIT_USAGE);
		CHECK(strstr(S.res.err, cases[i].where), "`%s`: stderr does not name %s", S.cmdline, cases[i].where);
		CHECK(strstr(S.res.err, "usage: buildwarden"), "`%s`: stderr has no usage text", S.cmdline);
		CHECK(access(marker, F_OK) != 0, "`%s`: the command ran despite the bad command line", S.cmdline);
	}
}

static void test_help_and_version(void **state)
{
	const char *help[] = { "--help", NULL };
	const char *run_help[] = { "run", "--help", NULL };
	const char *version[] = { "version", NULL };

	(void)state;
	alarm(RUN_TIMEOUT * 3 + 10);
	run_bw(help);
	CHECK(S.res.exit_code == 0 && strstr(S.res.out, "usage: buildwarden run"), "--help: no usage on stdout");
	run_bw(run_help);
	CHECK(S.res.exit_code == 0 && strstr(S.res.out, "usage: buildwarden run"), "run --help: no usage on stdout");
	run_bw(version);
	CHECK(S.res.exit_code == 0 && !strncmp(S.res.out, "buildwarden ", 12), "version: exit %d, stdout '%s'",
	      S.res.exit_code, S.res.out);
}

/* ---- policies ------------------------------------------------------------ */

/* `run` refuses a bad policy before it loads anything, so this holds without root. */
static void test_bad_policy(void **state)
{
	const char *args[] = { "run", "--policy", wsp("policy.yaml"), "--", "/usr/bin/touch", wsp("marker"), NULL };

	(void)state;
	alarm(RUN_TIMEOUT + 10);
	CHECK(bw_ws_mkdir(&S.ws, "src") == 0, "mkdir src");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", bad_policy) == 0, "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "exit code %d, expected %d", S.res.exit_code, EXIT_BAD_POLICY);
	CHECK(strstr(S.res.err, "policy.yaml:5:5: error: unknown key"),
	      "stderr does not contain \"policy.yaml:5:5: error: unknown key\"");
	CHECK(access(wsp("marker"), F_OK) != 0, "the command ran despite the bad policy");
}

static void test_policy_check(void **state)
{
	const char *args[] = { "policy", "check", wsp("policy.yaml"), NULL };
	const char *missing[] = { "policy", "check", wsp("nope.yaml"), NULL };

	(void)state;
	alarm(4 * RUN_TIMEOUT + 10);
	CHECK(bw_ws_mkdir(&S.ws, "src") == 0, "mkdir src");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", bad_policy) == 0, "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "exit code %d, expected %d", S.res.exit_code, EXIT_BAD_POLICY);
	CHECK(out_and_err_contains("policy.yaml:5:5: error: unknown key"),
	      "output does not contain \"policy.yaml:5:5: error: unknown key\"");

	/* a bad CIDR: error on its line */
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nprotect:\n  - path: src\nnetwork:\n  default: deny\n"
			      "  allow: [\"127.0.0.1/32\", \"10.0.0.0/33\"]\n") == 0, "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "bad CIDR: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(out_and_err_contains("policy.yaml:7:"), "bad CIDR: output does not name policy.yaml:7:");

	/* a protected tree that does not exist: named with its line */
	CHECK(bw_write_policy(&S.ws, NULL, "%s", good_policy) == 0, "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "missing out/: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(out_and_err_contains("policy.yaml:5:"), "missing out/: output does not name policy.yaml:5:");

	/* a good one */
	CHECK(bw_ws_mkdir(&S.ws, "out") == 0, "mkdir out");
	run_bw(args);
	CHECK(S.res.exit_code == 0, "good policy: exit code %d, expected 0", S.res.exit_code);
	CHECK(strstr(S.res.out, "policy.yaml: ok"), "good policy: stdout does not say ok");

	/* names in network.allow (issue 10: 'github.com' was "not an IPv4 address") */
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nnetwork:\n  default: deny\n"
			      "  allow: [\"github.com:443\", \"*.githubusercontent.com:443\", \"10.0.0.0/8\"]\n") == 0,
	      "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == 0, "names: exit code %d, expected 0", S.res.exit_code);
	CHECK(strstr(S.res.out, "1 allow, 2 allow by name and 0 deny network rules"),
	      "names: stdout does not count the name rules");
	/* a name in deny: refused, with its place */
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nnetwork:\n  deny: [\"evil.example\"]\n") == 0,
	      "write policy");
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "name in deny: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(out_and_err_contains("policy.yaml:3:10: error: 'evil.example': a name is allowed only in network.allow"),
	      "name in deny: output does not say where and why");

	/* no such file: its name */
	run_bw(missing);
	CHECK(S.res.exit_code == EXIT_BAD_POLICY, "missing file: exit code %d, expected %d", S.res.exit_code,
	      EXIT_BAD_POLICY);
	CHECK(out_and_err_contains("nope.yaml"), "missing file: output does not name nope.yaml");
}

/* ---- decode -------------------------------------------------------------- */

/* One frame: varint length + Event{seq}. Returns bytes written. */
static size_t put_frame(uint8_t *buf, uint64_t seq)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunEnd end = BUILDWARDEN__V1__RUN_END__INIT;
	size_t len;

	ev.seq = seq;
	ev.run_id = (char *)"bwtest";
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &end;
	len = buildwarden__v1__event__get_packed_size(&ev);
	assert_true(len < 128);
	buf[0] = (uint8_t)len;
	buildwarden__v1__event__pack(&ev, buf + 1);
	return 1 + len;
}

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len, "write %s", path);
	close(fd);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_decode(void **state)
{
	const char *args[] = { "decode", wsp("ev.pb"), NULL };
	uint8_t buf[512];
	size_t off = 0;

	(void)state;
	alarm(RUN_TIMEOUT + 10);
	off += put_frame(buf + off, 1);
	off += put_frame(buf + off, 2);
	write_bytes(wsp("ev.pb"), buf, off);
	run_bw(args);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	CHECK(count_lines(S.res.out) == 2, "%zu JSON lines, expected 2", count_lines(S.res.out));
	CHECK(strstr(S.res.out, "\"runEnd\"") && strstr(S.res.out, "\"bwtest\""), "the events are not in the JSON");
}

/* For pipelines and people (issue 10): a "kind" to select on, default values on
 * request (runEnd.drops == 0 is otherwise absent), and one readable line per event. */
static void test_decode_forms(void **state)
{
	const char *json[] = { "decode", wsp("ev.pb"), NULL };
	const char *defaults[] = { "decode", "--emit-defaults", wsp("ev.pb"), NULL };
	const char *text[] = { "decode", "--format", "text", wsp("ev.pb"), NULL };
	const char *bad[] = { "decode", "--format", "yaml", wsp("ev.pb"), NULL };
	uint8_t buf[512];
	size_t off = 0;

	(void)state;
	alarm(4 * RUN_TIMEOUT + 10);
	off += put_frame(buf + off, 1);
	write_bytes(wsp("ev.pb"), buf, off);
	run_bw(json);
	CHECK(S.res.exit_code == 0 && !strncmp(S.res.out, "{\"kind\":\"run_end\",", 18),
	      "JSON does not start with the kind");
	CHECK(!strstr(S.res.out, "\"drops\""), "a default value printed without --emit-defaults");
	run_bw(defaults);
	CHECK(S.res.exit_code == 0 && strstr(S.res.out, "\"drops\":\"0\"") &&
	      strstr(S.res.out, "\"exitStatus\":0"), "--emit-defaults: runEnd.drops == 0 not printed");
	run_bw(text);
	CHECK(S.res.exit_code == 0 && strstr(S.res.out, " run bwtest #1 run_end exit 0, 0 events, 0 violations, 0 drops\n") &&
	      count_lines(S.res.out) == 1, "--format text: not one readable line");
	run_bw(bad);
	CHECK(S.res.exit_code == EXIT_USAGE && strstr(S.res.err, "'yaml'"), "--format yaml: not a usage error");
}

static void test_decode_corrupt(void **state)
{
	const char *args[] = { "decode", wsp("bad.pb"), NULL };
	const char *missing[] = { "decode", wsp("nope.pb"), NULL };
	uint8_t buf[512];
	char want[32];
	size_t off = 0;
	struct bw_events own;

	(void)state;
	alarm(3 * RUN_TIMEOUT + 10);
	/* pure garbage: an over-long varint at offset 0 */
	memset(buf, 0xff, 16);
	write_bytes(wsp("bad.pb"), buf, 16);
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_CORRUPT, "garbage: exit code %d, expected %d", S.res.exit_code, EXIT_CORRUPT);
	CHECK(strstr(S.res.err, "offset"), "garbage: stderr does not name an offset");

	/* two good frames, then one whose length runs past the end of the file */
	off += put_frame(buf + off, 1);
	off += put_frame(buf + off, 2);
	snprintf(want, sizeof(want), "%zu", off);
	buf[off] = 100;
	memcpy(buf + off + 1, "abcd", 4);
	CHECK(bw_events_parse(buf, off + 5, &own) == -1 && own.n == 2 && own.err_offset == (long)off,
	      "our own reader disagrees with the fixture");
	bw_events_free(&own);
	write_bytes(wsp("bad.pb"), buf, off + 5);
	run_bw(args);
	CHECK(S.res.exit_code == EXIT_CORRUPT, "truncated: exit code %d, expected %d", S.res.exit_code,
	      EXIT_CORRUPT);
	CHECK(strstr(S.res.err, "offset") && strstr(S.res.err, want),
	      "truncated: stderr does not name offset %s", want);
	CHECK(count_lines(S.res.out) == 2, "truncated: %zu JSON lines before the error, expected the 2 good events",
	      count_lines(S.res.out));

	run_bw(missing);
	CHECK(S.res.exit_code == EXIT_NOINPUT, "missing file: exit code %d, expected %d", S.res.exit_code,
	      EXIT_NOINPUT);
	CHECK(strstr(S.res.err, "nope.pb"), "missing file: stderr does not name it");
}

/* ---- no privileges ------------------------------------------------------- */

/* Without privileges `run` cannot load the sensor: 71 and why, CMD not run. As root
 * the binary is started as uid 65534 to see the same. */
static void test_run_not_root(void **state)
{
	const char *args[] = { "run", "--", "/usr/bin/touch", wsp("marker"), NULL };

	(void)state;
	alarm(RUN_TIMEOUT + 10);
	/* let uid 65534 create the marker if the product wrongly ran CMD */
	CHECK(chmod(S.ws.path, 0777) == 0, "chmod workspace");
	spawn_bw(args, geteuid() == 0 ? BW_SPAWN_AS_NOBODY : 0);
	CHECK(S.res.exit_code == EXIT_NO_SENSOR, "exit code %d as uid %d, expected %d", S.res.exit_code,
	      geteuid() == 0 ? 65534 : (int)geteuid(), EXIT_NO_SENSOR);
	CHECK(strcasestr(S.res.err, "root") || strcasestr(S.res.err, "privilege") ||
	      strcasestr(S.res.err, "permission") || strcasestr(S.res.err, "capabilit") ||
	      strcasestr(S.res.err, "CAP_"),
	      "stderr does not say why the sensor cannot start");
	CHECK(access(wsp("marker"), F_OK) != 0, "the command ran although the sensor could not start");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_not_root, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
