#ifndef BW_AGENT_RESUME_H
#define BW_AGENT_RESUME_H

#include <sys/types.h>

/* A PTRACE_ATTACH that enforce mode killed has still run to its end (the kernel takes
 * the attach's locks without checking for a fatal signal), so it left a SIGSTOP queued
 * at the build process; the tracer's death detaches it but leaves that stop, and the
 * build would hang. Waits (bounded) until the actor is gone, so the attach is over, then
 * sends the target SIGCONT, which also discards a stop not yet taken. */
void resume__after_attach(pid_t actor, pid_t target);

#endif
