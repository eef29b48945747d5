/* The agent: sensor + protected-tree watcher + pipeline + sinks, driven by one epoll
 * loop. `run` and `agent` are two ways of starting and ending it. */
#ifndef BUILDWARDEN_AGENT_H
#define BUILDWARDEN_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"

struct agent_opts {
	const char *policy_path; /* NULL: the built-in empty policy */
	const char *events_path; /* NULL: no events file */
	int mode; /* -1: the policy's; else enum bw_mode */
	bool quiet;
	/* collector transport: all NULL/0 when events stay local */
	const char *collector; /* host:port */
	const char *spool_dir;
	const char *tls_cert, *tls_key, *tls_ca;
	const char *chain_key;
	const char *agent_id;
	bool insecure;
	uint64_t spool_max;
	unsigned drain_timeout_ms;
};

struct agent;

/* Loads the policy and starts the sensor. Returns 0, or an exit code (EXIT_POLICY,
 * EXIT_SENSOR, EXIT_CANTCREAT) after printing what went wrong. */
int agent__start(const struct agent_opts *opts, struct agent **out);

/* `run`: starts argv as the build and records until it and every descendant exited.
 * Returns the exit status run should end with. */
int agent__run_command(struct agent *a, char *const argv[]);

/* `agent`: records until SIGTERM or SIGINT; SIGHUP reloads the policy. */
int agent__serve(struct agent *a);

void agent__free(struct agent *a);

/* Loads a policy file or the built-in default, printing diagnostics to stderr. */
int agent__load_policy(const char *path, struct bw_policy **out);

#endif
