/* Enforce mode's answer to rename, unlink, link, chmod/chown/setxattr and truncate by
 * path from a process outside the build: no hook on this kernel (no BPF LSM, no
 * kprobes) can refuse them, and resolving a path string at a syscall tracepoint is not
 * a check on the object. So the decision is made on fanotify's resolved event, after
 * the change: the actor is killed so it changes nothing more, the files are reported
 * TAINTED, and the run fails (exit 77, like any violation). docs/architecture.md. */
#include "agent/taint.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

bool taint__kill_actor(int pidfd, pid_t pid)
{
	if (pidfd < 0 || pid <= 1 || pid == getpid())
		return false;
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0)
		return true;
	if (errno != ESRCH)
		log__line(stderr, "buildwarden: ", "cannot kill pid %d (it changed a protected tree): %s",
			  (int)pid, strerror(errno));
	return false;
}
