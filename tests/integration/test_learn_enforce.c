// SPDX-License-Identifier: MIT
/* Learn -> test -> enforce on a real build (issue 10, "Done means"): a small C project
 * built by make, one of whose steps fetches a header from a loopback "registry" BY NAME
 * (the name looked up at 127.0.0.1:53, which the agent redirects to its resolver, which
 * asks this test's DNS server). An audit run; `policy learn` proposes a policy; a second
 * audit run shows zero changes under `policy test` (exit 0); a run that also contacts a
 * name the proposal does not list is flagged by `policy test` (exit 77), and in enforce
 * mode under the learned policy that connect is refused with EPERM while the listed
 * name still works. Loopback only. Build steps re-exec this binary with --bw-helper. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"
#include "lib/loopnet.h"

#define EXIT_VIOLATION 77

static struct bw_case S;

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	*state = &S;
	return bw_case_begin(&S);
}

static int teardown(void **state)
{
	bw_case_end(&S);
	return 0;
}

static const char *const zone[] = {
	"registry.test. 300 IN A 127.0.0.2",
	"unlisted.test. 300 IN A 127.0.0.4",
	NULL,
};

struct fixture {
	uint16_t dns_port, reg_port, bad_port;
	pid_t dns, http;
	int l_reg, l_bad;
	char make[PATH_MAX], proj[PATH_MAX];
};

/* --bw-helper fetch NAME PORT PATH OUT: "FETCH NAME ok", "FETCH NAME EPERM", ... */
static int helper_fetch(char **a)
{
	const char *r = loopnet_fetch(a[0], (uint16_t)atoi(a[1]), a[2], a[3]);

	printf("FETCH %s %s\n", a[0], r);
	fflush(stdout);
	return strcmp(r, "ok") ? 1 : 0;
}

static const char main_c[] =
	"#include <stdio.h>\n#include \"version.h\"\nint util(void);\n"
	"int main(void) { printf(\"%d %d\\n\", REGISTRY_VERSION, util()); return 0; }\n";
static const char util_c[] = "int util(void) { return 7; }\n";

/* The project: make compiles two files and links them; version.h comes from the
 * registry; with unlisted set, one more step reaches unlisted.test (ignoring failure). */
static void write_project(struct fixture *f, bool unlisted)
{
	char mk[4096];
	const char *me = bw_self_exe();

	snprintf(mk, sizeof(mk),
		 "all: app%s\n"
		 "app: main.o util.o\n\tcc -o app main.o util.o\n"
		 "main.o: main.c version.h\n\tcc -c main.c\n"
		 "util.o: util.c\n\tcc -c util.c\n"
		 "version.h:\n\t'%s' --bw-helper fetch registry.test %u /version.h version.h\n"
		 "extra:\n\t-'%s' --bw-helper fetch unlisted.test %u /x.h extra.h\n",
		 unlisted ? " extra" : "", me, f->reg_port, me, f->bad_port);
	CHECK(bw_ws_write(&S.ws, "proj/Makefile", mk, false) == 0 &&
	      bw_ws_write(&S.ws, "proj/main.c", main_c, false) == 0 &&
	      bw_ws_write(&S.ws, "proj/util.c", util_c, false) == 0, "cannot write the project");
	/* a clean tree for every run: what the build makes is gone */
	for (const char *const *g = (const char *const[]){ "app", "main.o", "util.o", "version.h",
							   "extra.h", NULL }; *g; g++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "proj/%s", *g);
		unlink(bw_ws_tmp(&S.ws, rel));
	}
}

static void fixture_start(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->l_reg = f->l_bad = -1;
	/* an absolute, resolved make: the build's exe paths must not depend on our cwd */
	if ((!realpath("/usr/bin/make", f->make) && !realpath("/bin/make", f->make)) ||
	    access("/usr/bin/cc", X_OK) != 0) {
		print_message("[   SKIP   ] no make or cc here: the build this suite runs compiles C\n");
		skip();
	}
	snprintf(f->proj, sizeof(f->proj), "%s/proj", S.ws.path);
	CHECK(bw_ws_mkdir(&S.ws, "proj") == 0, "mkdir proj");
	f->dns = loopnet_dns_start(zone, NULL, &f->dns_port);
	CHECK(f->dns > 0, "cannot start the test's DNS server: %s", strerror((int)-f->dns));
	f->l_reg = loopnet_bind("127.0.0.2", SOCK_STREAM, &f->reg_port);
	f->l_bad = loopnet_bind("127.0.0.4", SOCK_STREAM, &f->bad_port);
	CHECK(f->l_reg >= 0 && f->l_bad >= 0, "cannot bind the registry: %s", strerror(errno));
	f->http = loopnet_http_start((const int[]){ f->l_reg, f->l_bad }, 2,
				     "#define REGISTRY_VERSION 42\n");
	CHECK(f->http > 0, "cannot start the registry");
}

static void fixture_stop(struct fixture *f)
{
	loopnet_stop(f->http);
	loopnet_stop(f->dns);
	if (f->l_reg >= 0)
		close(f->l_reg);
	if (f->l_bad >= 0)
		close(f->l_bad);
}

/* One `run` of make in the project under policy (a file in the workspace). */
static void run_make(struct fixture *f, const char *policy, const char *mode, char *events,
		     size_t len)
{
	char upstream[64], pol[PATH_MAX];
	const char *args[] = { "run", "--policy", bw_ws_path(&S.ws, policy, pol, sizeof(pol)),
			       "--mode", mode, "--dns-upstream", upstream, "--events", events, "--",
			       f->make, "-C", f->proj, NULL };

	snprintf(upstream, sizeof(upstream), "127.0.0.1:%u", f->dns_port);
	snprintf(events, len, "%s/events-%u.pb", S.ws.path, ++S.runs);
	snprintf(S.events, sizeof(S.events), "%s", events);
	S.dumped = false;
	S.ran = bw_run_logged(args, bw_run_timeout() + 40, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish in time");
}

static void bw(const char *const args[], unsigned timeout)
{
	S.ran = bw_run_logged(args, timeout, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran && !S.res.timed_out, "%s did not run", S.cmdline);
}

static void test_learn_test_enforce(void **state)
{
	struct fixture f;
	char ev1[PATH_MAX], ev2[PATH_MAX], ev3[PATH_MAX], ev4[PATH_MAX], learned[PATH_MAX];
	char want[128], *built;

	(void)state;
	alarm(4 * bw_run_timeout() + 200);
	fixture_start(&f);
	/* audit, recording everything: the project protected, every destination allowed;
	 * a name rule turns the agent's resolver on, so connects carry their names */
	CHECK(bw_write_policy(&S.ws, "audit.yaml",
			      "version: 1\nmode: audit\nprotect:\n  - path: proj\n"
			      "network:\n  default: allow\n  allow: [\"names.invalid\"]\n") == 0,
	      "write policy");

	/* 1. an audit run of the real build */
	write_project(&f, false);
	run_make(&f, "audit.yaml", "audit", ev1, sizeof(ev1));
	CHECK(S.res.exit_code == 0, "the audit build failed (exit %d)", S.res.exit_code);
	CHECK(strstr(S.res.out, "FETCH registry.test ok"), "the build did not fetch from the registry");
	built = bw_read_file(bw_ws_tmp(&S.ws, "proj/version.h"), NULL);
	CHECK(built && strstr(built, "REGISTRY_VERSION 42"), "version.h is not the registry's");
	free(built);

	/* 2. learn: a proposal naming the registry by name and port, the tree written */
	bw((const char *const[]){ "policy", "learn", ev1, NULL }, 60);
	CHECK(S.res.exit_code == 0, "policy learn exited %d", S.res.exit_code);
	/* not on a terminal: no progress, nothing on stderr */
	CHECK(S.res.err_len == 0, "policy learn wrote to stderr off a terminal: %s", S.res.err);
	snprintf(want, sizeof(want), "\"registry.test:%u\"  # 1 of 1 run, 1 connect, e.g. ", f.reg_port);
	CHECK(strstr(S.res.out, want), "the proposal does not allow %s with its evidence", want);
	CHECK(strstr(S.res.out, "  - path: \"") && strstr(S.res.out, "/proj\"  # written by the build: 1 of 1 run"),
	      "the proposal does not protect the project the build wrote");
	CHECK(strstr(S.res.out, "default: deny"), "the proposal does not deny by default");
	CHECK(!strstr(S.res.out, "127.0.0.2"), "the proposal allows the registry by address, not by name");
	CHECK(strstr(S.res.out, "#   /usr/bin: 1 of 1 runs"), "the proposal does not show the exec trees used");
	snprintf(learned, sizeof(learned), "%s/learned.yaml", S.ws.path);
	CHECK(bw_write_file(learned, S.res.out, 0644) == 0, "write learned.yaml");
	bw((const char *const[]){ "policy", "check", learned, NULL }, 30);
	CHECK(S.res.exit_code == 0, "the learned policy does not load (exit %d)", S.res.exit_code);

	/* 3. a second audit run: nothing would change under the proposal */
	write_project(&f, false);
	run_make(&f, "audit.yaml", "audit", ev2, sizeof(ev2));
	CHECK(S.res.exit_code == 0, "the second audit build failed (exit %d)", S.res.exit_code);
	bw((const char *const[]){ "policy", "test", "--policy", learned, ev2, NULL }, 60);
	CHECK(S.res.exit_code == 0, "policy test on a clean second run exited %d, expected 0",
	      S.res.exit_code);
	CHECK(strstr(S.res.out, ": 0 newly flagged, 0 no longer flagged, 0 flagged under the draft"),
	      "policy test on a clean second run shows changes");

	/* 4. a run that also contacts a name the proposal does not list is flagged */
	write_project(&f, true);
	run_make(&f, "audit.yaml", "audit", ev3, sizeof(ev3));
	CHECK(strstr(S.res.out, "FETCH unlisted.test ok"), "in audit mode the unlisted name was not reached");
	bw((const char *const[]){ "policy", "test", "--policy", learned, ev3, NULL }, 60);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "policy test exited %d, expected 77", S.res.exit_code);
	snprintf(want, sizeof(want), "newly flagged: connect 127.0.0.4:%u (unlisted.test) (network.default: deny)",
		 f.bad_port);
	CHECK(strstr(S.res.out, want), "policy test does not say '%s'", want);
	CHECK(strstr(S.res.out, ": 1 newly flagged, 0 no longer flagged, 1 flagged under the draft"),
	      "policy test flags more or less than the unlisted connect");

	/* 5. enforce with the learned policy: the listed name works, the unlisted is EPERM */
	write_project(&f, true);
	run_make(&f, "learned.yaml", "enforce", ev4, sizeof(ev4));
	CHECK(strstr(S.res.out, "FETCH registry.test ok"), "enforce: the listed name was not reached");
	CHECK(strstr(S.res.out, "FETCH unlisted.test EPERM"), "enforce: the unlisted name was not refused with EPERM");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "enforce run exited %d, expected 77", S.res.exit_code);
	built = bw_read_file(bw_ws_tmp(&S.ws, "proj/app"), NULL);
	CHECK(built, "enforce: the build did not link its program");
	free(built);
	fixture_stop(&f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_learn_test_enforce, setup, teardown),
	};
	int rc;

	if (argc >= 7 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "fetch"))
		return helper_fetch(argv + 3);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
