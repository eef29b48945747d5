/* CI context: see ci_context.h. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/ci_context.h"
#include "base/utf8.h"

/* Copies the longest well-formed UTF-8 prefix of v that fits in CI_VALUE_MAX bytes: a
 * value cut in the middle of a character, or carrying a stray byte, is shown up to
 * there rather than as bytes a JSON reader would reject. */
static void ci__copy(char dst[CI_VALUE_MAX + 1], const char *v)
{
	size_t n = 0, len;

	dst[0] = '\0';
	if (!v)
		return;
	len = strnlen(v, CI_VALUE_MAX + 1);
	while (n < len && n < CI_VALUE_MAX) {
		size_t k = utf8__len((const uint8_t *)v + n, len - n);

		if (!k || n + k > CI_VALUE_MAX)
			break;
		n += k;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool ci__is_true(const char *v)
{
	return v && !strcmp(v, "true");
}

static void ci__github(ci_getenv_fn get, void *arg, struct ci_context *c)
{
	const char *server = get("GITHUB_SERVER_URL", arg);
	const char *repo = get("GITHUB_REPOSITORY", arg);
	const char *run = get("GITHUB_RUN_ID", arg);
	char url[3 * CI_VALUE_MAX + 32];

	snprintf(c->provider, sizeof(c->provider), "github");
	ci__copy(c->repository, repo);
	ci__copy(c->workflow, get("GITHUB_WORKFLOW", arg));
	ci__copy(c->job, get("GITHUB_JOB", arg));
	ci__copy(c->run_id, run);
	ci__copy(c->run_attempt, get("GITHUB_RUN_ATTEMPT", arg));
	ci__copy(c->commit_sha, get("GITHUB_SHA", arg));
	ci__copy(c->ref, get("GITHUB_REF", arg));
	ci__copy(c->runner_name, get("RUNNER_NAME", arg));
	if (server && repo && run) {
		snprintf(url, sizeof(url), "%.256s/%.256s/actions/runs/%.256s", server, repo, run);
		ci__copy(c->url, url);
	}
}

static void ci__gitlab(ci_getenv_fn get, void *arg, struct ci_context *c)
{
	snprintf(c->provider, sizeof(c->provider), "gitlab");
	ci__copy(c->repository, get("CI_PROJECT_PATH", arg));
	ci__copy(c->workflow, get("CI_PIPELINE_ID", arg));
	ci__copy(c->job, get("CI_JOB_NAME", arg));
	ci__copy(c->run_id, get("CI_JOB_ID", arg));
	ci__copy(c->commit_sha, get("CI_COMMIT_SHA", arg));
	ci__copy(c->ref, get("CI_COMMIT_REF_NAME", arg));
	ci__copy(c->runner_name, get("CI_RUNNER_DESCRIPTION", arg));
	ci__copy(c->url, get("CI_JOB_URL", arg));
}

bool ci_context__read(ci_getenv_fn get, void *arg, struct ci_context *out)
{
	memset(out, 0, sizeof(*out));
	if (ci__is_true(get("GITHUB_ACTIONS", arg))) {
		ci__github(get, arg, out);
		return true;
	}
	if (ci__is_true(get("GITLAB_CI", arg))) {
		ci__gitlab(get, arg, out);
		return true;
	}
	return false;
}

void ci_context__to_proto(const struct ci_context *c, Buildwarden__V1__CiContext *pb)
{
	buildwarden__v1__ci_context__init(pb);
	pb->provider = (char *)c->provider;
	pb->repository = (char *)c->repository;
	pb->workflow = (char *)c->workflow;
	pb->job = (char *)c->job;
	pb->run_id = (char *)c->run_id;
	pb->run_attempt = (char *)c->run_attempt;
	pb->commit_sha = (char *)c->commit_sha;
	pb->ref = (char *)c->ref;
	pb->runner_name = (char *)c->runner_name;
	pb->url = (char *)c->url;
}
