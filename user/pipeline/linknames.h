/* The new names of recent link() calls, per process: fanotify reports a hard link made
 * outside the protected trees only as a link count change of the protected file.
 * Bounded: a few names for each of the processes that linked most recently. */
#ifndef BUILDWARDEN_LINKNAMES_H
#define BUILDWARDEN_LINKNAMES_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sensor_abi.h"

struct linknames;

struct linknames *linknames__new(void);
void linknames__free(struct linknames *ln);

/* Records the name a process is linking to, resolved against its cwd or dirfd now,
 * while the process most likely still runs. */
void linknames__note(struct linknames *ln, const struct bw_link_name_event *r);

/* The most recent name pid linked that now names the same inode as target; copies it to
 * out and returns true. */
bool linknames__find(struct linknames *ln, pid_t pid, const char *target, char *out, size_t len);

/* A link made into a tree: the existing name (link()'s first argument, resolved when
 * the record was read) of pid's most recent link whose new name is target's inode. */
bool linknames__find_old(struct linknames *ln, pid_t pid, const char *target, char *out,
			 size_t len);

/* pid called truncate(2) on target's inode (fanotify says only "modified"); each
 * truncate answers true once. */
bool linknames__truncated(struct linknames *ln, pid_t pid, const char *target);

/* Lookups that found no name, so a LINK went out without newPath: a link removed
 * elsewhere (there is no new name), or a link() whose record was lost (ring buffer
 * full: counted there too) or whose name could not be resolved when it was read. */
uint64_t linknames__misses(const struct linknames *ln);

#endif
