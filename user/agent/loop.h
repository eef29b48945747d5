/* The agent's event loop: one epoll over the descriptors that bring events (ring
 * buffer, fanotify queues) and a signalfd, so signals are handled in the loop, never
 * in a handler that could interrupt an event half written. */
#ifndef BUILDWARDEN_AGENT_LOOP_H
#define BUILDWARDEN_AGENT_LOOP_H

#include <signal.h>

#define LOOP_MAX_FDS 8

typedef void (*loop_fn)(void *ctx);

struct loop;

/* Blocks sigs for the whole process (threads started later inherit that) and reads
 * them through a signalfd. 0 or -errno. */
int loop__new(const sigset_t *sigs, struct loop **out);

/* fn(ctx) runs when fd is readable. 0 or -errno (-ENOSPC past LOOP_MAX_FDS). */
int loop__add(struct loop *l, int fd, loop_fn fn, void *ctx);

void loop__del(struct loop *l, int fd);

/* Waits up to timeout_ms and runs the handler of every ready descriptor. Returns the
 * signals that arrived, as a bit set (1u << signo, signals below 32). */
unsigned loop__wait(struct loop *l, int timeout_ms);

void loop__free(struct loop *l);

#endif /* BUILDWARDEN_AGENT_LOOP_H */
