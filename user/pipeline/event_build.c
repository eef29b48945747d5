#include "pipeline/event_build.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define BW_STR_(x) #x
#define BW_STR(x) BW_STR_(x)

Buildwarden__V1__Action event_build__action(bool violation, enum event_stop stop)
{
	if (!violation)
		return BUILDWARDEN__V1__ACTION__ALLOWED;
	/* Only what the kernel says it did: a mode is an intent, the record is a fact. */
	switch (stop) {
	case EVENT_STOP_REFUSED:
		return BUILDWARDEN__V1__ACTION__DENIED;
	case EVENT_STOP_KILLED:
		return BUILDWARDEN__V1__ACTION__KILLED;
	case EVENT_STOP_TAINTED:
		return BUILDWARDEN__V1__ACTION__TAINTED;
	case EVENT_STOP_NONE:
		break;
	}
	return BUILDWARDEN__V1__ACTION__AUDITED;
}

static Buildwarden__V1__Verdict *verdict_new(struct event_ctx *c, bool violation,
					     const char *rule, enum event_stop stop)
{
	Buildwarden__V1__Verdict *v = arena__alloc(c->arena, sizeof(*v));

	if (!v)
		return NULL;
	buildwarden__v1__verdict__init(v);
	v->violation = violation;
	v->rule = rule ? arena__strndup(c->arena, rule, 512) : (char *)"";
	v->action = event_build__action(violation, stop);
	return v;
}

static Buildwarden__V1__Process *process_new(struct event_ctx *c, pid_t pid, struct bw_proc *raw)
{
	Buildwarden__V1__Process *p = arena__alloc(c->arena, sizeof(*p));

	if (!p) {
		memset(raw, 0, sizeof(*raw)); /* callers read it: nothing known */
		return NULL;
	}
	procinfo__describe(c->pi, pid, c->arena, p, raw);
	return p;
}

/* The exec tree nearest to the file an exec named, on its resolved path: each parent's
 * (dev, inode) against the allow and deny trees. Returns the index of the deny tree or
 * -1; *allow gets the index of the allow tree when that is the nearest (else -1).
 * scripts_only: a binary (the file the kernel loaded) is left to the kernel. */
static int exec_tree(const struct bw_policy *p, const struct bw_exec_event *r, bool scripts_only,
		     int *allow)
{
	char path[PATH_MAX], raw[BW_FILENAME_LEN + 64];
	struct stat st;
	char *slash;

	*allow = -1;
	if (!p->n_exec_deny || r->filename_len == 0)
		return -1;
	if (r->filename[0] == '/')
		snprintf(raw, sizeof(raw), "%.*s", (int)sizeof(r->filename), r->filename);
	else
		snprintf(raw, sizeof(raw), "/proc/%u/cwd/%.*s", r->pid, (int)sizeof(r->filename),
			 r->filename);
	if (!realpath(raw, path) || stat(path, &st) != 0)
		return -1;
	if (scripts_only && st.st_ino == r->exe_ino &&
	    major(st.st_dev) == BW_KDEV_MAJOR(r->exe_dev) &&
	    minor(st.st_dev) == BW_KDEV_MINOR(r->exe_dev))
		return -1; /* a binary: the kernel already decided */
	while ((slash = strrchr(path, '/'))) {
		*(slash == path ? slash + 1 : slash) = '\0';
		if (stat(path, &st) != 0)
			return -1;
		/* the nearest tree decides: an exec.allow subtree of a denied tree allows */
		for (size_t i = 0; i < p->n_exec_allow; i++)
			if (p->exec_allow[i].dev == st.st_dev && p->exec_allow[i].ino == st.st_ino) {
				*allow = (int)i;
				return -1;
			}
		for (size_t i = 0; i < p->n_exec_deny; i++)
			if (p->exec_deny[i].dev == st.st_dev && p->exec_deny[i].ino == st.st_ino)
				return (int)i;
		if (slash == path)
			break;
	}
	return -1;
}

/* The kernel checks the binary it loads; for a #! script that is the interpreter, and
 * the script's own file is released before any tracepoint sees it. So the script is
 * checked here. Returns the index of the deny tree or -1. */
static int script_deny_tree(const struct bw_policy *p, const struct bw_exec_event *r)
{
	int allow;

	return exec_tree(p, r, true, &allow);
}

/* The rule a way around exec.deny broke (include/sensor_abi.h, BW_EXEC_EVASIONS). */
static const char *exec_evasion_rule(uint32_t flags)
{
	if (flags & BW_EXEC_NAMELESS)
		return "exec.deny: a file with no name in any mounted tree (memfd, deleted)";
	if (flags & BW_EXEC_LOADER)
		return "exec.deny: the dynamic loader run directly on a program";
	if (flags & BW_EXEC_TOO_DEEP)
		return "exec.deny: a file deeper than the " BW_STR(BW_MAX_DENTRY_DEPTH)
		       "-level walk: cannot tell whether it is in a deny tree";
	return NULL;
}

static enum event_stop exec_stop(uint32_t flags)
{
	if (flags & BW_EXEC_REFUSED)
		return EVENT_STOP_REFUSED;
	return (flags & BW_EXEC_KILLED) ? EVENT_STOP_KILLED : EVENT_STOP_NONE;
}

bool event_build__exec(struct event_ctx *c, const struct bw_exec_event *r,
		       Buildwarden__V1__Event *ev)
{
	Buildwarden__V1__ExecBody *body = arena__alloc(c->arena, sizeof(*body));
	int denied = r->denied_tree >= 0 ? r->denied_tree : script_deny_tree(c->policy, r);
	const char *evasion = exec_evasion_rule(r->flags);
	bool violation = denied >= 0 || evasion;
	char rule[512] = "";
	struct bw_proc raw;

	if (!(r->flags & BW_EXEC_REFUSED)) /* refused: the process keeps its image */
		procinfo__note_exec(c->pi, (pid_t)r->pid, r->args, r->args_len);
	ev->process = process_new(c, (pid_t)r->pid, &raw);
	if (denied >= 0) {
		size_t i = (size_t)denied;

		if (i < c->policy->n_exec_deny && c->policy->exec_deny[i].name)
			snprintf(rule, sizeof(rule), "%s", c->policy->exec_deny[i].name);
		else
			snprintf(rule, sizeof(rule), "exec.deny[%zu]: %s", i,
				 i < c->policy->n_exec_deny ? c->policy->exec_deny[i].path : "?");
	} else if (evasion) {
		snprintf(rule, sizeof(rule), "%s", evasion);
	} else if (c->policy->n_exec_allow) {
		/* allowed by an exception: the event names the exec.allow tree that let it run */
		int allow;

		exec_tree(c->policy, r, false, &allow);
		if (allow >= 0 && c->policy->exec_allow[allow].name)
			snprintf(rule, sizeof(rule), "%s", c->policy->exec_allow[allow].name);
		else if (allow >= 0)
			snprintf(rule, sizeof(rule), "exec.allow[%d]: %s", allow,
				 c->policy->exec_allow[allow].path);
	}
	/* A #! script found here (not by the kernel) in audit mode ran; in enforce mode the
	 * agent refused its exec (BW_EXEC_REFUSED, sensor/execguard.c). */
	ev->verdict = verdict_new(c, violation, rule[0] ? rule : NULL, exec_stop(r->flags));
	if (body) {
		buildwarden__v1__exec_body__init(body);
		body->filename = arena__strndup(c->arena, r->filename, sizeof(r->filename));
		body->truncated =
			(r->flags & (BW_EXEC_ARGS_TRUNCATED | BW_EXEC_FILENAME_TRUNCATED)) != 0;
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
		ev->exec = body;
	}
	return violation;
}

void event_build__addr(const struct bw_connect_event *r, char *buf, size_t len)
{
	if (!inet_ntop(r->family == 2 ? AF_INET : AF_INET6, r->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

bool event_build__connect(struct event_ctx *c, const struct bw_connect_event *r,
			  Buildwarden__V1__Event *ev)
{
	Buildwarden__V1__ConnectBody *body = arena__alloc(c->arena, sizeof(*body));
	bool violation = r->action == BW_NET_DENY;
	bool deny_rule = r->matched == BW_MATCH_DENY;
	const struct bw_net_rule *list = deny_rule ? c->policy->net_deny : c->policy->net_allow;
	size_t n = deny_rule ? c->policy->n_net_deny : c->policy->n_net_allow;
	char rule[512], addr[INET6_ADDRSTRLEN];
	struct bw_proc raw;

	ev->process = process_new(c, (pid_t)r->pid, &raw);
	/* the rule that decided, allowed connects included; its `name:` when it has one */
	if (r->matched == BW_MATCH_NAME && r->rule_index < c->policy->n_net_allow_names) {
		const struct bw_host_rule *h = &c->policy->net_allow_names[r->rule_index];

		if (h->rule_name)
			snprintf(rule, sizeof(rule), "%s", h->rule_name);
		else
			snprintf(rule, sizeof(rule), "network.allow: %s", h->text);
	} else if ((r->matched == BW_MATCH_ALLOW || r->matched == BW_MATCH_DENY) &&
		   r->rule_index < n) {
		if (list[r->rule_index].name)
			snprintf(rule, sizeof(rule), "%s", list[r->rule_index].name);
		else
			snprintf(rule, sizeof(rule), "network.%s: %s", deny_rule ? "deny" : "allow",
				 list[r->rule_index].text);
	} else {
		snprintf(rule, sizeof(rule), "network.default: %s",
			 c->policy->net_default_deny ? "deny" : "allow");
	}
	ev->verdict = verdict_new(c, violation, rule,
				  r->enforced ? EVENT_STOP_REFUSED : EVENT_STOP_NONE);
	if (body) {
		buildwarden__v1__connect_body__init(body);
		event_build__addr(r, addr, sizeof(addr));
		body->address = arena__strndup(c->arena, addr, sizeof(addr));
		body->port = r->port;
		body->protocol = r->protocol == BW_PROTO_UDP ? BUILDWARDEN__V1__PROTOCOL__UDP
							     : BUILDWARDEN__V1__PROTOCOL__TCP;
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
		ev->connect = body;
	}
	return violation;
}

/* The real uid (first of /proc/PID/status "Uid:") and the parent's pid of a live
 * process: false when it is gone. */
static bool proc_uid_ppid(pid_t pid, uint32_t *uid, pid_t *ppid)
{
	char path[64], line[256];
	bool have_uid = false, have_ppid = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f) && !(have_uid && have_ppid)) {
		unsigned long v;

		if (sscanf(line, "Uid: %lu", &v) == 1) {
			*uid = (uint32_t)v;
			have_uid = true;
		} else if (sscanf(line, "PPid: %lu", &v) == 1) {
			*ppid = (pid_t)v;
			have_ppid = true;
		}
	}
	fclose(f);
	return have_uid && have_ppid;
}

/* A writers entry's conditions (uid, parent), as the kernel checks them at exec
 * (bpf/lib/writer.bpf.h), from the table's entry when it has the process's identity
 * (it may have exited by now), else from /proc. */
static bool writer_conditions_hold(const struct bw_exe_match *w, pid_t pid,
				   const struct bw_proc *raw)
{
	char path[64];
	struct stat st;
	uint32_t uid = 0;
	pid_t ppid = 0;

	if (!w->has_uid && !w->parent)
		return true;
	if (raw->flags & BW_PROC_EXEC_SEEN) {
		uid = raw->uid;
		ppid = (pid_t)raw->ppid;
	} else if (!proc_uid_ppid(pid, &uid, &ppid)) {
		return false;
	}
	if (w->has_uid && uid != w->uid)
		return false;
	if (w->parent) {
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)ppid);
		if (stat(path, &st) != 0 || st.st_dev != w->parent_dev || st.st_ino != w->parent_ino)
			return false;
	}
	return true;
}

/* A process whose start the kernel table did not see (it predates the sensor: its
 * entry, if any, comes from the start-up scan of /proc) is matched on its executable's
 * identity and the entry's conditions; lineage can't be known for it. One whose exec or
 * fork the table saw has its rights in writer_mask, decided at its exec. */
static bool writer_by_exe(const struct bw_protect *t, pid_t pid, const struct bw_proc *raw)
{
	uint64_t dev = 0, ino = 0;
	char path[64];
	struct stat st;

	if (raw->flags & BW_PROC_EXEC_SEEN) {
		dev = makedev(BW_KDEV_MAJOR(raw->exe_dev), BW_KDEV_MINOR(raw->exe_dev));
		ino = raw->exe_ino;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		if (stat(path, &st) != 0)
			return false;
		dev = st.st_dev;
		ino = st.st_ino;
	}
	for (size_t i = 0; i < t->n_writers; i++)
		if (t->writers[i].dev == dev && t->writers[i].ino == ino &&
		    writer_conditions_hold(&t->writers[i], pid, raw))
			return true;
	return false;
}

bool event_build__file(struct event_ctx *c, const struct file_change *f,
		       Buildwarden__V1__Event *ev)
{
	Buildwarden__V1__FileBody *body = arena__alloc(c->arena, sizeof(*body));
	const struct bw_protect *tree = f->tree < c->policy->n_protect ? &c->policy->protect[f->tree]
								      : NULL;
	bool violation, writer = false;
	struct bw_proc raw;
	char rule[512];

	if (f->actor_exited) {
		ev->process = arena__alloc(c->arena, sizeof(*ev->process));
		if (ev->process)
			procinfo__describe_exited(c->pi, f->pid, c->arena, ev->process, &raw);
		else
			memset(&raw, 0, sizeof(raw));
	} else {
		ev->process = process_new(c, f->pid, &raw);
	}
	if (tree && f->tree < 64 && (raw.writer_mask & (1ull << f->tree)))
		writer = true;
	/* An actor gone before the read has no /proc/PID/exe of its own any more: only
	 * what the kernel recorded at its exec (or the start-up scan) may name it. */
	else if (tree && tree->n_writers && !(raw.flags & (BW_PROC_FROM_FORK | BW_PROC_FROM_EXEC)) &&
		 !(f->actor_exited && !(raw.flags & BW_PROC_EXEC_SEEN)))
		writer = writer_by_exe(tree, f->pid, &raw);
	if (ev->process)
		ev->process->authorized_writer = writer;
	violation = !(raw.flags & BW_PROC_IN_BUILD) && !writer;
	if (tree && tree->name)
		snprintf(rule, sizeof(rule), "%s", tree->name);
	else
		snprintf(rule, sizeof(rule), "protect[%u]: %s", f->tree, tree ? tree->path : "?");
	/* allowed changes name the tree too: the rule that let the build (or a writer) in */
	ev->verdict = verdict_new(c, violation, rule, f->stop);
	if (body) {
		buildwarden__v1__file_body__init(body);
		body->op = f->op;
		body->path = arena__strndup(c->arena, f->path, 4096);
		/* fanotify says "modified" for truncate(2) too; its path record tells */
		if (f->op == BUILDWARDEN__V1__FILE_OP__WRITE && c->links &&
		    linknames__truncated(c->links, f->pid, f->path))
			body->op = BUILDWARDEN__V1__FILE_OP__TRUNCATE;
		if (f->new_path) {
			body->new_path = arena__strndup(c->arena, f->new_path, 4096);
		} else if (f->op == BUILDWARDEN__V1__FILE_OP__LINK && f->link_here) {
			char name[PATH_MAX];

			/* made into the tree: the new name is ours, the existing one the link()'s */
			body->new_path = body->path;
			if (c->links && linknames__find_old(c->links, f->pid, f->path, name, sizeof(name)))
				body->old_path = arena__strndup(c->arena, name, sizeof(name));
		} else if (f->op == BUILDWARDEN__V1__FILE_OP__LINK && c->links) {
			char name[PATH_MAX];

			/* a link made elsewhere to this file, or removed (then no new name) */
			if (linknames__find(c->links, f->pid, f->path, name, sizeof(name))) {
				body->new_path = arena__strndup(c->arena, name, sizeof(name));
				body->old_path = body->path;
			}
		}
		if (tree)
			body->tree = arena__strndup(c->arena, tree->path, 4096);
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev->file = body;
	}
	return violation;
}

bool event_build__proc_access(struct event_ctx *c, const struct bw_proc_access_event *r,
			      Buildwarden__V1__Event *ev)
{
	Buildwarden__V1__ProcessAccessBody *body = arena__alloc(c->arena, sizeof(*body));
	struct bw_proc raw;

	ev->process = process_new(c, (pid_t)r->pid, &raw);
	ev->verdict = verdict_new(c, true, "process: an outside process reached into a build process",
				  r->killed ? EVENT_STOP_KILLED : EVENT_STOP_NONE);
	if (body) {
		buildwarden__v1__process_access_body__init(body);
		body->kind = r->kind == BW_ACCESS_PTRACE ? BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PTRACE
			     : r->kind == BW_ACCESS_VM_WRITEV
				     ? BUILDWARDEN__V1__PROCESS_ACCESS_KIND__VM_WRITEV
				     : BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PROC_MEM_WRITE;
		body->target_pid = r->target_pid;
		ev->body_case = BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS;
		ev->process_access = body;
	}
	return true;
}

bool event_build__enroll(struct event_ctx *c, const struct enroll_info *i,
			 Buildwarden__V1__Event *ev)
{
	Buildwarden__V1__EnrollBody *body = arena__alloc(c->arena, sizeof(*body));
	struct bw_proc raw;

	if (i->pid > 0)
		ev->process = process_new(c, i->pid, &raw);
	if (!body)
		return false;
	buildwarden__v1__enroll_body__init(body);
	body->pid = (uint32_t)(i->pid > 0 ? i->pid : 0);
	body->refused = i->refused;
	body->reason = arena__strndup(c->arena, i->reason ? i->reason : "", 512);
	body->caller_pid = (uint32_t)(i->caller_pid > 0 ? i->caller_pid : 0);
	body->caller_uid = i->caller_uid;
	if (i->caller_exe && *i->caller_exe)
		body->caller_exe = arena__strndup(c->arena, i->caller_exe, PATH_MAX);
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_ENROLL;
	ev->enroll = body;
	return false;
}
