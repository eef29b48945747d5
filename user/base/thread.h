/* Helper threads that never take a process-directed signal. */
#ifndef BUILDWARDEN_THREAD_H
#define BUILDWARDEN_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, from its first
 * instruction: the agent takes SIGTERM, SIGINT, SIGHUP and SIGCHLD through its loop's
 * signalfd, which only works while no thread leaves them unblocked. A thread started
 * before the loop blocks them (enforce mode's permission and exec guard threads) would
 * otherwise be picked for a SIGTERM and its default action end the agent unflushed.
 * 0 or -errno. */
int thread__start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
