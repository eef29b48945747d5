/* Issue 10, pain 3 (and the parser side of 4 and 5): what `policy check` says about a
 * policy that loads but is dangerous or dead (warnings, with their positions), the
 * ambiguous IPv6 form, ${VAR} and ~ in paths (--set, environment, --offline), rule
 * names, port ranges and lists, and exec.allow. Pure: no file system (NO_FS) except
 * where a test says so. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static struct bw_diags D;

static struct bw_policy *parse_vars(const char *y, unsigned flags, const char *const *vars,
				    size_t n_vars)
{
	struct bw_policy_opts o = { .flags = flags, .vars = vars, .n_vars = n_vars };
	struct bw_policy *p = NULL;

	if (policy__parse_opts(y, strlen(y), "p.yaml", "/base", &o, &p, &D))
		return NULL;
	return p;
}

static struct bw_policy *parse(const char *y)
{
	return parse_vars(y, BW_POLICY_NO_FS, NULL, 0);
}

/* The one diagnostic holding want: its position and kind. */
static void expect_diag(unsigned line, unsigned col, bool warning, const char *want)
{
	for (size_t i = 0; i < D.n; i++) {
		if (strstr(D.items[i].msg, want)) {
			assert_int_equal(D.items[i].line, line);
			assert_int_equal(D.items[i].col, col);
			assert_int_equal(D.items[i].warning, warning);
			return;
		}
	}
	for (size_t i = 0; i < D.n; i++)
		print_message("  %u:%u: %s\n", D.items[i].line, D.items[i].col, D.items[i].msg);
	fail_msg("no diagnostic holding \"%s\"", want);
}

static size_t n_warnings(void)
{
	size_t n = 0;

	for (size_t i = 0; i < D.n; i++)
		n += D.items[i].warning;
	return n;
}

/* ---- warnings ---------------------------------------------------------------- */

static void test_lint__ipv4_deny_all_leaves_ipv6_open(void **state)
{
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nnetwork:\n  default: allow\n  deny: [\"0.0.0.0/0\"]\n");
	assert_non_null(p); /* legal: a warning, not an error */
	expect_diag(4, 10, true, "IPv6 stays open");
	policy__free(p);
	p = parse("version: 1\nnetwork:\n  default: allow\n  deny: [\"0.0.0.0/0\", \"::/0\"]\n");
	assert_non_null(p);
	assert_int_equal(n_warnings(), 0);
	policy__free(p);
}

static void test_lint__interpreter_writer(void **state)
{
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nprotect:\n  - path: /w/out\n    writers:\n"
		  "      - exe: /bin/sh\n        descendants: true\n"
		  "      - exe: /usr/bin/python3.12\n      - exe: /usr/bin/rsync\n");
	assert_non_null(p);
	expect_diag(5, 14, true, "writer exe '/bin/sh' is a shell or interpreter");
	expect_diag(5, 14, true, "descendants: true");
	expect_diag(7, 14, true, "writer exe '/usr/bin/python3.12' is a shell or interpreter");
	assert_int_equal(n_warnings(), 2); /* rsync is neither */
	policy__free(p);
}

static void test_lint__same_destination_allowed_and_denied(void **state)
{
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nnetwork:\n  default: deny\n"
		  "  allow: [\"10.0.0.0/8:443\", \"10.1.0.0/16\"]\n"
		  "  deny: [\"10.0.0.0/8:443\", \"10.1.0.0/16:22\"]\n");
	assert_non_null(p);
	expect_diag(4, 11, true, "network.allow '10.0.0.0/8:443' is shadowed by network.deny '10.0.0.0/8:443'");
	/* a port-specific deny inside an any-port allow is an exception, not a shadow */
	assert_int_equal(n_warnings(), 1);
	policy__free(p);
}

static void test_lint__duplicates_and_dead_rules(void **state)
{
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nnetwork:\n  default: deny\n"
		  "  allow: [\"10.0.0.0/8\", \"10.0.0.0/8\", \"github.com:443\", \"github.com:443\"]\n"
		  "  deny: [\"192.168.0.0/16\"]\n"
		  "exec:\n  deny: [/tmp, /tmp/sub, /dev/shm, /tmp]\n");
	assert_non_null(p);
	expect_diag(4, 25, true, "network.allow '10.0.0.0/8' is covered by '10.0.0.0/8' (line 4)");
	expect_diag(4, 57, true, "network.allow 'github.com:443' is covered by");
	expect_diag(5, 10, true, "network.deny '192.168.0.0/16' has no effect: 'default: deny'");
	expect_diag(7, 16, true, "exec deny path '/tmp/sub' is inside exec deny path '/tmp'");
	expect_diag(7, 36, true, "exec deny path '/tmp' is listed twice (line 7)");
	policy__free(p);

	p = parse("version: 1\nnetwork:\n  default: allow\n  allow: [\"10.0.0.0/8\"]\n");
	assert_non_null(p);
	expect_diag(4, 11, true, "network.allow '10.0.0.0/8' has no effect: 'default: allow'");
	policy__free(p);
}

static void test_lint__warnings_printed_as_such(void **state)
{
	struct bw_policy *p;
	char out[1024] = "";
	FILE *f;

	(void)state;
	p = parse("version: 1\nnetwork:\n  deny: [\"0.0.0.0/0\"]\n");
	assert_non_null(p);
	f = fmemopen(out, sizeof(out), "w");
	assert_non_null(f);
	policy__print_diags(&D, "p.yaml", f);
	fclose(f);
	assert_non_null(strstr(out, "p.yaml:3:10: warning: '0.0.0.0/0' denies every IPv4"));
	policy__free(p);
	assert_null(parse("version: 2\n"));
	f = fmemopen(out, sizeof(out), "w");
	policy__print_diags(&D, "p.yaml", f);
	fclose(f);
	assert_string_equal(out, "p.yaml:1:10: error: unsupported version 2\n");
}

/* ---- addresses ---------------------------------------------------------------- */

static void test_lint__ipv6_ports(void **state)
{
	struct bw_net_rule r;
	char err[240];

	(void)state;
	assert_int_equal(policy__parse_net_rule("[2001:db8::1]:443", &r, err, sizeof(err)), 0);
	assert_int_equal(r.port, 443);
	assert_int_equal(r.prefix_len, 128);
	/* "2001:db8::1:443" is an address, but likely meant a port: refused, saying why */
	assert_int_equal(policy__parse_net_rule("2001:db8::1:443", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ambiguous network rule '2001:db8::1:443': it reads as the address 2001:db8::1:443 (any port), but may mean port 443 of 2001:db8::1; write '[2001:db8::1]:443' for the port, or '[2001:db8::1:443]' for the address");
	/* the bracketed address is the address, and plain forms that cannot mean a port stay */
	assert_int_equal(policy__parse_net_rule("[2001:db8::1:443]", &r, err, sizeof(err)), 0);
	assert_int_equal(r.port, 0);
	assert_int_equal(policy__parse_net_rule("fe80::1", &r, err, sizeof(err)), 0);
	assert_int_equal(policy__parse_net_rule("::1", &r, err, sizeof(err)), 0);
	assert_int_equal(policy__parse_net_rule("2001:db8::53", &r, err, sizeof(err)), 0);
	assert_int_equal(policy__parse_net_rule("2001:db8::/32", &r, err, sizeof(err)), 0);
}

static void test_lint__port_ranges_and_lists(void **state)
{
	struct bw_net_rule r;
	struct bw_policy *p;
	uint8_t a[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 1 };
	const char *rule;
	char err[240];

	(void)state;
	assert_int_equal(policy__parse_net_rule("10.0.0.0/8:1000-2000", &r, err, sizeof(err)), 0);
	assert_int_equal(r.port, 1000);
	assert_int_equal(r.port_hi, 2000);
	assert_int_equal(policy__parse_net_rule("10.0.0.0/8:2000-1000", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad port range in '10.0.0.0/8:2000-1000': 2000 is above 1000");
	assert_int_equal(policy__parse_net_rule("10.0.0.0/8:0-10", &r, err, sizeof(err)), -EINVAL);

	p = parse("version: 1\nnetwork:\n  default: deny\n"
		  "  allow: [\"10.0.0.0/8:1000-2000\", {to: \"10.0.0.0/8:80,443\", name: web}]\n");
	assert_non_null(p);
	assert_int_equal(p->n_net_allow, 3); /* the list is one entry per element */
	assert_string_equal(p->net_allow[1].name, "web");
	assert_string_equal(p->net_allow[2].text, "10.0.0.0/8:80,443");
	assert_int_equal(policy__net_verdict(p, a, 1000, &rule), 1);
	assert_int_equal(policy__net_verdict(p, a, 2000, &rule), 1);
	assert_int_equal(policy__net_verdict(p, a, 443, &rule), 1);
	assert_string_equal(rule, "10.0.0.0/8:80,443");
	assert_int_equal(policy__net_verdict(p, a, 999, &rule), 0);
	assert_int_equal(policy__net_verdict(p, a, 2001, &rule), 0);
	assert_int_equal(policy__net_verdict(p, a, 444, &rule), 0);
	policy__free(p);

	/* names: a list is fine (one name rule per port), a range is not */
	p = parse("version: 1\nnetwork:\n  default: deny\n  allow: [\"github.com:443,80\"]\n");
	assert_non_null(p);
	assert_int_equal(p->n_net_allow_names, 2);
	assert_int_equal(p->net_allow_names[1].port, 80);
	policy__free(p);
	assert_null(parse("version: 1\nnetwork:\n  allow: [\"github.com:1000-2000\"]\n"));
	expect_diag(3, 11, false, "a name rule takes single ports, not a range");

	/* the kernel holds one entry per port: a policy past the bound says why */
	assert_null(parse("version: 1\nnetwork:\n  default: deny\n  allow: [\"10.0.0.0/8:1-65535\"]\n"));
	expect_diag(4, 11, false, "more than 32768 kernel entries");
}

/* ---- variables ------------------------------------------------------------------- */

static void test_lint__variables(void **state)
{
	const char *vars[] = { "WS=/home/runner/work/repo", "HOME=/home/runner", "WS=/w" };
	struct bw_policy *p;

	(void)state;
	/* --set: the last one given wins; ~ is HOME; $$ is a '$' */
	p = parse_vars("version: 1\nprotect:\n  - path: ${WS}/out\n  - path: ~/cache\n"
		       "  - path: $WS/a$$b\n",
		       BW_POLICY_NO_FS, vars, 3);
	assert_non_null(p);
	assert_string_equal(p->protect[0].path, "/w/out");
	assert_string_equal(p->protect[1].path, "/home/runner/cache");
	assert_string_equal(p->protect[2].path, "/w/a$b");
	policy__free(p);

	/* not set: an error saying how to set it, unless offline, where it stands for itself */
	assert_null(parse_vars("version: 1\nprotect:\n  - path: ${BW_SURELY_UNSET}/out\n", 0, NULL, 0));
	expect_diag(3, 11, false, "variable 'BW_SURELY_UNSET' is not set; set it in the environment or with --set BW_SURELY_UNSET=VALUE");
	p = parse("version: 1\nprotect:\n  - path: ${BW_SURELY_UNSET}/out\n"
		  "    writers:\n      - exe: ${BW_SURELY_UNSET}/bin/tool\n");
	assert_non_null(p);
	assert_string_equal(p->protect[0].path, "${BW_SURELY_UNSET}/out");
	assert_string_equal(p->protect[0].writers[0].exe, "${BW_SURELY_UNSET}/bin/tool");
	policy__free(p);

	assert_null(parse("version: 1\nprotect:\n  - path: /a/$/b\n"));
	expect_diag(3, 11, false, "a '$' must start a variable");
	assert_null(parse("version: 1\nprotect:\n  - path: ~root/x\n"));
	expect_diag(3, 11, false, "'~user' is not supported");

	/* the environment, as the agent loads a policy */
	setenv("BW_LINT_TEST_WS", "/srv/ws", 1);
	{
		struct bw_policy_opts o = { .flags = BW_POLICY_NO_FS, .use_env = true };
		const char y[] = "version: 1\nprotect:\n  - path: $BW_LINT_TEST_WS/src\n";

		assert_int_equal(policy__parse_opts(y, strlen(y), "p.yaml", "/", &o, &p, &D), 0);
		assert_string_equal(p->protect[0].path, "/srv/ws/src");
		policy__free(p);
	}
	unsetenv("BW_LINT_TEST_WS");
}

/* ---- names and exec.allow ------------------------------------------------------------ */

static void test_lint__names(void **state)
{
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nprotect:\n  - path: /w/out\n    name: outputs\n    writers:\n"
		  "      - exe: /usr/bin/rsync\n        name: deploy-sync\n"
		  "build_roots:\n  - exe: /usr/bin/bash\n    cgroup: /system.slice/r.service\n    name: runner\n"
		  "exec:\n  deny: [{path: /tmp, name: drop}]\n  allow: [{path: /tmp/go-build, name: go}]\n"
		  "network:\n  default: deny\n  allow: [{to: \"github.com:443\", name: gh}, {to: \"10.0.0.0/8\", name: lan}]\n");
	assert_non_null(p);
	assert_string_equal(p->protect[0].name, "outputs");
	assert_string_equal(p->protect[0].writers[0].name, "deploy-sync");
	assert_string_equal(p->build_roots[0].name, "runner");
	assert_string_equal(p->exec_deny[0].name, "drop");
	assert_string_equal(p->exec_allow[0].name, "go");
	assert_string_equal(p->exec_allow[0].path, "/tmp/go-build");
	assert_string_equal(p->net_allow_names[0].rule_name, "gh");
	assert_string_equal(p->net_allow[0].name, "lan");
	policy__free(p);

	assert_null(parse("version: 1\nexec:\n  deny: [{path: /tmp, name: x}, {path: /run, name: x}]\n"));
	expect_diag(3, 52, false, "rule name 'x' is already used at line 3");
	assert_null(parse("version: 1\nnetwork:\n  allow: [{to: \"1.2.3.4\", name: \"a b\"}]\n"));
	expect_diag(3, 33, false, "rule name 'a b': letters, digits");
	assert_null(parse("version: 1\nnetwork:\n  allow: [{name: x}]\n"));
	expect_diag(3, 11, false, "missing required key 'to'");
}

static void test_lint__exec_allow_inside_deny(void **state)
{
	(void)state;
	assert_null(parse("version: 1\nexec:\n  deny: [/tmp]\n  allow: [/var/tmp]\n"));
	expect_diag(4, 11, false, "exec allow path '/var/tmp' is inside no exec deny path");
	assert_null(parse("version: 1\nexec:\n  deny: [/tmp]\n  allow: [/tmp]\n"));
	expect_diag(4, 11, false, "exec allow path '/tmp' is exec deny path '/tmp'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lint__ipv4_deny_all_leaves_ipv6_open),
		cmocka_unit_test(test_lint__interpreter_writer),
		cmocka_unit_test(test_lint__same_destination_allowed_and_denied),
		cmocka_unit_test(test_lint__duplicates_and_dead_rules),
		cmocka_unit_test(test_lint__warnings_printed_as_such),
		cmocka_unit_test(test_lint__ipv6_ports),
		cmocka_unit_test(test_lint__port_ranges_and_lists),
		cmocka_unit_test(test_lint__variables),
		cmocka_unit_test(test_lint__names),
		cmocka_unit_test(test_lint__exec_allow_inside_deny),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
