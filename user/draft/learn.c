/* What the build did, counted per item (a destination, a tree written, a tree executed
 * from, an outside writer), per run and in all, with the first process seen doing it;
 * then written out as the rules that would allow exactly that. Only the build's own
 * processes teach network and exec items: a process outside the build is what the
 * policy is there to catch, unless it wrote a protected tree (a writer to list, for a
 * person to decide). */
#include "draft/learn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/utf8.h"
#include "policy/policy.h"

enum learn_kind {
	LEARN_NET,    /* key: a network rule's text */
	LEARN_TREE,   /* key: a protected tree the build wrote */
	LEARN_WRITER, /* key: tree, sub: an executable outside the build that wrote it */
	LEARN_EXEC,   /* key: a directory the build executed from */
	LEARN_KINDS,
};

struct learn_item {
	char *key, *sub;
	bool by_address; /* LEARN_NET: no name was resolved through the agent */
	uint64_t count;
	size_t runs;
	size_t last_run; /* index + 1 of the run it was last counted in */
	char *example; /* "exe (pid N)" */
	bool drop; /* no policy can hold it (drop_bad_items) */
};

struct learn_list {
	struct learn_item *items;
	size_t n, cap;
};

struct draft_learn {
	struct learn_list lists[LEARN_KINDS];
	char **run_ids;
	size_t n_runs, cap_runs;
	size_t cur_run; /* index + 1 */
	uint64_t events;
	uint64_t refused; /* stopped by an enforcing policy: not learned */
	uint64_t not_utf8; /* a path or name no YAML file can hold: not learned */
};

/* YAML is text: a path that is not UTF-8 cannot be written as the bytes it is (a
 * \x escape is a code point, another path), so it cannot become a rule. */
static bool utf8_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	for (size_t i = 0; i < n;) {
		size_t k = utf8__len((const uint8_t *)s + i, n - i);

		if (!k)
			return false;
		i += k;
	}
	return true;
}

int draft_learn__new(struct draft_learn **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void draft_learn__free(struct draft_learn *l)
{
	if (!l)
		return;
	for (int k = 0; k < LEARN_KINDS; k++) {
		for (size_t i = 0; i < l->lists[k].n; i++) {
			free(l->lists[k].items[i].key);
			free(l->lists[k].items[i].sub);
			free(l->lists[k].items[i].example);
		}
		free(l->lists[k].items);
	}
	for (size_t i = 0; i < l->n_runs; i++)
		free(l->run_ids[i]);
	free(l->run_ids);
	free(l);
}

size_t draft_learn__runs(const struct draft_learn *l)
{
	return l->n_runs;
}

/* The run an event belongs to: the last one, most often. */
static int learn__run(struct draft_learn *l, const char *run_id)
{
	if (l->cur_run && strcmp(l->run_ids[l->cur_run - 1], run_id) == 0)
		return 0;
	for (size_t i = 0; i < l->n_runs; i++) {
		if (strcmp(l->run_ids[i], run_id) == 0) {
			l->cur_run = i + 1;
			return 0;
		}
	}
	if (l->n_runs == LEARN_RUNS_MAX)
		return -E2BIG;
	if (l->n_runs == l->cap_runs) {
		size_t cap = l->cap_runs ? l->cap_runs * 2 : 16;
		char **r = realloc(l->run_ids, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		l->run_ids = r;
		l->cap_runs = cap;
	}
	if (!(l->run_ids[l->n_runs] = strdup(run_id)))
		return -ENOMEM;
	l->cur_run = ++l->n_runs;
	return 0;
}

static int learn__count(struct draft_learn *l, enum learn_kind kind, const char *key,
			const char *sub, bool by_address, const Buildwarden__V1__Process *proc)
{
	struct learn_list *list = &l->lists[kind];
	struct learn_item *it = NULL;
	char example[320];

	if (!utf8_ok(key) || !utf8_ok(sub)) {
		l->not_utf8++;
		return 0;
	}
	for (size_t i = 0; i < list->n && !it; i++)
		if (strcmp(list->items[i].key, key) == 0 &&
		    (!sub || strcmp(list->items[i].sub, sub) == 0))
			it = &list->items[i];
	if (!it) {
		if (list->n == LEARN_ITEMS_MAX)
			return -E2BIG;
		if (list->n == list->cap) {
			size_t cap = list->cap ? list->cap * 2 : 16;
			struct learn_item *items = realloc(list->items, cap * sizeof(*items));

			if (!items)
				return -ENOMEM;
			list->items = items;
			list->cap = cap;
		}
		it = &list->items[list->n];
		memset(it, 0, sizeof(*it));
		snprintf(example, sizeof(example), "%.256s (pid %u)",
			 proc && proc->exe && proc->exe[0] ? proc->exe : "?", proc ? proc->pid : 0);
		it->key = strdup(key);
		it->sub = sub ? strdup(sub) : NULL;
		it->example = strdup(example);
		if (!it->key || (sub && !it->sub) || !it->example) {
			free(it->key);
			free(it->sub);
			free(it->example);
			return -ENOMEM;
		}
		it->by_address = by_address;
		list->n++;
	}
	it->count++;
	if (it->last_run != l->cur_run) {
		it->last_run = l->cur_run;
		it->runs++;
	}
	return 0;
}

/* The name as a rule would hold it (lowercase, no final dot), if it is one a policy
 * takes: else the address decides. */
static bool learn__name(const char *name, char *out, size_t outlen)
{
	struct bw_host_rule r;
	char err[160];
	size_t n = name ? strlen(name) : 0;

	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= outlen || n > BW_HOST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	out[n] = '\0';
	if (!policy__is_host_rule(out) || strchr(out, ':') || out[0] == '*' ||
	    policy__parse_host_rule(out, &r, err, sizeof(err)))
		return false;
	free(r.name);
	return true;
}

static int learn__connect(struct draft_learn *l, const Buildwarden__V1__Event *ev)
{
	const Buildwarden__V1__ConnectBody *c = ev->connect;
	char rule[BW_HOST_NAME_MAX + 64], name[BW_HOST_NAME_MAX + 2];
	uint8_t a6[16];
	struct in_addr a4;

	if (!c->address || c->port == 0 || c->port > 65535)
		return 0;
	if (learn__name(c->name, name, sizeof(name))) {
		snprintf(rule, sizeof(rule), "%s:%u", name, c->port);
		return learn__count(l, LEARN_NET, rule, NULL, false, ev->process);
	}
	if (inet_pton(AF_INET, c->address, &a4) == 1)
		snprintf(rule, sizeof(rule), "%s:%u", c->address, c->port);
	else if (inet_pton(AF_INET6, c->address, a6) == 1)
		snprintf(rule, sizeof(rule), "[%s]:%u", c->address, c->port);
	else
		return 0; /* not an address: nothing a rule could say */
	return learn__count(l, LEARN_NET, rule, NULL, true, ev->process);
}

static bool absolute(const char *p)
{
	return p && p[0] == '/';
}

int draft_learn__event(struct draft_learn *l, const Buildwarden__V1__Event *ev)
{
	const Buildwarden__V1__Process *proc = ev->process;
	bool in_build = proc && proc->in_build;
	int err;

	if ((err = learn__run(l, ev->run_id ? ev->run_id : "")))
		return err;
	l->events++;
	/* What an enforcing policy stopped did not happen, and is what a policy is for: a
	 * refused connect learned would allow the very thing it refused. */
	if (ev->verdict && (ev->verdict->action == BUILDWARDEN__V1__ACTION__DENIED ||
			    ev->verdict->action == BUILDWARDEN__V1__ACTION__KILLED)) {
		l->refused++;
		return 0;
	}
	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		return in_build ? learn__connect(l, ev) : 0;
	case BUILDWARDEN__V1__EVENT__BODY_EXEC: {
		char dir[4096];
		const char *slash;

		if (!in_build || !absolute(proc->exe) || !(slash = strrchr(proc->exe, '/')))
			return 0;
		snprintf(dir, sizeof(dir), "%.*s", slash == proc->exe ? 1 : (int)(slash - proc->exe),
			 proc->exe);
		return learn__count(l, LEARN_EXEC, dir, NULL, false, proc);
	}
	case BUILDWARDEN__V1__EVENT__BODY_FILE: {
		const char *tree = ev->file->tree;

		if (!absolute(tree) || !proc)
			return 0;
		if (in_build)
			return learn__count(l, LEARN_TREE, tree, NULL, false, proc);
		/* an outsider whose executable is known: a writer to list (or to stop) */
		if (!proc->attributed || !absolute(proc->exe))
			return 0;
		return learn__count(l, LEARN_WRITER, tree, proc->exe, false, proc);
	}
	default:
		return 0;
	}
}

/* ---- writing ---------------------------------------------------------------- */

/* A YAML double-quoted scalar: every path is written so, whatever it holds. */
static void yaml_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* A comment is one line of plain text: what a process named itself cannot start
 * another line, nor make the file something a YAML reader refuses. */
static void comment_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		fputc(c < 0x20 || c >= 0x7f ? '?' : c, out);
	}
}

static void evidence(FILE *out, const struct draft_learn *l, const struct learn_item *it,
		     const char *what)
{
	fprintf(out, "%zu of %zu run%s, %llu %s%s, e.g. ", it->runs, l->n_runs,
		l->n_runs == 1 ? "" : "s", (unsigned long long)it->count, what,
		it->count == 1 ? "" : "s");
	comment_text(out, it->example);
	fputc('\n', out);
}

/* Would a policy take this item as the proposal writes it? Events are not trusted to
 * hold only what a policy can say (a tree in /proc, a relative exe): an item a policy
 * would refuse is left out and counted, so the proposal always loads. */
static bool item_ok(enum learn_kind kind, const struct learn_item *it)
{
	struct bw_policy *p = NULL;
	struct bw_diags d;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool ok;

	if (!f)
		return false;
	fputs("version: 1\n", f);
	if (kind == LEARN_NET) {
		fputs("network:\n  allow: [", f);
		yaml_quoted(f, it->key);
		fputs("]\n", f);
	} else if (kind == LEARN_EXEC) {
		fputs("exec:\n  deny: [", f);
		yaml_quoted(f, it->key);
		fputs("]\n", f);
	} else {
		fputs("protect:\n  - path: ", f);
		yaml_quoted(f, it->key);
		if (kind == LEARN_WRITER) {
			fputs("\n    writers:\n      - exe: ", f);
			yaml_quoted(f, it->sub);
		}
		fputc('\n', f);
	}
	if (fclose(f)) {
		free(buf);
		return false;
	}
	memset(&d, 0, sizeof(d));
	ok = policy__parse(buf, len, "item", "/", BW_POLICY_NO_FS, &p, &d) == 0;
	policy__free(p);
	free(buf);
	return ok;
}

/* a's length without trailing slashes (but "/" stays "/") */
static size_t trimmed(const char *a)
{
	size_t n = strlen(a);

	while (n > 1 && a[n - 1] == '/')
		n--;
	return n;
}

/* Is tree x inside tree y (or y the same tree spelled otherwise, and first)? A policy
 * refuses nested protected trees; honest events never hold any (the trees come from a
 * policy), so this is for hostile files: the outer or first one stays. */
static bool tree_inside(const char *x, const char *y)
{
	size_t nx = trimmed(x), ny = trimmed(y);

	if (strcmp(x, y) == 0)
		return false;
	if (ny == 1 && y[0] == '/')
		return true;
	if (nx < ny || strncmp(x, y, ny))
		return false;
	if (nx == ny)
		return strcmp(y, x) < 0;
	return x[ny] == '/';
}

static bool tree_nested(const struct draft_learn *l, const char *tree)
{
	for (int k = LEARN_TREE; k <= LEARN_WRITER; k++)
		for (size_t i = 0; i < l->lists[k].n; i++)
			if (tree_inside(tree, l->lists[k].items[i].key))
				return true;
	return false;
}

/* Leaves out (and counts) the items item_ok refuses, and trees inside others: all
 * decided first, on the lists as they are, then removed. */
static size_t drop_bad_items(struct draft_learn *l)
{
	size_t dropped = 0;

	for (int k = 0; k < LEARN_KINDS; k++) {
		for (size_t i = 0; i < l->lists[k].n; i++) {
			struct learn_item *it = &l->lists[k].items[i];
			bool tree = k == LEARN_TREE || k == LEARN_WRITER;

			it->drop = !item_ok((enum learn_kind)k, it) || (tree && tree_nested(l, it->key));
		}
	}
	for (int k = 0; k < LEARN_KINDS; k++) {
		struct learn_list *list = &l->lists[k];
		size_t n = 0;

		for (size_t i = 0; i < list->n; i++) {
			if (!list->items[i].drop) {
				list->items[n++] = list->items[i];
				continue;
			}
			free(list->items[i].key);
			free(list->items[i].sub);
			free(list->items[i].example);
			dropped++;
		}
		list->n = n;
	}
	return dropped;
}

static bool under(const char *path, const char *tree)
{
	size_t n = strlen(tree);

	if (strcmp(tree, "/") == 0)
		return true;
	return strncmp(path, tree, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int by_key(const void *a, const void *b)
{
	const struct learn_item *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->sub ? x->sub : "", y->sub ? y->sub : "");
}

static bool tree_known(const struct draft_learn *l, const char *tree)
{
	for (size_t i = 0; i < l->lists[LEARN_TREE].n; i++)
		if (strcmp(l->lists[LEARN_TREE].items[i].key, tree) == 0)
			return true;
	return false;
}

static void protect_writers(FILE *out, const struct draft_learn *l, const char *tree)
{
	const struct learn_list *writers = &l->lists[LEARN_WRITER];
	bool first = true;

	for (size_t j = 0; j < writers->n; j++) {
		const struct learn_item *w = &writers->items[j];

		if (strcmp(w->key, tree))
			continue;
		if (first)
			fputs("    writers:\n", out);
		first = false;
		fputs("      - exe: ", out);
		yaml_quoted(out, w->sub);
		fputs("  # outside the build, wrote here: ", out);
		evidence(out, l, w, "change");
	}
}

int draft_learn__write(struct draft_learn *l, const char *const *exec_deny_candidates, FILE *out)
{
	const struct learn_list *trees = &l->lists[LEARN_TREE], *writers = &l->lists[LEARN_WRITER],
				*execs = &l->lists[LEARN_EXEC], *net = &l->lists[LEARN_NET];
	size_t n_deny = 0, dropped = drop_bad_items(l);

	for (int k = 0; k < LEARN_KINDS; k++)
		if (l->lists[k].n)
			qsort(l->lists[k].items, l->lists[k].n, sizeof(struct learn_item), by_key);

	fprintf(out, "# Proposed by `buildwarden policy learn` from %zu run%s (%llu events).\n"
		     "# Every rule says what it rests on: the runs it was seen in, how often, one\n"
		     "# process that did it. Review each line, then `buildwarden policy test --policy\n"
		     "# THIS-FILE EVENTS...` on new runs before you switch mode to enforce.\n",
		l->n_runs, l->n_runs == 1 ? "" : "s", (unsigned long long)l->events);
	if (l->refused)
		fprintf(out, "# Not learned: %llu events an enforcing policy refused or killed (what\n"
			     "# was stopped did not happen; learn from audit runs).\n",
			(unsigned long long)l->refused);
	if (dropped)
		fprintf(out, "# Not learned: %zu items no policy can hold (a tree in /proc, /sys or\n"
			     "# /dev, a relative executable, ...).\n", dropped);
	if (l->not_utf8)
		fprintf(out, "# Not learned: %llu events whose path or name is not UTF-8 (no YAML\n"
			     "# file can name it).\n", (unsigned long long)l->not_utf8);
	fputs("version: 1\nmode: audit\n", out);

	if (trees->n || writers->n) {
		fputs("protect:\n", out);
		for (size_t i = 0; i < trees->n; i++) {
			const struct learn_item *t = &trees->items[i];

			fputs("  - path: ", out);
			yaml_quoted(out, t->key);
			fputs("  # written by the build: ", out);
			evidence(out, l, t, "change");
			protect_writers(out, l, t->key);
		}
		/* a tree only outsiders wrote: listed, for its writers to be decided on */
		for (size_t j = 0; j < writers->n; j++) {
			const struct learn_item *w = &writers->items[j];

			if (tree_known(l, w->key) || (j && strcmp(writers->items[j - 1].key, w->key) == 0))
				continue;
			fputs("  - path: ", out);
			yaml_quoted(out, w->key);
			fputs("  # not written by the build, only from outside it\n", out);
			protect_writers(out, l, w->key);
		}
	} else {
		fputs("# protect: no protected tree was written in these runs\n", out);
	}

	fputs("exec:\n  scope: build\n", out);
	if (execs->n) {
		fputs("  # the build executed from these trees (for review; none of them is denied):\n",
		      out);
		for (size_t i = 0; i < execs->n; i++) {
			const struct learn_item *e = &execs->items[i];

			fputs("  #   ", out);
			comment_text(out, e->key);
			fprintf(out, ": %zu of %zu runs, %llu execs, e.g. ", e->runs, l->n_runs,
				(unsigned long long)e->count);
			comment_text(out, e->example);
			fputc('\n', out);
		}
	}
	for (size_t i = 0; exec_deny_candidates && exec_deny_candidates[i]; i++) {
		const char *c = exec_deny_candidates[i];
		struct stat st;
		bool used = false;

		for (size_t j = 0; j < execs->n && !used; j++)
			used = under(execs->items[j].key, c);
		if (used || stat(c, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (!n_deny++)
			fputs("  deny:\n", out);
		fputs("    - ", out);
		yaml_quoted(out, c);
		fprintf(out, "  # no build process executed from it in %zu run%s\n", l->n_runs,
			l->n_runs == 1 ? "" : "s");
	}
	if (!n_deny)
		fputs("  deny: []\n", out);

	{
		bool any_name = false;

		for (size_t i = 0; i < net->n; i++)
			any_name |= !net->items[i].by_address;
		if (net->n && !any_name)
			fputs("# No connect carried a name: the agent's resolver runs only when the\n"
			      "# policy names a host. Record with one name rule (any name, default: allow)\n"
			      "# to learn destinations by name (docs/policy.md, \"Learn, test, enforce\").\n",
			      out);
	}
	fputs("network:\n  scope: build\n  default: deny\n", out);
	if (!net->n)
		fputs("  allow: []  # the build connected nowhere in these runs\n", out);
	else
		fputs("  allow:\n", out);
	for (size_t i = 0; i < net->n; i++) {
		const struct learn_item *d = &net->items[i];

		fputs("    - ", out);
		yaml_quoted(out, d->key);
		fputs(d->by_address ? "  # by address (no name was looked up through the agent): "
				    : "  # ", out);
		evidence(out, l, d, "connect");
	}
	return ferror(out) ? -EIO : 0;
}
