/* Unit tests of network rules by name (user/policy/hostrule.c): which texts are names,
 * each form and each error with its position, the wildcard's reach, and the rule the
 * resolver picks for an answered name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static struct bw_policy *parse(const char *y, struct bw_diags *d)
{
	struct bw_policy *p = NULL;

	memset(d, 0, sizeof(*d));
	if (policy__parse(y, strlen(y), "p.yaml", "/base", BW_POLICY_NO_FS, &p, d))
		return NULL;
	return p;
}

static void expect_error(const char *y, unsigned line, unsigned col, const char *msg)
{
	struct bw_diags d;
	struct bw_policy *p = parse(y, &d);

	assert_null(p);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].msg, msg);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
}

static void test_hostrule__which_texts_are_names(void **state)
{
	(void)state;
	assert_true(policy__is_host_rule("github.com:443"));
	assert_true(policy__is_host_rule("*.githubusercontent.com:443"));
	assert_true(policy__is_host_rule("localhost"));
	assert_true(policy__is_host_rule("1password.com"));
	assert_true(policy__is_host_rule("1.2.example"));
	/* an IPv4 address with a typo stays an address rule, with the address's error */
	assert_false(policy__is_host_rule("10.0.0.1a:443"));
	assert_false(policy__is_host_rule("10.0.0.0/8"));
	assert_false(policy__is_host_rule("10.0.0.1:443"));
	assert_false(policy__is_host_rule("fe80::1")); /* hex letters, but two colons */
	assert_false(policy__is_host_rule("[::1]:53"));
	assert_false(policy__is_host_rule("::ffff:127.0.0.1"));
}

static void test_hostrule__forms(void **state)
{
	struct bw_diags d;
	struct bw_policy *p;

	(void)state;
	p = parse("version: 1\nnetwork:\n  default: deny\n  allow:\n"
		  "    - \"GitHub.com:443\"\n    - \"*.githubusercontent.com\"\n"
		  "    - 10.0.0.0/8\n    - \"a-b.c9.example:65535\"\n", &d);
	assert_non_null(p);
	/* names and addresses in two lists: an address rule's index is its place among
	 * the address rules, what the kernel's rule_index says */
	assert_int_equal(p->n_net_allow, 1);
	assert_string_equal(p->net_allow[0].text, "10.0.0.0/8");
	assert_int_equal(p->n_net_allow_names, 3);
	assert_string_equal(p->net_allow_names[0].name, "github.com");
	assert_string_equal(p->net_allow_names[0].text, "GitHub.com:443");
	assert_int_equal(p->net_allow_names[0].port, 443);
	assert_false(p->net_allow_names[0].wildcard);
	assert_int_equal(p->net_allow_names[0].line, 5);
	assert_int_equal(p->net_allow_names[0].col, 7);
	assert_string_equal(p->net_allow_names[1].name, "githubusercontent.com");
	assert_true(p->net_allow_names[1].wildcard);
	assert_int_equal(p->net_allow_names[1].port, 0);
	assert_int_equal(p->net_allow_names[2].port, 65535);
	policy__free(p);
}

static void test_hostrule__errors(void **state)
{
	(void)state;
	expect_error("version: 1\nnetwork:\n  deny: [\"evil.com\"]\n", 3, 10,
		     "'evil.com': a name is allowed only in network.allow (a deny by name is undone by an address); deny addresses, or use default: deny");
	expect_error("version: 1\nnetwork:\n  allow: [\"github.com:0\"]\n", 3, 11,
		     "bad port in 'github.com:0': must be 1..65535; omit the port to match any port");
	expect_error("version: 1\nnetwork:\n  allow: [\"github.com:65536\"]\n", 3, 11,
		     "bad port in 'github.com:65536': must be 1..65535; omit the port to match any port");
	expect_error("version: 1\nnetwork:\n  allow: [\"github.com:https\"]\n", 3, 11,
		     "bad port in 'github.com:https': must be 1..65535");
	expect_error("version: 1\nnetwork:\n  allow: [\"gith*b.com\"]\n", 3, 11,
		     "bad name rule 'gith*b.com': a wildcard is only '*.' before a name (\"*.example.com\")");
	expect_error("version: 1\nnetwork:\n  allow: [\"*github.com\"]\n", 3, 11,
		     "bad name rule '*github.com': a wildcard is only '*.' before a name (\"*.example.com\")");
	expect_error("version: 1\nnetwork:\n  allow: [\"*.com\"]\n", 3, 11,
		     "bad name rule '*.com': a wildcard needs at least two labels after '*.'");
	expect_error("version: 1\nnetwork:\n  allow: [\"a..b\"]\n", 3, 11,
		     "bad name rule 'a..b': '' is not a DNS label (letters, digits, '-'; 1..63)");
	expect_error("version: 1\nnetwork:\n  allow: [\"-a.b\"]\n", 3, 11,
		     "bad name rule '-a.b': '-a' is not a DNS label (letters, digits, '-'; 1..63)");
	expect_error("version: 1\nnetwork:\n  allow: [\"a_b.com\"]\n", 3, 11,
		     "bad name rule 'a_b.com': 'a_b' is not a DNS label (letters, digits, '-'; 1..63)");
	expect_error("version: 1\nnetwork:\n  allow: [\"10.0.0.1a:443\"]\n", 3, 11,
		     "bad network rule '10.0.0.1a:443': '10.0.0.1a' is not an IPv4 address");
	expect_error("version: 1\nnetwork:\n  allow: [\"github.com.\"]\n", 3, 11,
		     "bad name rule 'github.com.': '' is not a DNS label (letters, digits, '-'; 1..63)");
}

static void test_hostrule__lengths(void **state)
{
	char label[80], name[300], err[240];
	struct bw_host_rule r;

	(void)state;
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%s.com", label);
	assert_int_equal(policy__parse_host_rule(name, &r, err, sizeof(err)), 0);
	free(r.name);
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(name, sizeof(name), "%s.com", label);
	assert_int_equal(policy__parse_host_rule(name, &r, err, sizeof(err)), -EINVAL);
	/* 254 characters: one past the longest name */
	memset(name, 'a', 254);
	for (int i = 60; i < 254; i += 61)
		name[i] = '.';
	name[254] = '\0';
	assert_int_equal(policy__parse_host_rule(name, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1..253"));
	name[253] = '\0';
	assert_int_equal(policy__parse_host_rule(name, &r, err, sizeof(err)), 0);
	free(r.name);
}

static void test_hostrule__match(void **state)
{
	struct bw_host_rule exact = { .name = (char *)"github.com" };
	struct bw_host_rule wild = { .name = (char *)"githubusercontent.com", .wildcard = true };

	(void)state;
	assert_true(policy__host_match(&exact, "github.com"));
	assert_true(policy__host_match(&exact, "GITHUB.com."));
	assert_false(policy__host_match(&exact, "api.github.com"));
	assert_false(policy__host_match(&exact, "github.com.evil.net"));
	assert_false(policy__host_match(&exact, "xgithub.com"));
	assert_true(policy__host_match(&wild, "raw.githubusercontent.com"));
	assert_true(policy__host_match(&wild, "a.b.githubusercontent.com."));
	assert_false(policy__host_match(&wild, "githubusercontent.com")); /* not the apex */
	assert_false(policy__host_match(&wild, "evilgithubusercontent.com"));
	assert_false(policy__host_match(&wild, ".githubusercontent.com"));
	assert_false(policy__host_match(&wild, ""));
}

static void test_hostrule__verdict(void **state)
{
	struct bw_diags d;
	struct bw_policy *p;
	const char *rule = NULL;

	(void)state;
	p = parse("version: 1\nnetwork:\n  allow: [\"github.com:443\", \"*.github.com\", \"github.com:22\"]\n",
		  &d);
	assert_non_null(p);
	assert_int_equal(policy__host_verdict(p, "github.com", 443, &rule), 0);
	assert_string_equal(rule, "github.com:443");
	assert_int_equal(policy__host_verdict(p, "github.com", 22, &rule), 2);
	assert_int_equal(policy__host_verdict(p, "github.com", 80, &rule), -1);
	assert_int_equal(policy__host_verdict(p, "api.github.com", 80, &rule), 1);
	assert_string_equal(rule, "*.github.com");
	policy__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostrule__which_texts_are_names),
		cmocka_unit_test(test_hostrule__forms),
		cmocka_unit_test(test_hostrule__errors),
		cmocka_unit_test(test_hostrule__lengths),
		cmocka_unit_test(test_hostrule__match),
		cmocka_unit_test(test_hostrule__verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
