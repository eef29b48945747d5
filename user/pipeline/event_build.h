/* Kernel records and file changes -> Event messages with their verdicts. The seq, time,
 * host and run id are stamped later, in one place, by whoever emits. */
#ifndef BUILDWARDEN_EVENT_BUILD_H
#define BUILDWARDEN_EVENT_BUILD_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buildwarden.pb-c.h"
#include "pipeline/arena.h"
#include "pipeline/linknames.h"
#include "pipeline/procinfo.h"
#include "policy/policy.h"
#include "sensor_abi.h"

/* What the kernel did to the operation, as its record says. */
enum event_stop {
	EVENT_STOP_NONE = 0, /* it went ahead */
	EVENT_STOP_REFUSED,  /* the syscall failed (connect, send: EPERM) */
	EVENT_STOP_KILLED,   /* the actor was killed before it acted (exec, write) */
	EVENT_STOP_TAINTED,  /* enforce mode, seen after the fact: the change landed, the
				file is not to be trusted (agent/taint.c kills the actor) */
};

/* A change to a protected tree, as the sensor saw it. */
struct file_change {
	Buildwarden__V1__FileOp op;
	pid_t pid;
	unsigned tree;
	const char *path;
	const char *new_path;
	enum event_stop stop; /* NONE: it happened (fanotify); KILLED: stopped at entry */
	bool actor_exited; /* the actor had exited when the change was read (pid maybe reused) */
	bool link_here; /* LINK: path is the new name (a link made into the tree) */
};

struct event_ctx {
	const struct bw_policy *policy;
	struct procinfo *pi;
	struct arena *arena;
	struct linknames *links;
};

/* The verdict's action: ALLOWED for no violation, else DENIED or KILLED when the kernel
 * stopped it, TAINTED when enforce mode saw it land, AUDITED when it went ahead. */
Buildwarden__V1__Action event_build__action(bool violation, enum event_stop stop);

/* Each fills ev (and its parts, in the arena) and returns true for a violation. */
bool event_build__exec(struct event_ctx *c, const struct bw_exec_event *r,
		       Buildwarden__V1__Event *ev);
bool event_build__connect(struct event_ctx *c, const struct bw_connect_event *r,
			  Buildwarden__V1__Event *ev);
bool event_build__file(struct event_ctx *c, const struct file_change *f,
		       Buildwarden__V1__Event *ev);
bool event_build__proc_access(struct event_ctx *c, const struct bw_proc_access_event *r,
			      Buildwarden__V1__Event *ev);

/* A request on the agent's enroll socket, done or refused (Event.enroll): never a
 * violation; returns false. */
struct enroll_info {
	pid_t pid;        /* the process named, 0: none */
	pid_t caller_pid; /* 0: unknown */
	uint32_t caller_uid;
	const char *caller_exe; /* NULL or "": unknown */
	bool refused;
	const char *reason;
};
bool event_build__enroll(struct event_ctx *c, const struct enroll_info *i,
			 Buildwarden__V1__Event *ev);

/* Formats an address from a connect record: dotted quad or RFC 5952 text. */
void event_build__addr(const struct bw_connect_event *r, char *buf, size_t len);

#endif
