// SPDX-License-Identifier: GPL-2.0
/* The report model: see model.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "report/htab.h"
#include "report/model.h"

struct rpt_index {
	struct rpt_htab procs;   /* (run, pid) → the latest process with that pid */
	struct rpt_htab outputs; /* path → the output under that name now */
	struct rpt_htab runs;    /* run id → run */
};

struct rpt_model *rpt_model__new(void)
{
	struct rpt_model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->index = calloc(1, sizeof(*m->index));
	if (!m->index) {
		free(m);
		return NULL;
	}
	return m;
}

/* Appends one zeroed element to an array of the model: its index, or -errno. */
#define RPT_PUSH(arr, n, cap) rpt__push((void **)&(arr), &(n), &(cap), sizeof(*(arr)))

static int32_t rpt__push(void **arr, size_t *n, size_t *cap, size_t size)
{
	int err;

	if (*n >= RPT_MAX_ITEMS)
		return -EFBIG;
	err = grow__reserve(arr, cap, *n + 1, size, 64, RPT_MAX_ITEMS);
	if (err)
		return err;
	memset((char *)*arr + *n * size, 0, size);
	return (int32_t)(*n)++;
}

/* A copy of an event string; "" for a missing one. NULL only when out of memory. */
static char *rpt__dup(const char *s)
{
	return strdup(s ? s : "");
}

/* Replaces *dst with a copy of s unless s is empty. 0 or -ENOMEM. */
static int rpt__set(char **dst, const char *s)
{
	char *c;

	if (!s || !*s)
		return *dst ? 0 : ((*dst = rpt__dup("")) ? 0 : -ENOMEM);
	c = strdup(s);
	if (!c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

/* argv joined with single spaces; NULL when out of memory. */
static char *rpt__join(char **argv, size_t n)
{
	size_t len = 1, i;
	char *s, *p;

	for (i = 0; i < n; i++)
		len += strlen(argv[i] ? argv[i] : "") + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	for (i = 0; i < n; i++) {
		size_t l = strlen(argv[i] ? argv[i] : "");

		if (i)
			*p++ = ' ';
		memcpy(p, argv[i] ? argv[i] : "", l);
		p += l;
	}
	*p = '\0';
	return s;
}

/* ---- runs ------------------------------------------------------------------- */

struct run_key {
	const struct rpt_model *m;
	const char *id;
};

static int run_eq(const void *ctx, int32_t val)
{
	const struct run_key *k = ctx;

	return strcmp(k->m->runs[val].run_id, k->id) == 0;
}

static int32_t rpt__run(struct rpt_model *m, const Buildwarden__V1__Event *ev)
{
	struct run_key k = { .m = m, .id = ev->run_id ? ev->run_id : "" };
	uint64_t key = htab__str_key(k.id);
	int32_t i = htab__get(&m->index->runs, key, run_eq, &k);
	int err;

	if (i >= 0)
		return i;
	i = RPT_PUSH(m->runs, m->nruns, m->cap_runs);
	if (i < 0)
		return i;
	{
		struct rpt_run *r = &m->runs[i];

		/* every string set, runStart or not: the writers never meet a NULL */
		r->run_id = rpt__dup(k.id);
		r->host = rpt__dup(ev->host);
		r->argv = rpt__dup("");
		r->policy_path = rpt__dup("");
		r->policy_sha256 = rpt__dup("");
		r->mode = rpt__dup("");
		r->agent_version = rpt__dup("");
		r->ci = rpt__dup("");
		if (!r->run_id || !r->host || !r->argv || !r->policy_path || !r->policy_sha256 ||
		    !r->mode || !r->agent_version || !r->ci)
			return -ENOMEM;
	}
	err = htab__put(&m->index->runs, key, i, run_eq, &k);
	return err ? err : i;
}

/* The seq chain: the agent numbers a run's events from 1, one by one. */
static void rpt__seq(struct rpt_run *r, uint64_t seq)
{
	if (r->events++ == 0) {
		r->first_seq = r->last_seq = seq;
		if (seq > 1) {
			r->missing += seq - 1;
			r->gaps[r->ngaps].from = 1;
			r->gaps[r->ngaps++].to = seq - 1;
		}
		return;
	}
	if (seq <= r->last_seq) {
		r->out_of_order++;
		return;
	}
	if (seq > r->last_seq + 1) {
		r->missing += seq - r->last_seq - 1;
		if (r->ngaps < RPT_MAX_GAPS) {
			r->gaps[r->ngaps].from = r->last_seq + 1;
			r->gaps[r->ngaps++].to = seq - 1;
		}
	}
	r->last_seq = seq;
}

/* Appends prefix and at most 256 bytes of v to line (cap bytes, NUL kept), when v is set. */
static void rpt__ci_part(char *line, size_t cap, size_t *n, const char *prefix, const char *v)
{
	size_t lp, lv;

	if (!v || !*v)
		return;
	lp = strlen(prefix);
	lv = strnlen(v, 256);
	if (*n + lp + lv >= cap)
		return;
	memcpy(line + *n, prefix, lp);
	memcpy(line + *n + lp, v, lv);
	*n += lp + lv;
	line[*n] = '\0';
}

/* runStart.ci as one line a reader scans: "github acme/widget refs/heads/main @ 0123abcd,
 * job build, run 1234 attempt 2, runner r7, URL". Each value is bounded by the agent
 * (256 bytes) but cut again here: the file may come from anywhere. */
static int rpt__ci_line(struct rpt_run *r, const Buildwarden__V1__CiContext *c)
{
	char line[4096] = "";
	size_t n = 0;

	if (!c)
		return 0;
	rpt__ci_part(line, sizeof(line), &n, "", c->provider);
	rpt__ci_part(line, sizeof(line), &n, " ", c->repository);
	rpt__ci_part(line, sizeof(line), &n, " ", c->ref);
	rpt__ci_part(line, sizeof(line), &n, " @ ", c->commit_sha);
	rpt__ci_part(line, sizeof(line), &n, ", workflow ", c->workflow);
	rpt__ci_part(line, sizeof(line), &n, ", job ", c->job);
	rpt__ci_part(line, sizeof(line), &n, ", run ", c->run_id);
	rpt__ci_part(line, sizeof(line), &n, " attempt ", c->run_attempt);
	rpt__ci_part(line, sizeof(line), &n, ", runner ", c->runner_name);
	rpt__ci_part(line, sizeof(line), &n, ", ", c->url);
	return rpt__set(&r->ci, line);
}

static int rpt__run_start(struct rpt_run *r, const Buildwarden__V1__RunStart *s)
{
	char *argv = rpt__join(s->argv, s->n_argv);
	size_t i;

	if (!argv)
		return -ENOMEM;
	free(r->argv);
	r->argv = argv;
	if (rpt__set(&r->policy_path, s->policy_path) || rpt__set(&r->policy_sha256, s->policy_sha256) ||
	    rpt__set(&r->mode, s->mode) || rpt__set(&r->agent_version, s->agent_version) ||
	    rpt__ci_line(r, s->ci))
		return -ENOMEM;
	for (i = 0; i < r->nlayers; i++)
		free(r->layers[i]);
	free(r->layers);
	r->nlayers = 0;
	r->layers = calloc(s->n_layers ? s->n_layers : 1, sizeof(*r->layers));
	if (!r->layers)
		return -ENOMEM;
	for (i = 0; i < s->n_layers; i++) {
		r->layers[i] = rpt__dup(s->layers[i]);
		if (!r->layers[i])
			return -ENOMEM;
		r->nlayers++;
	}
	r->has_start = true;
	return 0;
}

static void rpt__cause(struct rpt_run *r, const char *name, uint64_t count)
{
	if (count && r->ncauses < RPT_MAX_CAUSES) {
		r->causes[r->ncauses].name = name;
		r->causes[r->ncauses++].count = count;
	}
}

static void rpt__run_end(struct rpt_run *r, const Buildwarden__V1__RunEnd *e)
{
	const Buildwarden__V1__Incomplete *in = e->incomplete;

	r->has_end = true;
	r->exit_status = e->exit_status;
	r->end_events = e->events;
	r->end_violations = e->violations;
	r->end_drops = e->drops;
	r->ncauses = 0;
	if (!in)
		return;
	rpt__cause(r, "ringbuf_drops", in->ringbuf_drops);
	rpt__cause(r, "fanotify_overflows", in->fanotify_overflows);
	rpt__cause(r, "fanotify_unresolved", in->fanotify_unresolved);
	rpt__cause(r, "not_watched", in->not_watched);
	rpt__cause(r, "depth_exceeded", in->depth_exceeded);
	rpt__cause(r, "unattributed", in->unattributed);
	rpt__cause(r, "proc_table_failures", in->proc_table_failures);
	rpt__cause(r, "bad_records", in->bad_records);
	rpt__cause(r, "spool_drops", in->spool_drops);
}

bool rpt_run__incomplete(const struct rpt_run *r)
{
	return !r->has_end || r->ncauses || r->end_drops || r->missing || r->out_of_order ||
	       (r->has_stats && (r->stats_ringbuf_drops || r->stats_fanotify_overflows));
}

/* ---- processes ----------------------------------------------------------------- */

static uint64_t rpt__pid_key(uint32_t run, uint32_t pid)
{
	return htab__num_key(((uint64_t)run << 32) | pid);
}

static int32_t rpt__new_proc(struct rpt_model *m, uint32_t run, uint32_t pid, uint32_t ppid,
			     const char *exe, bool in_build)
{
	int32_t i = RPT_PUSH(m->procs, m->nprocs, m->cap_procs);
	struct rpt_proc *p;
	int err;

	if (i < 0)
		return i;
	p = &m->procs[i];
	p->run = run;
	p->pid = pid;
	p->ppid = ppid;
	p->in_build = in_build;
	p->first_child = p->next_sibling = -1;
	/* the latest process with the parent's pid, known before this one: never a cycle */
	p->parent = ppid ? htab__get(&m->index->procs, rpt__pid_key(run, ppid), NULL, NULL) : -1;
	p->exe = rpt__dup(exe);
	p->argv = rpt__dup("");
	p->comm = rpt__dup("");
	if (!p->exe || !p->argv || !p->comm)
		return -ENOMEM;
	err = htab__put(&m->index->procs, rpt__pid_key(run, pid), i, NULL, NULL);
	return err ? err : i;
}

/* The process an event names, made (with its ancestors, oldest first) on first sight.
 * A known pid with another parent is a new process that reused the pid. */
static int32_t rpt__proc(struct rpt_model *m, uint32_t run, const Buildwarden__V1__Process *P)
{
	int32_t i;
	struct rpt_proc *p;

	if (!P)
		return -1;
	i = htab__get(&m->index->procs, rpt__pid_key(run, P->pid), NULL, NULL);
	if (i < 0 || (P->ppid && m->procs[i].ppid && P->ppid != m->procs[i].ppid)) {
		for (size_t a = P->n_ancestors; a-- > 0;) {
			const Buildwarden__V1__Ancestor *an = P->ancestors[a];
			uint32_t appid = a + 1 < P->n_ancestors ? P->ancestors[a + 1]->pid : 0;

			if (!an || !an->pid || an->pid == P->pid)
				continue;
			if (htab__get(&m->index->procs, rpt__pid_key(run, an->pid), NULL, NULL) >= 0)
				continue;
			i = rpt__new_proc(m, run, an->pid, appid, an->exe, an->in_build);
			if (i < 0)
				return i;
		}
		i = rpt__new_proc(m, run, P->pid, P->ppid, P->exe, P->in_build);
		if (i < 0)
			return i;
	}
	p = &m->procs[i];
	if (!p->ppid)
		p->ppid = P->ppid;
	p->in_build = P->in_build;
	p->seen = true;
	if (rpt__set(&p->exe, P->exe) || rpt__set(&p->comm, P->comm))
		return -ENOMEM;
	if (P->n_argv) {
		char *argv = rpt__join(P->argv, P->n_argv);

		if (!argv)
			return -ENOMEM;
		free(p->argv);
		p->argv = argv;
	}
	return i;
}

/* ---- protected-tree changes and outputs ------------------------------------------ */

struct path_key {
	const struct rpt_model *m;
	const char *path;
};

static int path_eq(const void *ctx, int32_t val)
{
	const struct path_key *k = ctx;

	return strcmp(k->m->outputs[val].path, k->path) == 0;
}

/* The output now under path, a new one if there is none or the old one left. */
static int32_t rpt__output(struct rpt_model *m, const char *path, int32_t from)
{
	struct path_key k = { .m = m, .path = path };
	uint64_t key = htab__str_key(path);
	int32_t i = htab__get(&m->index->outputs, key, path_eq, &k);
	int err;

	if (i >= 0 && !m->outputs[i].gone && from < 0)
		return i;
	if (i >= 0)
		m->outputs[i].gone = true; /* replaced by what was renamed over it */
	i = RPT_PUSH(m->outputs, m->noutputs, m->cap_outputs);
	if (i < 0)
		return i;
	m->outputs[i].path = rpt__dup(path);
	m->outputs[i].from = from;
	if (!m->outputs[i].path)
		return -ENOMEM;
	err = htab__put(&m->index->outputs, key, i, path_eq, &k);
	return err ? err : i;
}

static int rpt__change(struct rpt_output *o, int32_t file)
{
	int err = grow__reserve((void **)&o->changes, &o->cap, o->nchanges + 1,
				sizeof(*o->changes), 4, RPT_MAX_ITEMS);

	if (err)
		return err;
	o->changes[o->nchanges++] = file;
	return 0;
}

/* Within the trees: the new name lies in the same tree as the old one. */
static bool rpt__within(const char *tree, const char *path)
{
	size_t n = strlen(tree);

	return n && strncmp(path, tree, n) == 0 && (path[n] == '/' || tree[n - 1] == '/');
}

static int rpt__file(struct rpt_model *m, int32_t proc, const Buildwarden__V1__Event *ev,
		     bool violation)
{
	const Buildwarden__V1__FileBody *b = ev->file;
	int32_t f = RPT_PUSH(m->files, m->nfiles, m->cap_files), o, to;
	struct rpt_file *r;
	int err;

	if (f < 0)
		return f;
	r = &m->files[f];
	r->proc = proc;
	r->seq = ev->seq;
	r->op = b->op;
	r->violation = violation;
	r->path = rpt__dup(b->path);
	r->new_path = rpt__dup(b->new_path);
	r->tree = rpt__dup(b->tree);
	if (!r->path || !r->new_path || !r->tree)
		return -ENOMEM;
	if (proc >= 0)
		m->procs[proc].nfiles++;

	o = rpt__output(m, r->path, -1);
	if (o < 0)
		return o;
	err = rpt__change(&m->outputs[o], f);
	if (err)
		return err;
	switch (r->op) {
	case BUILDWARDEN__V1__FILE_OP__RENAME:
		if (!*r->new_path)
			break;
		if (rpt__within(r->tree, r->new_path)) {
			m->outputs[o].gone = true;
			to = rpt__output(m, m->files[f].new_path, o);
			if (to < 0)
				return to;
		} else {
			/* into or out of the trees: the event does not say which way */
			free(m->outputs[o].across);
			m->outputs[o].across = rpt__dup(r->new_path);
			if (!m->outputs[o].across)
				return -ENOMEM;
		}
		break;
	case BUILDWARDEN__V1__FILE_OP__UNLINK:
	case BUILDWARDEN__V1__FILE_OP__RMDIR:
		m->outputs[o].gone = true;
		break;
	default:
		break;
	}
	return f;
}

/* ---- the rest of the bodies --------------------------------------------------------- */

static int32_t rpt__exec(struct rpt_model *m, int32_t proc, const Buildwarden__V1__Event *ev,
			 bool violation)
{
	int32_t x = RPT_PUSH(m->execs, m->nexecs, m->cap_execs);
	const Buildwarden__V1__Process *P = ev->process;
	struct rpt_exec *e;

	if (x < 0)
		return x;
	e = &m->execs[x];
	e->proc = proc;
	e->seq = ev->seq;
	e->truncated = ev->exec->truncated;
	e->violation = violation;
	e->filename = rpt__dup(ev->exec->filename);
	e->exe = rpt__dup(P ? P->exe : "");
	e->argv = P ? rpt__join(P->argv, P->n_argv) : rpt__dup("");
	if (!e->filename || !e->exe || !e->argv)
		return -ENOMEM;
	if (proc >= 0)
		m->procs[proc].nexecs++;
	return x;
}

static int32_t rpt__connect(struct rpt_model *m, int32_t proc, const Buildwarden__V1__Event *ev,
			    bool violation)
{
	int32_t c = RPT_PUSH(m->connects, m->nconnects, m->cap_connects);
	struct rpt_connect *r;

	if (c < 0)
		return c;
	r = &m->connects[c];
	r->proc = proc;
	r->seq = ev->seq;
	r->port = ev->connect->port;
	r->protocol = ev->connect->protocol;
	r->action = ev->verdict ? ev->verdict->action : 0;
	r->violation = violation;
	r->address = rpt__dup(ev->connect->address);
	if (!r->address)
		return -ENOMEM;
	if (proc >= 0)
		m->procs[proc].nconnects++;
	return c;
}

static int rpt__violation(struct rpt_model *m, enum rpt_kind kind, uint32_t run, int32_t proc,
			  int32_t item, const Buildwarden__V1__Event *ev)
{
	int32_t v = RPT_PUSH(m->violations, m->nviolations, m->cap_violations);
	const Buildwarden__V1__Process *P = ev->process;
	struct rpt_violation *r;

	if (v < 0)
		return v;
	r = &m->violations[v];
	r->kind = kind;
	r->run = run;
	r->proc = proc;
	r->item = item;
	r->seq = ev->seq;
	r->action = ev->verdict->action;
	r->rule = rpt__dup(ev->verdict->rule);
	if (!r->rule)
		return -ENOMEM;
	if (kind == RPT_ACCESS) {
		r->target_pid = ev->process_access->target_pid;
		r->access_kind = ev->process_access->kind;
	}
	if (P) {
		r->attributed = P->attributed;
		r->lineage_total = P->n_ancestors;
		for (size_t a = 0; a < P->n_ancestors && r->nlineage < RPT_MAX_LINEAGE; a++) {
			struct rpt_ancestor *an = &r->lineage[r->nlineage];

			if (!P->ancestors[a])
				continue;
			an->pid = P->ancestors[a]->pid;
			an->in_build = P->ancestors[a]->in_build;
			an->exe = rpt__dup(P->ancestors[a]->exe);
			if (!an->exe)
				return -ENOMEM;
			r->nlineage++;
		}
	}
	if (proc >= 0)
		m->procs[proc].nviolations++;
	return 0;
}

int rpt_model__add(struct rpt_model *m, const Buildwarden__V1__Event *ev)
{
	bool violation = ev->verdict && ev->verdict->violation;
	int32_t run, proc = -1, item = -1;
	enum rpt_kind kind;
	struct rpt_run *r;

	run = rpt__run(m, ev);
	if (run < 0)
		return run;
	m->events++;
	r = &m->runs[run];
	rpt__seq(r, ev->seq);
	if (violation)
		r->violations++;

	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_RUN_START:
		return rpt__run_start(r, ev->run_start);
	case BUILDWARDEN__V1__EVENT__BODY_RUN_END:
		rpt__run_end(r, ev->run_end);
		return 0;
	case BUILDWARDEN__V1__EVENT__BODY_STATS:
		r->has_stats = true;
		r->stats_ringbuf_drops = ev->stats->ringbuf_drops;
		r->stats_fanotify_overflows = ev->stats->fanotify_overflows;
		r->stats_unattributed = ev->stats->unattributed;
		return 0;
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		kind = RPT_EXEC;
		break;
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		kind = RPT_FILE;
		break;
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		kind = RPT_CONNECT;
		break;
	case BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS:
		kind = RPT_ACCESS;
		break;
	default:
		return 0; /* a body of a newer schema: counted in the run, not shown */
	}

	proc = rpt__proc(m, (uint32_t)run, ev->process);
	if (proc < -1)
		return proc;
	if (kind == RPT_EXEC)
		item = rpt__exec(m, proc, ev, violation);
	else if (kind == RPT_FILE)
		item = rpt__file(m, proc, ev, violation);
	else if (kind == RPT_CONNECT)
		item = rpt__connect(m, proc, ev, violation);
	if (item < -1)
		return item;
	return violation ? rpt__violation(m, kind, (uint32_t)run, proc, item, ev) : 0;
}

int rpt_model__finish(struct rpt_model *m)
{
	/* children in order of appearance: prepend while walking backwards */
	for (size_t i = m->nprocs; i-- > 0;) {
		struct rpt_proc *p = &m->procs[i];

		if (p->parent < 0 || (size_t)p->parent >= i)
			continue;
		p->next_sibling = m->procs[p->parent].first_child;
		m->procs[p->parent].first_child = (int32_t)i;
	}
	return 0;
}

void rpt_model__free(struct rpt_model *m)
{
	size_t i, j;

	if (!m)
		return;
	for (i = 0; i < m->nruns; i++) {
		struct rpt_run *r = &m->runs[i];

		free(r->run_id);
		free(r->host);
		free(r->argv);
		free(r->policy_path);
		free(r->policy_sha256);
		free(r->ci);
		free(r->mode);
		free(r->agent_version);
		for (j = 0; j < r->nlayers; j++)
			free(r->layers[j]);
		free(r->layers);
	}
	for (i = 0; i < m->nprocs; i++) {
		free(m->procs[i].exe);
		free(m->procs[i].argv);
		free(m->procs[i].comm);
	}
	for (i = 0; i < m->nexecs; i++) {
		free(m->execs[i].filename);
		free(m->execs[i].exe);
		free(m->execs[i].argv);
	}
	for (i = 0; i < m->nfiles; i++) {
		free(m->files[i].path);
		free(m->files[i].new_path);
		free(m->files[i].tree);
	}
	for (i = 0; i < m->noutputs; i++) {
		free(m->outputs[i].path);
		free(m->outputs[i].changes);
		free(m->outputs[i].across);
	}
	for (i = 0; i < m->nconnects; i++)
		free(m->connects[i].address);
	for (i = 0; i < m->nviolations; i++) {
		free(m->violations[i].rule);
		for (j = 0; j < m->violations[i].nlineage; j++)
			free(m->violations[i].lineage[j].exe);
	}
	free(m->runs);
	free(m->procs);
	free(m->execs);
	free(m->files);
	free(m->outputs);
	free(m->connects);
	free(m->violations);
	if (m->index) {
		htab__free(&m->index->procs);
		htab__free(&m->index->outputs);
		htab__free(&m->index->runs);
		free(m->index);
	}
	free(m);
}

const char *rpt__file_op(int op)
{
	static const char *const names[] = {
		"?", "OPEN_WRITE", "CREATE", "TRUNCATE", "WRITE", "RENAME",
		"UNLINK", "LINK", "ATTRIB", "MKDIR", "RMDIR", "MMAP_WRITE",
	};

	return op >= 0 && (size_t)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *rpt__action(int action)
{
	static const char *const names[] = {
		"?", "ALLOWED", "AUDITED", "DENIED", "KILLED", "TAINTED",
	};

	return action >= 0 && (size_t)action < sizeof(names) / sizeof(names[0]) ? names[action] : "?";
}

const char *rpt__protocol(int protocol)
{
	return protocol == BUILDWARDEN__V1__PROTOCOL__TCP ? "tcp" :
	       protocol == BUILDWARDEN__V1__PROTOCOL__UDP ? "udp" : "?";
}

const char *rpt__access_kind(int kind)
{
	switch (kind) {
	case BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PTRACE: return "ptrace";
	case BUILDWARDEN__V1__PROCESS_ACCESS_KIND__VM_WRITEV: return "process_vm_writev";
	case BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PROC_MEM_WRITE: return "/proc/PID/mem write";
	default: return "?";
	}
}

bool rpt__unusual_exe(const char *exe)
{
	static const char *const usual[] = { "/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/opt/" };

	if (!exe || !*exe)
		return false; /* unknown, not unusual: shown as unattributed elsewhere */
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
		if (strncmp(exe, usual[i], strlen(usual[i])) == 0)
			return false;
	return true;
}
