/* Read-only queries over the collector's store, printed as JSON lines
 * (`buildwarden query`, docs/collector.md). */
#ifndef BUILDWARDEN_COLLECTOR_QUERY_H
#define BUILDWARDEN_COLLECTOR_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "collector/store.h"

enum query_format { QUERY_JSON, QUERY_TEXT };

struct query_opts {
	bool violations;   /* violation events */
	bool runs;         /* the list of runs (CI context, completeness, violations) */
	bool findings;     /* stored findings + runs that are not complete */
	const char *run;   /* alone: the run's whole history; else a filter */
	const char *agent; /* the agent identity (certificate CN); a filter */
	const char *host;  /* the host bound to the agent's certificate */
	const char *rule;  /* violations only */
	int64_t since_ns;  /* unix ns lower bound on event/finding time; 0: none */
	long long limit;   /* the most recent N (history: the first N); 0: all */
	/* event filters; any of them alone lists every stored event that passes */
	const char *kind;  /* events.kind: exec, file, connect, run_start, ... */
	const char *exe;   /* process.exe, exactly */
	const char *path;  /* a path prefix: file path, new or old path, exec filename */
	bool outside_writes; /* file changes by a process outside the build (or unattributed);
			      * with runs: only runs that have one, and how many */
	enum query_format format;
	/* the run's CI context (runStart.ci): filters on runs and their events */
	const char *repo;  /* CiContext.repository, exactly */
	const char *commit; /* CiContext.commit_sha, exactly */
	const char *job;   /* CiContext.job, exactly */
};

/* The kinds events.kind holds, NULL-terminated (for --kind's check). */
extern const char *const query_kinds[];

/* "30s", "15m", "1h", "2d" → nanoseconds. -EINVAL on anything else. */
int query__duration(const char *s, int64_t *ns);

/* Prints what o selects, one JSON object per line. 0, -EIO with err set, or -EEXIST
 * (err says which agents) for --run alone when more than one agent has that run id and
 * no agent was named: runs are (agent, run id), and two agents' events never mix. */
int query__run(struct store *db, const struct query_opts *o, FILE *out, char *err, size_t errlen);

/* --runs (query_runs.c): one line per run, most recently active last. 0 or -EIO. */
int query__runs(struct store *db, const struct query_opts *o, FILE *out, char *err, size_t errlen);

#endif /* BUILDWARDEN_COLLECTOR_QUERY_H */
