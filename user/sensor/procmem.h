/* Writes to /proc/PID/mem, from a fanotify mark on the /proc mount: every write by any
 * route (write, pwrite, io_uring) is reported with the writer's pid, and opens, reads and
 * everything outside /proc cost nothing. The agent decides whether the target is a build
 * process and the writer is not. */
#ifndef BUILDWARDEN_PROCMEM_H
#define BUILDWARDEN_PROCMEM_H

#include <stdint.h>
#include <sys/types.h>

struct procmem;

typedef void (*procmem_cb)(pid_t writer, pid_t target, void *ctx);

/* Marks the mount at proc_path (normally "/proc"); 0 or -errno. */
int procmem__new(const char *proc_path, struct procmem **out);
int procmem__fd(const struct procmem *pm);
/* Handles the pending notifications without blocking; returns how many writes to a mem
 * file it reported, or -errno. */
int procmem__process(struct procmem *pm, procmem_cb cb, void *ctx);
/* Notifications lost to a queue overflow. */
uint64_t procmem__overflows(const struct procmem *pm);
void procmem__free(struct procmem *pm);

/* "/proc/<pid>/mem" or "/proc/<pid>/task/<tid>/mem" under proc_path -> pid, else 0. */
pid_t procmem__target(const char *proc_path, const char *path);

#endif
