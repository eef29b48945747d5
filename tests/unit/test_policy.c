/* Unit tests of the policy parser: values, every class of diagnostic with its exact
 * position and text, path resolution against a real temporary tree, network rules and
 * the verdict precedence the kernel must share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

/* ---- helpers ---------------------------------------------------------------- */

struct tmp {
	char dir[64]; /* as created by mkdtemp */
	char real[PATH_MAX]; /* realpath of dir: what the parser stores */
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	char p[PATH_MAX];

	assert_non_null(t);
	strcpy(t->dir, "/tmp/bw_policy_test_XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	assert_non_null(realpath(t->dir, t->real));
	const char *dirs[] = { "src", "src/sub", "out", "bin", "deny" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	snprintf(p, sizeof(p), "%s/bin/rsync", t->dir);
	write_file(p, "#!/bin/sh\n");
	snprintf(p, sizeof(p), "%s/bin/make", t->dir);
	write_file(p, "#!/bin/sh\n");
	snprintf(p, sizeof(p), "%s/notdir", t->dir);
	write_file(p, "x\n");
	snprintf(p, sizeof(p), "%s/link", t->dir);
	assert_int_equal(symlink("src", p), 0);
	snprintf(p, sizeof(p), "%s/bin/rsync-link", t->dir);
	assert_int_equal(symlink("rsync", p), 0);
	*state = t;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

static int parse(const char *y, const char *base, unsigned flags, struct bw_policy **p,
		 struct bw_diags *d)
{
	return policy__parse(y, strlen(y), "t.yaml", base, flags, p, d);
}

static void dump_diags(const char *y, const struct bw_diags *d)
{
	print_message("input:\n%s\n", y);
	for (size_t i = 0; i < d->n; i++)
		print_message("  diag %u:%u: %s\n", d->items[i].line, d->items[i].col,
			      d->items[i].msg);
}

/* Parses y and expects it to be refused with exactly one diagnostic. */
static void expect_one(const char *y, const char *base, unsigned flags, unsigned line,
		       unsigned col, const char *msg)
{
	struct bw_policy *p = (struct bw_policy *)1;
	struct bw_diags d;
	int rc = parse(y, base, flags, &p, &d);

	if (d.n != 1 || d.items[0].line != line || d.items[0].col != col ||
	    strcmp(d.items[0].msg, msg))
		dump_diags(y, &d);
	assert_int_equal(rc, -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.dropped, 0);
	assert_string_equal(d.items[0].msg, msg);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
}

static void expect_nofs(const char *y, unsigned line, unsigned col, const char *msg)
{
	expect_one(y, "/base", BW_POLICY_NO_FS, line, col, msg);
}

static struct bw_policy *parse_ok(const char *y, const char *base, unsigned flags)
{
	struct bw_policy *p = NULL;
	struct bw_diags d;
	int rc = parse(y, base, flags, &p, &d);

	if (rc)
		dump_diags(y, &d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n_errors, 0); /* warnings: test_policy_lint.c */
	assert_non_null(p);
	return p;
}

static void stat_of(const char *path, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	*dev = st.st_dev;
	*ino = st.st_ino;
}

static void v4(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, s, out + 12), 1);
}

static void v6(uint8_t out[16], const char *s)
{
	assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

/* ---- values ----------------------------------------------------------------- */

static const char example_fmt[] =
	"version: 1\n"
	"mode: enforce\n"
	"protect:\n"
	"  - path: src\n"
	"  - path: out\n"
	"    writers:\n"
	"      - exe: %s/bin/rsync-link\n"
	"        descendants: false\n"
	"      - exe: %s/bin/make\n"
	"        descendants: true\n"
	"build_roots:\n"
	"  - exe: %s/bin/make\n"
	"    cgroup: /system.slice/runner.service/\n"
	"exec:\n"
	"  scope: host\n"
	"  deny: [%s/deny, ./deny/]\n"
	"network:\n"
	"  scope: host\n"
	"  default: deny\n"
	"  allow: [\"127.0.0.0/8\", \"::1/128\", \"10.1.0.0/16:443\"]\n"
	"  deny: []\n";

static void test_policy__full_example(void **state)
{
	struct tmp *t = *state;
	char y[4096], want[2 * PATH_MAX];
	uint64_t dev, ino;
	uint8_t a[16];
	struct bw_policy *p;

	snprintf(y, sizeof(y), example_fmt, t->dir, t->dir, t->dir, t->dir);
	p = parse_ok(y, t->dir, 0);

	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, BW_MODE_ENFORCE);
	assert_string_equal(p->source, "t.yaml");

	assert_int_equal(p->n_protect, 2);
	snprintf(want, sizeof(want), "%s/src", t->real);
	assert_string_equal(p->protect[0].path, want);
	stat_of(want, &dev, &ino);
	assert_int_equal(p->protect[0].dev, dev);
	assert_int_equal(p->protect[0].ino, ino);
	assert_int_equal(p->protect[0].line, 4);
	assert_int_equal(p->protect[0].col, 11);
	assert_int_equal(p->protect[0].n_writers, 0);

	snprintf(want, sizeof(want), "%s/out", t->real);
	assert_string_equal(p->protect[1].path, want);
	assert_int_equal(p->protect[1].n_writers, 2);
	/* the symlink is resolved: identity is the file, not the name */
	snprintf(want, sizeof(want), "%s/bin/rsync", t->real);
	assert_string_equal(p->protect[1].writers[0].exe, want);
	stat_of(want, &dev, &ino);
	assert_int_equal(p->protect[1].writers[0].dev, dev);
	assert_int_equal(p->protect[1].writers[0].ino, ino);
	assert_false(p->protect[1].writers[0].descendants);
	assert_int_equal(p->protect[1].writers[0].line, 7);
	assert_int_equal(p->protect[1].writers[0].col, 14);
	assert_true(p->protect[1].writers[1].descendants);

	assert_int_equal(p->n_build_roots, 1);
	snprintf(want, sizeof(want), "%s/bin/make", t->real);
	assert_string_equal(p->build_roots[0].exe, want);
	assert_int_not_equal(p->build_roots[0].ino, 0);
	/* the trailing '/' goes: the sensor resolves one spelling */
	assert_string_equal(p->build_roots[0].cgroup, "/system.slice/runner.service");
	assert_int_equal(p->build_roots[0].cg_line, 13);
	assert_int_equal(p->build_roots[0].cg_col, 13);

	assert_int_equal(p->exec_scope, BW_SCOPE_HOST);
	assert_int_equal(p->n_exec_deny, 2);
	snprintf(want, sizeof(want), "%s/deny", t->real);
	assert_string_equal(p->exec_deny[0].path, want);
	assert_string_equal(p->exec_deny[1].path, want);
	stat_of(want, &dev, &ino);
	assert_int_equal(p->exec_deny[1].ino, ino);
	assert_int_equal(p->exec_deny[1].line, 16);

	assert_int_equal(p->net_scope, BW_SCOPE_HOST);
	assert_true(p->net_default_deny);
	assert_int_equal(p->n_net_allow, 3);
	assert_int_equal(p->n_net_deny, 0);
	v4(a, "127.0.0.0");
	assert_memory_equal(p->net_allow[0].addr, a, 16);
	assert_int_equal(p->net_allow[0].prefix_len, 104);
	assert_true(p->net_allow[0].is_v4);
	assert_int_equal(p->net_allow[0].port, 0);
	assert_string_equal(p->net_allow[0].text, "127.0.0.0/8");
	assert_int_equal(p->net_allow[0].line, 20);
	assert_int_equal(p->net_allow[0].col, 11);
	v6(a, "::1");
	assert_memory_equal(p->net_allow[1].addr, a, 16);
	assert_int_equal(p->net_allow[1].prefix_len, 128);
	assert_false(p->net_allow[1].is_v4);
	v4(a, "10.1.0.0");
	assert_memory_equal(p->net_allow[2].addr, a, 16);
	assert_int_equal(p->net_allow[2].prefix_len, 112);
	assert_int_equal(p->net_allow[2].port, 443);
	policy__free(p);
}

static void test_policy__defaults(void **state)
{
	struct bw_policy *p = parse_ok("version: 1\n", "/base", BW_POLICY_NO_FS);

	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, BW_MODE_AUDIT);
	assert_int_equal(p->n_protect, 0);
	assert_int_equal(p->n_build_roots, 0);
	assert_int_equal(p->exec_scope, BW_SCOPE_BUILD);
	assert_int_equal(p->n_exec_deny, 0);
	assert_int_equal(p->net_scope, BW_SCOPE_BUILD);
	assert_false(p->net_default_deny);
	assert_int_equal(p->n_net_allow, 0);
	assert_int_equal(p->n_net_deny, 0);
	policy__free(p);

	/* null values are empty, not errors */
	p = parse_ok("version: 1\nprotect:\nexec:\nnetwork:\n  allow: ~\n", "/base",
		     BW_POLICY_NO_FS);
	assert_int_equal(p->n_protect, 0);
	assert_int_equal(p->exec_scope, BW_SCOPE_BUILD);
	policy__free(p);
}

static void test_policy__no_fs_joins_paths(void **state)
{
	struct bw_policy *p = parse_ok("version: 1\n"
				       "protect:\n"
				       "  - path: src/\n"
				       "  - path: ./out//x\n"
				       "  - path: /abs\n"
				       "    writers: [{exe: /no/such/exe, descendants: true}]\n"
				       "exec: {deny: [tmp]}\n",
				       "/base", BW_POLICY_NO_FS);

	assert_int_equal(p->n_protect, 3);
	assert_string_equal(p->protect[0].path, "/base/src");
	assert_string_equal(p->protect[1].path, "/base/out/x");
	assert_string_equal(p->protect[2].path, "/abs");
	assert_int_equal(p->protect[0].dev, 0);
	assert_int_equal(p->protect[0].ino, 0);
	assert_string_equal(p->protect[2].writers[0].exe, "/no/such/exe");
	assert_true(p->protect[2].writers[0].descendants);
	assert_int_equal(p->protect[2].writers[0].ino, 0);
	assert_string_equal(p->exec_deny[0].path, "/base/tmp");
	policy__free(p);
}

/* ---- one diagnostic per error class ------------------------------------------ */

static void test_policy__err_structure(void **state)
{
	expect_nofs("version: 1\nprotect:\n  - path: src\n    writer: x\n", 4, 5,
		    "unknown key 'writer'");
	expect_nofs("version: 1\nverison: 1\n", 2, 1, "unknown key 'verison'");
	expect_nofs("version: 1\nexec: [a]\n", 2, 7, "expected a mapping");
	expect_nofs("- version\n", 1, 1, "expected a mapping");
	expect_nofs("version: 1\nprotect: src\n", 2, 10, "expected a sequence");
	expect_nofs("version: 1\nnetwork:\n  allow: 10.0.0.0/8\n", 3, 10, "expected a sequence");
	expect_nofs("version: 1\nmode: [a]\n", 2, 7, "expected a scalar");
	expect_nofs("version: 1\nprotect: [src]\n", 2, 11, "expected a mapping");
	expect_nofs("version: 1\n? [a]\n: b\n", 2, 3, "expected a scalar key");
	expect_nofs("version: 1\nmode: audit\nmode: enforce\n", 3, 1, "duplicate key 'mode'");
	expect_nofs("version: 1\nprotect:\n  - writers: []\n", 3, 5, "missing required key 'path'");
	expect_nofs("version: 1\nbuild_roots:\n  - descendants: true\n    cgroup: /a\n", 3, 5,
		    "missing required key 'exe'");
	expect_nofs("version: 1\n---\nversion: 1\n", 2, 1,
		    "a policy file holds one YAML document, found a second");
}

/* Issue 8: an executable alone does not say who the build is (any local process can
 * exec it), so an entry without its cgroup is refused, where it is written. */
static void test_policy__err_build_root_cgroup(void **state)
{
	expect_nofs("version: 1\nbuild_roots:\n  - exe: /usr/bin/make\n", 3, 5,
		    "build root '/usr/bin/make' needs a 'cgroup': any local process can exec it and "
		    "would become the build (docs/runners.md)");
	expect_nofs("version: 1\nbuild_roots: [{exe: /usr/bin/make, cgroup: system.slice}]\n", 2, 44,
		    "build root cgroup 'system.slice' must be a path under the cgroup v2 root, "
		    "starting with '/'");
	expect_nofs("version: 1\nbuild_roots: [{exe: /usr/bin/make, cgroup: //}]\n", 2, 44,
		    "build root cgroup '/' is every process of the host: name the runner's own cgroup");
	expect_nofs("version: 1\nbuild_roots: [{exe: /usr/bin/make, cgroup: /a/../b}]\n", 2, 44,
		    "build root cgroup '/a/../b' must not hold empty, '.' or '..' components");
	expect_nofs("version: 1\nbuild_roots: [{exe: /usr/bin/make, cgroup: /a//b}]\n", 2, 44,
		    "build root cgroup '/a//b' must not hold empty, '.' or '..' components");
}

static void test_policy__err_version(void **state)
{
	expect_nofs("mode: audit\n", 1, 1, "missing required key 'version'");
	expect_nofs("", 1, 1, "missing required key 'version'");
	expect_nofs("# nothing but a comment\n", 1, 1, "missing required key 'version'");
	expect_nofs("---\n", 1, 1, "missing required key 'version'");
	expect_nofs("\nversion: 2\n", 2, 10, "unsupported version 2");
	expect_nofs("version: one\n", 1, 10, "'version' must be an integer, not 'one'");
	expect_nofs("version: -1\n", 1, 10, "'version' must be an integer, not '-1'");
	expect_nofs("version:\n", 1, 9, "'version' must be an integer, not ''");
}

static void test_policy__err_values(void **state)
{
	expect_nofs("version: 1\nmode: audti\n", 2, 7,
		    "'mode' must be audit or enforce, not 'audti'");
	expect_nofs("version: 1\nexec:\n  scope: hots\n", 3, 10,
		    "'scope' must be build or host, not 'hots'");
	expect_nofs("version: 1\nnetwork: {scope: all}\n", 2, 18,
		    "'scope' must be build or host, not 'all'");
	expect_nofs("version: 1\nnetwork: {default: maybe}\n", 2, 20,
		    "'default' must be allow or deny, not 'maybe'");
	expect_nofs("version: 1\nprotect:\n  - path: a\n    writers:\n      - exe: /x\n"
		    "        descendants: yes\n",
		    6, 22, "'descendants' must be true or false, not 'yes'");
	expect_nofs("version: 1\nbuild_roots: [{exe: /usr/bin/make, cgroup: /a, descendants: false}]\n",
		    2, 61, "'descendants' must be true for a build root: its descendants are the build");
	expect_nofs("version: 1\nprotect:\n  - path: a\n    writers: [{exe: rsync}]\n", 4, 21,
		    "writer exe 'rsync' must be an absolute path");
	expect_nofs("version: 1\nbuild_roots: [{exe: bin/make, cgroup: /a}]\n", 2, 21,
		    "build root exe 'bin/make' must be an absolute path");
	expect_nofs("version: 1\nprotect: [{path: ''}]\n", 2, 18,
		    "protected path must not be empty");
	expect_nofs("version: 1\nmode: \"a\\0b\"\n", 2, 7, "value contains a NUL byte");
}

static void test_policy__err_net(void **state)
{
	expect_nofs("version: 1\nnetwork:\n  allow: [\"10.0.0.0/33\"]\n", 3, 11,
		    "bad CIDR '10.0.0.0/33': prefix length must be 0..32");
	expect_nofs("version: 1\nnetwork:\n  deny:\n    - 10.1.2.3/16\n", 4, 7,
		    "'10.1.2.3/16' has host bits set; did you mean '10.1.0.0/16'");
	expect_nofs("version: 1\nnetwork:\n  allow: [\"10.1.0.0/16:0\"]\n", 3, 11,
		    "bad port in '10.1.0.0/16:0': port 0 is not allowed; omit the port to match any port");
	expect_nofs("version: 1\nnetwork:\n  allow: [[a]]\n", 3, 11, "expected a scalar");
}

static void test_policy__err_syntax(void **state)
{
	expect_nofs("version: 1\nmode: [audit\n", 3, 1,
		    "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 2:7)");
	expect_nofs("version: 1\nmode: audit\n  bad: x\n", 3, 6,
		    "invalid YAML: mapping values are not allowed in this context");
	/* reader errors carry a byte offset, turned into a position */
	expect_nofs("version: 1\nmode: \"a\x01\"\n", 2, 9,
		    "invalid YAML: control characters are not allowed");
	expect_nofs("version: 1\nmode: \xff\n", 2, 7, "invalid YAML: invalid leading UTF-8 octet");
}

static void test_policy__aliases_rejected(void **state)
{
	expect_nofs("version: 1\nmode: &m audit\nexec:\n  scope: *m\n", 4, 10,
		    "aliases are not supported: write '*m' out in full");

	/* billion laughs: refused at the first alias, nothing is expanded */
	const char *lol = "version: 1\n"
			  "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
	struct bw_policy *p;
	struct bw_diags d;

	assert_int_equal(parse(lol, "/", BW_POLICY_NO_FS, &p, &d), -EINVAL);
	assert_null(p);
	/* unknown a, b, c plus one diagnostic per alias */
	assert_int_equal(d.n, 3 + 20);
	assert_int_equal(d.dropped, 0);
	assert_string_equal(d.items[0].msg, "unknown key 'a'");
	assert_string_equal(d.items[2].msg, "aliases are not supported: write '*a' out in full");
}

static void test_policy__limits(void **state)
{
	size_t cap = 2 * 1024 * 1024;
	char *y = malloc(cap);
	struct bw_policy *p;
	struct bw_diags d;
	size_t n;

	assert_non_null(y);

	/* oversized input: refused before parsing, with no position */
	memset(y, '#', (1u << 20) + 1);
	assert_int_equal(policy__parse(y, (1u << 20) + 1, "t.yaml", "/", BW_POLICY_NO_FS, &p, &d),
			 -EINVAL);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.items[0].line, 0);
	assert_string_equal(d.items[0].msg, "policy too large (1048577 bytes, max 1048576)");

	/* exactly 1 MiB is fine */
	n = (size_t)snprintf(y, cap, "version: 1\n");
	memset(y + n, '\n', (1u << 20) - n);
	assert_int_equal(policy__parse(y, 1u << 20, "t.yaml", "/", BW_POLICY_NO_FS, &p, &d), 0);
	policy__free(p);

	/* 65 protected trees */
	n = (size_t)snprintf(y, cap, "version: 1\nprotect:\n");
	for (int i = 0; i < BW_POLICY_MAX_TREES + 1; i++)
		n += (size_t)snprintf(y + n, cap - n, "  - path: /t%d\n", i);
	expect_nofs(y, 3, 3, "too many protected trees (65, max 64)");

	/* 1025 network rules */
	n = (size_t)snprintf(y, cap, "version: 1\nnetwork:\n  allow: [");
	for (int i = 0; i < 1025; i++)
		n += (size_t)snprintf(y + n, cap - n, "%s\"10.%d.%d.0/24\"", i ? "," : "",
				      i / 256, i % 256);
	snprintf(y + n, cap - n, "]\n");
	expect_nofs(y, 3, 10, "too many allow rules (1025, max 1024)");

	/* 65 writers */
	n = (size_t)snprintf(y, cap, "version: 1\nprotect:\n  - path: /a\n    writers:\n");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(y + n, cap - n, "      - exe: /bin/w%d\n", i);
	expect_nofs(y, 5, 7, "too many writers (65, max 64)");

	/* a scalar over 4096 bytes */
	n = (size_t)snprintf(y, cap, "version: 1\nmode: ");
	memset(y + n, 'a', 4097);
	snprintf(y + n + 4097, cap - n - 4097, "\n");
	expect_nofs(y, 2, 7, "value too long (4097 bytes, max 4096)");

	/* too many values in total, though no list is too long */
	n = (size_t)snprintf(y, cap, "version: 1\nx:\n");
	for (int i = 0; i < 200; i++) {
		n += (size_t)snprintf(y + n, cap - n, "  - [");
		for (int j = 0; j < 600; j++)
			n += (size_t)snprintf(y + n, cap - n, "%sa", j ? "," : "");
		n += (size_t)snprintf(y + n, cap - n, "]\n");
	}
	assert_int_equal(policy__parse(y, n, "t.yaml", "/", BW_POLICY_NO_FS, &p, &d), -EINVAL);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].msg, "too many values in one policy (max 100000)");

	/* nesting */
	n = (size_t)snprintf(y, cap, "version: 1\nx: ");
	for (int i = 0; i < 40; i++)
		y[n++] = '[';
	for (int i = 0; i < 40; i++)
		y[n++] = ']';
	snprintf(y + n, cap - n, "\n");
	expect_nofs(y, 2, 19, "nesting too deep (max 16 levels)");
	free(y);
}

static void test_policy__collects_all_errors(void **state)
{
	const char *y = "version: 2\n"
			"mode: audti\n"
			"protect:\n"
			"  - path: a\n"
			"    writer: x\n"
			"network:\n"
			"  allow: [\"10.0.0.0/33\", \"1.2.3.4:0\"]\n"
			"  bogus: 1\n";
	struct bw_policy *p;
	struct bw_diags d;

	assert_int_equal(parse(y, "/b", BW_POLICY_NO_FS, &p, &d), -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 6);
	/* in file order, whatever order the checks ran in */
	assert_string_equal(d.items[0].msg, "unsupported version 2");
	assert_string_equal(d.items[1].msg, "'mode' must be audit or enforce, not 'audti'");
	assert_string_equal(d.items[2].msg, "unknown key 'writer'");
	assert_string_equal(d.items[3].msg, "bad CIDR '10.0.0.0/33': prefix length must be 0..32");
	assert_int_equal(d.items[4].line, 7);
	assert_int_equal(d.items[4].col, 26);
	assert_string_equal(d.items[5].msg, "unknown key 'bogus'");
	assert_int_equal(d.items[5].line, 8);
}

static void test_policy__diag_overflow(void **state)
{
	char y[4096];
	size_t n = (size_t)snprintf(y, sizeof(y), "version: 1\n");
	struct bw_policy *p;
	struct bw_diags d;

	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(y + n, sizeof(y) - n, "k%d: 1\n", i);
	assert_int_equal(parse(y, "/", BW_POLICY_NO_FS, &p, &d), -EINVAL);
	assert_int_equal(d.n, BW_POLICY_MAX_DIAGS);
	assert_int_equal(d.dropped, 6);
	assert_string_equal(d.items[63].msg, "unknown key 'k63'");
}

/* ---- file system ------------------------------------------------------------- */

static void test_policy__fs_errors(void **state)
{
	struct tmp *t = *state;
	char y[1024];

	expect_one("version: 1\nprotect:\n  - path: srcx\n", t->dir, 0, 3, 11,
		   "protected path 'srcx' does not exist: No such file or directory");
	expect_one("version: 1\nprotect:\n  - path: notdir\n", t->dir, 0, 3, 11,
		   "protected path 'notdir' is not a directory");
	expect_one("version: 1\nexec:\n  deny: [nope]\n", t->dir, 0, 3, 10,
		   "exec deny path 'nope' does not exist: No such file or directory");
	expect_one("version: 1\nexec:\n  deny: [notdir/x]\n", t->dir, 0, 3, 10,
		   "exec deny path 'notdir/x' does not exist: Not a directory");
	snprintf(y, sizeof(y), "version: 1\nbuild_roots:\n  - exe: %s/bin\n    cgroup: /r\n", t->dir);
	char msg[512];
	snprintf(msg, sizeof(msg), "build root exe '%s/bin' is not a regular file", t->dir);
	expect_one(y, t->dir, 0, 3, 10, msg);
	snprintf(y, sizeof(y), "version: 1\nprotect:\n  - path: out\n    writers:\n"
		 "      - exe: %s/bin/rsynx\n", t->dir);
	snprintf(msg, sizeof(msg),
		 "writer exe '%s/bin/rsynx' does not exist: No such file or directory", t->dir);
	expect_one(y, t->dir, 0, 5, 14, msg);
}

static void test_policy__relative_paths(void **state)
{
	struct tmp *t = *state;
	char want[2 * PATH_MAX];
	struct bw_policy *p;

	/* relative to base_dir, not to the current directory */
	assert_int_equal(chdir("/"), 0);
	p = parse_ok("version: 1\nprotect:\n  - path: link/sub\n  - path: ./out/\n", t->dir, 0);
	snprintf(want, sizeof(want), "%s/src/sub", t->real);
	assert_string_equal(p->protect[0].path, want);
	snprintf(want, sizeof(want), "%s/out", t->real);
	assert_string_equal(p->protect[1].path, want);
	policy__free(p);
}

static void test_policy__nested_trees(void **state)
{
	struct tmp *t = *state;

	expect_one("version: 1\nprotect:\n  - path: src\n  - path: src/sub\n", t->dir, 0, 4, 11,
		   "protected path 'src/sub' is inside protected path 'src' (line 3)");
	expect_one("version: 1\nprotect:\n  - path: src/sub\n  - path: .\n", t->dir, 0, 4, 11,
		   "protected path '.' contains protected path 'src/sub' (line 3)");
	/* a symlink is the same tree, which only resolution can tell */
	expect_one("version: 1\nprotect:\n  - path: src\n  - path: out\n  - path: link\n", t->dir,
		   0, 5, 11, "protected path 'link' is the same tree as 'src' (line 3)");
	/* siblings whose names share a prefix are not nested */
	struct bw_policy *p = parse_ok("version: 1\nprotect: [{path: /a/src}, {path: /a/srcx}]\n",
				       "/", BW_POLICY_NO_FS);
	policy__free(p);
}

/* The kernel's pseudo file systems are not build trees: protecting / (which holds them),
 * /proc, a tree inside /sys or /dev, or a bind mount of proc elsewhere is refused at
 * the path's FILE:LINE:COL, with and without the file system. */
static void test_policy__pseudo_fs_refused(void **state)
{
	struct tmp *t = *state;
	char y[1024], msg[512];

	(void)t;
	expect_one("version: 1\nprotect:\n  - path: /\n", "/", 0, 3, 11,
		   "protected path '/' contains /proc: the kernel's pseudo file systems cannot be protected");
	expect_nofs("version: 1\nprotect:\n  - path: /\n", 3, 11,
		    "protected path '/' contains /proc: the kernel's pseudo file systems cannot be protected");
	expect_one("version: 1\nprotect:\n  - path: /proc\n", "/", 0, 3, 11,
		   "protected path '/proc' is /proc: the kernel's pseudo file systems cannot be protected");
	expect_one("version: 1\nprotect:\n  - path: /sys/kernel\n", "/", 0, 3, 11,
		   "protected path '/sys/kernel' is inside /sys: the kernel's pseudo file systems cannot be protected");
	expect_nofs("version: 1\nprotect:\n  - path: /dev//shm/\n", 3, 11,
		    "protected path '/dev//shm/' is inside /dev: the kernel's pseudo file systems cannot be protected");
	/* resolved first: a symlink to /dev is /dev */
	snprintf(y, sizeof(y), "%s/devlink", t->dir);
	assert_int_equal(symlink("/dev", y), 0);
	expect_one("version: 1\nprotect:\n  - path: devlink\n", t->dir, 0, 3, 11,
		   "protected path 'devlink' is /dev: the kernel's pseudo file systems cannot be protected");
	/* the file system's type: /proc's own mount seen through another path */
	snprintf(y, sizeof(y), "version: 1\nprotect:\n  - path: /proc/../proc/self/root/proc/1\n");
	snprintf(msg, sizeof(msg), "protected path '/proc/../proc/self/root/proc/1' is inside /proc: the kernel's pseudo file systems cannot be protected");
	expect_one(y, "/", 0, 3, 11, msg);
	/* a name that merely starts like one is fine */
	policy__free(parse_ok("version: 1\nprotect: [{path: /procedures}, {path: /device}]\n", "/",
			      BW_POLICY_NO_FS));
}

/* Writers may add conditions to their executable: the real uid (uid: N or user: NAME)
 * and the parent's executable (parent: /abs). One executable has one set of conditions
 * (the kernel keeps one entry per executable); build roots take none. */
static void test_policy__writer_conditions(void **state)
{
	struct tmp *t = *state;
	char y[2048], msg[2 * PATH_MAX], want[PATH_MAX + 16];
	struct bw_policy *p;

	snprintf(y, sizeof(y),
		 "version: 1\nprotect:\n  - path: out\n    writers:\n"
		 "      - {exe: %s/bin/rsync, uid: 1000, parent: %s/bin/make}\n"
		 "      - {exe: %s/bin/make, user: root}\n"
		 "  - path: src\n    writers:\n      - {exe: %s/bin/rsync-link, uid: 1000, parent: %s/bin/make}\n",
		 t->dir, t->dir, t->dir, t->dir, t->dir);
	p = parse_ok(y, t->dir, 0);
	assert_true(p->protect[0].writers[0].has_uid);
	assert_int_equal(p->protect[0].writers[0].uid, 1000);
	snprintf(want, sizeof(want), "%s/bin/make", t->real);
	assert_string_equal(p->protect[0].writers[0].parent, want);
	assert_true(p->protect[0].writers[0].parent_ino != 0);
	assert_true(p->protect[0].writers[1].has_uid);
	assert_int_equal(p->protect[0].writers[1].uid, 0);
	assert_null(p->protect[0].writers[1].parent);
	policy__free(p);

	expect_nofs("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /x, uid: me}\n", 5, 24,
		    "'uid' must be a number (a name goes in 'user'), not 'me'");
	expect_nofs("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /x, uid: -1}\n", 5, 24,
		    "'uid' must be a number (a name goes in 'user'), not '-1'");
	expect_nofs("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /x, uid: 1, user: root}\n", 5, 33,
		    "give 'uid' or 'user', not both");
	expect_nofs("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /x, parent: make}\n", 5, 27,
		    "writer parent 'make' must be an absolute path");
	expect_one("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /bin/sh, user: no-such-user-bw}\n",
		   t->dir, 0, 5, 30, "no such user 'no-such-user-bw'");
	/* build roots take no writer conditions (a cgroup, so the only diagnostic is the key) */
	expect_nofs("version: 1\nbuild_roots:\n  - {exe: /x, cgroup: /a, uid: 0}\n", 3, 27, "unknown key 'uid'");
	/* the same file with other conditions, in the same tree or another */
	expect_nofs("version: 1\nprotect:\n  - path: out\n    writers:\n      - {exe: /x, uid: 1}\n"
		    "  - path: src\n    writers:\n      - {exe: /x, uid: 2}\n", 8, 15,
		    "writer exe '/x' is listed with other conditions (uid, user, parent) at line 5: one executable has one set of conditions");
	snprintf(y, sizeof(y), "version: 1\nprotect:\n  - path: out\n    writers:\n"
		 "      - {exe: %s/bin/rsync}\n      - {exe: %s/bin/rsync-link, parent: %s/bin/make}\n",
		 t->dir, t->dir, t->dir);
	snprintf(msg, sizeof(msg), "writer exe '%s/bin/rsync' is listed with other conditions (uid, user, parent) at line 5: one executable has one set of conditions",
		 t->real);
	expect_one(y, t->dir, 0, 6, 15, msg); /* a symlink to the same file is the same file */
}

static void test_policy__load_file(void **state)
{
	struct tmp *t = *state;
	char path[PATH_MAX], want[2 * PATH_MAX], out[1024] = "";
	struct bw_policy *p;
	struct bw_diags d;
	FILE *f;

	snprintf(path, sizeof(path), "%s/policy.yaml", t->dir);
	write_file(path, "version: 1\nprotect:\n  - path: src\n");
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(policy__load_file(path, 0, &p, &d), 0);
	snprintf(want, sizeof(want), "%s/src", t->real);
	assert_string_equal(p->protect[0].path, want);
	assert_string_equal(p->source, path);
	policy__free(p);

	/* diagnostics name the file as given */
	write_file(path, "version: 3\nmode: x\n");
	assert_int_equal(chdir(t->dir), 0);
	assert_int_equal(policy__load_file("policy.yaml", 0, &p, &d), -EINVAL);
	assert_null(p);
	f = fmemopen(out, sizeof(out), "w");
	assert_non_null(f);
	policy__print_diags(&d, "policy.yaml", f);
	fclose(f);
	assert_string_equal(out, "policy.yaml:1:10: error: unsupported version 3\n"
				 "policy.yaml:2:7: error: 'mode' must be audit or enforce, not 'x'\n");
	assert_int_equal(chdir("/"), 0);

	/* open failure: -errno and a diagnostic without position */
	snprintf(path, sizeof(path), "%s/missing.yaml", t->dir);
	assert_int_equal(policy__load_file(path, 0, &p, &d), -ENOENT);
	assert_null(p);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.items[0].line, 0);
	snprintf(want, sizeof(want), "cannot open '%s': No such file or directory", path);
	assert_string_equal(d.items[0].msg, want);
	f = fmemopen(out, sizeof(out), "w");
	policy__print_diags(&d, "m.yaml", f);
	fclose(f);
	snprintf(want, sizeof(want), "m.yaml: error: cannot open '%s': No such file or directory\n", path);
	assert_string_equal(out, want);

	/* a directory is not a policy */
	assert_int_equal(policy__load_file(t->dir, 0, &p, &d), -EINVAL);
	assert_int_equal(d.n, 1);
}

/* ---- network rules ----------------------------------------------------------- */

static void test_policy__net_rule_forms(void **state)
{
	static const struct {
		const char *text, *addr;
		bool is_v4;
		unsigned prefix;
		uint16_t port;
	} ok[] = {
		{ "1.2.3.4", "1.2.3.4", true, 128, 0 },
		{ "0.0.0.0/0", "0.0.0.0", true, 96, 0 },
		{ "10.0.0.0/8:22", "10.0.0.0", true, 104, 22 },
		{ "1.2.3.4:65535", "1.2.3.4", true, 128, 65535 },
		{ "::/0", "::", false, 0, 0 },
		{ "::1", "::1", false, 128, 0 },
		{ "fe80::/10", "fe80::", false, 10, 0 },
		{ "[::1]:53", "::1", false, 128, 53 },
		{ "[2001:db8::/32]:443", "2001:db8::", false, 32, 443 },
		{ "[2001:db8::]/32:443", "2001:db8::", false, 32, 443 },
		{ "[2001:db8::]/32", "2001:db8::", false, 32, 0 },
		{ "[::1]", "::1", false, 128, 0 },
	};
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "", "empty network rule" },
		{ "10.0.0.0/8:0",
		  "bad port in '10.0.0.0/8:0': port 0 is not allowed; omit the port to match any port" },
		{ "10.0.0.0/8:65536", "bad port in '10.0.0.0/8:65536': must be 1..65535, a range 1000-2000 or a list 80,443" },
		{ "1.2.3.4:", "bad port in '1.2.3.4:': must be 1..65535, a range 1000-2000 or a list 80,443" },
		{ "1.2.3.4:+80", "bad port in '1.2.3.4:+80': must be 1..65535, a range 1000-2000 or a list 80,443" },
		{ "10.0.0.0/", "bad CIDR '10.0.0.0/': prefix length must be 0..32" },
		{ "10.0.0.0/+8", "bad CIDR '10.0.0.0/+8': prefix length must be 0..32" },
		{ "10.0.0.0/0008", "bad CIDR '10.0.0.0/0008': prefix length must be 0..32" },
		{ "::/129", "bad CIDR '::/129': prefix length must be 0..128" },
		{ "1.2.3", "bad network rule '1.2.3': '1.2.3' is not an IPv4 address" },
		{ "localhost:80", "bad network rule 'localhost:80': 'localhost' is not an IPv4 address" },
		{ "[::1", "bad network rule '[::1': missing ']'" },
		{ "[::1]x", "bad network rule '[::1]x': unexpected text after ']'" },
		{ "[1.2.3.4]:80", "bad network rule '[1.2.3.4]:80': '1.2.3.4' is not an IPv6 address" },
		{ "[::/64]/64", "bad network rule '[::/64]/64': two prefix lengths" },
		{ "10.1.2.3/16", "'10.1.2.3/16' has host bits set; did you mean '10.1.0.0/16'" },
		{ "10.1.2.3/16:443", "'10.1.2.3/16:443' has host bits set; did you mean '10.1.0.0/16:443'" },
		{ "2001:db8::1/32", "'2001:db8::1/32' has host bits set; did you mean '2001:db8::/32'" },
		{ "[2001:db8::1]/32:80",
		  "'[2001:db8::1]/32:80' has host bits set; did you mean '[2001:db8::/32]:80'" },
	};
	struct bw_net_rule r;
	char err[240];
	uint8_t a[16];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		print_message("ok: %s\n", ok[i].text);
		assert_int_equal(policy__parse_net_rule(ok[i].text, &r, err, sizeof(err)), 0);
		if (ok[i].is_v4)
			v4(a, ok[i].addr);
		else
			v6(a, ok[i].addr);
		assert_memory_equal(r.addr, a, 16);
		assert_int_equal(r.is_v4, ok[i].is_v4);
		assert_int_equal(r.prefix_len, ok[i].prefix);
		assert_int_equal(r.port, ok[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(policy__parse_net_rule(bad[i].text, &r, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].msg);
	}
}

static void expect_verdict(const struct bw_policy *p, const char *addr, uint16_t port, int want,
			   const char *want_rule)
{
	uint8_t a[16];
	const char *rule = "unset";

	if (strchr(addr, ':'))
		v6(a, addr);
	else
		v4(a, addr);
	print_message("verdict %s:%u\n", addr, port);
	assert_int_equal(policy__net_verdict(p, a, port, &rule), want);
	if (want_rule)
		assert_string_equal(rule, want_rule);
	else
		assert_null(rule);
}

static void test_policy__net_verdict(void **state)
{
	struct bw_policy *p = parse_ok("version: 1\n"
				       "network:\n"
				       "  default: deny\n"
				       "  allow: [10.0.0.0/8, 10.1.0.0/16:443, 192.168.0.0/16,\n"
				       "          \"[2001:db8::/32]:443\", 172.16.0.0/12]\n"
				       "  deny: [10.1.0.0/16, 10.1.2.0/24:443, 192.168.0.0/16,\n"
				       "         172.16.0.0/12:22, 2001:db8::/32]\n",
				       "/", BW_POLICY_NO_FS);

	expect_verdict(p, "10.2.0.1", 80, 1, "10.0.0.0/8");
	/* longer prefix wins, whatever the list */
	expect_verdict(p, "10.1.0.1", 80, 0, "10.1.0.0/16");
	/* same prefix: the port-specific rule beats the any-port one */
	expect_verdict(p, "10.1.0.1", 443, 1, "10.1.0.0/16:443");
	expect_verdict(p, "10.1.2.1", 443, 0, "10.1.2.0/24:443");
	expect_verdict(p, "10.1.2.1", 80, 0, "10.1.0.0/16");
	/* same prefix, same port-ness: deny beats allow */
	expect_verdict(p, "192.168.1.1", 80, 0, "192.168.0.0/16");
	expect_verdict(p, "172.16.0.1", 22, 0, "172.16.0.0/12:22");
	expect_verdict(p, "172.16.0.1", 23, 1, "172.16.0.0/12");
	expect_verdict(p, "2001:db8::5", 443, 1, "[2001:db8::/32]:443");
	expect_verdict(p, "2001:db8::5", 80, 0, "2001:db8::/32");
	/* no match: the default */
	expect_verdict(p, "8.8.8.8", 53, 0, NULL);
	expect_verdict(p, "2001:db9::1", 443, 0, NULL);
	/* an IPv4 rule does not match a v6 address with the same low bits */
	expect_verdict(p, "::10.2.0.1", 80, 0, NULL);
	p->net_default_deny = false;
	expect_verdict(p, "8.8.8.8", 53, 1, NULL);
	policy__free(p);

	/* "::/0" covers everything, IPv4 included, as IPv4 is v4-mapped */
	p = parse_ok("version: 1\nnetwork:\n  default: deny\n  allow: [\"::/0\"]\n"
		     "  deny: [\"0.0.0.0/0:25\"]\n",
		     "/", BW_POLICY_NO_FS);
	expect_verdict(p, "1.2.3.4", 80, 1, "::/0");
	expect_verdict(p, "1.2.3.4", 25, 0, "0.0.0.0/0:25");
	expect_verdict(p, "::1", 25, 1, "::/0");
	policy__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_policy__full_example, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_policy__defaults),
		cmocka_unit_test(test_policy__no_fs_joins_paths),
		cmocka_unit_test(test_policy__err_structure),
		cmocka_unit_test(test_policy__err_version),
		cmocka_unit_test(test_policy__err_build_root_cgroup),
		cmocka_unit_test(test_policy__err_values),
		cmocka_unit_test(test_policy__err_net),
		cmocka_unit_test(test_policy__err_syntax),
		cmocka_unit_test(test_policy__aliases_rejected),
		cmocka_unit_test(test_policy__limits),
		cmocka_unit_test(test_policy__collects_all_errors),
		cmocka_unit_test(test_policy__diag_overflow),
		cmocka_unit_test_setup_teardown(test_policy__fs_errors, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_policy__relative_paths, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_policy__nested_trees, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_policy__load_file, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_policy__pseudo_fs_refused, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_policy__writer_conditions, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_policy__net_rule_forms),
		cmocka_unit_test(test_policy__net_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
