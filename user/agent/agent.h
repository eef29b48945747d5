/* The agent: sensor + protected-tree watcher + /proc/PID/mem watcher + pipeline +
 * sinks, driven by one loop. `run` (a build the CLI starts) and `agent` (a service on
 * the host) are two ways of starting and ending it. Exit codes are the CLI's: this
 * part says what happened (struct agent_result). */
#ifndef BUILDWARDEN_AGENT_AGENT_H
#define BUILDWARDEN_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"

struct agent_opts {
	const char *policy_path; /* NULL: the built-in empty policy */
	const char *events_path; /* NULL: no events file */
	/* rotate the events file at this many bytes (0: never), keeping this many old ones */
	uint64_t events_max_size;
	unsigned events_max_files;
	bool mode_given;         /* false: the policy's mode */
	enum bw_mode mode;
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
	bool progress; /* stderr is a terminal: show the final upload's progress */
	/* agent only: serve `buildwarden enroll` on this unix socket (enroll.h); NULL: none */
	const char *enroll_socket;
	/* the server the build's DNS is sent on to (resolver.h); NULL: /etc/resolv.conf's */
	const char *dns_upstream;
	/* the process exits after agent__run: the sensor's links are released by a child
	 * after that (sensor__close_after_exit); false (in-process callers): before return */
	bool detach_after_exit;
};

/* --mode wins over the policy's mode. */
static inline bool agent_opts__enforce(const struct agent_opts *o, const struct bw_policy *p)
{
	return (o->mode_given ? o->mode : p->mode) == BW_MODE_ENFORCE;
}

/* How `run` starts its build: the caller forks and execs it (user/cli/cmd_run.c), held
 * before its exec until the kernel knows its pid as the build's root. */
struct agent_build {
	char *const *argv; /* what RunStart records */
	/* forks the build, held before its exec: its pid, or -errno after saying why */
	pid_t (*spawn)(void *ctx);
	/* lets the held build exec: 0, or -errno after saying why */
	int (*release)(void *ctx);
	void *ctx;
};

enum agent_failure {
	AGENT_OK = 0,
	AGENT_FAIL_POLICY,      /* the policy does not load */
	AGENT_FAIL_SENSOR,      /* the sensor or a watcher cannot start, or the build
				 * cannot be entered as the root */
	AGENT_FAIL_EVENTS_FILE, /* the events file cannot be created */
	AGENT_FAIL_TRANSPORT,   /* the collector transport cannot be set up */
	AGENT_FAIL_INTERNAL,    /* memory, the event loop, starting the build */
};

struct agent_result {
	enum agent_failure failure;
	int status; /* run: the build's exit status (128 + signal if killed); agent: 0 */
	uint64_t violations;
	bool events_incomplete; /* a write to or the last flush of the events file failed */
	uint64_t not_written;   /* events the events file did not get */
	bool incomplete;        /* the guard lost something (agent/losses.h): the run fails */
};

/* build NULL: the `agent` service, recording until SIGTERM or SIGINT; SIGHUP reloads
 * the policy and reopens the events file (after logrotate or an operator moved it). Otherwise `run`: starts the build and records until it and every
 * descendant exited. What goes wrong and the end-of-run summary go to stderr.
 * Returns 0 when the agent ran to its end (*res says how it went), or -errno with
 * res->failure saying what failed. */
int agent__run(const struct agent_opts *o, const struct agent_build *build,
	       struct agent_result *res);

#endif /* BUILDWARDEN_AGENT_AGENT_H */
