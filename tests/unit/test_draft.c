/* user/draft/: the agent's copy of the kernel's network decision on the shared table of
 * cases (tests/lib/netcases.c, which test_netmatch_kernel runs against the kernel), by
 * name as the resolver would let a name through, and learn / replay on made-up events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "draft/learn.h"
#include "draft/netdraft.h"
#include "draft/replay.h"
#include "lib/netcases.h"
#include "policy/policy.h"
#include "sensor_abi.h"

static struct bw_policy *parse(const char *text)
{
	struct bw_policy *p = NULL;
	struct bw_diags d;

	memset(&d, 0, sizeof(d));
	if (policy__parse(text, strlen(text), "t.yaml", "/", BW_POLICY_NO_FS, &p, &d)) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "t.yaml:%u:%u: %s\n", d.items[i].line, d.items[i].col,
				d.items[i].msg);
		fail_msg("test policy does not parse:\n%s", text);
	}
	return p;
}

static void test_draft__netcases(void **state)
{
	static const uint16_t ports[NETCASE_PORTS] = { 4001, 4002, 4003 };

	(void)state;
	for (unsigned k = 0; k < netcase_n_policies; k++) {
		char yaml[2048], text[1024];
		struct bw_policy *p;
		struct draft_net *n;

		snprintf(yaml, sizeof(yaml), "version: 1\n");
		netcase_policy_text(k, ports, text, sizeof(text));
		strncat(yaml, text, sizeof(yaml) - strlen(yaml) - 1);
		p = parse(yaml);
		assert_int_equal(draft_net__new(p, &n), 0);
		for (size_t i = 0; i < netcase_n_rows; i++) {
			const struct netcase_row *r = &netcase_rows[i];
			struct draft_verdict v;
			uint8_t addr[16];
			char want[128];
			const char *got;

			if (r->policy != k)
				continue;
			assert_int_equal(draft_net__addr(r->addr, addr), 0);
			draft_net__decide(n, addr, ports[r->port], r->name, true, &v);
			got = draft_net__rule(n, &v);
			netcase_rule_text(r, ports, want, sizeof(want));
			if (v.action != r->action || v.matched != r->matched ||
			    strcmp(got ? got : "", want))
				fail_msg("policy %u, %s port %u: action %u matched %u by '%s', expected %u %u by '%s'",
					 k, r->addr, ports[r->port], v.action, v.matched, got ? got : "",
					 r->action, r->matched, want);
			/* a process outside the build is not decided under scope: build */
			draft_net__decide(n, addr, ports[r->port], r->name, false, &v);
			assert_true(v.out_of_scope);
			assert_int_equal(v.action, BW_NET_ALLOW);
		}
		draft_net__free(n);
		policy__free(p);
	}
}

/* The same cases as test_bpf_logic's test_net_by_name puts into dns_allow by hand. */
static void test_draft__by_name(void **state)
{
	struct bw_policy *p = parse("version: 1\nnetwork:\n  default: deny\n"
				    "  deny: [\"10.9.0.0/16\"]\n"
				    "  allow: [\"10.5.0.0/16:22\", \"x.test:443\", \"*.y.test\", \"X.test\"]\n");
	static const struct {
		const char *addr, *name;
		uint16_t port;
		uint8_t action, matched;
		const char *rule;
	} rows[] = {
		/* the port-specific entry is looked up first, as in the kernel */
		{ "10.1.1.1", "x.test", 443, BW_NET_ALLOW, BW_MATCH_NAME, "x.test:443" },
		{ "10.1.1.1", "x.test.", 80, BW_NET_ALLOW, BW_MATCH_NAME, "X.test" },
		{ "10.1.1.1", "z.test", 443, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
		{ "10.1.1.1", NULL, 443, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
		{ "10.2.2.2", "a.b.y.test", 8080, BW_NET_ALLOW, BW_MATCH_NAME, "*.y.test" },
		{ "10.2.2.2", "y.test", 8080, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
		/* a deny is never undone by a name; an address rule decides first */
		{ "10.9.1.1", "x.test", 443, BW_NET_DENY, BW_MATCH_DENY, "10.9.0.0/16" },
		{ "10.5.1.1", "a.y.test", 22, BW_NET_ALLOW, BW_MATCH_ALLOW, "10.5.0.0/16:22" },
		{ "10.5.1.1", "a.y.test", 23, BW_NET_ALLOW, BW_MATCH_NAME, "*.y.test" },
	};
	struct draft_net *n;

	(void)state;
	assert_int_equal(draft_net__new(p, &n), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct draft_verdict v;
		uint8_t addr[16];
		const char *got;

		assert_int_equal(draft_net__addr(rows[i].addr, addr), 0);
		draft_net__decide(n, addr, rows[i].port, rows[i].name, true, &v);
		got = draft_net__rule(n, &v);
		if (v.action != rows[i].action || v.matched != rows[i].matched ||
		    strcmp(got ? got : "", rows[i].rule ? rows[i].rule : ""))
			fail_msg("%s (%s) port %u: action %u matched %u by '%s'", rows[i].addr,
				 rows[i].name ? rows[i].name : "-", rows[i].port, v.action, v.matched,
				 got ? got : "");
	}
	/* with name rules, port 53 goes to the agent's resolver: never decided */
	{
		struct draft_verdict v;
		uint8_t addr[16];

		assert_int_equal(draft_net__addr("8.8.8.8", addr), 0);
		draft_net__decide(n, addr, 53, NULL, true, &v);
		assert_true(v.redirected);
	}
	draft_net__free(n);
	policy__free(p);
}

/* A port range or list is one kernel entry per port (sensor/netrules.c); the replay's
 * table holds the same entries, so its edges decide as the kernel's do. */
static void test_draft__port_ranges(void **state)
{
	struct bw_policy *p = parse("version: 1\nnetwork:\n  default: deny\n"
				    "  deny: [\"10.1.0.0/16:1500\"]\n"
				    "  allow: [\"10.0.0.0/8:1000-2000\", \"10.2.2.2:80,443,8000-8002\"]\n");
	static const struct {
		const char *addr;
		uint16_t port;
		uint8_t action;
	} rows[] = {
		{ "10.9.9.9", 999, BW_NET_DENY },   { "10.9.9.9", 1000, BW_NET_ALLOW },
		{ "10.9.9.9", 1777, BW_NET_ALLOW }, { "10.9.9.9", 2000, BW_NET_ALLOW },
		{ "10.9.9.9", 2001, BW_NET_DENY },  { "10.1.1.1", 1500, BW_NET_DENY },
		{ "10.1.1.1", 1501, BW_NET_ALLOW }, { "10.2.2.2", 80, BW_NET_ALLOW },
		{ "10.2.2.2", 443, BW_NET_ALLOW },  { "10.2.2.2", 444, BW_NET_DENY },
		{ "10.2.2.2", 8002, BW_NET_ALLOW }, { "10.2.2.2", 8003, BW_NET_DENY },
	};
	struct draft_net *n;

	(void)state;
	assert_int_equal(draft_net__new(p, &n), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct draft_verdict v;
		uint8_t addr[16];

		assert_int_equal(draft_net__addr(rows[i].addr, addr), 0);
		draft_net__decide(n, addr, rows[i].port, NULL, true, &v);
		if (v.action != rows[i].action)
			fail_msg("%s port %u: action %u, expected %u", rows[i].addr, rows[i].port,
				 v.action, rows[i].action);
	}
	draft_net__free(n);
	policy__free(p);
}

/* ---- made-up events ------------------------------------------------------------- */

struct evs {
	Buildwarden__V1__Event ev[16];
	Buildwarden__V1__Process proc[16];
	Buildwarden__V1__Verdict verdict[16];
	Buildwarden__V1__ConnectBody conn[16];
	Buildwarden__V1__FileBody file[16];
	Buildwarden__V1__ExecBody exec[16];
	size_t n;
};

static Buildwarden__V1__Event *ev_new(struct evs *e, const char *run, const char *exe, bool in_build,
				      bool violation)
{
	size_t i = e->n++;

	buildwarden__v1__event__init(&e->ev[i]);
	buildwarden__v1__process__init(&e->proc[i]);
	buildwarden__v1__verdict__init(&e->verdict[i]);
	e->proc[i].exe = (char *)exe;
	e->proc[i].pid = 100 + (uint32_t)i;
	e->proc[i].in_build = in_build;
	e->proc[i].attributed = true;
	e->verdict[i].violation = violation;
	e->ev[i].process = &e->proc[i];
	e->ev[i].verdict = &e->verdict[i];
	e->ev[i].run_id = (char *)run;
	return &e->ev[i];
}

static void ev_connect(struct evs *e, const char *run, const char *addr, uint32_t port,
		       const char *name, bool violation)
{
	Buildwarden__V1__Event *ev = ev_new(e, run, "/usr/bin/curl", true, violation);
	Buildwarden__V1__ConnectBody *c = &e->conn[e->n - 1];

	buildwarden__v1__connect_body__init(c);
	c->address = (char *)addr;
	c->port = port;
	c->name = (char *)(name ? name : "");
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
	ev->connect = c;
}

static void ev_file(struct evs *e, const char *run, const char *exe, bool in_build, const char *path,
		    const char *tree, bool violation)
{
	Buildwarden__V1__Event *ev = ev_new(e, run, exe, in_build, violation);
	Buildwarden__V1__FileBody *f = &e->file[e->n - 1];

	buildwarden__v1__file_body__init(f);
	f->path = (char *)path;
	f->tree = (char *)tree;
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	ev->file = f;
}

static void ev_exec(struct evs *e, const char *run, const char *exe)
{
	Buildwarden__V1__Event *ev = ev_new(e, run, exe, true, false);

	buildwarden__v1__exec_body__init(&e->exec[e->n - 1]);
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev->exec = &e->exec[e->n - 1];
}

static void made_up(struct evs *e)
{
	memset(e, 0, sizeof(*e));
	ev_connect(e, "r1", "10.0.0.1", 443, "GitHub.com.", false);
	ev_connect(e, "r2", "10.0.0.2", 443, "github.com", false);
	ev_connect(e, "r2", "2001:db8::1", 8443, "", false);
	ev_connect(e, "r2", "10.0.0.3", 80, "bad_name.test", false); /* not a rule's name */
	ev_file(e, "r1", "/usr/bin/cc", true, "/w/out/a.o", "/w/out", false);
	ev_file(e, "r2", "/usr/bin/rsync", false, "/w/out/b", "/w/out", true);
	ev_exec(e, "r1", "/usr/bin/cc");
	ev_exec(e, "r2", "/tmp/go-build1/x");
}

static void test_draft__learn(void **state)
{
	static const char *const deny[] = { "/tmp", "/dev/shm", NULL };
	struct draft_learn *l;
	struct bw_policy *p;
	struct evs e;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	made_up(&e);
	/* refused in enforce mode: not learned */
	ev_connect(&e, "r2", "10.6.6.6", 4444, "evil.test", true);
	e.verdict[e.n - 1].action = BUILDWARDEN__V1__ACTION__DENIED;
	assert_int_equal(draft_learn__new(&l), 0);
	for (size_t i = 0; i < e.n; i++)
		assert_int_equal(draft_learn__event(l, &e.ev[i]), 0);
	assert_int_equal(draft_learn__runs(l), 2);
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	assert_int_equal(draft_learn__write(l, deny, out), 0);
	fclose(out);
	draft_learn__free(l);
	/* by name (lowercase, no final dot), merged over runs; by address when no name */
	assert_non_null(strstr(buf, "    - \"github.com:443\"  # 2 of 2 runs, 2 connects, e.g. /usr/bin/curl (pid 100)\n"));
	assert_non_null(strstr(buf, "    - \"[2001:db8::1]:8443\"  # by address (no name was looked up through the agent): 1 of 2 runs"));
	assert_non_null(strstr(buf, "    - \"10.0.0.3:80\"  # by address"));
	assert_non_null(strstr(buf, "  - path: \"/w/out\"  # written by the build: 1 of 2 runs, 1 change, e.g. /usr/bin/cc (pid 104)\n"));
	assert_non_null(strstr(buf, "      - exe: \"/usr/bin/rsync\"  # outside the build, wrote here: 1 of 2 runs"));
	/* /tmp was executed from: not proposed for exec.deny; /dev/shm was not */
	assert_null(strstr(buf, "    - \"/tmp\""));
	assert_null(strstr(buf, "evil.test"));
	assert_non_null(strstr(buf, "# Not learned: 1 events an enforcing policy refused or killed"));
	assert_non_null(strstr(buf, "    - \"/dev/shm\"  # no build process executed from it in 2 runs\n"));
	/* and the proposal is a policy (file checks off: /w/out does not exist here) */
	p = parse(buf);
	assert_int_equal(p->n_net_allow_names, 1);
	assert_int_equal(p->n_net_allow, 2);
	assert_true(p->net_default_deny);
	assert_int_equal(p->n_protect, 1);
	assert_int_equal(p->protect[0].n_writers, 1);
	policy__free(p);
	free(buf);
}

static void test_draft__replay(void **state)
{
	struct bw_policy *p = parse("version: 1\nprotect:\n  - path: /w/out\n"
				    "exec:\n  deny: [/tmp]\n"
				    "network:\n  default: deny\n  allow: [\"github.com:443\", \"10.0.0.3\"]\n");
	struct draft_replay_counts c;
	struct draft_replay *r;
	struct evs e;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	made_up(&e);
	/* a way around exec.deny the sensor flagged: still flagged while there is a deny
	 * tree, whatever the exe's path */
	ev_exec(&e, "r2", "/lib64/ld-linux-x86-64.so.2");
	e.verdict[e.n - 1].violation = true;
	e.verdict[e.n - 1].rule = (char *)"exec.deny: the dynamic loader run directly on a program";
	/* a #! script from a deny tree: its exe is the interpreter */
	ev_exec(&e, "r2", "/bin/sh");
	e.exec[e.n - 1].filename = (char *)"/tmp/x.sh";
	assert_int_equal(draft_replay__new(p, &r), 0);
	for (size_t i = 0; i < e.n; i++)
		assert_int_equal(draft_replay__event(r, &e.ev[i]), 0);
	out = open_memstream(&buf, &len);
	assert_int_equal(draft_replay__write(r, out), 0);
	fclose(out);
	draft_replay__counts(r, &c);
	/* newly: the v6 connect (default deny), the exec from /tmp, the script from /tmp;
	 * the rsync write and the loader were flagged and still are */
	assert_int_equal(c.replayed, 10);
	assert_int_equal(c.newly, 3);
	assert_int_equal(c.no_longer, 0);
	assert_int_equal(c.flagged, 5);
	assert_non_null(strstr(buf, "newly flagged: exec /tmp/x.sh (in exec.deny tree '/tmp'): 1 time"));
	assert_non_null(strstr(buf, "newly flagged: connect [2001:db8::1]:8443 (network.default: deny): 1 time"));
	assert_non_null(strstr(buf, "newly flagged: exec /tmp/go-build1/x (in exec.deny tree '/tmp'): 1 time"));
	draft_replay__free(r);
	policy__free(p);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_draft__netcases),
		cmocka_unit_test(test_draft__by_name),
		cmocka_unit_test(test_draft__port_ranges),
		cmocka_unit_test(test_draft__learn),
		cmocka_unit_test(test_draft__replay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
