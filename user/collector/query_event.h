/* What `query` does with one stored event: the filters that need the event's own
 * fields (--exe, --path, --outside-writes: the store keeps them in columns for
 * violation rows only), and its two printed forms (JSON as `decode` prints it, or one
 * readable line). Used by query.c and query_runs.c. */
#ifndef BUILDWARDEN_COLLECTOR_QUERY_EVENT_H
#define BUILDWARDEN_COLLECTOR_QUERY_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "buildwarden.pb-c.h"
#include "collector/query.h"

/* A change in a protected tree (any file event) by a process that is not part of the
 * build, or whose actor the sensor could not tell: the SUNSPOT question. */
bool query_event__outside_write(const Buildwarden__V1__Event *ev);

/* The event-field filters of o (exe, path prefix, outside writes); ev may be NULL (the
 * bytes were not an Event), which no such filter passes. */
bool query_event__match(const struct query_opts *o, const Buildwarden__V1__Event *ev);
/* True when o has a filter query_event__match must decide. */
bool query_event__filters(const struct query_opts *o);

/* Prints one stored event in o->format with a newline. agent, host, run_id: the
 * collector's (host NULL: not shown); received_ns 0: unknown. */
void query_event__print(FILE *out, const struct query_opts *o, const char *agent,
			const char *host, const char *run_id, uint64_t seq, int64_t received_ns,
			int flags, const Buildwarden__V1__Event *ev);

/* "2026-01-02T03:04:05.678Z" into buf (32 bytes room). */
void query_event__time(char *buf, size_t len, int64_t ns);

#endif /* BUILDWARDEN_COLLECTOR_QUERY_EVENT_H */
