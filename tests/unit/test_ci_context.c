// SPDX-License-Identifier: GPL-2.0
/* The CI context a runStart carries: which provider's variables are read, how a value a
 * job controls (a branch name, a runner description) is bounded, and how it reaches the
 * event. Pure C: the environment is a table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "agent/ci_context.h"
#include "agent/run_events.h"

struct env {
	const char *const *kv; /* name, value, ..., NULL */
};

static const char *env_get(const char *name, void *arg)
{
	const struct env *e = arg;

	for (size_t i = 0; e->kv[i]; i += 2)
		if (!strcmp(e->kv[i], name))
			return e->kv[i + 1];
	return NULL;
}

static void test_github(void **state)
{
	static const char *const kv[] = {
		"GITHUB_ACTIONS", "true", "GITHUB_REPOSITORY", "acme/widget",
		"GITHUB_WORKFLOW", "ci", "GITHUB_JOB", "build", "GITHUB_RUN_ID", "1234",
		"GITHUB_RUN_ATTEMPT", "2", "GITHUB_SHA", "0123abcd", "GITHUB_REF", "refs/heads/main",
		"RUNNER_NAME", "runner-7", "GITHUB_SERVER_URL", "https://github.example", NULL,
	};
	struct env e = { kv };
	struct ci_context c;

	(void)state;
	assert_true(ci_context__read(env_get, &e, &c));
	assert_string_equal(c.provider, "github");
	assert_string_equal(c.repository, "acme/widget");
	assert_string_equal(c.workflow, "ci");
	assert_string_equal(c.job, "build");
	assert_string_equal(c.run_id, "1234");
	assert_string_equal(c.run_attempt, "2");
	assert_string_equal(c.commit_sha, "0123abcd");
	assert_string_equal(c.ref, "refs/heads/main");
	assert_string_equal(c.runner_name, "runner-7");
	assert_string_equal(c.url, "https://github.example/acme/widget/actions/runs/1234");
}

static void test_gitlab(void **state)
{
	static const char *const kv[] = {
		"GITLAB_CI", "true", "CI_PROJECT_PATH", "group/proj", "CI_PIPELINE_ID", "77",
		"CI_JOB_NAME", "compile", "CI_JOB_ID", "901", "CI_COMMIT_SHA", "feedbeef",
		"CI_COMMIT_REF_NAME", "topic", "CI_RUNNER_DESCRIPTION", "shared-3",
		"CI_JOB_URL", "https://gitlab.example/group/proj/-/jobs/901", NULL,
	};
	struct env e = { kv };
	struct ci_context c;

	(void)state;
	assert_true(ci_context__read(env_get, &e, &c));
	assert_string_equal(c.provider, "gitlab");
	assert_string_equal(c.repository, "group/proj");
	assert_string_equal(c.workflow, "77");
	assert_string_equal(c.job, "compile");
	assert_string_equal(c.run_id, "901");
	assert_string_equal(c.run_attempt, "");
	assert_string_equal(c.commit_sha, "feedbeef");
	assert_string_equal(c.ref, "topic");
	assert_string_equal(c.runner_name, "shared-3");
	assert_string_equal(c.url, "https://gitlab.example/group/proj/-/jobs/901");
}

/* CI=true alone, or GITHUB_ACTIONS set to anything but "true", is not a provider we
 * can name: nothing is claimed. */
static void test_not_ci(void **state)
{
	static const char *const kv[] = { "CI", "true", "GITHUB_ACTIONS", "1",
					  "GITHUB_REPOSITORY", "acme/widget", NULL };
	struct env e = { kv };
	struct ci_context c;

	(void)state;
	assert_false(ci_context__read(env_get, &e, &c));
	assert_string_equal(c.provider, "");
	assert_string_equal(c.repository, "");
}

/* A ref is chosen by whoever pushes: a long one is cut at 256 bytes, never in the middle
 * of a character, and a stray byte ends the value there. */
static void test_values_bounded(void **state)
{
	char longref[600], euro_ref[300];
	static const char bad[] = "main\xff\xfe-evil";
	const char *kv[] = { "GITHUB_ACTIONS", "true", "GITHUB_REF", longref,
			     "GITHUB_JOB", euro_ref, "GITHUB_WORKFLOW", bad, NULL };
	struct env e = { kv };
	struct ci_context c;
	size_t i;

	(void)state;
	memset(longref, 'r', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	/* 'x' then 3-byte euro signs: 1 + 3k bytes; 256 falls inside a euro sign */
	euro_ref[0] = 'x';
	for (i = 1; i + 3 < sizeof(euro_ref); i += 3)
		memcpy(euro_ref + i, "\xe2\x82\xac", 3);
	euro_ref[i] = '\0';
	assert_true(ci_context__read(env_get, &e, &c));
	assert_int_equal(strlen(c.ref), CI_VALUE_MAX);
	assert_int_equal(strlen(c.job), 1 + 3 * 85); /* 256 would split the 86th */
	assert_string_equal(c.workflow, "main");
}

static void test_run_start_carries_it(void **state)
{
	static const char *const kv[] = { "GITHUB_ACTIONS", "true", "GITHUB_REPOSITORY",
					  "acme/widget", "GITHUB_SHA", "0123abcd", NULL };
	struct env e = { kv };
	struct ci_context c;
	Buildwarden__V1__CiContext pb;
	Buildwarden__V1__RunStart rs;
	Buildwarden__V1__Event ev;
	struct run_start_info i = { .policy_sha256 = "", .ci = &pb };

	(void)state;
	assert_true(ci_context__read(env_get, &e, &c));
	ci_context__to_proto(&c, &pb);
	run_events__run_start(&i, &rs, &ev);
	assert_non_null(ev.run_start->ci);
	assert_string_equal(ev.run_start->ci->repository, "acme/widget");
	assert_string_equal(ev.run_start->ci->commit_sha, "0123abcd");

	i.ci = NULL;
	run_events__run_start(&i, &rs, &ev);
	assert_null(ev.run_start->ci);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_github),
		cmocka_unit_test(test_gitlab),
		cmocka_unit_test(test_not_ci),
		cmocka_unit_test(test_values_bounded),
		cmocka_unit_test(test_run_start_carries_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
