/* A small open-addressing hash from a 64-bit key to an index, for the report model's
 * lookups ((run, pid) → process, path → output, run id → run). Colliding string keys
 * are told apart by a callback that compares the caller's own copy. */
#ifndef BUILDWARDEN_REPORT_HTAB_H
#define BUILDWARDEN_REPORT_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct rpt_htab {
	uint64_t *keys; /* 0: empty slot */
	int32_t *vals;
	size_t cap, n;
};

/* true when the stored value val is the key being looked for */
typedef int (*htab_eq_fn)(const void *ctx, int32_t val);

/* The key of a number (never 0) and of a string (FNV-1a, never 0). */
uint64_t htab__num_key(uint64_t k);
uint64_t htab__str_key(const char *s);

/* The value stored for key (eq NULL: the key alone decides), or -1. */
int32_t htab__get(const struct rpt_htab *t, uint64_t key, htab_eq_fn eq, const void *ctx);
/* Sets key's value (replacing the one eq matches). 0 or -ENOMEM. */
int htab__put(struct rpt_htab *t, uint64_t key, int32_t val, htab_eq_fn eq, const void *ctx);
void htab__free(struct rpt_htab *t);

#endif /* BUILDWARDEN_REPORT_HTAB_H */
