/* The model a report is written from: the events of one file folded into runs, a
 * process tree, execs, protected-tree changes (with the rename chains between them),
 * connects, violations with the actor's lineage, and each run's completeness. Built one
 * event at a time (report__read feeds it), so a report never holds the whole file. Pure:
 * no I/O, driven the same way by the command, the unit tests and the fuzz target. */
#ifndef BUILDWARDEN_REPORT_MODEL_H
#define BUILDWARDEN_REPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buildwarden.pb-c.h"

/* Items of each kind a model takes; past it rpt_model__add returns -EFBIG, so a hostile
 * file cannot make a report take all memory. A real build is far below it. */
#define RPT_MAX_ITEMS (8u * 1024 * 1024)
/* Ancestors kept per violation (the event carries the chain, parent first). */
#define RPT_MAX_LINEAGE 16

enum rpt_kind {
	RPT_EXEC,
	RPT_FILE,
	RPT_CONNECT,
	RPT_ACCESS,
	RPT_INCOMPLETE, /* a run's completeness, as a finding (SARIF, markdown) */
};

struct rpt_ancestor {
	uint32_t pid;
	bool in_build;
	char *exe;
};

struct rpt_proc {
	uint32_t run;     /* index in runs */
	uint32_t pid, ppid;
	int32_t parent;   /* index in procs, -1 for a root; always below this one's */
	int32_t first_child, next_sibling; /* -1: none */
	char *exe;        /* the last image seen */
	char *argv;       /* joined with spaces */
	char *comm;
	bool in_build;
	bool seen;        /* an event of its own, not only named as an ancestor */
	uint32_t nexecs, nfiles, nconnects, nviolations;
};

struct rpt_exec {
	int32_t proc;
	uint64_t seq;
	char *filename;
	char *exe;
	char *argv;
	bool truncated;
	bool violation;
};

struct rpt_file {
	int32_t proc;
	uint64_t seq;
	int op;           /* BUILDWARDEN__V1__FILE_OP__* */
	char *path, *new_path, *tree;
	bool violation;
};

/* A file's history under one name: who changed it there, and the name it had before a
 * rename within the trees (from), so an output can be followed back to its writers. */
struct rpt_output {
	char *path;
	int32_t from;       /* index in outputs, -1 */
	int32_t *changes;   /* indices in files */
	size_t nchanges, cap;
	bool gone;          /* renamed away or removed: not a final output */
	char *across;       /* the other side of a rename across the tree boundary */
};

struct rpt_connect {
	int32_t proc;
	uint64_t seq;
	char *address;
	uint32_t port;
	int protocol;       /* BUILDWARDEN__V1__PROTOCOL__* */
	int action;         /* BUILDWARDEN__V1__ACTION__* */
	bool violation;
};

struct rpt_violation {
	enum rpt_kind kind;
	uint32_t run;       /* index in runs */
	int32_t proc;
	int32_t item;       /* index in execs, files, connects; -1 for an access */
	uint64_t seq;
	char *rule;
	int action;
	uint32_t target_pid;  /* RPT_ACCESS */
	int access_kind;      /* RPT_ACCESS: BUILDWARDEN__V1__PROCESS_ACCESS_KIND__* */
	bool attributed;
	struct rpt_ancestor lineage[RPT_MAX_LINEAGE];
	size_t nlineage;
	size_t lineage_total; /* ancestors in the event, past the kept ones too */
};

/* One cause of incompleteness with its count, as runEnd.incomplete names it. */
struct rpt_cause {
	const char *name; /* static: "ringbuf_drops", ... */
	uint64_t count;
};

#define RPT_MAX_GAPS 8
#define RPT_MAX_CAUSES 12

struct rpt_run {
	char *run_id, *host;
	char *argv, *policy_path, *policy_sha256, *mode, *agent_version;
	char *ci; /* runStart.ci in one line ("" outside CI): provider, repository, ref, ... */
	char **layers;
	size_t nlayers;
	bool has_start, has_end;
	int32_t exit_status;
	uint64_t end_events, end_violations, end_drops;
	struct rpt_cause causes[RPT_MAX_CAUSES]; /* from runEnd.incomplete, non-zero only */
	size_t ncauses;
	bool has_stats;
	uint64_t stats_ringbuf_drops, stats_fanotify_overflows, stats_unattributed;
	/* seq: the agent numbers a run's events from 1 without gaps */
	uint64_t events, first_seq, last_seq;
	uint64_t missing;   /* seq numbers skipped, summed */
	uint64_t out_of_order;
	struct { uint64_t from, to; } gaps[RPT_MAX_GAPS]; /* the first few, [from, to] */
	size_t ngaps;
	uint64_t violations; /* counted here from the events */
};

struct rpt_model {
	struct rpt_run *runs;       size_t nruns, cap_runs;
	struct rpt_proc *procs;     size_t nprocs, cap_procs;
	struct rpt_exec *execs;     size_t nexecs, cap_execs;
	struct rpt_file *files;     size_t nfiles, cap_files;
	struct rpt_output *outputs; size_t noutputs, cap_outputs;
	struct rpt_connect *connects; size_t nconnects, cap_connects;
	struct rpt_violation *violations; size_t nviolations, cap_violations;
	uint64_t events;            /* all events read */
	/* set by the reader when the file ended in corrupt data (what decode said): every
	 * event before it is in the model, and the report counts as incomplete */
	char read_error[256];
	struct rpt_index *index;    /* private: (run, pid) and path lookups */
};

struct rpt_model *rpt_model__new(void);
/* Folds one event in. 0, -ENOMEM, or -EFBIG past RPT_MAX_ITEMS. */
int rpt_model__add(struct rpt_model *m, const Buildwarden__V1__Event *ev);
/* Links the tree (parents, children in order of appearance). Call once, after the
 * last add. 0 or -ENOMEM. */
int rpt_model__finish(struct rpt_model *m);
void rpt_model__free(struct rpt_model *m);

/* A run that cannot vouch for its build: no runEnd, causes in runEnd.incomplete,
 * drops, or seq numbers missing. */
bool rpt_run__incomplete(const struct rpt_run *r);
/* "WRITE", "RENAME", ... or "?" */
const char *rpt__file_op(int op);
/* "ALLOWED", ... or "?" */
const char *rpt__action(int action);
/* "tcp", "udp" or "?" */
const char *rpt__protocol(int protocol);
/* "ptrace", "process_vm_writev", "/proc/PID/mem write" or "?" */
const char *rpt__access_kind(int kind);
/* An exe outside the usual system directories (/usr, /bin, /sbin, /lib*, /opt). */
bool rpt__unusual_exe(const char *exe);

/* Plain text (to be escaped by the caller), malloc'd, NULL when out of memory:
 * what a violation was ("WRITE /srv/src/a.c", "exec /tmp/x", "connect tcp
 * 10.0.0.1:443", "ptrace of pid 12"), the acting process ("pid 42 /usr/bin/dd (outside
 * the build)"), and its lineage, parent first ("pid 41 /bin/sh <- pid 1 /sbin/init"). */
char *rpt__describe(const struct rpt_model *m, const struct rpt_violation *v);
/* max_argv: bytes of argv kept (cut on a character boundary, "..." added); 0: none */
char *rpt__actor(const struct rpt_model *m, int32_t proc, size_t max_argv);
char *rpt__lineage(const struct rpt_violation *v);

#endif /* BUILDWARDEN_REPORT_MODEL_H */
