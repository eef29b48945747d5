// SPDX-License-Identifier: MIT
/* Redaction of secrets in argv (collector/redact.c): the built-in rules on the token
 * shapes CI command lines carry, what they must leave alone, and --redact patterns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "collector/redact.h"

static const char *red(const struct redact *r, struct slab *mem, const char *in)
{
	bool nomem = false;
	const char *out = redact__string(r, in, mem, &nomem);

	assert_false(nomem);
	return out ? out : in;
}

static void test_collector_redact__defaults(void **state)
{
	static const char *const cases[][2] = {
		{ "ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_[REDACTED]" },
		{ "https://x-access-token:ghs_0123456789abcdefghijABCDEF@github.com/o/r.git",
		  "https://x-access-token:[REDACTED]@github.com/o/r.git" },
		{ "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
		  "github_pat_[REDACTED]" },
		{ "glpat-abcdefghij0123456789", "glpat-[REDACTED]" },
		{ "--password=hunter2hunter2", "--password=[REDACTED]" },
		{ "GITHUB_TOKEN=abc123", "GITHUB_TOKEN=[REDACTED]" },
		{ "NPM_AUTH_TOKEN=xyz", "NPM_AUTH_TOKEN=[REDACTED]" },
		{ "https://api.example.com/v1?token=s3cr3t&x=1",
		  "https://api.example.com/v1?token=[REDACTED]&x=1" },
		{ "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
		  "Authorization: Bearer [REDACTED]" },
		{ "authorization: token 0123456789", "authorization: token [REDACTED]" },
		{ "https://user:pa55word@example.com/repo", "https://user:[REDACTED]@example.com/repo" },
		/* left alone */
		{ "-DNDEBUG=1", "-DNDEBUG=1" },
		{ "-std=gnu11", "-std=gnu11" },
		{ "src/ghp_notes.c", "src/ghp_notes.c" },
		{ "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1" },
		{ "https://example.com/repo.git", "https://example.com/repo.git" },
		{ "", "" },
	};
	struct redact r;
	struct slab mem;
	char err[256];

	slab__init(&mem, 4096);
	assert_int_equal(redact__init(&r, true, NULL, 0, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = red(&r, &mem, cases[i][0]);

		if (strcmp(got, cases[i][1]))
			fail_msg("'%s' -> '%s', want '%s'", cases[i][0], got, cases[i][1]);
	}
	redact__free(&r);
	/* --no-default-redact */
	assert_int_equal(redact__init(&r, false, NULL, 0, err, sizeof(err)), 0);
	assert_false(redact__active(&r));
	assert_string_equal(red(&r, &mem, "GITHUB_TOKEN=abc123"), "GITHUB_TOKEN=abc123");
	redact__free(&r);
	slab__free(&mem);
}

static void test_collector_redact__patterns(void **state)
{
	const char *const pats[] = { "sk-[A-Za-z0-9]{8,}", "--db-pass +(.*)" };
	struct redact r;
	struct slab mem;
	char err[256];

	slab__init(&mem, 4096);
	assert_int_equal(redact__init(&r, false, pats, 2, err, sizeof(err)), 0);
	assert_true(redact__active(&r));
	assert_string_equal(red(&r, &mem, "key sk-abcdefgh12 and sk-zyxwvuts98"),
			    "key [REDACTED] and [REDACTED]");
	assert_string_equal(red(&r, &mem, "--db-pass  letmein"), "--db-pass  [REDACTED]");
	assert_string_equal(red(&r, &mem, "sk-short"), "sk-short");
	redact__free(&r);
	assert_int_equal(redact__init(&r, true, (const char *const[]){ "(unclosed" }, 1, err,
				      sizeof(err)), -22);
	assert_non_null(strstr(err, "(unclosed"));
	slab__free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_redact__defaults),
		cmocka_unit_test(test_collector_redact__patterns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
