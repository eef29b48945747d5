/* Enforce mode's permission answers (issue 7): the answering thread (sensor/permwatch.c)
 * runs on the trees' permission group; here it is started and stopped with the
 * watcher, and the refusals it queues become File events with the verdict DENIED. */
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "base/log.h"
#include "pipeline/event_build.h"

#define PERM_BATCH 64

void perm__start(struct agent *a, struct fanwatch *fw)
{
	int e;

	if (fw && fanwatch__perm_err(fw))
		log__line(stderr, "buildwarden: ",
			  "warning: no fanotify permission group (%s): opens for write in the "
			  "protected trees are not refused, only writes killed",
			  strerror(-fanwatch__perm_err(fw)));
	if (!fw || fanwatch__perm_fd(fw) < 0)
		return;
	if (fanwatch__perm_no_pre(fw))
		log__line(stderr, "buildwarden: ",
			  "warning: %llu objects under the protected trees refused pre-content "
			  "marks: their truncates are killed at entry, not refused",
			  (unsigned long long)fanwatch__perm_no_pre(fw));
	e = permwatch__start(a->sensor, fw, &a->perm);
	if (e) {
		/* Nobody would answer: every open in the trees would hang. Close the group;
		 * the write guard still kills writes through descriptors. */
		fanwatch__perm_close(fw, e);
		log__line(stderr, "buildwarden: ",
			  "warning: cannot start the permission answers (%s): opens for write "
			  "in the protected trees are not refused, only writes killed",
			  strerror(-e));
		return;
	}
	if (a->loop)
		loop__add(a->loop, permwatch__fd(a->perm), perm__on_ready, a);
}

static Buildwarden__V1__FileOp perm__op(enum perm_op op)
{
	switch (op) {
	case PERM_CREATE:
		return BUILDWARDEN__V1__FILE_OP__CREATE;
	case PERM_TRUNCATE:
		return BUILDWARDEN__V1__FILE_OP__TRUNCATE;
	case PERM_OPEN_WRITE:
		break;
	}
	return BUILDWARDEN__V1__FILE_OP__OPEN_WRITE;
}

static void perm__emit(struct agent *a, const struct perm_violation *v)
{
	char path[PATH_MAX];
	struct file_change fc = {
		.op = perm__op(v->op),
		.pid = v->pid,
		.tree = v->tree >= 0 ? (unsigned)v->tree : (unsigned)-1, /* unknown: "?" */
		.path = path,
		.stop = EVENT_STOP_REFUSED,
	};
	Buildwarden__V1__Event ev;
	struct event_ctx c;
	bool violation;

	/* The in-tree name from the table (a hard link or bind mount may have been the
	 * way in); a new name is not in it: the kernel's name of the refused open. */
	if (!a->ps.fw || v->op == PERM_CREATE ||
	    fanwatch__path_of_inode(a->ps.fw, v->dev, v->ino, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "%s", v->path);
	buildwarden__v1__event__init(&ev);
	c = dispatch__ctx(a);
	violation = event_build__file(&c, &fc, &ev);
	if (ev.verdict && (v->fail_safe || v->no_intent || !violation)) {
		/* The kernel refused it: the event says so, and why when the reason is a
		 * default, not the policy's rule (or the actor joined nothing since). */
		ev.verdict->action = BUILDWARDEN__V1__ACTION__DENIED;
		ev.verdict->rule = (char *)(v->fail_safe ? "fail-safe: refused after an internal error"
					   : v->no_intent ? "default: an outsider's open with no recorded "
							    "intent (io_uring, kernel-internal)"
							  : ev.verdict->rule);
	}
	a->tally.by_kind[TALLY_FILE]++;
	agent__emit(a, &ev, true, 0);
}

void perm__on_ready(void *ctx)
{
	struct agent *a = ctx;
	struct perm_violation v[PERM_BATCH];
	size_t n;

	if (!a->perm)
		return;
	/* A refused open may follow an exec of its actor still in the ring: seq follows time. */
	sensor__drain(a->sensor);
	while ((n = permwatch__take(a->perm, v, PERM_BATCH)) > 0)
		for (size_t i = 0; i < n; i++)
			perm__emit(a, &v[i]);
}

void perm__stop(struct agent *a)
{
	struct permwatch_stats ps;

	if (!a->perm)
		return;
	/* a reload replaces the watcher: its lost refusals stay counted (run_emit.c) */
	permwatch__stats(a->perm, &ps);
	a->perm_lost_before += ps.lost;
	if (a->loop)
		loop__del(a->loop, permwatch__fd(a->perm));
	permwatch__stop(a->perm);
	a->perm = NULL;
}

bool perm__is_own_cleanup(const struct agent *a, pid_t pid)
{
	return a->perm && pid == getpid();
}
