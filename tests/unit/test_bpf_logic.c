/* The kernel's decisions, run in the kernel: bpf/tests/logic.bpf.c wraps the sensor's own
 * network match (bpf/lib/netmatch.bpf.h) and tree walk (bpf/lib/treewalk.bpf.h) in raw_tp
 * programs, and BPF_PROG_TEST_RUN runs them on the cases below. The rules reach the trie
 * through the loader's own code (sensor/netrules.c), and every network answer is checked
 * against policy__net_verdict and against draft_net__decide (the same include/netmatch.h
 * on the agent's tables, what `policy test` uses) as well: kernel and userspace must
 * never disagree.
 * Needs root (it loads BPF programs): skipped, saying why, without it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>

#include "sensor_abi.h"
#include "tests/logic_test.h"
#include "logic_test.skel.h"
#include "draft/netdraft.h"
#include "policy/policy.h"
#include "sensor/netrules.h"

#define ENOTSUPP 524 /* the kernel's own, which BPF_PROG_TEST_RUN may return */

static struct {
	struct logic_test_bpf *skel;
	char skip_why[160];
	struct bw_policy *policies[5]; /* freed at teardown, also after a failed case */
} env;

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN && getenv("BUILDWARDEN_DEBUG") ? vfprintf(stderr, fmt, ap) : 0;
}

static int run_prog(struct bpf_program *prog)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	if (err)
		return err;
	return opts.retval == 0 ? 0 : -EPROTO;
}

static int group_setup(void **state)
{
	int err;

	if (geteuid() != 0) {
		snprintf(env.skip_why, sizeof(env.skip_why),
			 "needs root: it loads BPF programs to run them with BPF_PROG_TEST_RUN");
		return 0;
	}
	libbpf_set_print(silent);
	env.skel = logic_test_bpf__open_and_load();
	if (!env.skel) {
		err = -errno;
		if (err == -EPERM) {
			snprintf(env.skip_why, sizeof(env.skip_why),
				 "this process may not load BPF programs: %s", strerror(-err));
			return 0;
		}
		/* a verifier rejection of the test object is a failure, not a skip */
		fprintf(stderr, "cannot load bpf/tests/logic.bpf.c: %s (BUILDWARDEN_DEBUG=1 "
				"shows the verifier log)\n", strerror(-err));
		return -1;
	}
	err = run_prog(env.skel->progs.bw_test_net);
	if (err == -EOPNOTSUPP || err == -ENOTSUPP) {
		snprintf(env.skip_why, sizeof(env.skip_why),
			 "this kernel cannot BPF_PROG_TEST_RUN raw_tp programs: %s", strerror(-err));
		logic_test_bpf__destroy(env.skel);
		env.skel = NULL;
	}
	return 0;
}

static int group_teardown(void **state)
{
	for (size_t i = 0; i < sizeof(env.policies) / sizeof(env.policies[0]); i++)
		policy__free(env.policies[i]);
	logic_test_bpf__destroy(env.skel);
	return 0;
}

#define SKIP_UNLESS_READY()                                                 \
	do {                                                                \
		if (env.skip_why[0]) {                                      \
			print_message("[   SKIP   ] %s\n", env.skip_why); \
			skip();                                             \
		}                                                           \
	} while (0)

/* ---- network rules ------------------------------------------------------- */

static const char net_policy_a[] =
	"version: 1\n"
	"network:\n"
	"  default: deny\n"
	"  allow: [\"10.0.0.0/8\", \"10.1.0.0/16:443\", \"192.168.1.0/24:53\",\n"
	"          \"[2001:db8::/32]:443\"]\n"
	"  deny: [\"10.1.2.0/24\", \"10.1.0.0/16:22\", \"10.0.0.0/8:25\", \"0.0.0.0/0:6667\"]\n";

static const char net_policy_b[] =
	"version: 1\n"
	"network:\n"
	"  default: allow\n"
	"  allow: [\"203.0.113.0/24\", \"[::/0]:853\"]\n"
	"  deny: [\"203.0.113.0/24\", \"198.51.100.7\"]\n";

/* One prefix written twice, in two spellings */
static const char net_policy_c[] =
	"version: 1\n"
	"network:\n"
	"  default: deny\n"
	"  allow: [\"10.0.0.0/8\", \"::ffff:10.0.0.0/104\"]\n"
	"  deny: [\"[::ffff:192.0.2.0/120]:22\", \"192.0.2.0/24:22\"]\n";

/* Port ranges and lists (issue 10): one trie entry per port in the kernel, a range
 * check in policy__net_verdict; the edges of each range decide alike. */
static const char net_policy_d[] =
	"version: 1\n"
	"network:\n"
	"  default: deny\n"
	"  allow: [\"10.0.0.0/8:1000-2000\", \"10.0.0.0/8:80,443\", \"[2001:db8::/32]:8000-8002\"]\n"
	"  deny: [\"10.1.0.0/16:1500-1600\", \"10.0.0.0/8:1999\"]\n";

struct net_row {
	const char *addr; /* IPv4 or IPv6 text: the family follows */
	uint16_t port;
	uint8_t action; /* enum bw_net_action */
	const char *rule; /* the deciding rule as written, NULL for the default */
};

static const struct net_row rows_a[] = {
	/* any-port rule */
	{ "10.9.9.9", 80, BW_NET_ALLOW, "10.0.0.0/8" },
	/* equal prefixes: the port-specific rule wins over the any-port one */
	{ "10.9.9.9", 25, BW_NET_DENY, "10.0.0.0/8:25" },
	/* a longer prefix wins, whether port-specific ... */
	{ "10.1.5.5", 443, BW_NET_ALLOW, "10.1.0.0/16:443" },
	{ "10.1.5.5", 22, BW_NET_DENY, "10.1.0.0/16:22" },
	/* ... or for any port, over a shorter port-specific one */
	{ "10.1.2.3", 443, BW_NET_DENY, "10.1.2.0/24" },
	/* a port-specific rule for another port does not apply */
	{ "10.1.5.5", 80, BW_NET_ALLOW, "10.0.0.0/8" },
	{ "192.168.1.7", 53, BW_NET_ALLOW, "192.168.1.0/24:53" },
	{ "192.168.1.7", 54, BW_NET_DENY, NULL },
	{ "8.8.8.8", 53, BW_NET_DENY, NULL },
	/* /0 with a port */
	{ "8.8.8.8", 6667, BW_NET_DENY, "0.0.0.0/0:6667" },
	/* an IPv6 socket's v4-mapped destination meets the IPv4 rules */
	{ "::ffff:10.9.9.9", 80, BW_NET_ALLOW, "10.0.0.0/8" },
	{ "::ffff:10.1.2.3", 443, BW_NET_DENY, "10.1.2.0/24" },
	{ "::ffff:8.8.8.8", 6667, BW_NET_DENY, "0.0.0.0/0:6667" },
	/* IPv6 */
	{ "2001:db8::1", 443, BW_NET_ALLOW, "[2001:db8::/32]:443" },
	{ "2001:db8::1", 80, BW_NET_DENY, NULL },
	{ "2001:db9::1", 443, BW_NET_DENY, NULL },
	/* an IPv4 /0 is ::ffff:0:0/96, not all of IPv6 */
	{ "2001:db8::1", 6667, BW_NET_DENY, NULL },
	/* the prefix boundary */
	{ "10.255.255.255", 80, BW_NET_ALLOW, "10.0.0.0/8" },
	{ "11.0.0.0", 80, BW_NET_DENY, NULL },
};

static const struct net_row rows_b[] = {
	/* the same prefix in both lists: deny */
	{ "203.0.113.9", 80, BW_NET_DENY, "203.0.113.0/24" },
	{ "198.51.100.7", 1, BW_NET_DENY, "198.51.100.7" },
	{ "198.51.100.8", 1, BW_NET_ALLOW, NULL },
	/* an IPv6 /0 covers the v4-mapped space too */
	{ "1.1.1.1", 853, BW_NET_ALLOW, "[::/0]:853" },
	{ "::1", 853, BW_NET_ALLOW, "[::/0]:853" },
	{ "9.9.9.9", 80, BW_NET_ALLOW, NULL },
};

/* the first of equal rules names the decision, in userspace and kernel alike */
static const struct net_row rows_c[] = {
	{ "10.1.1.1", 80, BW_NET_ALLOW, "10.0.0.0/8" },
	{ "192.0.2.1", 22, BW_NET_DENY, "[::ffff:192.0.2.0/120]:22" },
};

static const struct net_row rows_d[] = {
	{ "10.9.9.9", 999, BW_NET_DENY, NULL },
	{ "10.9.9.9", 1000, BW_NET_ALLOW, "10.0.0.0/8:1000-2000" },
	{ "10.9.9.9", 2000, BW_NET_ALLOW, "10.0.0.0/8:1000-2000" },
	{ "10.9.9.9", 2001, BW_NET_DENY, NULL },
	/* equal prefix, both port-specific: the deny wins on its port */
	{ "10.9.9.9", 1999, BW_NET_DENY, "10.0.0.0/8:1999" },
	/* a longer prefix's range wins inside it, the shorter one's outside it */
	{ "10.1.2.3", 1550, BW_NET_DENY, "10.1.0.0/16:1500-1600" },
	{ "10.1.2.3", 1601, BW_NET_ALLOW, "10.0.0.0/8:1000-2000" },
	{ "10.9.9.9", 80, BW_NET_ALLOW, "10.0.0.0/8:80,443" },
	{ "10.9.9.9", 443, BW_NET_ALLOW, "10.0.0.0/8:80,443" },
	{ "10.9.9.9", 81, BW_NET_DENY, NULL },
	{ "2001:db8::1", 8002, BW_NET_ALLOW, "[2001:db8::/32]:8000-8002" },
	{ "2001:db8::1", 8003, BW_NET_DENY, NULL },
};

static struct bw_policy *parse(const char *text)
{
	struct bw_policy *p = NULL;
	struct bw_diags d;

	memset(&d, 0, sizeof(d));
	if (policy__parse(text, strlen(text), "t.yaml", "/", BW_POLICY_NO_FS, &p, &d)) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "t.yaml:%u:%u: %s\n", d.items[i].line, d.items[i].col,
				d.items[i].msg);
		fail_msg("test policy does not parse");
	}
	return p;
}

static uint32_t cfg_flags(const struct bw_policy *p)
{
	return p->net_default_deny ? BW_CFG_NET_DEFAULT_DENY : 0;
}

/* Runs one destination through the kernel's decision under generation gen. */
static struct net_answer net_ask(const char *addr, uint16_t port, uint32_t flags, uint32_t gen)
{
	struct net_case *in = &env.skel->bss->net_in;
	uint8_t a6[16];

	memset(in, 0, sizeof(*in));
	if (inet_pton(AF_INET, addr, &in->ip4) == 1) {
		in->family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, a6), 1);
		memcpy(in->ip6, a6, 16);
		in->family = AF_INET6;
	}
	in->port = port;
	in->cfg_flags = flags;
	in->gen = gen;
	memset(&env.skel->bss->net_out, 0xee, sizeof(env.skel->bss->net_out));
	assert_int_equal(run_prog(env.skel->progs.bw_test_net), 0);
	return env.skel->bss->net_out;
}

/* The text of the rule an answer names, as event_build names it; NULL for the default. */
static const char *answer_rule(const struct bw_policy *p, const struct net_answer *a)
{
	if (a->matched == BW_MATCH_DEFAULT)
		return NULL;
	if (a->matched == BW_MATCH_DENY)
		return a->rule_index < p->n_net_deny ? p->net_deny[a->rule_index].text : "?";
	if (a->matched == BW_MATCH_ALLOW)
		return a->rule_index < p->n_net_allow ? p->net_allow[a->rule_index].text : "?";
	return "bad matched value";
}

static void check_rows(const struct bw_policy *p, const struct net_row *rows, size_t n,
		       uint32_t gen)
{
	for (size_t i = 0; i < n; i++) {
		const struct net_row *r = &rows[i];
		struct net_answer a = net_ask(r->addr, r->port, cfg_flags(p), gen);
		const char *got = answer_rule(p, &a), *user_rule;
		uint8_t addr16[16] = { [10] = 0xff, [11] = 0xff };
		int user;

		if (inet_pton(AF_INET, r->addr, addr16 + 12) != 1)
			assert_int_equal(inet_pton(AF_INET6, r->addr, addr16), 1);
		user = policy__net_verdict(p, addr16, r->port, &user_rule);
		{
			/* the agent's copy of the kernel's own code (include/netmatch.h) */
			struct draft_net *dn;
			struct draft_verdict dv;
			const char *drule;

			assert_int_equal(draft_net__new(p, &dn), 0);
			draft_net__decide(dn, addr16, r->port, NULL, true, &dv);
			drule = draft_net__rule(dn, &dv);
			draft_net__free(dn);
			if (dv.action != a.action || dv.matched != a.matched ||
			    (dv.matched != BW_MATCH_DEFAULT && dv.rule_index != a.rule_index) ||
			    (drule == NULL) != (got == NULL) || (drule && strcmp(drule, got)))
				fail_msg("%s port %u: draft_net__decide says %u/%u by %s, the kernel %u/%u",
					 r->addr, r->port, dv.action, dv.matched, drule ? drule : "default",
					 a.action, a.matched);
		}
		if (a.action != r->action || (got == NULL) != (r->rule == NULL) ||
		    (got && strcmp(got, r->rule)))
			fail_msg("%s port %u: the kernel says %s by %s, expected %s by %s", r->addr,
				 r->port, a.action == BW_NET_DENY ? "deny" : "allow",
				 got ? got : "the default", r->action == BW_NET_DENY ? "deny" : "allow",
				 r->rule ? r->rule : "the default");
		if (user != (r->action == BW_NET_ALLOW) || (user_rule == NULL) != (r->rule == NULL) ||
		    (user_rule && strcmp(user_rule, r->rule)))
			fail_msg("%s port %u: policy__net_verdict disagrees with the kernel (%s by %s)",
				 r->addr, r->port, user ? "allow" : "deny",
				 user_rule ? user_rule : "the default");
	}
}

static void test_net_match(void **state)
{
	struct bw_policy *a, *b, *c, *d;
	int fd;

	SKIP_UNLESS_READY();
	fd = bpf_map__fd(env.skel->maps.net_rules);
	a = env.policies[0] = parse(net_policy_a);
	b = env.policies[1] = parse(net_policy_b);
	assert_int_equal(netrules__install(fd, a, 1), 0);
	check_rows(a, rows_a, sizeof(rows_a) / sizeof(rows_a[0]), 1);

	/* a reload: b goes in as generation 2 beside a, which stays in force until the
	 * config flips; then a's entries are purged */
	assert_int_equal(netrules__install(fd, b, 2), 0);
	check_rows(a, rows_a, sizeof(rows_a) / sizeof(rows_a[0]), 1);
	check_rows(b, rows_b, sizeof(rows_b) / sizeof(rows_b[0]), 2);
	netrules__purge(fd, 2);
	{
		struct net_answer ans = net_ask("10.9.9.9", 80, BW_CFG_NET_DEFAULT_DENY, 1);

		assert_int_equal(ans.matched, BW_MATCH_DEFAULT);
		assert_int_equal(ans.action, BW_NET_DENY);
	}
	check_rows(b, rows_b, sizeof(rows_b) / sizeof(rows_b[0]), 2);

	c = env.policies[2] = parse(net_policy_c);
	assert_int_equal(netrules__install(fd, c, 3), 0);
	netrules__purge(fd, 3);
	check_rows(c, rows_c, sizeof(rows_c) / sizeof(rows_c[0]), 3);

	d = env.policies[4] = parse(net_policy_d);
	assert_int_equal(netrules__install(fd, d, 4), 0);
	netrules__purge(fd, 4);
	check_rows(d, rows_d, sizeof(rows_d) / sizeof(rows_d[0]), 4);
	netrules__purge(fd, 5);
}

/* ---- addresses allowed by name (dns_allow) ------------------------------- */

static const char net_policy_names[] =
	"version: 1\n"
	"network:\n"
	"  default: deny\n"
	"  deny: [\"10.9.0.0/16\"]\n"
	"  allow: [\"10.5.0.0/16:22\", \"x.test:443\", \"*.y.test\"]\n";

/* what the agent's resolver puts in for an answer (sensor__dns_allow) */
static void dns_put(const char *v4, uint16_t port, uint32_t rule, int64_t expires_ns)
{
	struct bw_dns_key k;
	struct bw_dns_value v;

	memset(&k, 0, sizeof(k));
	k.addr[10] = k.addr[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, v4, k.addr + 12), 1);
	k.port_be[0] = (uint8_t)(port >> 8);
	k.port_be[1] = (uint8_t)port;
	memset(&v, 0, sizeof(v));
	v.expires_ns = (uint64_t)expires_ns;
	v.rule_index = rule;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(env.skel->maps.dns_allow), &k, &v, BPF_ANY), 0);
}

static void net_expect(const char *addr, uint16_t port, uint8_t action, uint8_t matched,
		       uint32_t rule_index)
{
	struct net_answer a = net_ask(addr, port, BW_CFG_NET_DEFAULT_DENY, 5);

	if (a.action != action || a.matched != matched || (matched != BW_MATCH_DEFAULT &&
							     a.rule_index != rule_index))
		fail_msg("%s port %u: the kernel says action %u matched %u rule %u, expected %u %u %u",
			 addr, port, a.action, a.matched, a.rule_index, action, matched, rule_index);
}

static void test_net_by_name(void **state)
{
	struct bw_policy *p;
	struct timespec ts;
	int64_t now;

	SKIP_UNLESS_READY();
	p = env.policies[3] = parse(net_policy_names);
	assert_int_equal(p->n_net_allow_names, 2);
	assert_int_equal(netrules__install(bpf_map__fd(env.skel->maps.net_rules), p, 5), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	dns_put("10.1.1.1", 443, 0, now + 60000000000LL); /* x.test:443 */
	dns_put("10.2.2.2", 0, 1, now + 60000000000LL);   /* *.y.test, any port */
	dns_put("10.9.1.1", 0, 1, now + 60000000000LL);   /* answered, but denied by address */
	dns_put("10.5.1.1", 0, 1, now + 60000000000LL);   /* an address rule matches first */
	dns_put("10.3.3.3", 0, 1, now - 1);               /* its TTL is over */

	net_expect("10.1.1.1", 443, BW_NET_ALLOW, BW_MATCH_NAME, 0);
	net_expect("10.1.1.1", 80, BW_NET_DENY, BW_MATCH_DEFAULT, 0); /* the rule's port only */
	net_expect("10.2.2.2", 8080, BW_NET_ALLOW, BW_MATCH_NAME, 1);
	net_expect("10.9.1.1", 443, BW_NET_DENY, BW_MATCH_DENY, 0); /* a deny is never undone */
	net_expect("10.5.1.1", 22, BW_NET_ALLOW, BW_MATCH_ALLOW, 0);
	net_expect("10.5.1.1", 23, BW_NET_ALLOW, BW_MATCH_NAME, 1);
	net_expect("10.3.3.3", 443, BW_NET_DENY, BW_MATCH_DEFAULT, 0);
	net_expect("10.4.4.4", 443, BW_NET_DENY, BW_MATCH_DEFAULT, 0); /* never answered */
	netrules__purge(bpf_map__fd(env.skel->maps.net_rules), 6);
}

/* ---- the tree walk ------------------------------------------------------- */

struct tree_row {
	const char *what;
	uint32_t gen;
	int expect; /* an index in dirs, or TREE_OUTSIDE / TREE_TOO_DEEP */
	unsigned len;
	struct { uint32_t dev; uint64_t ino; } chain[8]; /* the file first, the top last */
};

#define TREE_OUTSIDE (-1)
#define TREE_TOO_DEEP (-2)

/* (dev, ino, gen) -> index, as the loader fills exec_deny_dirs */
static const struct { uint32_t dev; uint64_t ino; uint32_t gen, idx; } dirs[] = {
	{ 8, 100, 1, 0 }, /* /tmp */
	{ 8, 200, 1, 1 }, /* /tmp/x, inside /tmp */
	{ 9, 100, 1, 2 }, /* inode 100 of another file system */
	{ 8, 300, 2, 3 }, /* a later generation */
};

static const struct tree_row tree_rows[] = {
	{ "file in a tree", 1, 0, 3, { { 8, 555 }, { 8, 100 }, { 8, 2 } } },
	{ "the nearest of two nested trees", 1, 1, 4,
	  { { 8, 556 }, { 8, 200 }, { 8, 100 }, { 8, 2 } } },
	{ "the object itself is a tree", 1, 0, 2, { { 8, 100 }, { 8, 2 } } },
	{ "the top itself is a tree", 1, 0, 3, { { 8, 1 }, { 8, 5 }, { 8, 100 } } },
	{ "outside every tree", 1, TREE_OUTSIDE, 3, { { 8, 555 }, { 8, 150 }, { 8, 2 } } },
	{ "same inode, other device", 1, TREE_OUTSIDE, 3, { { 7, 555 }, { 7, 100 }, { 7, 2 } } },
	{ "that device's own tree", 1, 2, 3, { { 9, 555 }, { 9, 100 }, { 9, 2 } } },
	{ "a tree of another generation", 1, TREE_OUTSIDE, 2, { { 8, 300 }, { 8, 2 } } },
	{ "the generation in force", 2, 3, 2, { { 8, 300 }, { 8, 2 } } },
	{ "the old generation's trees are gone for the new", 2, TREE_OUTSIDE, 3,
	  { { 8, 555 }, { 8, 100 }, { 8, 2 } } },
	{ "a lone object", 1, TREE_OUTSIDE, 1, { { 8, 555 } } },
};

static int tree_ask(const struct tree_case *c)
{
	env.skel->bss->tree_in = *c;
	env.skel->bss->tree_out = 12345;
	assert_int_equal(run_prog(env.skel->progs.bw_test_tree), 0);
	return env.skel->bss->tree_out;
}

/* A chain of len ancestors none of which is a tree, with a tree (index 0) at position
 * hit if hit < len. */
static int deep_ask(unsigned len, unsigned hit)
{
	struct tree_case c;

	memset(&c, 0, sizeof(c));
	c.gen = 1;
	c.len = len;
	for (unsigned i = 0; i < len; i++) {
		c.chain[i].dev = 8;
		c.chain[i].ino = i == hit ? 100 : 1000 + i;
	}
	return tree_ask(&c);
}

static void test_tree_walk(void **state)
{
	int fd;

	SKIP_UNLESS_READY();
	fd = bpf_map__fd(env.skel->maps.exec_deny_dirs);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct bw_inode_key k = { .ino = dirs[i].ino, .dev = dirs[i].dev, .gen = dirs[i].gen };

		assert_int_equal(bpf_map_update_elem(fd, &k, &dirs[i].idx, BPF_ANY), 0);
	}
	for (size_t i = 0; i < sizeof(tree_rows) / sizeof(tree_rows[0]); i++) {
		const struct tree_row *r = &tree_rows[i];
		struct tree_case c;
		int got;

		memset(&c, 0, sizeof(c));
		c.gen = r->gen;
		c.len = r->len;
		for (unsigned j = 0; j < r->len; j++) {
			c.chain[j].dev = r->chain[j].dev;
			c.chain[j].ino = r->chain[j].ino;
		}
		got = tree_ask(&c);
		if (got != r->expect)
			fail_msg("%s: the walk says %d, expected %d", r->what, got, r->expect);
	}

	/* The depth bound: BW_MAX_DENTRY_DEPTH ancestors are looked at, no more. */
	assert_int_equal(deep_ask(BW_MAX_DENTRY_DEPTH, BW_MAX_DENTRY_DEPTH), TREE_OUTSIDE);
	assert_int_equal(deep_ask(BW_MAX_DENTRY_DEPTH + 1, BW_MAX_DENTRY_DEPTH + 1), TREE_TOO_DEEP);
	assert_int_equal(deep_ask(BW_MAX_DENTRY_DEPTH + 1, BW_MAX_DENTRY_DEPTH - 1), 0);
	assert_int_equal(deep_ask(BW_MAX_DENTRY_DEPTH + 1, BW_MAX_DENTRY_DEPTH), TREE_TOO_DEEP);
	assert_int_equal(deep_ask(LOGIC_CHAIN_MAX, LOGIC_CHAIN_MAX), TREE_TOO_DEEP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_net_by_name),
		cmocka_unit_test(test_tree_walk),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
