/* Seeds the kernel's process table with the processes that already run when the sensor
 * starts, so that everything they (and the children they fork later) do is attributed
 * to an executable, even after they exit. */
#ifndef BUILDWARDEN_PROCSCAN_H
#define BUILDWARDEN_PROCSCAN_H

#include <stddef.h>

/* Calls put(ctx, tgid, proc) for each process in /proc; returns the number seen. */
struct bw_proc;
size_t procscan__each(int (*put)(void *ctx, unsigned tgid, const struct bw_proc *p), void *ctx);

#endif
