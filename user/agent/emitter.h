/* The one place events are stamped and written: seq (gap-free, in the order events are
 * written), time, host and run id, then every sink in turn. A sink that fails does not
 * stop the others; its failures are counted on it. */
#ifndef BUILDWARDEN_AGENT_EMITTER_H
#define BUILDWARDEN_AGENT_EMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "buildwarden.pb-c.h"
#include "transport/sink.h"

#define EMITTER_MAX_SINKS 4

struct emitter_sink {
	struct sink sink;
	uint64_t errors; /* failed writes and flushes */
};

struct emitter {
	uint64_t seq; /* of the last event written */
	/* added to a kernel timestamp (CLOCK_MONOTONIC) to give the event's wall time */
	int64_t mono_to_real_ns;
	char host[256];
	char run_id[33];
	struct emitter_sink sinks[EMITTER_MAX_SINKS];
	size_t n_sinks;
};

/* No sinks yet; the clock offset is taken now. */
void emitter__init(struct emitter *e, const char *host, const char *run_id);

/* Takes ownership of s (closed by emitter__close). Returns its index, or -ENOSPC
 * (s is not closed then). */
int emitter__add(struct emitter *e, struct sink s);

/* Stamps ev and writes it to every sink. ktime is when the kernel saw it
 * (CLOCK_MONOTONIC), 0 for "now": events carry the time they happened, not the time
 * the agent got to them. Returns the number of sinks that failed. */
size_t emitter__emit(struct emitter *e, Buildwarden__V1__Event *ev, uint64_t ktime);

/* Flushes every sink; a failure counts as an error of that sink. Returns the first
 * error, 0 when all flushed. */
int emitter__flush(struct emitter *e);

/* Failures of sink i so far. */
uint64_t emitter__errors(const struct emitter *e, int i);

/* Closes the sinks in the order they were added. */
void emitter__close(struct emitter *e);

#endif /* BUILDWARDEN_AGENT_EMITTER_H */
