/* Enforce mode for the changes no hook on this kernel refuses (issue 7): fanotify reports
 * them after they landed, with a pidfd of the process that made them; the agent kills
 * that process and marks every file it touched TAINTED. */
#ifndef BUILDWARDEN_AGENT_TAINT_H
#define BUILDWARDEN_AGENT_TAINT_H

#include <stdbool.h>
#include <sys/types.h>

/* Sends SIGKILL through pidfd (from the fanotify event: it names the very process that
 * acted, so a reused pid number cannot redirect the kill). Never to pid 1 or the agent
 * itself. true: the signal was sent; false: no pidfd (the actor had exited before the
 * event was read), or the process is gone. */
bool taint__kill_actor(int pidfd, pid_t pid);

#endif
