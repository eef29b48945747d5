/* `buildwarden policy test`: recorded events replayed against a draft policy, with the
 * decisions the sensor would make under it, and what would change. */
#ifndef BUILDWARDEN_DRAFT_REPLAY_H
#define BUILDWARDEN_DRAFT_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "buildwarden.pb-c.h"
#include "policy/policy.h"

struct draft_replay;

/* p must outlive the replay. 0 or -ENOMEM. */
int draft_replay__new(const struct bw_policy *p, struct draft_replay **out);
void draft_replay__free(struct draft_replay *r);

/* One recorded event. 0, -E2BIG (more than REPLAY_CHANGES_MAX distinct changes), -ENOMEM. */
int draft_replay__event(struct draft_replay *r, const Buildwarden__V1__Event *ev);

/* Writes what would change, one line per distinct change with its count and an example,
 * and a summary line. 0 or -EIO. */
int draft_replay__write(const struct draft_replay *r, FILE *out);

/* Counts: events the draft flags (new or not), newly flagged, no longer flagged. */
struct draft_replay_counts {
	uint64_t replayed, flagged, newly, no_longer, runs;
};
void draft_replay__counts(const struct draft_replay *r, struct draft_replay_counts *c);

#define REPLAY_CHANGES_MAX 4096

#endif /* BUILDWARDEN_DRAFT_REPLAY_H */
