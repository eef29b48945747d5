/* The run's own events: RunStart, the periodic Stats and RunEnd. Built from plain
 * values (a counters snapshot the agent reads in one place), so what they say is a
 * pure function of what was counted. Strings and arrays stay the caller's: the
 * event points into them and must be emitted before they go. */
#ifndef BUILDWARDEN_AGENT_RUN_EVENTS_H
#define BUILDWARDEN_AGENT_RUN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buildwarden.pb-c.h"

/* Everything counted so far, read at one moment. */
struct run_counters {
	/* the agent's own */
	uint64_t events; /* emitted before the event being built */
	uint64_t violations;
	uint64_t unattributed;
	uint64_t bad_records; /* kernel records the agent could not parse */

	/* the kernel's (the sensor's counters map) */
	uint64_t ringbuf_drops;
	const uint64_t *ringbuf_drops_per_cpu;
	size_t ncpu;
	uint64_t proc_table_failures;
	uint64_t args_read_failures;
	uint64_t depth_exceeded; /* dentry walks deeper than the kernel goes */

	/* fanotify */
	uint64_t fanwatch_overflows; /* protected trees' queue */
	uint64_t procmem_overflows;  /* /proc/PID/mem queue */
	uint64_t fanwatch_skipped;   /* objects that could not be marked */

	/* the collector sink (0 without one): spool full, or too large / spool I/O error */
	uint64_t spool_drops;

	/* fanotify events on protected objects that could not be used (a drop) */
	uint64_t fanwatch_unresolved;
	/* LINK events built without their new name (not a drop: the event is sent) */
	uint64_t link_names_missing;
	/* the kernel's: link() names shed to keep half the ring for everything else */
	uint64_t link_names_shed;

	/* enforce mode's permission answers (sensor/permwatch.h); lost refusals are
	 * counted in fanwatch_unresolved: an event that never became one */
	uint64_t perm_asked, perm_denied, perm_fail_safe;
	uint64_t perm_p50_ns, perm_p99_ns, perm_max_ns;
	uint64_t perm_wait_p50_ns, perm_wait_p99_ns, perm_wait_max_ns;

	/* the enroll socket's requests (agent mode) */
	uint64_t enrollments, enrollments_refused;
};

/* What RunEnd.drops and the summary's "lost" count: events that never reached the
 * agent (kernel ring buffer, fanotify queues) or reached it unusable. */
uint64_t run_events__drops(const struct run_counters *c);

void run_events__stats(const struct run_counters *c, Buildwarden__V1__Stats *st,
		       Buildwarden__V1__Event *ev);

/* inc: storage for RunEnd.incomplete, set only when something was lost (losses.h) */
void run_events__run_end(const struct run_counters *c, int exit_status,
			 Buildwarden__V1__RunEnd *re, Buildwarden__V1__Incomplete *inc,
			 Buildwarden__V1__Event *ev);

struct run_start_info {
	char *const *argv; /* NULL in agent mode */
	const char *policy_path; /* NULL: the built-in policy */
	const char *policy_sha256;
	bool enforce;
	const char **layers; /* "guard: layer" lines */
	size_t n_layers;
	Buildwarden__V1__CiContext *ci; /* NULL outside CI */
};

void run_events__run_start(const struct run_start_info *i, Buildwarden__V1__RunStart *rs,
			   Buildwarden__V1__Event *ev);

#endif /* BUILDWARDEN_AGENT_RUN_EVENTS_H */
