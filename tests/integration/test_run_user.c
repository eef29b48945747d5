/* Whom `run` runs the build as (issue 8, "Trust boundaries"). A build running as root
 * could kill its agent, edit the sensor's maps, read the chain key and rewrite the
 * spool, and leaves root-owned files in the workspace. `run --user USER` (and, under
 * sudo, the caller by default) runs it as that user, with no way back to root
 * (PR_SET_NO_NEW_PRIVS), inside the guard's cgroup, which it cannot leave, and unable
 * to signal the agent. A root build is still possible, with a loud warning. Also here:
 * runStart.policySha256 is the sha256 of the policy file's bytes, and the events paths
 * the root agent refuses. Real binary, real
 * kernel, root; the build runs as uid 65534 (nobody). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "lib/bwcase.h"

#define NOBODY 65534

static struct bw_case S;

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	if (bw_case_begin(&S))
		return -1;
	/* the workspace is root's (0700): let nobody in, and give it a directory of its own */
	if (chmod(S.ws.path, 0755) || bw_ws_mkdir(&S.ws, "build") ||
	    chown(bw_ws_tmp(&S.ws, "build"), NOBODY, NOBODY))
		return -1;
	bw_ws_path(&S.ws, "ev.pb", S.events, sizeof(S.events));
	return 0;
}

static int teardown(void **state)
{
	bw_case_end(&S);
	return 0;
}

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&S.ws, rel);
}

/* argv: what comes after `buildwarden`; env (may be NULL): NAME=VALUE pairs put in
 * front through env(1). */
static void run_bw(const char *const *env, const char *const *args)
{
	const char *argv[64];
	size_t n = 0;

	if (env) {
		argv[n++] = "/usr/bin/env";
		while (*env)
			argv[n++] = *env++;
	}
	argv[n++] = bw_bin();
	while (*args && n < 62)
		argv[n++] = *args++;
	argv[n] = NULL;
	bw_result_free(&S.res);
	S.cmdline[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(S.cmdline, argv[i], sizeof(S.cmdline) - strlen(S.cmdline) - 2);
		strcat(S.cmdline, " ");
	}
	S.dumped = false;
	S.ran = bw_spawn(argv, bw_run_timeout(), 0, &S.res) == 0;
	CHECK(S.ran, "cannot start `%s`", S.cmdline);
	if (S.have_evs)
		bw_events_free(&S.evs);
	S.have_evs = false;
	if (access(S.events, F_OK) == 0) {
		bw_events_read(S.events, &S.evs);
		S.have_evs = true;
	}
}

/* The first line of a small file the build wrote, without its newline; "" if none. */
static const char *read_line(const char *rel)
{
	static char line[4][256];
	static int next;
	char *l = line[next++ % 4];
	FILE *f = fopen(wsp(rel), "re");

	l[0] = '\0';
	if (f) {
		if (!fgets(l, 256, f))
			l[0] = '\0';
		fclose(f);
	}
	l[strcspn(l, "\n")] = '\0';
	return l;
}

static const char *cgroup2_mount(void)
{
	static char mnt[256];
	char line[512];
	FILE *m = fopen("/proc/mounts", "re");

	mnt[0] = '\0';
	if (!m)
		return mnt;
	while (fgets(line, sizeof(line), m)) {
		char dev[128], path[256], type[32];

		if (sscanf(line, "%127s %255s %31s", dev, path, type) == 3 && !strcmp(type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", path);
			break;
		}
	}
	fclose(m);
	return mnt;
}

static bool has_run_end(void)
{
	struct bw_filter f = { .body = BUILDWARDEN__V1__EVENT__BODY_RUN_END };

	return S.have_evs && bw_ev_count(&S.evs, &f) == 1;
}

/* --user nobody: the build's uid, gid and groups are nobody's, NO_NEW_PRIVS is set, its
 * files are nobody's, and it can neither kill its agent (the build's parent) nor move
 * itself out of the guard's cgroup. The agent survives and ends the run normally. */
static void test_run_user__build_runs_as_user(void **state)
{
	char script[4096];
	struct stat st;

	(void)state;
	alarm(bw_run_timeout() + 20);
	snprintf(script, sizeof(script),
		 "cd '%s' && id -u > uid && id -g > gid && id -G > groups && "
		 "grep NoNewPrivs /proc/self/status > nnp && echo made > file && "
		 "grep -c buildwarden- /proc/self/cgroup > cg; "
		 "kill -9 $PPID 2>/dev/null; echo $? > kill; "
		 "(echo $$ > '%s/cgroup.procs') 2>/dev/null; echo $? > escape; "
		 "grep -c buildwarden- /proc/self/cgroup > cg2; exit 0",
		 wsp("build"), cgroup2_mount());
	const char *args[] = { "run", "--user", "nobody", "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

	run_bw(NULL, args);
	CHECK(S.res.exit_code == 0, "run --user nobody: exit %d, expected 0", S.res.exit_code);
	CHECK(!strcmp(read_line("build/uid"), "65534"), "id -u in the build: '%s'", read_line("build/uid"));
	CHECK(!strcmp(read_line("build/gid"), "65534"), "id -g in the build: '%s'", read_line("build/gid"));
	CHECK(!strcmp(read_line("build/groups"), "65534"), "id -G in the build: '%s' (nobody's groups only)",
	      read_line("build/groups"));
	CHECK(!strcmp(read_line("build/nnp"), "NoNewPrivs:\t1"), "the build's NoNewPrivs: '%s'", read_line("build/nnp"));
	CHECK(stat(wsp("build/file"), &st) == 0 && st.st_uid == NOBODY && st.st_gid == NOBODY,
	      "the build's file is not nobody's (uid %u)", (unsigned)st.st_uid);
	CHECK(!strcmp(read_line("build/cg"), "1"), "the build is not in the guard's cgroup: '%s'", read_line("build/cg"));
	CHECK(strcmp(read_line("build/kill"), "0") != 0, "the build killed its agent (kill -9 $PPID returned 0)");
	CHECK(strcmp(read_line("build/escape"), "0") != 0, "the build moved itself to the root cgroup");
	CHECK(!strcmp(read_line("build/cg2"), "1"), "the build left the guard's cgroup: '%s'", read_line("build/cg2"));
	/* the agent lived to write the end of the run */
	CHECK(has_run_end(), "no runEnd: the agent did not finish the run");
	CHECK(!strstr(S.res.err, "WARNING: the build runs as root"), "a warning about root for a nobody build");
}

/* Under sudo, the default is the user who called sudo. */
static void test_run_user__sudo_uid_is_the_default(void **state)
{
	char script[1024];
	const char *env[] = { "SUDO_UID=65534", "SUDO_GID=65534", "HOME=/root", NULL };

	(void)state;
	alarm(bw_run_timeout() + 20);
	snprintf(script, sizeof(script), "cd '%s' && id -u > uid && echo \"$HOME\" > home", wsp("build"));
	const char *args[] = { "run", "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

	run_bw(env, args);
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
	CHECK(!strcmp(read_line("build/uid"), "65534"), "SUDO_UID=65534, but the build ran as uid '%s'",
	      read_line("build/uid"));
	/* nobody's home from the passwd database, not root's */
	CHECK(strcmp(read_line("build/home"), "/root") != 0, "the build's HOME is still /root");
	CHECK(strstr(S.res.err, "(SUDO_UID)"), "stderr does not say where the build's user came from");
}

/* No --user and no sudo: the build runs as root, and stderr says what that means. */
static void test_run_user__root_build_warns(void **state)
{
	char script[1024];

	(void)state;
	alarm(bw_run_timeout() + 20);
	snprintf(script, sizeof(script), "id -u > '%s'", wsp("uid"));
	const char *args[] = { "run", "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

	run_bw(NULL, args);
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
	CHECK(!strcmp(read_line("uid"), "0"), "the build ran as uid '%s'", read_line("uid"));
	CHECK(strstr(S.res.err, "WARNING: the build runs as root"), "no warning that the build runs as root");
}

/* A user or group that does not exist: 64, said, and nothing started. */
static void test_run_user__bad_user_starts_nothing(void **state)
{
	const char *bad[][2] = { { "--user", "no-such-user-bw" }, { "--user", "nobody:no-such-group-bw" },
				 { "--user", "4242424" }, { "--user", ":65534" } };

	(void)state;
	alarm(4 * bw_run_timeout() + 20);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { "run", bad[i][0], bad[i][1], "--events", S.events, "--", "/usr/bin/touch",
				       wsp("marker"), NULL };

		run_bw(NULL, args);
		CHECK(S.res.exit_code == 64, "%s %s: exit %d, expected 64", bad[i][0], bad[i][1], S.res.exit_code);
		CHECK(access(wsp("marker"), F_OK) != 0, "%s %s: the build ran", bad[i][0], bad[i][1]);
		CHECK(access(S.events, F_OK) != 0, "%s %s: the agent started (events file made)", bad[i][0], bad[i][1]);
	}
}

/* runStart.policySha256 is the sha256 of the policy file's bytes. */
static void test_run_user__policy_sha256_is_the_files(void **state)
{
	static const char policy[] = "version: 1\nmode: audit\n# the hash covers comments too\n";
	unsigned char md[SHA256_DIGEST_LENGTH];
	char want[65];
	struct bw_filter f = { .body = BUILDWARDEN__V1__EVENT__BODY_RUN_START };
	long i;

	(void)state;
	alarm(bw_run_timeout() + 20);
	CHECK(bw_write_policy(&S.ws, NULL, "%s", policy) == 0, "write policy");
	SHA256((const unsigned char *)policy, strlen(policy), md);
	for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
		snprintf(want + 2 * k, 3, "%02x", md[k]);
	const char *args[] = { "run", "--user", "nobody", "--policy", wsp("policy.yaml"), "--events", S.events,
			       "--", "/bin/true", NULL };

	run_bw(NULL, args);
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
	i = S.have_evs ? bw_ev_find(&S.evs, &f, 0) : -1;
	CHECK(i >= 0, "no runStart");
	CHECK(!strcmp(S.evs.ev[i]->run_start->policy_sha256, want), "runStart.policySha256 %s, sha256 of the file %s",
	      S.evs.ev[i]->run_start->policy_sha256, want);
}

/* The events path is the root agent's to create: a FIFO planted there fails the start at
 * once (never a blocked agent), and so does a path in a world-writable directory without
 * the sticky bit; nothing runs. */
static void test_run_user__events_file_refused(void **state)
{
	struct { const char *rel, *why; } cases[] = {
		{ "ev.fifo", "not a regular file" },
		{ "shared/ev.pb", "writable by every user and has no sticky bit" },
	};

	(void)state;
	alarm(2 * bw_run_timeout() + 20);
	CHECK(bw_ws_mkfifo(&S.ws, "ev.fifo") == 0, "mkfifo");
	CHECK(bw_ws_mkdir(&S.ws, "shared") == 0 && chmod(wsp("shared"), 0777) == 0, "shared dir");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { "run", "--user", "nobody", "--events", wsp(cases[i].rel), "--",
				       "/usr/bin/touch", wsp("build/marker"), NULL };

		run_bw(NULL, args);
		CHECK(!S.res.timed_out, "%s: the start blocked", cases[i].rel);
		CHECK(S.res.exit_code == 73, "%s: exit %d, expected 73", cases[i].rel, S.res.exit_code);
		CHECK(strstr(S.res.err, cases[i].why), "%s: stderr does not say '%s'", cases[i].rel, cases[i].why);
		CHECK(access(wsp("build/marker"), F_OK) != 0, "%s: the build ran", cases[i].rel);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_user__build_runs_as_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_user__sudo_uid_is_the_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_user__root_build_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_user__bad_user_starts_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_user__policy_sha256_is_the_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_user__events_file_refused, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("SKIP: needs root (loads the sensor, runs builds as uid 65534)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
