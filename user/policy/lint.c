/* policy_lint__run: see lint.h. Runs on a policy that passed every check, so each rule
 * here is well formed; what is looked for is how rules combine. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/lint.h"

static void __attribute__((format(printf, 4, 5)))
lint__warn(struct bw_diags *d, unsigned line, unsigned col, const char *fmt, ...)
{
	struct bw_diag *g;
	va_list ap;

	if (d->n >= BW_POLICY_MAX_DIAGS) {
		d->dropped++;
		return;
	}
	g = &d->items[d->n++];
	g->line = line;
	g->col = col;
	g->warning = true;
	va_start(ap, fmt);
	vsnprintf(g->msg, sizeof(g->msg), fmt, ap);
	va_end(ap);
}

static const char *lint__base(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path ? path : "";
}

/* Programs that run whatever script or command they are given: as a writer, any script
 * (the build's own included) writes through them. Matched on the name's start, so
 * python3.12 and perl5.36 are found too. */
static bool lint__is_interpreter(const char *path)
{
	static const char *const exact[] = { "sh",   "bash", "dash", "zsh",    "ksh",  "mksh",
					     "fish", "csh",  "tcsh", "busybox", "env",  "node",
					     "nodejs", "deno", "bun", "tclsh", "wish", "pwsh" };
	static const char *const prefix[] = { "python", "perl", "ruby", "php", "lua", "java" };
	const char *b = lint__base(path);

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(b, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(b, prefix[i], strlen(prefix[i])))
			return true;
	return false;
}

static bool lint__inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return inner[0] == '/' && inner[1];
	return !strncmp(inner, outer, n) && inner[n] == '/';
}

static void lint__writers(const struct bw_policy *p, struct bw_diags *d)
{
	for (size_t t = 0; t < p->n_protect; t++) {
		const struct bw_protect *pt = &p->protect[t];

		for (size_t i = 0; i < pt->n_writers; i++) {
			const struct bw_exe_match *w = &pt->writers[i];

			if (lint__is_interpreter(w->exe))
				lint__warn(d, w->line, w->col,
					   "writer exe '%s' is a shell or interpreter: any script it runs may write to '%s'%s",
					   w->exe, pt->path,
					   w->descendants ? ", and with 'descendants: true' so may every program started under it" : "");
			for (size_t j = 0; j < i; j++) {
				const struct bw_exe_match *a = &pt->writers[j];

				if (a->exe && w->exe &&
				    (a->ino ? a->dev == w->dev && a->ino == w->ino : !strcmp(a->exe, w->exe)) &&
				    a->descendants == w->descendants) {
					lint__warn(d, w->line, w->col,
						   "writer exe '%s' is listed twice for this tree (line %u)",
						   w->exe, a->line);
					break;
				}
			}
		}
	}
}

static bool lint__same_tree(const struct bw_tree *a, const struct bw_tree *b)
{
	return (a->ino && a->dev == b->dev && a->ino == b->ino) || !strcmp(a->path, b->path);
}

/* Duplicates and trees inside another tree of the same list: the inner one adds nothing. */
static void lint__trees(const struct bw_tree *t, size_t n, const char *what, struct bw_diags *d)
{
	for (size_t i = 0; i < n; i++) {
		if (!t[i].path)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (i == j || !t[j].path)
				continue;
			if (j < i && lint__same_tree(&t[i], &t[j])) {
				lint__warn(d, t[i].line, t[i].col, "%s '%s' is listed twice (line %u)",
					   what, t[i].path, t[j].line);
				break;
			}
			if (lint__inside(t[i].path, t[j].path)) {
				lint__warn(d, t[i].line, t[i].col,
					   "%s '%s' is inside %s '%s' (line %u): it adds nothing", what,
					   t[i].path, what, t[j].path, t[j].line);
				break;
			}
		}
	}
}

static bool net__prefix_covers(const struct bw_net_rule *outer, const struct bw_net_rule *inner)
{
	unsigned bytes = outer->prefix_len / 8, bits = outer->prefix_len % 8;

	if (outer->prefix_len > inner->prefix_len || memcmp(outer->addr, inner->addr, bytes))
		return false;
	return !bits || ((outer->addr[bytes] ^ inner->addr[bytes]) & (uint8_t)(0xff00u >> bits)) == 0;
}

static bool net__same_addr(const struct bw_net_rule *a, const struct bw_net_rule *b)
{
	return a->prefix_len == b->prefix_len && !memcmp(a->addr, b->addr, 16);
}

/* Port sets of two rules of equal prefix that compete: both any-port, or both
 * port-specific with overlapping ranges (a port-specific rule beats an any-port one,
 * so those two do not compete). */
static bool net__ports_compete(const struct bw_net_rule *a, const struct bw_net_rule *b)
{
	if (!a->port || !b->port)
		return !a->port && !b->port;
	return a->port <= b->port_hi && b->port <= a->port_hi;
}

static bool net__ports_cover(const struct bw_net_rule *outer, const struct bw_net_rule *inner)
{
	if (!outer->port || !inner->port)
		return !outer->port && !inner->port;
	return outer->port <= inner->port && inner->port_hi <= outer->port_hi;
}

/* Elements of one entry ("80,443") share text and position: not duplicates. */
static bool net__same_entry(const struct bw_net_rule *a, const struct bw_net_rule *b)
{
	return a->line == b->line && a->col == b->col;
}

static void lint__net_dups(const struct bw_net_rule *r, size_t n, const char *list,
			   struct bw_diags *d)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!net__same_entry(&r[i], &r[j]) && net__same_addr(&r[i], &r[j]) &&
			    net__ports_cover(&r[j], &r[i])) {
				lint__warn(d, r[i].line, r[i].col,
					   "network.%s '%s' is covered by '%s' (line %u) of the same list",
					   list, r[i].text, r[j].text, r[j].line);
				break;
			}
}

static void lint__net(const struct bw_policy *p, struct bw_diags *d)
{
	bool v4_all = false, v6_all = false;
	const struct bw_net_rule *v4_rule = NULL;

	for (size_t i = 0; i < p->n_net_deny; i++) {
		const struct bw_net_rule *r = &p->net_deny[i];

		if (r->port)
			continue;
		if (r->is_v4 && r->prefix_len == 96 && !v4_all) {
			v4_all = true;
			v4_rule = r;
		}
		if (!r->is_v4 && r->prefix_len == 0)
			v6_all = true;
	}
	if (v4_all && !v6_all && !p->net_default_deny)
		lint__warn(d, v4_rule->line, v4_rule->col,
			   "'%s' denies every IPv4 destination, but IPv6 stays open under 'default: allow': add '::/0' to network.deny, or write 'default: deny'",
			   v4_rule->text);

	lint__net_dups(p->net_allow, p->n_net_allow, "allow", d);
	lint__net_dups(p->net_deny, p->n_net_deny, "deny", d);

	/* the same destination in both lists: the deny wins (kernel and userspace alike) */
	for (size_t i = 0; i < p->n_net_allow; i++) {
		const struct bw_net_rule *a = &p->net_allow[i];
		bool overlaps = false;

		for (size_t j = 0; j < p->n_net_deny; j++) {
			const struct bw_net_rule *x = &p->net_deny[j];

			if (!net__same_addr(a, x) || !net__ports_compete(a, x))
				continue;
			lint__warn(d, a->line, a->col,
				   net__ports_cover(x, a)
					   ? "network.allow '%s' is shadowed by network.deny '%s' (line %u): the deny wins, the allow never applies"
					   : "network.allow '%s' and network.deny '%s' (line %u) name the same destination on some ports: the deny wins there",
				   a->text, x->text, x->line);
			overlaps = true;
			break;
		}
		if (overlaps || p->net_default_deny)
			continue;
		/* under default: allow an allow rule decides only inside a deny rule */
		for (size_t j = 0; j < p->n_net_deny && !overlaps; j++)
			overlaps = net__prefix_covers(&p->net_deny[j], a) ||
				   net__prefix_covers(a, &p->net_deny[j]);
		if (!overlaps && (i == 0 || !net__same_entry(a, &p->net_allow[i - 1])))
			lint__warn(d, a->line, a->col,
				   "network.allow '%s' has no effect: 'default: allow' allows it anyway and no deny rule covers it",
				   a->text);
	}
	if (p->net_default_deny) {
		for (size_t i = 0; i < p->n_net_deny; i++) {
			const struct bw_net_rule *x = &p->net_deny[i];
			bool overlaps = false;

			for (size_t j = 0; j < p->n_net_allow && !overlaps; j++)
				overlaps = net__prefix_covers(&p->net_allow[j], x) ||
					   net__prefix_covers(x, &p->net_allow[j]);
			if (!overlaps && (i == 0 || !net__same_entry(x, &p->net_deny[i - 1])))
				lint__warn(d, x->line, x->col,
					   "network.deny '%s' has no effect: 'default: deny' denies it anyway and no allow rule covers it",
					   x->text);
		}
	}
	for (size_t i = 0; i < p->n_net_allow_names; i++) {
		const struct bw_host_rule *h = &p->net_allow_names[i];

		for (size_t j = 0; j < i; j++) {
			const struct bw_host_rule *g = &p->net_allow_names[j];

			if (g->line == h->line && g->col == h->col)
				continue;
			if (g->wildcard == h->wildcard && !strcmp(g->name, h->name) &&
			    (g->port == 0 || g->port == h->port)) {
				lint__warn(d, h->line, h->col,
					   "network.allow '%s' is covered by '%s' (line %u)", h->text,
					   g->text, g->line);
				break;
			}
		}
	}
}

void policy_lint__run(const struct bw_policy *p, struct bw_diags *d)
{
	lint__writers(p, d);
	lint__trees(p->exec_deny, p->n_exec_deny, "exec deny path", d);
	lint__trees(p->exec_allow, p->n_exec_allow, "exec allow path", d);
	for (size_t i = 0; i < p->n_build_roots; i++)
		for (size_t j = 0; j < i; j++) {
			const struct bw_build_root *a = &p->build_roots[j], *b = &p->build_roots[i];

			if (a->exe && b->exe && a->cgroup && b->cgroup && !strcmp(a->cgroup, b->cgroup) &&
			    (a->ino ? a->dev == b->dev && a->ino == b->ino : !strcmp(a->exe, b->exe))) {
				lint__warn(d, b->line, b->col, "build root '%s' is listed twice (line %u)",
					   b->exe, a->line);
				break;
			}
		}
	lint__net(p, d);
}
