/* What makes a run incomplete: the counted losses of guarding, one per cause. A run
 * with any of them fails (the CLI exits 77), RunEnd.incomplete carries each, and the
 * summary names them. Pure: computed from a counters snapshot.
 *
 * Losses are what can hide a change the policy forbids: an event that never reached
 * the agent or reached it unusable, an object nobody watches, a tree walk that gave up,
 * an actor we cannot name. Not losses (counted in Stats only): argv reads that failed
 * (the process, its exe and lineage are still known; only its argv text is missing) and
 * LINK events without their new name (the event and its verdict are still sent). */
#ifndef BUILDWARDEN_AGENT_LOSSES_H
#define BUILDWARDEN_AGENT_LOSSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/run_events.h"
#include "buildwarden.pb-c.h"

enum run_loss {
	LOSS_RINGBUF_DROPS,
	LOSS_FANOTIFY_OVERFLOWS,
	LOSS_FANOTIFY_UNRESOLVED,
	LOSS_NOT_WATCHED,
	LOSS_DEPTH_EXCEEDED,
	LOSS_UNATTRIBUTED,
	LOSS_PROC_TABLE_FAILURES,
	LOSS_BAD_RECORDS,
	LOSS_SPOOL_DROPS,
	LOSS_KINDS,
};

struct run_losses {
	uint64_t n[LOSS_KINDS];
};

void losses__from_counters(const struct run_counters *c, struct run_losses *out);

bool losses__any(const struct run_losses *l);

/* the cause's name, as RunEnd.incomplete's field (snake_case) */
const char *losses__name(enum run_loss k);

/* "ringbuf_drops 3, not_watched 1": the causes that are non-zero, in enum order;
 * "" when none. Cut to fit len (always terminated). */
void losses__format(const struct run_losses *l, char *buf, size_t len);

/* fills inc; returns it, or NULL when nothing was lost (RunEnd.incomplete unset) */
Buildwarden__V1__Incomplete *losses__to_proto(const struct run_losses *l,
					      Buildwarden__V1__Incomplete *inc);

#endif /* BUILDWARDEN_AGENT_LOSSES_H */
