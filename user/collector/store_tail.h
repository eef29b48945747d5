/* The export's one seam into the store: committed events after a row id, in commit
 * order. A store has one writer, which only ever appends, so row ids grow with commit
 * order and "everything after the last row id I delivered" never misses a commit. A
 * read handle (STORE_READ) sees only committed transactions (WAL), never a batch that
 * is still being written. */
#ifndef BUILDWARDEN_COLLECTOR_STORE_TAIL_H
#define BUILDWARDEN_COLLECTOR_STORE_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include "collector/store.h"

/* One committed event with the collector's fields. Pointers are valid during the
 * callback only. */
struct store_row {
	int64_t id;               /* the store's row id: the export cursor */
	const char *agent;        /* the agent identity (certificate CN) */
	const char *host;         /* the host bound to it (runs.host) */
	const char *run_id;
	uint64_t seq;
	int64_t received_ns;      /* collector wall clock; 0 for rows of schema 1 */
	const char *kind;         /* events.kind, "" when the event did not unpack */
	uint32_t flags;           /* EVF_* */
	const uint8_t *event;     /* the stored Event bytes */
	size_t event_len;
};

/* Calls fn for up to max rows with id > after, in id order, in one read transaction;
 * stops early when fn returns non-zero (and returns that). 0, or -EIO. */
int store__tail(struct store *s, int64_t after, size_t max,
		int (*fn)(void *arg, const struct store_row *r), void *arg);

/* The highest row id (0 for none): a cursor above it belongs to another database. */
int store__tail_max(struct store *s, int64_t *out);

#endif /* BUILDWARDEN_COLLECTOR_STORE_TAIL_H */
