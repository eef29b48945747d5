/* Who did it: a pid -> the Process message (exe, argv, lineage, build membership).
 * The kernel's process table is the source of truth (the sensor seeds it from /proc at
 * start). The pipeline does not link the sensor: the table is reached through
 * proc_source. */
#ifndef BUILDWARDEN_PROCINFO_H
#define BUILDWARDEN_PROCINFO_H

#include <linux/types.h>
#include <stdbool.h>
#include <sys/types.h>

#include "buildwarden.pb-c.h"
#include "pipeline/arena.h"
#include "sensor_abi.h"

#define PROCINFO_MAX_ANCESTORS 16
#define PROCINFO_MAX_ARGV 64

struct proc_source {
	int (*lookup)(void *ctx, pid_t pid, struct bw_proc *out); /* 0 or -ENOENT */
	/* Only among processes that exited (NULL: none kept): for an actor known to have
	 * exited, whose pid a live process may have taken since. 0 or -ENOENT. */
	int (*lookup_exited)(void *ctx, pid_t pid, struct bw_proc *out);
	void *ctx;
};

struct procinfo;

struct procinfo *procinfo__new(const struct proc_source *src);
void procinfo__free(struct procinfo *pi);

/* Remembers the argv of an exec (NUL-separated, len bytes), so events about the process
 * name the command even after it exits. */
void procinfo__note_exec(struct procinfo *pi, pid_t pid, const char *args, size_t len);

/* Fills *out (its strings in arena). Returns true when the actor is known to the kernel
 * table, false when it had already gone and left no trace: attributed = false. */
bool procinfo__describe(struct procinfo *pi, pid_t pid, struct arena *a,
			Buildwarden__V1__Process *out, struct bw_proc *raw);
/* The same for an actor known to have exited before its event was read: looked up
 * among exited processes only, never as the live process that has its pid now. */
bool procinfo__describe_exited(struct procinfo *pi, pid_t pid, struct arena *a,
			       Buildwarden__V1__Process *out, struct bw_proc *raw);

#endif
