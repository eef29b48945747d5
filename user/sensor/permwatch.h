/* permwatch: enforce mode's answers to fanotify permission events (issue 7). A thread of
 * its own reads the permission group that fanwatch marks (fanwatch__new_perm) and
 * answers every event from memory only: the kernel's process table (build member?
 * listed writer of that tree?), the open's intent that a BPF program recorded for the
 * opening thread (bpf/intent.bpf.c), and the protected-inode map. Nothing on the way to
 * an answer waits on the main loop, a sink or a disk.
 *
 *   the build, the agent itself, a listed writer of the tree   allowed
 *   an outsider's read-only open (or exec)                     allowed
 *   an outsider's open for write, O_TRUNC, O_CREAT             refused (EPERM)
 *   an outsider's open with no recorded intent (io_uring,      refused: the default for
 *     a kernel-internal open)                                  what cannot be told apart
 *   an outsider's truncate (pre-content: ftruncate, truncate)  refused (EPERM); asked
 *     only while the file is open for writing (fw_perm.c)      only then
 *   an outsider's read (pre-content)                           allowed
 *   an internal error while deciding                           the fail-safe: refused for
 *                                                              an outsider, allowed for
 *                                                              the build; counted
 * Every event is answered, always: an unanswered one would hang its opener. If the
 * agent dies the kernel closes the group and allows what is pending; the run guard
 * (agent/guard.c) kills the build then.
 *
 * A refused create leaves the new, empty file behind (the kernel creates the name
 * before it asks); the thread removes it after answering when it can prove the refused
 * open made it (O_EXCL, or empty with a birth time after the open began). Refusals are
 * queued for the main loop (permwatch__fd is readable) to become DENIED events. */
#ifndef BUILDWARDEN_PERMWATCH_H
#define BUILDWARDEN_PERMWATCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sensor;
struct fanwatch;
struct permwatch;

enum perm_op {
	PERM_OPEN_WRITE = 1, /* opened for writing */
	PERM_CREATE,	     /* a new name, made by the refused open */
	PERM_TRUNCATE,	     /* O_TRUNC open, ftruncate, truncate */
};

struct perm_violation {
	pid_t pid; /* thread group */
	pid_t tid;
	int tree; /* -1: not known */
	enum perm_op op;
	uint64_t dev, ino; /* st_dev, st_ino of the object */
	bool fail_safe; /* refused by the fail-safe, not by a decision */
	bool no_intent; /* the open passed no tracepoint: refused by the default */
	bool removed; /* PERM_CREATE: the empty file the refused open made was removed */
	char path[PATH_MAX]; /* the kernel's name of the object as it was opened */
};

struct permwatch_stats {
	uint64_t asked; /* permission events answered */
	/* of those, by kind: pre-content reads and writes (range > 0), truncates (range 0),
	 * opens by a build process found by its thread id, every other open */
	uint64_t asked_access, asked_truncate, asked_open_build, asked_open_other;
	uint64_t denied;
	uint64_t fail_safe; /* answered by the fail-safe after an internal error */
	uint64_t no_intent; /* outsider opens with no recorded intent, refused */
	uint64_t lost; /* refusals not reported: the queue to the main loop was full */
	/* time from reading an event to writing its answer (the decision), every event */
	uint64_t answer_p50_ns, answer_p99_ns, answer_max_ns;
	/* time from the open's syscall entry to the answer (what the opener waits, but for
	 * its own return to a CPU), for the opens with a recorded intent */
	uint64_t entry_p50_ns, entry_p99_ns, entry_max_ns;
	uint64_t entry_n; /* opens timed so: 0 when every open was the build's (no intent) */
};

/* The pure decision, for tests: */
struct perm_input {
	bool pre_access; /* FAN_PRE_ACCESS, else FAN_OPEN_PERM */
	uint64_t range_count; /* pre-access: bytes of the access; 0 is a truncate */
	bool self; /* the agent's own process */
	bool proc_known; /* in the kernel's table */
	uint32_t proc_flags; /* BW_PROC_* */
	bool have_intent;
	uint32_t open_flags;
	uint32_t intent_flags; /* BW_INTENT_* */
	bool writer; /* a listed writer of the object's tree */
};
enum perm_answer {
	PERM_ALLOW = 1,
	PERM_DENY,
	PERM_NEED_WRITER, /* a write by an outsider: allowed only for a listed writer */
};
/* Without in->writer known: PERM_NEED_WRITER asks the caller to find it and decide
 * again with it set. */
enum perm_answer permwatch__decide(const struct perm_input *in, bool writer_known);

/* Starts the answering thread on fw's permission group; 0 or -errno. */
int permwatch__start(const struct sensor *s, const struct fanwatch *fw, struct permwatch **out);
/* An eventfd, readable when refusals are queued. */
int permwatch__fd(const struct permwatch *pw);
/* Takes up to max queued refusals; returns how many. */
size_t permwatch__take(struct permwatch *pw, struct perm_violation *out, size_t max);
void permwatch__stats(struct permwatch *pw, struct permwatch_stats *out);
/* Stops and joins the thread (the group stays open: fanwatch__free closes it). */
void permwatch__stop(struct permwatch *pw);

#endif
