/* Emitter: see emitter.h. */
#include <errno.h>
#include <stdio.h>

#include "agent/emitter.h"
#include "base/clock.h"

void emitter__init(struct emitter *e, const char *host, const char *run_id)
{
	*e = (struct emitter){ .mono_to_real_ns = clock__real_ns() - clock__mono_ns() };
	snprintf(e->host, sizeof(e->host), "%s", host);
	snprintf(e->run_id, sizeof(e->run_id), "%s", run_id);
}

int emitter__add(struct emitter *e, struct sink s)
{
	if (e->n_sinks >= EMITTER_MAX_SINKS)
		return -ENOSPC;
	e->sinks[e->n_sinks] = (struct emitter_sink){ .sink = s };
	return (int)e->n_sinks++;
}

size_t emitter__emit(struct emitter *e, Buildwarden__V1__Event *ev, uint64_t ktime)
{
	size_t failed = 0;

	ev->seq = ++e->seq;
	ev->time_ns = ktime ? (uint64_t)((int64_t)ktime + e->mono_to_real_ns)
			    : (uint64_t)clock__real_ns();
	ev->host = e->host;
	ev->run_id = e->run_id;
	/* The collector sink also counts what it drops itself, and tells the collector
	 * (a Skip): its count here is only the agent's side of the story. */
	for (size_t i = 0; i < e->n_sinks; i++) {
		if (sink__write(&e->sinks[i].sink, ev)) {
			e->sinks[i].errors++;
			failed++;
		}
	}
	return failed;
}

int emitter__flush(struct emitter *e)
{
	int first = 0;

	for (size_t i = 0; i < e->n_sinks; i++) {
		int err = sink__flush(&e->sinks[i].sink);

		if (err) {
			e->sinks[i].errors++;
			if (!first)
				first = err;
		}
	}
	return first;
}

uint64_t emitter__errors(const struct emitter *e, int i)
{
	return i >= 0 && (size_t)i < e->n_sinks ? e->sinks[i].errors : 0;
}

void emitter__close(struct emitter *e)
{
	for (size_t i = 0; i < e->n_sinks; i++)
		sink__close(&e->sinks[i].sink);
	e->n_sinks = 0;
}
