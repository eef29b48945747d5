/* Kernel records, file changes and /proc/PID/mem writes -> events: each source's
 * callback builds the event (pipeline/event_build.h) and emits it. */
#include <string.h>

#include "agent/agent_int.h"
#include "agent/resume.h"
#include "agent/taint.h"
#include "pipeline/event_build.h"
#include "pipeline/dnsanswer.h"
#include "pipeline/records.h"

void agent__emit(struct agent *a, Buildwarden__V1__Event *ev, bool violation, uint64_t ktime)
{
	tally__event(&a->tally, ev, violation);
	emitter__emit(&a->em, ev, ktime);
}

struct event_ctx dispatch__ctx(struct agent *a)
{
	struct event_ctx c = {
		.policy = a->ps.policy,
		.pi = a->pi,
		.arena = a->arena,
		.links = a->links,
	};

	arena__reset(a->arena);
	return c;
}

int dispatch__record(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;
	Buildwarden__V1__Event ev;
	struct event_ctx c;
	bool violation;
	int type = records__check(data, size);

	if (type < 0) {
		a->tally.bad_records++;
		return 0;
	}
	if (type == BW_EV_LINK_NAME) {
		linknames__note(a->links, data);
		return 0;
	}
	if (type == BW_EV_WRITE_KILL) {
		write_guard__record(a, data);
		return 0;
	}
	if (type == BW_EV_LSM_DENY) {
		lsm_deny__record(a, data);
		return 0;
	}
	buildwarden__v1__event__init(&ev);
	c = dispatch__ctx(a);
	switch (type) {
	case BW_EV_EXEC:
		violation = event_build__exec(&c, data, &ev);
		a->tally.by_kind[TALLY_EXEC]++;
		break;
	case BW_EV_CONNECT: {
		const struct bw_connect_event *r = data;
		uint8_t key[16] = { [10] = 0xff, [11] = 0xff };
		char name[DNS_NAME_TEXT_MAX];

		violation = event_build__connect(&c, data, &ev);
		/* the host the build looked up, through the resolver, allowed or not */
		if (r->family == 2)
			memcpy(key + 12, r->addr, 4);
		else
			memcpy(key, r->addr, 16);
		if (ev.connect && resolver__name_of(a->resolver, key, (int64_t)r->hdr.ktime, name, sizeof(name)))
			ev.connect->name = arena__strndup(c.arena, name, sizeof(name));
		a->tally.by_kind[TALLY_CONNECT]++;
		break;
	}
	default: {
		const struct bw_proc_access_event *r = data;

		violation = event_build__proc_access(&c, data, &ev);
		a->tally.by_kind[TALLY_PROCESS]++;
		if (r->killed && r->kind == BW_ACCESS_PTRACE)
			resume__after_attach((pid_t)r->pid, (pid_t)r->target_pid);
		break;
	}
	}
	agent__emit(a, &ev, violation, ((const struct bw_event_hdr *)data)->ktime);
	return 0;
}

static Buildwarden__V1__FileOp dispatch__file_op(enum fw_op op)
{
	switch (op) {
	case FW_WRITE:
		return BUILDWARDEN__V1__FILE_OP__WRITE;
	case FW_CREATE:
		return BUILDWARDEN__V1__FILE_OP__CREATE;
	case FW_UNLINK:
		return BUILDWARDEN__V1__FILE_OP__UNLINK;
	case FW_RENAME:
		return BUILDWARDEN__V1__FILE_OP__RENAME;
	case FW_ATTRIB:
		return BUILDWARDEN__V1__FILE_OP__ATTRIB;
	case FW_MKDIR:
		return BUILDWARDEN__V1__FILE_OP__MKDIR;
	case FW_RMDIR:
		return BUILDWARDEN__V1__FILE_OP__RMDIR;
	case FW_LINK_COUNT:
	case FW_LINK:
		return BUILDWARDEN__V1__FILE_OP__LINK;
	case FW_CLOSE_WRITE:
		return BUILDWARDEN__V1__FILE_OP__OPEN_WRITE;
	}
	return BUILDWARDEN__V1__FILE_OP__FILE_OP_UNSPECIFIED;
}

void dispatch__file_change(const struct fw_event *fe, void *ctx)
{
	struct agent *a = ctx;
	struct file_change fc = {
		.op = dispatch__file_op(fe->op),
		.pid = fe->pid,
		.tree = fe->tree,
		.path = fe->path,
		.new_path = fe->new_path ? fe->new_path : fe->outside_path,
		.actor_exited = (fe->flags & FW_EV_ACTOR_EXITED) != 0,
		.link_here = fe->op == FW_LINK,
		/* a change fanotify reports has landed: in enforce mode its file is tainted */
		.stop = a->ps.enforce ? EVENT_STOP_TAINTED : EVENT_STOP_NONE,
	};
	Buildwarden__V1__Event ev;
	struct event_ctx c = dispatch__ctx(a);
	bool violation;

	if (perm__is_own_cleanup(a, fe->pid))
		return;
	if (fc.stop == EVENT_STOP_TAINTED && fe->op == FW_CREATE && perm__refused_create(a, fe->path))
		fc.stop = EVENT_STOP_NONE;
	buildwarden__v1__event__init(&ev);
	/* The event is built first: it reads the actor's /proc entries while it lives. */
	violation = event_build__file(&c, &fc, &ev);
	if (violation && fc.stop == EVENT_STOP_TAINTED && ev.verdict)
		ev.verdict->actor_killed = taint__kill_actor(fe->pidfd, fe->pid);
	a->tally.by_kind[TALLY_FILE]++;
	agent__emit(a, &ev, violation, 0);
}

/* A write to a build process's /proc/PID/mem by a process outside the build: the same
 * verdict the kernel gives ptrace and process_vm_writev (bpf/access.bpf.c). */
void dispatch__proc_mem_write(pid_t writer, pid_t target, void *ctx)
{
	struct agent *a = ctx;
	struct bw_proc_access_event r;
	struct bw_proc wp, tp;
	Buildwarden__V1__Event ev;
	struct event_ctx c;

	if (!target) {
		/* Unreadable: a loss unless the writer is the build (its writes to any
		 * process are allowed). Not the writer's own files either way: unknown. */
		if (sensor__proc_lookup(a->sensor, writer, &wp) || !(wp.flags & BW_PROC_IN_BUILD))
			procmem__count_unreadable(a->pm);
		return;
	}
	if (writer == target || sensor__proc_lookup(a->sensor, target, &tp) ||
	    !(tp.flags & BW_PROC_IN_BUILD))
		return;
	if (sensor__proc_lookup(a->sensor, writer, &wp) == 0 && (wp.flags & BW_PROC_IN_BUILD))
		return;
	memset(&r, 0, sizeof(r));
	r.hdr.type = BW_EV_PROC_ACCESS;
	r.hdr.version = BW_ABI_VERSION;
	r.hdr.size = sizeof(r);
	r.pid = (uint32_t)writer;
	r.target_pid = (uint32_t)target;
	r.kind = BW_ACCESS_PROC_MEM;
	buildwarden__v1__event__init(&ev);
	c = dispatch__ctx(a);
	event_build__proc_access(&c, &r, &ev);
	a->tally.by_kind[TALLY_PROCESS]++;
	agent__emit(a, &ev, true, 0);
}
