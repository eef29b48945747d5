/* Each recorded event gets the verdict the draft would give it, decided as the sensor
 * decides: connects by include/netmatch.h (draft/netdraft.c), the recorded name standing
 * in for the resolver's answer; execs by the deny trees and file changes by the
 * protected trees and their writers, on the resolved paths the events carry (the sensor
 * matches (dev, inode): a tree reached through another mount or a bind mount is not
 * recognised here). The recorded verdict says whether it was flagged then. Events of
 * other kinds are counted, not replayed. */
#include "draft/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "draft/netdraft.h"
#include "sensor_abi.h"

struct replay_change {
	char *what; /* "newly flagged: connect ..." */
	uint64_t count;
	char *example;
};

struct draft_replay {
	const struct bw_policy *p;
	struct draft_net *net;
	struct replay_change *changes;
	size_t n, cap;
	struct draft_replay_counts c;
	char *last_run;
};

int draft_replay__new(const struct bw_policy *p, struct draft_replay **out)
{
	struct draft_replay *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r || draft_net__new(p, &r->net)) {
		free(r);
		return -ENOMEM;
	}
	r->p = p;
	*out = r;
	return 0;
}

void draft_replay__free(struct draft_replay *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->changes[i].what);
		free(r->changes[i].example);
	}
	free(r->changes);
	free(r->last_run);
	draft_net__free(r->net);
	free(r);
}

void draft_replay__counts(const struct draft_replay *r, struct draft_replay_counts *c)
{
	*c = r->c;
}

static bool under(const char *path, const char *tree)
{
	size_t n = strlen(tree);

	if (!path || !tree[0])
		return false;
	if (strcmp(tree, "/") == 0)
		return path[0] == '/';
	return strncmp(path, tree, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static const char *s_or(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static int replay__note(struct draft_replay *r, bool was, bool now, const char *what,
			const char *why, const Buildwarden__V1__Event *ev)
{
	const Buildwarden__V1__Process *proc = ev->process;
	char line[1024], example[400];
	struct replay_change *ch = NULL;

	if (now)
		r->c.flagged++;
	if (was == now)
		return 0;
	if (now)
		r->c.newly++;
	else
		r->c.no_longer++;
	snprintf(line, sizeof(line), "%s: %s (%s)", now ? "newly flagged" : "no longer flagged",
		 what, why);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	for (size_t i = 0; i < r->n && !ch; i++)
		if (strcmp(r->changes[i].what, line) == 0)
			ch = &r->changes[i];
	if (!ch) {
		if (r->n == REPLAY_CHANGES_MAX)
			return -E2BIG;
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 16;
			struct replay_change *c = realloc(r->changes, cap * sizeof(*c));

			if (!c)
				return -ENOMEM;
			r->changes = c;
			r->cap = cap;
		}
		snprintf(example, sizeof(example), "%.256s (pid %u), run %.64s",
			 s_or(proc ? proc->exe : NULL, "?"), proc ? proc->pid : 0, s_or(ev->run_id, "?"));
		for (char *p = example; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';
		ch = &r->changes[r->n];
		ch->what = strdup(line);
		ch->example = strdup(example);
		ch->count = 0;
		if (!ch->what || !ch->example) {
			free(ch->what);
			free(ch->example);
			return -ENOMEM;
		}
		r->n++;
	}
	ch->count++;
	return 0;
}

static int replay__connect(struct draft_replay *r, const Buildwarden__V1__Event *ev, bool was)
{
	const Buildwarden__V1__ConnectBody *c = ev->connect;
	bool in_build = ev->process && ev->process->in_build;
	struct draft_verdict v;
	uint8_t addr[16];
	char what[600], why[400];
	const char *rule;
	bool now;

	if (!c->address || draft_net__addr(c->address, addr) || c->port > 65535)
		return 0;
	draft_net__decide(r->net, addr, (uint16_t)c->port, c->name, in_build, &v);
	now = v.action == BW_NET_DENY;
	rule = draft_net__rule(r->net, &v);
	snprintf(what, sizeof(what), strchr(c->address, ':') ? "connect [%s]:%u%s%.260s%s" :
			 "connect %s:%u%s%.260s%s", c->address, c->port,
		 c->name && *c->name ? " (" : "", s_or(c->name, ""), c->name && *c->name ? ")" : "");
	if (v.redirected)
		snprintf(why, sizeof(why), "a DNS query: the draft names hosts, so it goes to the agent's resolver");
	else if (v.out_of_scope)
		snprintf(why, sizeof(why), "not a build process, and network.scope is build");
	else if (rule)
		snprintf(why, sizeof(why), "%s by '%.300s'", now ? "denied" : "allowed", rule);
	else
		snprintf(why, sizeof(why), "network.default: %s", now ? "deny" : "allow");
	return replay__note(r, was, now, what, why, ev);
}

#define EVASION_PREFIX "exec.deny: " /* event_build.c: a way around exec.deny */

static int replay__exec(struct draft_replay *r, const Buildwarden__V1__Event *ev, bool was)
{
	const Buildwarden__V1__Process *proc = ev->process;
	const char *exe = proc ? proc->exe : NULL, *rule = ev->verdict ? ev->verdict->rule : NULL;
	/* a #! script: the exe is its interpreter, the file name the script */
	const char *script = ev->exec->filename && ev->exec->filename[0] == '/' ? ev->exec->filename
										 : NULL;
	char what[600], why[400];

	snprintf(what, sizeof(what), "exec %.500s", s_or(script ? script : exe, "?"));
	if (!proc || (!proc->in_build && r->p->exec_scope != BW_SCOPE_HOST))
		return replay__note(r, was, false, what, "not a build process, and exec.scope is build",
				    ev);
	/* the loader run on a program, a nameless file, a walk too deep: the sensor flags
	 * them whenever there is a deny tree at all */
	if (was && rule && strncmp(rule, EVASION_PREFIX, strlen(EVASION_PREFIX)) == 0) {
		snprintf(why, sizeof(why), "%.300s", rule);
		return replay__note(r, was, r->p->n_exec_deny > 0, what, why, ev);
	}
	for (size_t i = 0; i < r->p->n_exec_deny; i++) {
		if (under(exe, r->p->exec_deny[i].path) || under(script, r->p->exec_deny[i].path)) {
			snprintf(why, sizeof(why), "in exec.deny tree '%.300s'", r->p->exec_deny[i].path);
			return replay__note(r, was, true, what, why, ev);
		}
	}
	return replay__note(r, was, false, what, "in no exec.deny tree", ev);
}

static bool replay__writer(const struct bw_exe_match *w, const Buildwarden__V1__Process *proc)
{
	if (!proc->exe || strcmp(w->exe, proc->exe))
		return false;
	if (w->has_uid && proc->uid != w->uid)
		return false;
	if (w->parent && (proc->n_ancestors == 0 || !proc->ancestors[0]->exe ||
			  strcmp(proc->ancestors[0]->exe, w->parent)))
		return false;
	return true;
}

static int replay__file(struct draft_replay *r, const Buildwarden__V1__Event *ev, bool was)
{
	const Buildwarden__V1__FileBody *f = ev->file;
	const Buildwarden__V1__Process *proc = ev->process;
	char what[700], why[400];

	snprintf(what, sizeof(what), "change of %.600s", s_or(f->path, "?"));
	for (size_t i = 0; i < r->p->n_protect; i++) {
		const struct bw_protect *t = &r->p->protect[i];

		if (!under(f->path, t->path) && !under(f->new_path, t->path))
			continue;
		if (proc && proc->in_build)
			return replay__note(r, was, false, what, "by the build", ev);
		for (size_t j = 0; proc && j < t->n_writers; j++)
			if (replay__writer(&t->writers[j], proc))
				return replay__note(r, was, false, what, "by a listed writer", ev);
		snprintf(why, sizeof(why), "outside the build, in protected tree '%.300s'", t->path);
		return replay__note(r, was, true, what, why, ev);
	}
	return replay__note(r, was, false, what, "in no protected tree", ev);
}

int draft_replay__event(struct draft_replay *r, const Buildwarden__V1__Event *ev)
{
	bool was = ev->verdict && ev->verdict->violation;
	const char *run = s_or(ev->run_id, "");

	if (!r->last_run || strcmp(r->last_run, run)) {
		free(r->last_run);
		if (!(r->last_run = strdup(run)))
			return -ENOMEM;
		r->c.runs++;
	}
	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		r->c.replayed++;
		return replay__connect(r, ev, was);
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		r->c.replayed++;
		return replay__exec(r, ev, was);
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		r->c.replayed++;
		return replay__file(r, ev, was);
	default:
		return 0;
	}
}

int draft_replay__write(const struct draft_replay *r, FILE *out)
{
	for (size_t i = 0; i < r->n; i++)
		fprintf(out, "%s: %llu time%s, e.g. %s\n", r->changes[i].what,
			(unsigned long long)r->changes[i].count, r->changes[i].count == 1 ? "" : "s",
			r->changes[i].example);
	fprintf(out, "policy test: %llu events replayed: %llu newly flagged, %llu no longer flagged, "
		     "%llu flagged under the draft\n",
		(unsigned long long)r->c.replayed, (unsigned long long)r->c.newly,
		(unsigned long long)r->c.no_longer, (unsigned long long)r->c.flagged);
	return ferror(out) ? -EIO : 0;
}
