/* Writes to /proc/PID/mem, from a fanotify mark on the procfs of /proc (the file system,
 * so every mount of it, in every mount namespace; the mount where a kernel refuses
 * that): every write by any
 * route (write, pwrite, io_uring) is reported with the writer's pid, and opens, reads and
 * everything outside /proc cost nothing. The agent decides whether the target is a build
 * process and the writer is not. */
#ifndef BUILDWARDEN_PROCMEM_H
#define BUILDWARDEN_PROCMEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct procmem;

/* target 0: a write to some procfs file whose descriptor could not be had (its process
 * exited before the agent read the event): it may have been a write to a build
 * process's memory. The callback decides (the writer may be the build itself, whose
 * writes never matter) and counts it with procmem__count_unreadable. */
typedef void (*procmem_cb)(pid_t writer, pid_t target, void *ctx);

/* Marks the mount at proc_path (normally "/proc"); 0 or -errno. */
int procmem__new(const char *proc_path, struct procmem **out);
int procmem__fd(const struct procmem *pm);
/* Handles the pending notifications without blocking; returns how many writes to a mem
 * file it reported, or -errno. */
int procmem__process(struct procmem *pm, procmem_cb cb, void *ctx);
/* Notifications lost: to a queue overflow, or delivered without a descriptor the agent
 * could use (the file could not be opened for it, its path not read). Each may have
 * been a write to a build process's memory: a loss. */
uint64_t procmem__overflows(const struct procmem *pm);
void procmem__count_unreadable(struct procmem *pm);
/* true: every mount of this procfs is watched; false: only the mount at proc_path. */
bool procmem__whole_fs(const struct procmem *pm);
void procmem__free(struct procmem *pm);

/* "/proc/<pid>/mem" or "/proc/<pid>/task/<tid>/mem" under proc_path -> pid, else 0.
 * Also "/<pid>/mem": the same file through a procfs mount in another mount namespace,
 * which the agent's readlink reports relative to that mount. */
pid_t procmem__target(const char *proc_path, const char *path);

#endif
