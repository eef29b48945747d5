/* The build must not go on unguarded if the agent dies (SIGKILL, the OOM killer).
 * The build runs in a cgroup of its own, a leaf under the agent's cgroup (so the
 * limits the CI runner set still apply), and a small watchdog process, detached from
 * the agent and spared by the OOM killer, waits on a socket whose other end only the
 * agent holds. When that end closes without the agent's "done", the watchdog
 * writes cgroup.kill: every build process dies, daemonized ones included. */
#ifndef BUILDWARDEN_AGENT_GUARD_H
#define BUILDWARDEN_AGENT_GUARD_H

#include <stddef.h>
#include <sys/types.h>

struct run_guard;

/* Creates the cgroup (named after run_id) under the agent's own cgroup in the cgroup v2
 * mount cgroup2_root and starts the watchdog. Call before the agent becomes a child
 * subreaper, so the watchdog is not its child. NULL with err set when the host cannot
 * (no cgroup v2, no cgroup.kill, no permission). */
struct run_guard *run_guard__start(const char *cgroup2_root, const char *run_id, char *err,
				   size_t errlen);

/* Moves pid (the held build, before its exec) into the guarded cgroup: 0 or -errno. */
int run_guard__enter(struct run_guard *g, pid_t pid);

/* The build is over: tells the watchdog to leave quietly and removes the cgroup.
 * NULL is a no-op. */
void run_guard__finish(struct run_guard *g);

#endif /* BUILDWARDEN_AGENT_GUARD_H */
