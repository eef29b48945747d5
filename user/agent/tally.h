/* What the run saw, counted as events are emitted, and the end-of-run summary that
 * tells a person about it on stderr. Pure: the caller hands in what the summary needs
 * from the sensor, the host and the collector. */
#ifndef BUILDWARDEN_AGENT_TALLY_H
#define BUILDWARDEN_AGENT_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/losses.h"
#include "buildwarden.pb-c.h"
#include "transport/sink_collector.h"

#define TALLY_MAX_RULES 64
#define TALLY_MAX_TAINTED 32 /* files named in the summary; all are counted */

enum tally_kind { TALLY_EXEC, TALLY_FILE, TALLY_CONNECT, TALLY_PROCESS, TALLY_KINDS };

struct tally_rule {
	char rule[160];
	uint64_t n;
};

struct tally {
	uint64_t events; /* every event emitted, stats and run events included */
	uint64_t violations;
	uint64_t unattributed;
	uint64_t bad_records;
	uint64_t by_kind[TALLY_KINDS];
	struct tally_rule rules[TALLY_MAX_RULES]; /* violations per rule, first seen first */
	size_t n_rules;
	/* enforce mode: files changed by an outsider, with no hook to refuse it (TAINTED) */
	uint64_t tainted; /* distinct names while the table has room, then every event */
	char tainted_paths[TALLY_MAX_TAINTED][512];
	size_t n_tainted_paths;
	uint64_t actors_killed; /* TAINTED events whose actor the agent killed */
	/* requests on the enroll socket: build roots made, requests refused */
	uint64_t enrollments, enrollments_refused;
};

/* An event was emitted; violation: it broke the policy (its verdict names the rule). */
void tally__event(struct tally *t, const Buildwarden__V1__Event *ev, bool violation);

/* What the summary says besides the tally. */
struct tally_summary {
	const char *what; /* "build finished", "agent stopped" */
	const char *run_id;
	bool enforce;
	uint64_t drops;       /* kernel ring buffer and fanotify queues */
	uint64_t not_written; /* events the events file did not get */
	uint64_t not_watched; /* objects under the protected trees without a mark */
	bool have_cpu;
	double cpu_user_s, cpu_system_s;
	const char *collector; /* its address; NULL: no collector */
	const struct sink_collector_stats *collector_stats;
	const char *const *layers; /* "guard: layer" lines */
	size_t n_layers;
	const struct run_losses *losses; /* NULL or none: the run is complete */
	const struct permwatch_stats *perm; /* enforce mode's permission answers; NULL: none */
	bool exec_guard;		    /* the exec guard ran: */
	uint64_t exec_guard_asked;	    /* the exec-opens it answered */
};

struct permwatch_stats;
void tally__print_summary(const struct tally *t, const struct tally_summary *s, FILE *out);

#endif /* BUILDWARDEN_AGENT_TALLY_H */
