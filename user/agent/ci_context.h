/* The CI job a run belongs to, read from the CI provider's variables (GitHub Actions,
 * GitLab CI) so the collector can answer "which job was this" without the operator
 * writing it down. The environment is the one the agent was started with: in `run`,
 * the runner's step; as a service started for a job, that job's. Values are data, never
 * trusted: each is cut to CI_VALUE_MAX bytes at a UTF-8 boundary. */
#ifndef BUILDWARDEN_AGENT_CI_CONTEXT_H
#define BUILDWARDEN_AGENT_CI_CONTEXT_H

#include <stdbool.h>

#include "buildwarden.pb-c.h"

#define CI_VALUE_MAX 256

struct ci_context {
	char provider[16];
	char repository[CI_VALUE_MAX + 1];
	char workflow[CI_VALUE_MAX + 1];
	char job[CI_VALUE_MAX + 1];
	char run_id[CI_VALUE_MAX + 1];
	char run_attempt[CI_VALUE_MAX + 1];
	char commit_sha[CI_VALUE_MAX + 1];
	char ref[CI_VALUE_MAX + 1];
	char runner_name[CI_VALUE_MAX + 1];
	char url[CI_VALUE_MAX + 1];
};

/* Looks a variable up; NULL when unset. getenv-shaped so tests can pass a table. */
typedef const char *(*ci_getenv_fn)(const char *name, void *arg);

/* Fills out from the variables get returns. false (out all empty) when no known CI
 * provider is detected (GITHUB_ACTIONS=true, GITLAB_CI=true). */
bool ci_context__read(ci_getenv_fn get, void *arg, struct ci_context *out);

/* Points pb's strings into c (which must outlive pb). */
void ci_context__to_proto(const struct ci_context *c, Buildwarden__V1__CiContext *pb);

#endif /* BUILDWARDEN_AGENT_CI_CONTEXT_H */
