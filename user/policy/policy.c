/* YAML policy -> struct bw_policy. Two passes: libyaml events become a small bounded
 * tree that remembers every node's position, then a schema walk over that tree checks
 * it and fills the policy. The tree exists so the walk can report every problem (with
 * line:col) instead of stopping at the first, and so aliases can be refused before
 * anything expands them. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <yaml.h>

#include "base/grow.h"
#include "policy/lint.h"
#include "policy/policy.h"

/* Bounds, documented in docs/policy.md. They keep a hostile policy from costing more
 * than a few MiB and keep the kernel-side tables within their fixed sizes. */
#define POLICY_MAX_BYTES (1u << 20)
#define POLICY_MAX_DEPTH 16
#define POLICY_MAX_SCALAR 4096
/* A maximal real policy (64 trees x 64 writers, 2 x 1024 rules) is about 20000 nodes;
 * the cap keeps a 1 MiB file of one-byte scalars from costing tens of MiB. */
#define POLICY_MAX_NODES 100000
#define POLICY_MAX_ITEMS 1024 /* net rules per list, and the most any collection keeps */
#define POLICY_MAX_WRITERS 64
#define POLICY_MAX_ROOTS 64
#define POLICY_MAX_DENY 64

enum node_kind {
	NODE_SCALAR,
	NODE_SEQ,
	NODE_MAP,
	NODE_BAD, /* already reported (alias, oversized scalar): the walk skips it */
};

struct node {
	enum node_kind kind;
	bool plain; /* unquoted scalar: may be a YAML null */
	unsigned line, col;
	char *str; /* scalar, NUL-terminated (embedded NULs are refused) */
	size_t len;
	struct node **items; /* sequence items, or mapping keys and values alternating */
	size_t n_items, cap_items;
	size_t total; /* child nodes seen, including those not kept past the bound */
};

/* A rule's `name:`, kept to refuse a second rule of the same name. */
struct seen_name {
	char *name; /* the ctx's own copy */
	unsigned line;
};

struct ctx {
	const char *base_dir;
	unsigned flags;
	const struct bw_policy_opts *opts;
	struct bw_diags *d;
	int err; /* a failure that is not the policy's fault, e.g. -ENOMEM */
	size_t n_nodes;
	struct seen_name *names;
	size_t n_names, cap_names;
};

static void ctx__vdiag(struct ctx *c, bool warning, unsigned line, unsigned col, const char *fmt,
		       va_list ap)
{
	struct bw_diag *g;

	if (!warning)
		c->d->n_errors++;
	if (c->d->n >= BW_POLICY_MAX_DIAGS) {
		c->d->dropped++;
		return;
	}
	g = &c->d->items[c->d->n++];
	g->line = line;
	g->col = col;
	g->warning = warning;
	vsnprintf(g->msg, sizeof(g->msg), fmt, ap);
}

static void __attribute__((format(printf, 4, 5)))
ctx__diag(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx__vdiag(c, false, line, col, fmt, ap);
	va_end(ap);
}

#define node_diag(c, n, ...) ctx__diag((c), (n)->line, (n)->col, __VA_ARGS__)

static void ctx__nomem(struct ctx *c)
{
	if (!c->err)
		c->err = -ENOMEM;
}

/* ---- pass 1: events -> tree ---------------------------------------------------- */

static void node__free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_items; i++)
		node__free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

static struct node *node__new(struct ctx *c, enum node_kind kind, yaml_mark_t m)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n) {
		ctx__nomem(c);
		return NULL;
	}
	n->kind = kind;
	/* libyaml counts from 0, people from 1 */
	n->line = (unsigned)(m.line + 1 > UINT_MAX ? UINT_MAX : m.line + 1);
	n->col = (unsigned)(m.column + 1 > UINT_MAX ? UINT_MAX : m.column + 1);
	return n;
}

static size_t node__entries(const struct node *n)
{
	return n->kind == NODE_MAP ? n->total / 2 : n->total;
}

/* Keeps at most POLICY_MAX_ITEMS + 1 entries per collection: enough for the walk to see
 * that a list is too long, without holding a million of them. Returns 1 if parent now
 * owns child, 0 if the caller must free it, -ENOMEM. */
static int node__append(struct ctx *c, struct node *parent, struct node *child)
{
	size_t idx = parent->total++;
	size_t entry = parent->kind == NODE_MAP ? idx / 2 : idx;

	if (entry > POLICY_MAX_ITEMS)
		return 0;
	if (grow__reserve((void **)&parent->items, &parent->cap_items, parent->n_items + 1,
			  sizeof(*parent->items), 8, 0)) {
		ctx__nomem(c);
		return -ENOMEM;
	}
	parent->items[parent->n_items++] = child;
	return 1;
}

/* libyaml stops at the first syntax error, so this is the only diagnostic of a run
 * that has one. Reader errors (bad UTF-8, control characters) carry a byte offset
 * instead of a mark. */
static void tree__syntax_diag(struct ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	unsigned line, col;

	if (p->error == YAML_MEMORY_ERROR) {
		ctx__nomem(c);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		size_t off = p->problem_offset < len ? p->problem_offset : len, bol = 0;

		line = 1;
		for (size_t i = 0; i < off; i++) {
			if (buf[i] == '\n') {
				line++;
				bol = i + 1;
			}
		}
		col = (unsigned)(off - bol + 1);
		ctx__diag(c, line, col, "invalid YAML: %s", problem);
		return;
	}
	line = (unsigned)p->problem_mark.line + 1;
	col = (unsigned)p->problem_mark.column + 1;
	if (p->context)
		ctx__diag(c, line, col, "invalid YAML: %s (%s at %u:%u)", problem, p->context,
			  (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
	else
		ctx__diag(c, line, col, "invalid YAML: %s", problem);
}

static struct node *tree__scalar(struct ctx *c, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct node *n;

	if (len > POLICY_MAX_SCALAR) {
		n = node__new(c, NODE_BAD, ev->start_mark);
		if (n)
			node_diag(c, n, "value too long (%zu bytes, max %u)", len, POLICY_MAX_SCALAR);
		return n;
	}
	if (memchr(v, '\0', len)) {
		n = node__new(c, NODE_BAD, ev->start_mark);
		if (n)
			node_diag(c, n, "value contains a NUL byte");
		return n;
	}
	n = node__new(c, NODE_SCALAR, ev->start_mark);
	if (!n)
		return NULL;
	n->str = strndup(v, len);
	if (!n->str) {
		free(n);
		ctx__nomem(c);
		return NULL;
	}
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return n;
}

/* Builds the tree of the (single) document. Returns false after a syntax or bound error,
 * which has been reported; *root is whatever was built, for the caller to free. */
static bool tree__build(struct ctx *c, const char *buf, size_t len, struct node **root)
{
	struct node *stack[POLICY_MAX_DEPTH];
	bool orphan[POLICY_MAX_DEPTH];
	unsigned depth = 0, docs = 0;
	bool ok = false, done = false;
	yaml_parser_t p;
	yaml_event_t ev;

	*root = NULL;
	if (!yaml_parser_initialize(&p)) {
		ctx__nomem(c);
		return false;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

	while (!done) {
		struct node *n = NULL;
		bool push = false;
		int kept;

		if (!yaml_parser_parse(&p, &ev)) {
			tree__syntax_diag(c, &p, buf, len);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++) {
				ctx__diag(c, (unsigned)ev.start_mark.line + 1,
					  (unsigned)ev.start_mark.column + 1,
					  "a policy file holds one YAML document, found a second");
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			/* Aliases would let a few bytes expand into a huge tree (billion
			 * laughs) and make one node appear at two places in the policy. */
			n = node__new(c, NODE_BAD, ev.start_mark);
			if (n)
				node_diag(c, n, "aliases are not supported: write '*%s' out in full",
					  (const char *)ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT:
			n = tree__scalar(c, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth >= POLICY_MAX_DEPTH) {
				ctx__diag(c, (unsigned)ev.start_mark.line + 1,
					  (unsigned)ev.start_mark.column + 1,
					  "nesting too deep (max %u levels)", POLICY_MAX_DEPTH);
				yaml_event_delete(&ev);
				goto out;
			}
			n = node__new(c,
				      ev.type == YAML_MAPPING_START_EVENT ? NODE_MAP : NODE_SEQ,
				      ev.start_mark);
			push = true;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			/* libyaml guarantees balance, depth > 0 here */
			depth--;
			if (orphan[depth])
				node__free(stack[depth]);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (c->err) {
			node__free(n);
			goto out;
		}
		if (!n)
			continue;
		if (++c->n_nodes > POLICY_MAX_NODES) {
			node_diag(c, n, "too many values in one policy (max %u)", POLICY_MAX_NODES);
			node__free(n);
			goto out;
		}

		if (depth == 0) {
			kept = *root ? 0 : 1;
			if (kept)
				*root = n;
		} else {
			kept = node__append(c, stack[depth - 1], n);
			if (kept < 0) {
				node__free(n);
				goto out;
			}
		}
		if (push) {
			stack[depth] = n;
			orphan[depth] = !kept;
			depth++;
		} else if (!kept) {
			node__free(n);
		}
	}
	ok = true;
out:
	/* Collections still open after an error are owned by *root unless orphaned. */
	while (depth > 0) {
		depth--;
		if (orphan[depth])
			node__free(stack[depth]);
	}
	yaml_parser_delete(&p);
	return ok;
}

/* ---- pass 2: schema walk ------------------------------------------------------- */

static bool node__is_null(const struct node *n)
{
	return n->kind == NODE_SCALAR && n->plain &&
	       (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

/* The scalar's text, "" for a YAML null; NULL (after reporting) if it is not a scalar. */
static const char *scalar__get(struct ctx *c, const struct node *n)
{
	if (n->kind == NODE_BAD)
		return NULL;
	if (n->kind != NODE_SCALAR) {
		node_diag(c, n, "expected a scalar");
		return NULL;
	}
	return node__is_null(n) ? "" : n->str;
}

/* Two-valued keywords (mode, scope, default, descendants). Returns 0 or 1, or def when
 * missing or wrong (after reporting). */
static int scalar__choice(struct ctx *c, const struct node *n, const char *key, const char *v0,
			  const char *v1, int def)
{
	const char *s;

	if (!n)
		return def;
	s = scalar__get(c, n);
	if (!s)
		return def;
	if (!strcmp(s, v0))
		return 0;
	if (!strcmp(s, v1))
		return 1;
	node_diag(c, n, "'%s' must be %s or %s, not '%s'", key, v0, v1, s);
	return def;
}

struct field {
	const char *name;
	const struct node *val;
};

/* Matches a mapping's keys against the known ones. A YAML null counts as an empty
 * mapping, so "exec:" with nothing under it means the defaults. Returns false when n
 * is not a mapping at all. */
static bool map__fields(struct ctx *c, const struct node *n, struct field *f, size_t nf)
{
	if (n->kind == NODE_BAD)
		return false;
	if (node__is_null(n))
		return true;
	if (n->kind != NODE_MAP) {
		node_diag(c, n, "expected a mapping");
		return false;
	}
	for (size_t i = 0; i + 1 < n->n_items; i += 2) {
		const struct node *k = n->items[i];
		size_t j;

		if (k->kind == NODE_BAD)
			continue;
		if (k->kind != NODE_SCALAR) {
			node_diag(c, k, "expected a scalar key");
			continue;
		}
		for (j = 0; j < nf; j++)
			if (!strcmp(f[j].name, k->str))
				break;
		if (j == nf) {
			node_diag(c, k, "unknown key '%s'", k->str);
			continue;
		}
		if (f[j].val) {
			node_diag(c, k, "duplicate key '%s'", k->str);
			continue;
		}
		f[j].val = n->items[i + 1];
	}
	return true;
}

/* Number of entries of a sequence to use (at most max); 0 after reporting a wrong
 * type. A YAML null is an empty list. */
static size_t seq__count(struct ctx *c, const struct node *n, const char *what, size_t max)
{
	size_t total;

	if (!n || n->kind == NODE_BAD || node__is_null(n))
		return 0;
	if (n->kind != NODE_SEQ) {
		node_diag(c, n, "expected a sequence");
		return 0;
	}
	total = node__entries(n);
	if (total > max) {
		node_diag(c, n, "too many %s (%zu, max %zu)", what, total, max);
		return max;
	}
	return n->n_items;
}

static void *ctx__calloc(struct ctx *c, size_t n, size_t size)
{
	void *p;

	if (!n)
		return NULL;
	p = calloc(n, size);
	if (!p)
		ctx__nomem(c);
	return p;
}

/* Lexical clean-up for the no-file-system mode, where realpath cannot do it: "//" and
 * "/./" collapse and a trailing "/" goes, so "src/" and "src" compare equal. ".." is
 * left alone: without the file system its meaning is not known. */
static void path__tidy(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || !r[2])))) {
			r += r[1] == '/' ? 1 : 2;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	if (w - s > 1 && w[-1] == '/')
		w[-1] = '\0';
	if (!strncmp(s, "./", 2) && s[2])
		memmove(s, s + 2, strlen(s + 2) + 1);
	if (!*s)
		strcpy(s, "/");
}

/* ${VAR} / $VAR values: --set first (the last one given wins), then the environment. */
static const char *var__lookup(const struct ctx *c, const char *name, size_t n)
{
	char key[128];

	for (size_t i = c->opts->n_vars; i-- > 0;) {
		const char *v = c->opts->vars[i], *eq = strchr(v, '=');

		if (eq && (size_t)(eq - v) == n && !strncmp(v, name, n))
			return eq + 1;
	}
	if (!c->opts->use_env || n >= sizeof(key))
		return NULL;
	memcpy(key, name, n);
	key[n] = '\0';
	return getenv(key);
}

static bool var__char(char ch, bool first)
{
	return ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (!first && ch >= '0' && ch <= '9');
}

static bool out__put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o + n >= cap)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return true;
}

/* Expands a path the policy names: a leading "~" or "~/" (HOME), ${NAME} and $NAME,
 * "$$" for a '$'. A variable that is not set is an error, except with --offline (no
 * file-system lookups), where it stands for itself ("${NAME}") so that a policy for
 * $GITHUB_WORKSPACE can be checked where that is not set. Returns a new string, or
 * NULL after reporting. */
static char *path__expand(struct ctx *c, const struct node *n, const char *s)
{
	static const char home_unset[] = "${HOME}";
	char out[PATH_MAX];
	size_t o = 0;
	const char *p = s;
	bool offline = c->flags & BW_POLICY_NO_FS;
	char *dup;

	out[0] = '\0';
	if (s[0] == '~') {
		const char *home = var__lookup(c, "HOME", 4);

		if (s[1] && s[1] != '/') {
			node_diag(c, n, "'%s': '~user' is not supported; write the path, or use ${VAR}", s);
			return NULL;
		}
		if (!home && !offline) {
			node_diag(c, n, "'%s': '~' needs HOME set (in the environment or with --set HOME=DIR)", s);
			return NULL;
		}
		if (!home)
			home = home_unset;
		if (!out__put(out, sizeof(out), &o, home, strlen(home)))
			goto too_long;
		p = s + 1;
	}
	while (*p) {
		const char *name, *v;
		bool braced = p[1] == '{';
		size_t len = 0;

		if (*p != '$') {
			if (!out__put(out, sizeof(out), &o, p, 1))
				goto too_long;
			p++;
			continue;
		}
		if (p[1] == '$') {
			if (!out__put(out, sizeof(out), &o, "$", 1))
				goto too_long;
			p += 2;
			continue;
		}
		name = p + 1 + braced;
		while (var__char(name[len], len == 0))
			len++;
		if (!len || (braced && name[len] != '}')) {
			node_diag(c, n, "'%s': a '$' must start a variable (${NAME} or $NAME) or be written '$$'", s);
			return NULL;
		}
		v = var__lookup(c, name, len);
		if (!v && !offline) {
			node_diag(c, n, "'%s': variable '%.*s' is not set; set it in the environment or with --set %.*s=VALUE",
				  s, (int)len, name, (int)len, name);
			return NULL;
		}
		if (v ? !out__put(out, sizeof(out), &o, v, strlen(v))
		      : (!out__put(out, sizeof(out), &o, "${", 2) ||
			 !out__put(out, sizeof(out), &o, name, len) ||
			 !out__put(out, sizeof(out), &o, "}", 1)))
			goto too_long;
		p = name + len + braced;
	}
	if (!o) {
		node_diag(c, n, "'%s' is empty once expanded", s);
		return NULL;
	}
	dup = strdup(out);
	if (!dup)
		ctx__nomem(c);
	return dup;
too_long:
	node_diag(c, n, "'%s' is longer than %d bytes once expanded", s, PATH_MAX - 1);
	return NULL;
}

/* Absolute, or (offline) starting with a variable that is not set: its value is not
 * known, and a workspace variable holds an absolute path. */
static bool path__is_abs(const struct ctx *c, const char *s)
{
	return s[0] == '/' || ((c->flags & BW_POLICY_NO_FS) && !strncmp(s, "${", 2));
}

static char *path__join(struct ctx *c, const char *p)
{
	char *out;
	int r;

	if (path__is_abs(c, p) || !c->base_dir || !*c->base_dir)
		r = asprintf(&out, "%s", p);
	else
		r = asprintf(&out, "%s/%s", c->base_dir, p);
	if (r < 0) {
		ctx__nomem(c);
		return NULL;
	}
	path__tidy(out);
	return out;
}

/* Resolves a file the policy names to its real path and (dev, ino): the kernel side
 * matches objects, not strings. want is S_IFDIR or S_IFREG. Returns 0 or -1 after
 * reporting. */
static int path__resolve(struct ctx *c, const struct node *n, const char *what, const char *s,
			 mode_t want, char **out, uint64_t *dev, uint64_t *ino)
{
	char *joined, *real, *expanded;
	struct stat st;
	int e;

	expanded = path__expand(c, n, s);
	if (!expanded)
		return -1;
	joined = path__join(c, expanded);
	free(expanded);
	if (!joined)
		return -1;
	if (c->flags & BW_POLICY_NO_FS) {
		*out = joined;
		*dev = *ino = 0;
		return 0;
	}
	real = realpath(joined, NULL);
	e = errno;
	free(joined);
	if (!real) {
		if (e == ENOMEM)
			ctx__nomem(c);
		node_diag(c, n, "%s '%s' %s: %s", what, s,
			  e == ENOENT || e == ENOTDIR ? "does not exist" : "cannot be resolved",
			  strerror(e));
		return -1;
	}
	if (stat(real, &st)) {
		e = errno;
		node_diag(c, n, "%s '%s' cannot be resolved: %s", what, s, strerror(e));
		free(real);
		return -1;
	}
	if ((st.st_mode & S_IFMT) != want) {
		node_diag(c, n, "%s '%s' is not a %s", what, s,
			  want == S_IFDIR ? "directory" : "regular file");
		free(real);
		return -1;
	}
	*out = real;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

/* Whether s names an absolute path once expanded ("~/bin/x", "${TOOLS}/x"); a failed
 * expansion counts as absolute, its error comes from path__resolve. */
static bool path__abs_expanded(struct ctx *c, const struct node *n, const char *s)
{
	struct bw_diags quiet, *d = c->d;
	char *x;
	bool abs;

	if (s[0] == '/')
		return true;
	if (s[0] != '~' && s[0] != '$')
		return false;
	memset(&quiet, 0, sizeof(quiet));
	c->d = &quiet;
	x = path__expand(c, n, s);
	c->d = d;
	abs = !x || path__is_abs(c, x);
	free(x);
	return abs;
}

static void dir__check(struct ctx *c, const struct node *n, const char *what, char **path,
		       uint64_t *dev, uint64_t *ino)
{
	const char *s = scalar__get(c, n);

	if (!s)
		return;
	if (!*s) {
		node_diag(c, n, "%s must not be empty", what);
		return;
	}
	path__resolve(c, n, what, s, S_IFDIR, path, dev, ino);
}

/* `name:` on a rule: what events' verdict.rule and `query --rule` show. One name picks
 * one rule, so a name used twice is an error. */
#define POLICY_NAME_MAX 64
static void name__check(struct ctx *c, const struct node *n, char **out)
{
	const char *s = scalar__get(c, n);
	size_t len;

	if (!s)
		return;
	len = strlen(s);
	if (!len || len > POLICY_NAME_MAX) {
		node_diag(c, n, "a rule name must be 1..%d characters", POLICY_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (!var__char(ch, false) && ch != '-' && ch != '.' && ch != '/' && ch != ':' &&
		    ch != '@' && ch != '+') {
			node_diag(c, n, "rule name '%s': letters, digits and _ - . / : @ + only", s);
			return;
		}
	}
	for (size_t i = 0; i < c->n_names; i++) {
		if (!strcmp(c->names[i].name, s)) {
			node_diag(c, n, "rule name '%s' is already used at line %u: a name picks one rule",
				  s, c->names[i].line);
			return;
		}
	}
	if (grow__reserve((void **)&c->names, &c->cap_names, c->n_names + 1, sizeof(*c->names),
			  16, 0)) {
		ctx__nomem(c);
		return;
	}
	*out = strdup(s);
	c->names[c->n_names].name = strdup(s);
	if (!*out || !c->names[c->n_names].name) {
		free(c->names[c->n_names].name);
		ctx__nomem(c);
		return;
	}
	c->names[c->n_names++].line = n->line;
}

/* `uid: N` (a number) or `user: NAME` (resolved in the passwd database when the file
 * system is used; without it, a name is kept as uid 0xffffffff, which no process has). */
static void exe__check_uid(struct ctx *c, const struct node *uidn, const struct node *usern,
			   struct bw_exe_match *e)
{
	const char *s;

	if (uidn && usern) {
		node_diag(c, usern, "give 'uid' or 'user', not both");
		return;
	}
	if (uidn) {
		char *end;
		unsigned long v;

		s = scalar__get(c, uidn);
		if (!s)
			return;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (!*s || *s < '0' || *s > '9' || *end || errno || v >= 0xffffffffUL) {
			node_diag(c, uidn, "'uid' must be a number (a name goes in 'user'), not '%s'", s);
			return;
		}
		e->has_uid = true;
		e->uid = (uint32_t)v;
	} else if (usern) {
		struct passwd *pw;

		s = scalar__get(c, usern);
		if (!s)
			return;
		if (!*s) {
			node_diag(c, usern, "'user' must not be empty");
			return;
		}
		e->has_uid = true;
		e->uid = 0xffffffffu;
		if (c->flags & BW_POLICY_NO_FS)
			return;
		pw = getpwnam(s);
		if (!pw) {
			node_diag(c, usern, "no such user '%s'", s);
			return;
		}
		e->uid = (uint32_t)pw->pw_uid;
	}
}

/* writers and build_roots entries: {exe, descendants}, and for writers the conditions
 * {uid | user, parent} */
static void exe__check(struct ctx *c, const struct node *n, const char *what, bool is_root,
		       struct bw_exe_match *e)
{
	struct field f[] = { { "exe", NULL }, { "descendants", NULL }, { "uid", NULL },
			     { "user", NULL }, { "parent", NULL }, { "name", NULL } };
	const char *s;

	e->line = n->line;
	e->col = n->col;
	e->descendants = is_root;
	/* build roots know only exe and descendants: the unknown-key message says so */
	if (!map__fields(c, n, f, is_root ? 2 : 6))
		return;
	if (f[5].val)
		name__check(c, f[5].val, &e->name);
	if (f[1].val) {
		e->descendants = !scalar__choice(c, f[1].val, "descendants", "true", "false",
						 !is_root);
		if (is_root && !e->descendants)
			node_diag(c, f[1].val,
				  "'descendants' must be true for a build root: its descendants are the build");
	}
	exe__check_uid(c, f[2].val, f[3].val, e);
	if (f[4].val && (s = scalar__get(c, f[4].val))) {
		if (!path__abs_expanded(c, f[4].val, s))
			node_diag(c, f[4].val, "writer parent '%s' must be an absolute path", s);
		else
			path__resolve(c, f[4].val, "writer parent", s, S_IFREG, &e->parent,
				      &e->parent_dev, &e->parent_ino);
	}
	if (!f[0].val) {
		node_diag(c, n, "missing required key 'exe'");
		return;
	}
	s = scalar__get(c, f[0].val);
	if (!s)
		return;
	e->line = f[0].val->line;
	e->col = f[0].val->col;
	/* Relative names would be resolved against whatever directory the agent runs
	 * in, or guessed from $PATH: neither names one file. */
	if (!path__abs_expanded(c, f[0].val, s)) {
		node_diag(c, f[0].val, "%s '%s' must be an absolute path", what, s);
		return;
	}
	path__resolve(c, f[0].val, what, s, S_IFREG, &e->exe, &e->dev, &e->ino);
}

static bool exe__same_file(const struct bw_exe_match *a, const struct bw_exe_match *b)
{
	if (!a->exe || !b->exe)
		return false;
	if (a->ino || b->ino)
		return a->dev == b->dev && a->ino == b->ino;
	return !strcmp(a->exe, b->exe);
}

static bool exe__same_conditions(const struct bw_exe_match *a, const struct bw_exe_match *b)
{
	if (a->has_uid != b->has_uid || (a->has_uid && a->uid != b->uid))
		return false;
	if (!a->parent != !b->parent)
		return false;
	if (!a->parent)
		return true;
	if (a->parent_ino || b->parent_ino)
		return a->parent_dev == b->parent_dev && a->parent_ino == b->parent_ino;
	return !strcmp(a->parent, b->parent);
}

/* The kernel keeps one entry per writer executable, conditions included: the same
 * file listed with other conditions (here or under another tree) would have them
 * silently merged, so it is refused. */
static void writers__check_conditions(struct ctx *c, const struct bw_policy *p)
{
	for (size_t t = 0; t < p->n_protect; t++) {
		for (size_t i = 0; i < p->protect[t].n_writers; i++) {
			const struct bw_exe_match *b = &p->protect[t].writers[i];
			bool done = false;

			for (size_t u = 0; u <= t && !done; u++) {
				size_t n = u == t ? i : p->protect[u].n_writers;

				for (size_t j = 0; j < n; j++) {
					const struct bw_exe_match *a = &p->protect[u].writers[j];

					if (exe__same_file(a, b) && !exe__same_conditions(a, b)) {
						ctx__diag(c, b->line, b->col,
							  "writer exe '%s' is listed with other conditions (uid, user, parent) at line %u: one executable has one set of conditions",
							  b->exe, a->line);
						done = true;
						break;
					}
				}
			}
		}
	}
}

static bool path__inside(const char *inner, const char *outer);

/* The kernel's own views: every process reads and writes them all the time (its own
 * /proc/self, /dev/null, cgroup files), so a protected tree that is, holds or sits in
 * one makes every build step a violation, and the watcher would mark whole pseudo file
 * systems. Checked on the resolved path and, with the file system, on its type (a
 * bind mount of /proc elsewhere). */
static const char *const pseudo_roots[] = { "/proc", "/sys", "/dev" };

static void protect__check_pseudo(struct ctx *c, const struct node *n, const char *path)
{
	struct statfs sf;

	for (size_t i = 0; i < sizeof(pseudo_roots) / sizeof(pseudo_roots[0]); i++) {
		const char *r = pseudo_roots[i];

		if (!strcmp(path, r) || path__inside(path, r) || path__inside(r, path)) {
			node_diag(c, n, "protected path '%s' %s %s: the kernel's pseudo file systems cannot be protected",
				  n->str ? n->str : path,
				  !strcmp(path, r) ? "is" : path__inside(path, r) ? "is inside" : "contains", r);
			return;
		}
	}
	if (c->flags & BW_POLICY_NO_FS || statfs(path, &sf))
		return;
	if (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC ||
	    sf.f_type == CGROUP2_SUPER_MAGIC || sf.f_type == CGROUP_SUPER_MAGIC ||
	    sf.f_type == DEBUGFS_MAGIC || sf.f_type == TRACEFS_MAGIC ||
	    sf.f_type == SECURITYFS_MAGIC || sf.f_type == BPF_FS_MAGIC)
		node_diag(c, n, "protected path '%s' is on a pseudo file system (proc, sysfs, cgroup, bpf...): it cannot be protected",
			  n->str ? n->str : path);
}

static void protect__check_entry(struct ctx *c, const struct node *n, struct bw_protect *t,
				 const struct node **path_node)
{
	struct field f[] = { { "path", NULL }, { "writers", NULL }, { "name", NULL } };
	size_t nw;

	t->line = n->line;
	t->col = n->col;
	if (!map__fields(c, n, f, 3))
		return;
	if (f[2].val)
		name__check(c, f[2].val, &t->name);
	if (!f[0].val) {
		node_diag(c, n, "missing required key 'path'");
	} else {
		*path_node = f[0].val;
		t->line = f[0].val->line;
		t->col = f[0].val->col;
		dir__check(c, f[0].val, "protected path", &t->path, &t->dev, &t->ino);
		if (t->path)
			protect__check_pseudo(c, f[0].val, t->path);
	}
	nw = seq__count(c, f[1].val, "writers", POLICY_MAX_WRITERS);
	t->writers = ctx__calloc(c, nw, sizeof(*t->writers));
	if (!t->writers)
		return;
	t->n_writers = nw;
	for (size_t i = 0; i < nw; i++)
		exe__check(c, f[1].val->items[i], "writer exe", false, &t->writers[i]);
}

static bool path__inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && inner[n] == '/';
}

/* The kernel gives each protected tree one bit and stops at the first protected
 * ancestor it finds, so overlapping trees would make writers of the outer tree
 * silently unauthorized (or authorized) in the inner one. */
static void protect__check_overlap(struct ctx *c, const struct bw_policy *p,
				   const struct node **path_nodes)
{
	for (size_t j = 0; j < p->n_protect; j++) {
		const struct bw_protect *b = &p->protect[j];

		if (!b->path)
			continue;
		for (size_t i = 0; i < j; i++) {
			const struct bw_protect *a = &p->protect[i];
			const char *as, *bs;

			if (!a->path)
				continue;
			as = path_nodes[i]->str;
			bs = path_nodes[j]->str;
			if (!strcmp(a->path, b->path) ||
			    (a->ino && a->dev == b->dev && a->ino == b->ino))
				node_diag(c, path_nodes[j],
					  "protected path '%s' is the same tree as '%s' (line %u)", bs,
					  as, a->line);
			else if (path__inside(b->path, a->path))
				node_diag(c, path_nodes[j],
					  "protected path '%s' is inside protected path '%s' (line %u)",
					  bs, as, a->line);
			else if (path__inside(a->path, b->path))
				node_diag(c, path_nodes[j],
					  "protected path '%s' contains protected path '%s' (line %u)",
					  bs, as, a->line);
		}
	}
}

static void protect__check(struct ctx *c, const struct node *n, struct bw_policy *p)
{
	size_t nt = seq__count(c, n, "protected trees", BW_POLICY_MAX_TREES);
	const struct node **path_nodes;

	if (!nt)
		return;
	p->protect = ctx__calloc(c, nt, sizeof(*p->protect));
	path_nodes = ctx__calloc(c, nt, sizeof(*path_nodes));
	if (!p->protect || !path_nodes) {
		free(path_nodes);
		return;
	}
	p->n_protect = nt;
	for (size_t i = 0; i < nt; i++)
		protect__check_entry(c, n->items[i], &p->protect[i], &path_nodes[i]);
	protect__check_overlap(c, p, path_nodes);
	writers__check_conditions(c, p);
	free(path_nodes);
}

/* A cgroup path as the policy names it: absolute under the cgroup v2 root, one name
 * per component. Not checked against the file system: a service's cgroup exists only
 * while the service runs, so the sensor resolves it (and again when it reappears). */
static void root__check_cgroup(struct ctx *c, const struct node *n, struct bw_build_root *r)
{
	const char *s = scalar__get(c, n), *comp;
	size_t len;

	if (!s)
		return;
	r->cg_line = n->line;
	r->cg_col = n->col;
	if (s[0] != '/') {
		node_diag(c, n, "build root cgroup '%s' must be a path under the cgroup v2 root, starting with '/'", s);
		return;
	}
	len = strlen(s);
	while (len > 1 && s[len - 1] == '/')
		len--;
	if (len == 1) {
		node_diag(c, n, "build root cgroup '/' is every process of the host: name the runner's own cgroup");
		return;
	}
	for (comp = s + 1; comp < s + len;) {
		const char *end = memchr(comp, '/', (size_t)(s + len - comp));
		size_t clen = end ? (size_t)(end - comp) : (size_t)(s + len - comp);

		if (clen == 0 || (clen == 1 && comp[0] == '.') ||
		    (clen == 2 && comp[0] == '.' && comp[1] == '.')) {
			node_diag(c, n, "build root cgroup '%s' must not hold empty, '.' or '..' components", s);
			return;
		}
		comp += clen + 1;
	}
	r->cgroup = strndup(s, len);
	if (!r->cgroup)
		ctx__nomem(c);
}

/* build_roots entries: {exe, cgroup, descendants}. An executable alone does not say who
 * the build is: any local process can exec /usr/bin/make, and would become the build
 * (its writes allowed). The cgroup is what an outsider cannot acquire: moving into
 * another service's cgroup takes write access to that cgroup's files. */
static void root__check(struct ctx *c, const struct node *n, struct bw_build_root *r)
{
	struct field f[] = { { "exe", NULL }, { "cgroup", NULL }, { "descendants", NULL },
			     { "name", NULL } };
	const char *s;

	r->line = n->line;
	r->col = n->col;
	if (!map__fields(c, n, f, 4))
		return;
	if (f[3].val)
		name__check(c, f[3].val, &r->name);
	if (f[2].val && scalar__choice(c, f[2].val, "descendants", "true", "false", 0) != 0)
		node_diag(c, f[2].val,
			  "'descendants' must be true for a build root: its descendants are the build");
	if (f[1].val)
		root__check_cgroup(c, f[1].val, r);
	if (!f[0].val) {
		node_diag(c, n, "missing required key 'exe'");
		return;
	}
	s = scalar__get(c, f[0].val);
	if (!s)
		return;
	r->line = f[0].val->line;
	r->col = f[0].val->col;
	if (!f[1].val)
		node_diag(c, n,
			  "build root '%s' needs a 'cgroup': any local process can exec it and would "
			  "become the build (docs/runners.md)",
			  s);
	if (!path__abs_expanded(c, f[0].val, s)) {
		node_diag(c, f[0].val, "build root exe '%s' must be an absolute path", s);
		return;
	}
	path__resolve(c, f[0].val, "build root exe", s, S_IFREG, &r->exe, &r->dev, &r->ino);
}

static void roots__check(struct ctx *c, const struct node *n, struct bw_policy *p)
{
	size_t nr = seq__count(c, n, "build roots", POLICY_MAX_ROOTS);

	p->build_roots = ctx__calloc(c, nr, sizeof(*p->build_roots));
	if (!p->build_roots)
		return;
	p->n_build_roots = nr;
	for (size_t i = 0; i < nr; i++)
		root__check(c, n->items[i], &p->build_roots[i]);
}

/* An exec.deny or exec.allow entry: a path, or {path, name}. */
static void tree__check(struct ctx *c, const struct node *e, const char *what, struct bw_tree *t)
{
	struct field f[] = { { "path", NULL }, { "name", NULL } };

	t->line = e->line;
	t->col = e->col;
	if (e->kind == NODE_MAP) {
		if (!map__fields(c, e, f, 2))
			return;
		if (f[1].val)
			name__check(c, f[1].val, &t->name);
		if (!f[0].val) {
			node_diag(c, e, "missing required key 'path'");
			return;
		}
		e = f[0].val;
		t->line = e->line;
		t->col = e->col;
	}
	dir__check(c, e, what, &t->path, &t->dev, &t->ino);
}

static void trees__check(struct ctx *c, const struct node *n, const char *what,
			 const char *entry, struct bw_tree **out, size_t *count)
{
	size_t nd = seq__count(c, n, what, POLICY_MAX_DENY);

	*out = ctx__calloc(c, nd, sizeof(**out));
	if (!*out)
		return;
	*count = nd;
	for (size_t i = 0; i < nd; i++)
		tree__check(c, n->items[i], entry, &(*out)[i]);
}

/* exec.allow trees lie inside a deny tree: an exception to it. One outside every deny
 * tree would allow what is allowed anyway, which says the policy is not what its author
 * thinks: an error. */
static void exec__check_allow(struct ctx *c, const struct bw_policy *p)
{
	for (size_t i = 0; i < p->n_exec_allow; i++) {
		const struct bw_tree *a = &p->exec_allow[i];
		bool inside = false;

		/* offline, a variable that is not set hides where the tree lies */
		if (!a->path || ((c->flags & BW_POLICY_NO_FS) && strstr(a->path, "${")))
			continue;
		for (size_t j = 0; j < p->n_exec_deny && !inside; j++) {
			const struct bw_tree *d = &p->exec_deny[j];

			if (!d->path)
				continue;
			if (!strcmp(a->path, d->path) || (a->ino && a->dev == d->dev && a->ino == d->ino)) {
				ctx__diag(c, a->line, a->col,
					  "exec allow path '%s' is exec deny path '%s' (line %u): drop both, or allow a subtree",
					  a->path, d->path, d->line);
				inside = true;
			} else if (path__inside(a->path, d->path)) {
				inside = true;
			}
		}
		if (!inside)
			ctx__diag(c, a->line, a->col,
				  "exec allow path '%s' is inside no exec deny path: an exec.allow tree is an exception to a denied tree",
				  a->path);
	}
}

static void exec__check(struct ctx *c, const struct node *n, struct bw_policy *p)
{
	struct field f[] = { { "scope", NULL }, { "deny", NULL }, { "allow", NULL } };

	if (!map__fields(c, n, f, 3))
		return;
	p->exec_scope = scalar__choice(c, f[0].val, "scope", "build", "host", BW_SCOPE_BUILD);
	trees__check(c, f[1].val, "exec deny trees", "exec deny path", &p->exec_deny,
		     &p->n_exec_deny);
	trees__check(c, f[2].val, "exec allow trees", "exec allow path", &p->exec_allow,
		     &p->n_exec_allow);
	exec__check_allow(c, p);
}

/* One element of a network entry (a port list is split into elements beforehand),
 * appended to the address rules or, for a name in network.allow, to the name rules. */
static void net__add(struct ctx *c, const struct node *e, const char *elem, const char *text,
		     const char *name, struct bw_net_rule **rules, size_t *count, size_t *cap,
		     struct bw_host_rule **names, size_t *n_names, size_t *cap_names)
{
	char err[sizeof(((struct bw_diag *)0)->msg)];

	if (policy__is_host_rule(elem)) {
		const char *colon = strrchr(elem, ':');
		struct bw_host_rule *h;

		if (!names) {
			node_diag(c, e,
				  "'%s': a name is allowed only in network.allow (a deny by name is undone by an address); deny addresses, or use default: deny",
				  text);
			return;
		}
		if (colon && strchr(colon, '-')) {
			node_diag(c, e,
				  "'%s': a name rule takes single ports, not a range: the agent allows each answered address port by port; list the ports (443,8443)",
				  text);
			return;
		}
		if (grow__reserve((void **)names, cap_names, *n_names + 1, sizeof(**names), 8, 0)) {
			ctx__nomem(c);
			return;
		}
		h = &(*names)[*n_names];
		if (policy__parse_host_rule(elem, h, err, sizeof(err))) {
			node_diag(c, e, "%s", err);
			return;
		}
		(*n_names)++;
		h->line = e->line;
		h->col = e->col;
		h->text = strdup(text);
		if (name && !(h->rule_name = strdup(name)))
			ctx__nomem(c);
		if (!h->text)
			ctx__nomem(c);
		return;
	}
	if (grow__reserve((void **)rules, cap, *count + 1, sizeof(**rules), 8, 0)) {
		ctx__nomem(c);
		return;
	}
	struct bw_net_rule *r = &(*rules)[*count];

	if (policy__parse_net_rule(elem, r, err, sizeof(err))) {
		node_diag(c, e, "%s", err);
		return;
	}
	(*count)++;
	r->line = e->line;
	r->col = e->col;
	r->text = strdup(text);
	if (!r->text || (name && !(r->name = strdup(name))))
		ctx__nomem(c);
}

/* Most elements of one port list ("80,443,8080"): each is a kernel entry of its own. */
#define POLICY_MAX_PORT_LIST 32

/* A network entry: "ADDR[:PORTS]" or {to: "ADDR[:PORTS]", name: NAME}, where PORTS is a
 * port, a range "1000-2000" or a list "80,443,8000-8100". */
static void net__entry(struct ctx *c, const struct node *e, struct bw_net_rule **rules,
		       size_t *count, size_t *cap, struct bw_host_rule **names, size_t *n_names,
		       size_t *cap_names)
{
	struct field f[] = { { "to", NULL }, { "name", NULL } };
	char *name = NULL, elem[POLICY_MAX_SCALAR + 8];
	const char *s, *comma, *colon = NULL;
	size_t base;
	unsigned n_elems = 0;

	if (e->kind == NODE_MAP) {
		if (!map__fields(c, e, f, 2))
			return;
		if (f[1].val)
			name__check(c, f[1].val, &name);
		if (!f[0].val) {
			node_diag(c, e, "missing required key 'to'");
			goto out;
		}
		e = f[0].val;
	}
	s = scalar__get(c, e);
	if (!s)
		goto out;
	comma = strchr(s, ',');
	if (!comma) {
		net__add(c, e, s, s, name, rules, count, cap, names, n_names, cap_names);
		goto out;
	}
	for (const char *q = s; q < comma; q++)
		if (*q == ':')
			colon = q;
	if (!colon) {
		node_diag(c, e, "'%s': a port list follows the address: ADDRESS:80,443", s);
		goto out;
	}
	base = (size_t)(colon - s) + 1;
	for (const char *q = colon + 1;;) {
		const char *end = strchr(q, ',');
		size_t n = end ? (size_t)(end - q) : strlen(q);

		if (!n) {
			node_diag(c, e, "'%s': empty element in the port list", s);
			break;
		}
		if (++n_elems > POLICY_MAX_PORT_LIST) {
			node_diag(c, e, "'%s': more than %d ports in one list", s, POLICY_MAX_PORT_LIST);
			break;
		}
		memcpy(elem, s, base);
		memcpy(elem + base, q, n);
		elem[base + n] = '\0';
		net__add(c, e, elem, s, name, rules, count, cap, names, n_names, cap_names);
		if (!end)
			break;
		q = end + 1;
	}
out:
	free(name); /* each element holds its own copy */
}

static void net__check_list(struct ctx *c, const struct node *n, const char *what,
			    struct bw_net_rule **rules, size_t *count,
			    struct bw_host_rule **names, size_t *n_names)
{
	size_t nr = seq__count(c, n, what, POLICY_MAX_ITEMS), cap = 0, cap_names = 0;

	for (size_t i = 0; i < nr; i++)
		net__entry(c, n->items[i], rules, count, &cap, names, n_names, &cap_names);
}

/* The kernel holds one entry per port of a range (bpf: an LPM trie keyed by port, then
 * address), two policies' worth during a reload: bounded here, with the reason. */
static void net__check_entries(struct ctx *c, const struct bw_policy *p)
{
	size_t total = 0;

	for (int deny = 0; deny < 2; deny++) {
		const struct bw_net_rule *r = deny ? p->net_deny : p->net_allow;
		size_t n = deny ? p->n_net_deny : p->n_net_allow;

		for (size_t i = 0; i < n; i++) {
			total += r[i].port ? (size_t)(r[i].port_hi - r[i].port) + 1 : 1;
			if (total > BW_POLICY_MAX_NET_ENTRIES) {
				ctx__diag(c, r[i].line, r[i].col,
					  "'%s': the network rules come to more than %d kernel entries (one per port of a range); narrow the range, or omit the port to match any port",
					  r[i].text, BW_POLICY_MAX_NET_ENTRIES);
				return;
			}
		}
	}
}

static void net__check(struct ctx *c, const struct node *n, struct bw_policy *p)
{
	struct field f[] = {
		{ "scope", NULL }, { "default", NULL }, { "allow", NULL }, { "deny", NULL }
	};

	if (!map__fields(c, n, f, 4))
		return;
	p->net_scope = scalar__choice(c, f[0].val, "scope", "build", "host", BW_SCOPE_BUILD);
	p->net_default_deny = scalar__choice(c, f[1].val, "default", "allow", "deny", 0);
	net__check_list(c, f[2].val, "allow rules", &p->net_allow, &p->n_net_allow,
			&p->net_allow_names, &p->n_net_allow_names);
	net__check_list(c, f[3].val, "deny rules", &p->net_deny, &p->n_net_deny, NULL, NULL);
	net__check_entries(c, p);
}

static void version__check(struct ctx *c, const struct node *n, struct bw_policy *p)
{
	const char *s = scalar__get(c, n);
	unsigned long v = 0;

	if (!s)
		return;
	for (const char *q = s; *q; q++) {
		if (*q < '0' || *q > '9' || v > 1000000) {
			node_diag(c, n, "'version' must be an integer, not '%s'", s);
			return;
		}
		v = v * 10 + (unsigned long)(*q - '0');
	}
	if (!*s) {
		node_diag(c, n, "'version' must be an integer, not ''");
		return;
	}
	if (v != 1) {
		node_diag(c, n, "unsupported version %s", s);
		return;
	}
	p->version = 1;
}

static void policy__check(struct ctx *c, const struct node *root, struct bw_policy *p)
{
	struct field f[] = {
		{ "version", NULL },	 { "mode", NULL }, { "protect", NULL },
		{ "build_roots", NULL }, { "exec", NULL }, { "network", NULL },
	};

	/* An empty file, or one holding only comments or "---" */
	if (!root || (root->kind == NODE_SCALAR && node__is_null(root))) {
		ctx__diag(c, 1, 1, "missing required key 'version'");
		return;
	}
	if (root->kind == NODE_BAD)
		return;
	if (root->kind != NODE_MAP) {
		node_diag(c, root, "expected a mapping");
		return;
	}
	map__fields(c, root, f, 6);
	if (f[0].val)
		version__check(c, f[0].val, p);
	else
		node_diag(c, root, "missing required key 'version'");
	p->mode = scalar__choice(c, f[1].val, "mode", "audit", "enforce", BW_MODE_AUDIT);
	if (f[2].val)
		protect__check(c, f[2].val, p);
	if (f[3].val)
		roots__check(c, f[3].val, p);
	if (f[4].val)
		exec__check(c, f[4].val, p);
	if (f[5].val)
		net__check(c, f[5].val, p);
}

static void exe__free(struct bw_exe_match *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].exe);
		free(e[i].parent);
		free(e[i].name);
	}
	free(e);
}

static void net__free(struct bw_net_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].text);
		free(r[i].name);
	}
	free(r);
}

void policy__free(struct bw_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_protect; i++) {
		free(p->protect[i].path);
		free(p->protect[i].name);
		exe__free(p->protect[i].writers, p->protect[i].n_writers);
	}
	free(p->protect);
	for (size_t i = 0; i < p->n_build_roots; i++) {
		free(p->build_roots[i].exe);
		free(p->build_roots[i].cgroup);
		free(p->build_roots[i].name);
	}
	free(p->build_roots);
	for (size_t i = 0; i < p->n_exec_deny; i++) {
		free(p->exec_deny[i].path);
		free(p->exec_deny[i].name);
	}
	free(p->exec_deny);
	for (size_t i = 0; i < p->n_exec_allow; i++) {
		free(p->exec_allow[i].path);
		free(p->exec_allow[i].name);
	}
	free(p->exec_allow);
	net__free(p->net_allow, p->n_net_allow);
	net__free(p->net_deny, p->n_net_deny);
	for (size_t i = 0; i < p->n_net_allow_names; i++) {
		free(p->net_allow_names[i].name);
		free(p->net_allow_names[i].text);
		free(p->net_allow_names[i].rule_name);
	}
	free(p->net_allow_names);
	free(p->source);
	free(p);
}

/* Problems are found pass by pass (syntax, then keys, then cross-checks), but a reader
 * fixes a file top to bottom: report them in file order. Stable, so problems at one
 * position keep the order they were found in. */
static void diags__sort(struct bw_diags *d)
{
	for (size_t i = 1; i < d->n; i++) {
		struct bw_diag tmp = d->items[i];
		size_t j = i;

		while (j > 0 && (d->items[j - 1].line > tmp.line ||
				 (d->items[j - 1].line == tmp.line && d->items[j - 1].col > tmp.col))) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = tmp;
	}
}

int policy__parse(const char *buf, size_t len, const char *name, const char *base_dir,
		  unsigned flags, struct bw_policy **out, struct bw_diags *diags)
{
	struct bw_policy_opts opts = { .flags = flags };

	return policy__parse_opts(buf, len, name, base_dir, &opts, out, diags);
}

int policy__parse_opts(const char *buf, size_t len, const char *name, const char *base_dir,
		       const struct bw_policy_opts *opts, struct bw_policy **out,
		       struct bw_diags *diags)
{
	struct bw_diags local;
	struct ctx c = { .base_dir = base_dir, .flags = opts->flags, .opts = opts };
	struct bw_policy *p;
	struct node *root = NULL;
	bool parsed;

	if (!diags)
		diags = &local;
	memset(diags, 0, sizeof(*diags));
	c.d = diags;
	*out = NULL;
	if (!buf)
		buf = "";

	/* Checked before libyaml sees a byte: the bound is on our memory, not theirs. */
	if (len > POLICY_MAX_BYTES) {
		ctx__diag(&c, 0, 0, "policy too large (%zu bytes, max %u)", len, POLICY_MAX_BYTES);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->source = strdup(name ? name : "<policy>");
	if (!p->source) {
		free(p);
		return -ENOMEM;
	}

	parsed = tree__build(&c, buf, len, &root);
	if (parsed && !c.err)
		policy__check(&c, root, p);
	node__free(root);
	for (size_t i = 0; i < c.n_names; i++)
		free(c.names[i].name);
	free(c.names);
	/* warnings about how rules combine mean something only for rules that all hold */
	if (!c.err && !diags->n_errors)
		policy_lint__run(p, diags);
	diags__sort(diags);

	if (c.err || diags->n_errors) {
		policy__free(p);
		return c.err ? c.err : -EINVAL;
	}
	*out = p;
	return 0;
}
