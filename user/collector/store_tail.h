/* The export's one seam into the store: committed events after a position, in commit
 * order, so that "everything after the last position I delivered" never misses a
 * commit.
 * - SQLite: the position is the row id. A store has one writer, which only ever
 *   appends, so row ids grow with commit order. A read handle (STORE_READ) sees only
 *   committed transactions (WAL), never a batch that is still being written.
 * - PostgreSQL: several collectors commit at once; the position is given after the
 *   commit by a sequencer (store_pg_tail.c, docs/collector.md "Export from
 *   PostgreSQL"), contiguous from 1, the same for an event whoever reads it. The cursor
 *   is a row of the database, shared by every collector that exports to the same
 *   destination, and one of them at a time (the one holding the claim) exports. */
#ifndef BUILDWARDEN_COLLECTOR_STORE_TAIL_H
#define BUILDWARDEN_COLLECTOR_STORE_TAIL_H

#include <stdbool.h>
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

/* The highest row id (0 for none): a cursor above it belongs to another database.
 * SQLite only (-EOPNOTSUPP otherwise): PostgreSQL's positions never restart and its
 * cursor lives in the database it counts. */
int store__tail_max(struct store *s, int64_t *out);

/* True when the cursor and the claim live in the database (PostgreSQL); false: the
 * caller keeps its cursor (a file beside the SQLite database) and is the only reader. */
bool store__tail_shared(const struct store *s);
/* Takes the claim on the export name: 1 this handle holds it (until store__close, or
 * until its connection is lost: see store__tail_claimed), 0 another collector does,
 * -EIO. */
int store__tail_claim(struct store *s, const char *name);
/* Whether the claim taken is still held (the session that took it is the current one). */
bool store__tail_claimed(const struct store *s);
/* The shared cursor of name: 0 with *pos (0 for a name never saved), or -EIO. */
int store__tail_cursor_load(struct store *s, const char *name, int64_t *pos);
/* Raises it to pos (never lowers it: a collector that lost its claim cannot set it back).
 * 0, or -EIO with err set. */
int store__tail_cursor_save(struct store *s, const char *name, int64_t pos, char *err,
			    size_t errlen);

#endif /* BUILDWARDEN_COLLECTOR_STORE_TAIL_H */
