// SPDX-License-Identifier: MIT
/* Enforce mode never breaks the build (issue 7): a real multi-file C build, configure +
 * make, with a library, a binary, a generated header made by a build-tree script and a
 * `make check`, under a policy with exec.deny and a protected source tree. Built once in
 * audit mode and once in enforce mode in the same directory: both succeed (exit 0, no
 * violation, nothing lost), and every output is byte-for-byte the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

/* The build's own bound: generous, the machine is shared. */
#define BUILD_TIMEOUT_S 300

static struct bw_case S;

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&S.ws, rel);
}

static int setup(void **state)
{
	*state = &S;
	return bw_case_begin(&S);
}

static int teardown(void **state)
{
	(void)state;
	bw_case_end(&S);
	return 0;
}

/* ---- the project ---------------------------------------------------------- */

/* A hand-written configure in the autoconf style: it probes the compiler by compiling
 * and running a test program, probes ar, a header and a function, and writes config.h
 * and the Makefile from Makefile.in. */
static const char configure_sh[] =
	"#!/bin/sh\n"
	"set -e\n"
	"srcdir=$(cd \"$(dirname \"$0\")\" && pwd)\n"
	"echo 'checking for a C compiler...'\n"
	"CC=\n"
	"for c in cc gcc; do if command -v $c >/dev/null 2>&1; then CC=$c; break; fi; done\n"
	"test -n \"$CC\" || { echo 'configure: error: no C compiler' >&2; exit 1; }\n"
	"echo \"checking whether $CC works...\"\n"
	"printf 'int main(void) { return 0; }\\n' > conftest.c\n"
	"$CC -o conftest conftest.c\n"
	"./conftest\n"
	"echo 'checking for stdint.h...'\n"
	"printf '#include <stdint.h>\\nint main(void) { uint32_t x = 1; return (int)x - 1; }\\n' > conftest.c\n"
	"if $CC -o conftest conftest.c 2>/dev/null; then have_stdint=1; else have_stdint=0; fi\n"
	"echo 'checking for snprintf...'\n"
	"printf '#include <stdio.h>\\nint main(void) { char b[4]; return snprintf(b, 4, \"x\") != 1; }\\n' > conftest.c\n"
	"if $CC -o conftest conftest.c 2>/dev/null && ./conftest; then have_snprintf=1; else have_snprintf=0; fi\n"
	"rm -f conftest conftest.c\n"
	"command -v ar >/dev/null 2>&1 || { echo 'configure: error: no ar' >&2; exit 1; }\n"
	"{\n"
	"  echo '/* config.h: written by configure */'\n"
	"  echo \"#define HAVE_STDINT_H $have_stdint\"\n"
	"  echo \"#define HAVE_SNPRINTF $have_snprintf\"\n"
	"  echo '#define CALC_VERSION \"1.2.3\"'\n"
	"} > config.h\n"
	"sed -e \"s|@CC@|$CC|g\" -e \"s|@srcdir@|$srcdir|g\" \"$srcdir/Makefile.in\" > Makefile\n"
	"echo 'configure: wrote config.h and Makefile'\n";

static const char makefile_in[] =
	"CC = @CC@\n"
	"srcdir = @srcdir@\n"
	"CFLAGS = -O2 -g -Wall -ffile-prefix-map=$(srcdir)=. -I. -I$(srcdir)/src\n"
	"LIB_OBJS = add.o mul.o fmt.o\n"
	"\n"
	"all: calc\n"
	"\n"
	"version.h: $(srcdir)/gen-version.sh\n"
	"\t$(srcdir)/gen-version.sh > version.h\n"
	"\n"
	"%.o: $(srcdir)/src/%.c config.h version.h\n"
	"\t$(CC) $(CFLAGS) -c -o $@ $<\n"
	"\n"
	"libcalc.a: $(LIB_OBJS)\n"
	"\trm -f $@\n"
	"\tar rcD $@ $(LIB_OBJS)\n"
	"\n"
	"calc: main.o libcalc.a\n"
	"\t$(CC) $(CFLAGS) -o $@ main.o libcalc.a\n"
	"\n"
	"check: calc\n"
	"\t./calc 6 7 > check.out\n"
	"\tgrep -qxF '6+7=13 6*7=42 (calc 1.2.3, build 7)' check.out\n"
	"\n"
	".PHONY: all check\n";

/* A build-tree script run by make: allowed, it is not in a deny tree. */
static const char gen_version_sh[] =
	"#!/bin/sh\n"
	"echo '/* version.h: generated */'\n"
	"echo '#define CALC_BUILD 7'\n";

static const char calc_h[] =
	"#ifndef CALC_H\n#define CALC_H\n"
	"long calc_add(long a, long b);\n"
	"long calc_mul(long a, long b);\n"
	"int calc_fmt(char *buf, unsigned long len, long a, long b);\n"
	"#endif\n";

static const char add_c[] = "#include \"calc.h\"\nlong calc_add(long a, long b) { return a + b; }\n";
static const char mul_c[] = "#include \"calc.h\"\nlong calc_mul(long a, long b) { return a * b; }\n";
static const char fmt_c[] =
	"#include <stdio.h>\n#include \"config.h\"\n#include \"version.h\"\n#include \"calc.h\"\n"
	"int calc_fmt(char *buf, unsigned long len, long a, long b)\n{\n"
	"#if HAVE_SNPRINTF\n"
	"\treturn snprintf(buf, len, \"%ld+%ld=%ld %ld*%ld=%ld (calc %s, build %d)\", a, b,\n"
	"\t\tcalc_add(a, b), a, b, calc_mul(a, b), CALC_VERSION, CALC_BUILD);\n"
	"#else\n\treturn -1;\n#endif\n}\n";
static const char main_c[] =
	"#include <stdio.h>\n#include <stdlib.h>\n#include \"calc.h\"\n"
	"int main(int argc, char **argv)\n{\n\tchar buf[128];\n\n"
	"\tif (argc != 3)\n\t\treturn 2;\n"
	"\tif (calc_fmt(buf, sizeof(buf), atol(argv[1]), atol(argv[2])) < 0)\n\t\treturn 1;\n"
	"\tputs(buf);\n\treturn 0;\n}\n";

static const struct {
	const char *rel, *content;
	bool exec;
} project[] = {
	{ "proj/configure", configure_sh, true },     { "proj/Makefile.in", makefile_in, false },
	{ "proj/gen-version.sh", gen_version_sh, true }, { "proj/src/calc.h", calc_h, false },
	{ "proj/src/add.c", add_c, false },	     { "proj/src/mul.c", mul_c, false },
	{ "proj/src/fmt.c", fmt_c, false },	     { "proj/src/main.c", main_c, false },
};

/* What the build makes, compared byte for byte. */
static const char *const outputs[] = { "config.h", "Makefile", "version.h", "add.o",
				       "mul.o",	   "fmt.o",    "main.o",    "libcalc.a",
				       "calc",	   "check.out" };

static void write_project(void)
{
	CHECK(bw_ws_mkdir(&S.ws, "proj/src") == 0 && bw_ws_mkdir(&S.ws, "proj/build") == 0 &&
		      bw_ws_mkdir(&S.ws, "deny") == 0,
	      "mkdir the project");
	for (size_t i = 0; i < sizeof(project) / sizeof(project[0]); i++)
		CHECK(bw_ws_write(&S.ws, project[i].rel, project[i].content, project[i].exec) == 0,
		      "write %s", project[i].rel);
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nprotect:\n  - path: \"%s\"\n"
			      "exec:\n  scope: build\n  deny: [\"%s\"]\n",
			      wsp("proj/src"), wsp("deny")) == 0,
	      "write policy");
}

static void build_in(const char *mode)
{
	char policy[PATH_MAX], script[PATH_MAX * 2];
	const char *args[] = { "run", "--mode", mode, "--policy",
			       bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy)),
			       "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

	/* The same directory both times: the outputs may embed it (debug info). */
	snprintf(script, sizeof(script),
		 "set -e\ncd '%s'\nrm -rf ./*\n../configure\nmake -j2 all\nmake check\n",
		 wsp("proj/build"));
	snprintf(S.events, sizeof(S.events), "%s/events-%s.pb", S.ws.path, mode);
	S.dumped = false;
	S.ran = bw_run_logged(args, BUILD_TIMEOUT_S, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "%s build did not finish within %u s", mode, BUILD_TIMEOUT_S);
	if (S.have_evs)
		bw_events_free(&S.evs);
	S.have_evs = true;
	CHECK(bw_events_read(S.events, &S.evs) == 0, "events file %s does not parse: %s", S.events,
	      S.evs.err);
	CHECK(S.res.exit_code == 0, "%s build: exit code %d, expected 0", mode, S.res.exit_code);
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES }) == 0,
	      "%s build: violations reported", mode);
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						       .in_build = BW_YES }) > 10,
	      "%s build: too few execs recorded for a configure + make", mode);
}

/* Moves the outputs to <ws>/out-<mode>/ */
static void keep_outputs(const char *mode)
{
	char dir[64], to[PATH_MAX], from[PATH_MAX];

	snprintf(dir, sizeof(dir), "out-%s", mode);
	CHECK(bw_ws_mkdir(&S.ws, dir) == 0, "mkdir %s", dir);
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", wsp("proj/build"), outputs[i]);
		snprintf(to, sizeof(to), "%s/%s/%s", S.ws.path, dir, outputs[i]);
		CHECK(rename(from, to) == 0, "%s build made no %s: %s", mode, outputs[i],
		      strerror(errno));
	}
}

static void test_enforce_build_same_as_audit(void **state)
{
	(void)state;
	alarm(2 * BUILD_TIMEOUT_S + 60);
	write_project();
	build_in("audit");
	keep_outputs("audit");
	build_in("enforce");
	keep_outputs("enforce");
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		char a[PATH_MAX], e[PATH_MAX];
		size_t la, le;
		char *da, *de;

		snprintf(a, sizeof(a), "%s/out-audit/%s", S.ws.path, outputs[i]);
		snprintf(e, sizeof(e), "%s/out-enforce/%s", S.ws.path, outputs[i]);
		da = bw_read_file(a, &la);
		de = bw_read_file(e, &le);
		CHECK(da && de, "read %s", outputs[i]);
		CHECK(la > 0 && la == le && memcmp(da, de, la) == 0,
		      "%s differs between the audit and the enforce build (%zu vs %zu bytes)",
		      outputs[i], la, le);
		free(da);
		free(de);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enforce_build_same_as_audit, setup, teardown),
	};
	int rc;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
