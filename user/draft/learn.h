/* `buildwarden policy learn`: the events of one or more audit runs folded into a proposed
 * policy, each rule with its evidence (runs it was seen in, how often, one process). */
#ifndef BUILDWARDEN_DRAFT_LEARN_H
#define BUILDWARDEN_DRAFT_LEARN_H

#include <stdio.h>

#include "buildwarden.pb-c.h"

struct draft_learn;

/* 0 or -ENOMEM */
int draft_learn__new(struct draft_learn **out);
void draft_learn__free(struct draft_learn *l);

/* One event of a run (runs are told apart by run_id). 0, or -E2BIG when an item list is
 * full (LEARN_ITEMS_MAX distinct items of a kind), -ENOMEM. */
int draft_learn__event(struct draft_learn *l, const Buildwarden__V1__Event *ev);

/* The proposal as a policy file (YAML) to out. exec_deny_candidates: trees proposed for
 * exec.deny when no build process executed from them and they exist on this host
 * (NULL-terminated). Items no policy can hold are left out first (and said so): the
 * proposal always parses. 0 or -errno of the write. */
int draft_learn__write(struct draft_learn *l, const char *const *exec_deny_candidates, FILE *out);

/* How many runs it has seen. */
size_t draft_learn__runs(const struct draft_learn *l);

#define LEARN_ITEMS_MAX 4096
#define LEARN_RUNS_MAX 100000

#endif /* BUILDWARDEN_DRAFT_LEARN_H */
