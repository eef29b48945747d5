/* fw_coalesce: FW_WRITE once per (process, file) until that process closes the file
 * after writing, so a build writing a large output is one event, not thousands. Pure.
 * Bounded: when the table fills it is cleared, so writes are reported again, never
 * dropped. */
#ifndef BUILDWARDEN_FW_COALESCE_H
#define BUILDWARDEN_FW_COALESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FW_COALESCE_SLOTS 4096

struct fw_coal {
	uint64_t serial;	/* the file (fw_obj.serial); 0: empty */
	pid_t pid;
	bool tomb;
};

struct fw_coalesce {
	struct fw_coal slot[FW_COALESCE_SLOTS];
	size_t used;
};

/* true: the first write of pid to this file since its last close-after-write: report it. */
bool fw_coalesce__first_write(struct fw_coalesce *c, uint64_t serial, pid_t pid);
/* true if pid had written the file (and that write was reported): the close is not news. */
bool fw_coalesce__close(struct fw_coalesce *c, uint64_t serial, pid_t pid);
/* Forget everything (after lost events: every file may have changed). */
void fw_coalesce__clear(struct fw_coalesce *c);

#endif
