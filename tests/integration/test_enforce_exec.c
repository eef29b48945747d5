// SPDX-License-Identifier: MIT
/* Enforce mode against the real kernel (issue 7, "exec.deny cannot be sidestepped"):
 * each way a build process can run code from an exec.deny tree, in enforce mode and in
 * audit mode. The payload creates a marker file: enforce mode asserts it does not exist
 * (the code never ran) and audit mode that it does (the same exec ran, reported). Each
 * case also asserts the violation event, its verdict and rule, and exit 77. Build steps
 * re-exec this binary with --bw-helper. */
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

#define EXIT_VIOLATION 77
#define LOADER "/lib64/ld-linux-x86-64.so.2"
#define DEEP_LEVELS 40 /* more than BW_MAX_DENTRY_DEPTH (32) */

extern char **environ;

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

/* ---- helpers run as build steps ----------------------------------------- */

static void result(const char *tag, int exec_errno, int st)
{
	if (exec_errno)
		printf("RESULT %s exec %s\n", tag,
		       exec_errno == EPERM ? "EPERM" : exec_errno == EACCES ? "EACCES" : strerror(exec_errno));
	else if (WIFSIGNALED(st))
		printf("RESULT %s signal %d\n", tag, WTERMSIG(st));
	else
		printf("RESULT %s exit %d\n", tag, WEXITSTATUS(st));
	fflush(stdout);
}

/* The child runs exec_fn(argv); an exec error comes back through a close-on-exec pipe. */
static int spawn_with(const char *tag, char **argv, int (*exec_fn)(char **argv))
{
	int st = 0, pfd[2], e = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return 3;
	pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		e = exec_fn(argv);
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	if (read(pfd[0], &e, sizeof(e)) != sizeof(e))
		e = 0;
	close(pfd[0]);
	if (waitpid(pid, &st, 0) != pid)
		return 3;
	result(tag, e, st);
	return 0;
}

static int exec_path(char **argv)
{
	execv(argv[0], argv);
	return errno;
}

/* memfd_create + fexecve of a copy of argv[0]: the fileless exec of a dropper. */
static int exec_memfd(char **argv)
{
	int fd = memfd_create("payload", MFD_CLOEXEC);
	int src = open(argv[0], O_RDONLY | O_CLOEXEC);
	char buf[65536];
	ssize_t n;

	if (fd < 0 || src < 0)
		return errno;
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			return EIO;
	close(src);
	fexecve(fd, argv, environ);
	return errno;
}

/* execveat(fd, "", AT_EMPTY_PATH) of a descriptor opened on argv[0]: the descriptor's
 * file is what runs, whatever its name now. With unlink_first, the file is deleted
 * between the open and the exec. */
static int exec_fd(char **argv, bool unlink_first)
{
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	if (unlink_first && unlink(argv[0]))
		return errno;
	syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	return errno;
}

static int exec_fd_keep(char **argv)
{
	return exec_fd(argv, false);
}

static int exec_fd_deleted(char **argv)
{
	return exec_fd(argv, true);
}

/* ---- the run ------------------------------------------------------------- */

/* The first Exec violation whose rule contains rule_part. */
static long find_exec_violation(const char *rule_part)
{
	for (size_t i = 0; i < S.evs.n; i++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[i];

		if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_EXEC && ev->verdict &&
		    ev->verdict->violation && strstr(ev->verdict->rule, rule_part))
			return (long)i;
	}
	return -1;
}

static const Buildwarden__V1__Incomplete *run_incomplete(void)
{
	long i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_END }, 0);

	return i >= 0 ? S.evs.ev[i]->run_end->incomplete : NULL;
}

/* ---- the cases ----------------------------------------------------------- */

struct exec_case {
	const char *name;
	void (*prepare)(char *script, size_t len); /* files, and the build's script */
	const char *rule_part; /* in the violation's rule */
	const char *enforce_result; /* the helper's RESULT in enforce mode */
	Buildwarden__V1__Action enforce_action;
};

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = bw_read_file(from, &len);
	int fd;

	CHECK(data, "read %s", from);
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len && close(fd) == 0, "copy %s to %s", from, to);
	free(data);
}

static void write_policy(void)
{
	CHECK(bw_ws_mkdir(&S.ws, "deny") == 0, "mkdir deny");
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nexec:\n  scope: build\n  deny: [\"%s\"]\n",
			      wsp("deny")) == 0,
	      "write policy");
}

static void prep_binary(char *script, size_t len)
{
	copy_file("/usr/bin/touch", wsp("deny/touch"));
	snprintf(script, len, "'%s' --bw-helper spawn drop '%s' '%s'\n", bw_self_exe(),
		 wsp("deny/touch"), wsp("marker"));
}

static void prep_script(char *script, size_t len)
{
	char body[PATH_MAX + 64];

	snprintf(body, sizeof(body), "#!/bin/sh\ntouch '%s'\n", wsp("marker"));
	CHECK(bw_ws_write(&S.ws, "deny/dropper.sh", body, true) == 0, "write the script");
	snprintf(script, len, "'%s' --bw-helper spawn drop '%s'\n", bw_self_exe(),
		 wsp("deny/dropper.sh"));
}

static void prep_loader(char *script, size_t len)
{
	copy_file("/usr/bin/touch", wsp("deny/touch"));
	snprintf(script, len, "'%s' --bw-helper spawn drop " LOADER " '%s' '%s'\n", bw_self_exe(),
		 wsp("deny/touch"), wsp("marker"));
}

static void prep_memfd(char *script, size_t len)
{
	snprintf(script, len, "'%s' --bw-helper memfd drop /usr/bin/touch '%s'\n", bw_self_exe(),
		 wsp("marker"));
}

static void prep_deep(char *script, size_t len)
{
	char rel[PATH_MAX] = "deny";

	for (int i = 0; i < DEEP_LEVELS; i++)
		strcat(rel, "/d");
	CHECK(bw_ws_mkdir(&S.ws, rel) == 0, "mkdir the deep chain");
	strcat(rel, "/touch");
	copy_file("/usr/bin/touch", wsp(rel));
	snprintf(script, len, "'%s' --bw-helper spawn drop '%s' '%s'\n", bw_self_exe(), wsp(rel),
		 wsp("marker"));
}

static void prep_fd(char *script, size_t len)
{
	copy_file("/usr/bin/touch", wsp("deny/touch"));
	snprintf(script, len, "'%s' --bw-helper fdexec drop '%s' '%s'\n", bw_self_exe(),
		 wsp("deny/touch"), wsp("marker"));
}

/* A deleted file outside every deny tree: nothing to walk to, so it is nameless. */
static void prep_deleted(char *script, size_t len)
{
	CHECK(bw_ws_mkdir(&S.ws, "ok") == 0, "mkdir ok");
	copy_file("/usr/bin/touch", wsp("ok/touch"));
	snprintf(script, len, "'%s' --bw-helper deletedexec drop '%s' '%s'\n", bw_self_exe(),
		 wsp("ok/touch"), wsp("marker"));
}

static const struct exec_case cases[] = {
	{ "binary", prep_binary, "exec.deny[0]", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
	{ "script", prep_script, "exec.deny[0]", "exec EPERM", BUILDWARDEN__V1__ACTION__DENIED },
	{ "loader", prep_loader, "dynamic loader", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
	{ "memfd", prep_memfd, "no name", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
	{ "deep", prep_deep, "deeper than", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
	{ "fd", prep_fd, "exec.deny[0]", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
	{ "deleted", prep_deleted, "no name", "signal 9", BUILDWARDEN__V1__ACTION__KILLED },
};

static void run_case(const struct exec_case *c, bool enforce)
{
	char script[PATH_MAX * 3], line[PATH_MAX * 2];
	struct stat st;
	long i;

	alarm(bw_run_timeout() + 20);
	write_policy();
	c->prepare(script, sizeof(script));
	bw_case_run_sh(&S, enforce ? "enforce" : "audit", script);
	i = find_exec_violation(c->rule_part);
	CHECK(i >= 0, "%s: no exec violation with a rule containing '%s'", c->name, c->rule_part);
	if (enforce) {
		CHECK(stat(wsp("marker"), &st) != 0 && errno == ENOENT,
		      "%s: the payload ran in enforce mode: its marker file exists", c->name);
		CHECK(bw_case_saw(&S, "drop", c->enforce_result), "%s: the caller did not see '%s'", c->name,
		      c->enforce_result);
		CHECK(S.evs.ev[i]->verdict->action == c->enforce_action, "%s: action %d, expected %d: %s",
		      c->name, S.evs.ev[i]->verdict->action, c->enforce_action,
		      bw_ev_describe(S.evs.ev[i], line, sizeof(line)));
	} else {
		CHECK(stat(wsp("marker"), &st) == 0, "%s: audit mode: the payload did not run (no marker)",
		      c->name);
		CHECK(bw_case_saw(&S, "drop", "exit 0"), "%s: audit mode: the payload did not exit 0", c->name);
		CHECK(S.evs.ev[i]->verdict->action == BUILDWARDEN__V1__ACTION__AUDITED,
		      "%s: audit mode: action %d, expected AUDITED: %s", c->name,
		      S.evs.ev[i]->verdict->action, bw_ev_describe(S.evs.ev[i], line, sizeof(line)));
	}
	CHECK(S.res.exit_code == EXIT_VIOLATION, "%s: exit code %d, expected %d", c->name,
	      S.res.exit_code, EXIT_VIOLATION);
}

static const struct exec_case *case_named(const char *name)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

#define EXEC_CASE(name)                                      \
	static void test_##name##_enforce(void **state)     \
	{                                                    \
		(void)state;                                 \
		run_case(case_named(#name), true);           \
	}                                                    \
	static void test_##name##_audit(void **state)       \
	{                                                    \
		(void)state;                                 \
		run_case(case_named(#name), false);          \
	}
EXEC_CASE(binary)
EXEC_CASE(script)
EXEC_CASE(loader)
EXEC_CASE(memfd)
EXEC_CASE(deep)
EXEC_CASE(fd)
EXEC_CASE(deleted)

/* ldd runs the loader on its file: refused with the loader rule (docs/policy.md). */
static void test_ldd_is_refused(void **state)
{
	(void)state;
	alarm(bw_run_timeout() + 20);
	write_policy();
	bw_case_run_sh(&S, "enforce", "ldd /bin/true\n");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	CHECK(find_exec_violation("dynamic loader") >= 0 &&
		      S.evs.ev[find_exec_violation("dynamic loader")]->verdict->action ==
			      BUILDWARDEN__V1__ACTION__KILLED,
	      "ldd's loader run was not killed as 'the dynamic loader run directly on a program'");
}

/* The deep case is a violation, and still a loss: the run says it is incomplete. */
static void test_deep_is_also_a_loss(void **state)
{
	const Buildwarden__V1__Incomplete *inc;

	(void)state;
	run_case(case_named("deep"), true);
	inc = run_incomplete();
	CHECK(inc && inc->depth_exceeded > 0, "runEnd.incomplete.depthExceeded is not set");
	CHECK(S.res.err && strstr(S.res.err, "run incomplete: ") &&
	      strstr(strstr(S.res.err, "run incomplete: "), "depth_exceeded"),
	      "the summary does not say the run is incomplete for depth_exceeded");
}

/* `sh deny/x.sh`: the exec is of /bin/sh, which then reads the script as data. exec.deny
 * governs execs, so this runs in both modes, is no violation, and is recorded: the Exec
 * event of sh carries the script's path in its argv (docs/policy.md). */
static void test_interpreter_reading_script(void **state)
{
	char body[PATH_MAX + 64], script[PATH_MAX * 2];
	const char *modes[] = { "enforce", "audit" };
	struct stat st;

	(void)state;
	alarm(2 * bw_run_timeout() + 20);
	write_policy();
	snprintf(body, sizeof(body), "#!/bin/sh\ntouch '%s'\n", wsp("marker"));
	CHECK(bw_ws_write(&S.ws, "deny/dropper.sh", body, false) == 0, "write the script");
	snprintf(script, sizeof(script), "/bin/sh '%s'\n", wsp("deny/dropper.sh"));
	for (int m = 0; m < 2; m++) {
		bool argv_seen = false;

		unlink(wsp("marker"));
		bw_case_run_sh(&S, modes[m], script);
		CHECK(stat(wsp("marker"), &st) == 0, "%s: sh did not run the script", modes[m]);
		CHECK(S.res.exit_code == 0, "%s: exit code %d, expected 0", modes[m], S.res.exit_code);
		CHECK(find_exec_violation("") < 0, "%s: an exec violation was reported", modes[m]);
		for (size_t i = 0; i < S.evs.n && !argv_seen; i++) {
			const Buildwarden__V1__Event *ev = S.evs.ev[i];

			if (ev->body_case != BUILDWARDEN__V1__EVENT__BODY_EXEC || !ev->process)
				continue;
			for (size_t k = 0; k < ev->process->n_argv; k++)
				if (!strcmp(ev->process->argv[k], wsp("deny/dropper.sh")))
					argv_seen = true;
		}
		CHECK(argv_seen, "%s: no Exec event carries the script's path in its argv", modes[m]);
	}
}

/* The guard stops asking about a file once it has seen it is no script (an ignore mark).
 * A binary allowed once, then rewritten as a script and moved into the deny tree, must
 * still be refused: the rewrite clears the mark. */
static void test_script_after_allowed_binary(void **state)
{
	char body[PATH_MAX + 64], script[PATH_MAX * 4];
	struct stat st;

	(void)state;
	alarm(bw_run_timeout() + 20);
	write_policy();
	CHECK(bw_ws_mkdir(&S.ws, "ok") == 0, "mkdir ok");
	copy_file("/bin/true", wsp("ok/t"));
	snprintf(body, sizeof(body), "#!/bin/sh\ntouch '%s'\n", wsp("marker"));
	CHECK(bw_ws_write(&S.ws, "payload.txt", body, false) == 0, "write the payload");
	snprintf(script, sizeof(script),
		 "'%s'\ncat '%s' > '%s'\nmv '%s' '%s'\n'%s' --bw-helper spawn drop '%s'\n",
		 wsp("ok/t"), wsp("payload.txt"), wsp("ok/t"), wsp("ok/t"), wsp("deny/t"),
		 bw_self_exe(), wsp("deny/t"));
	bw_case_run_sh(&S, "enforce", script);
	CHECK(stat(wsp("marker"), &st) != 0 && errno == ENOENT,
	      "the rewritten script ran: its marker file exists");
	CHECK(bw_case_saw(&S, "drop", "exec EPERM"), "the exec of the rewritten script did not fail with EPERM");
	CHECK(find_exec_violation("exec.deny[0]") >= 0, "no violation for the rewritten script");
}

/* What the policy allows is never refused in enforce mode: a binary and a script from
 * outside the deny tree, and the loader's informational options. */
static void test_allowed_not_refused(void **state)
{
	char body[PATH_MAX + 64], script[PATH_MAX * 3];
	struct stat st;

	(void)state;
	alarm(bw_run_timeout() + 20);
	write_policy();
	CHECK(bw_ws_mkdir(&S.ws, "ok") == 0, "mkdir ok");
	snprintf(body, sizeof(body), "#!/bin/sh\ntouch '%s'\n", wsp("marker"));
	CHECK(bw_ws_write(&S.ws, "ok/step.sh", body, true) == 0, "write the script");
	snprintf(script, sizeof(script),
		 "set -e\n'%s'\n/bin/true\n" LOADER " --version >/dev/null\n" LOADER
		 " --verify /bin/true\n" LOADER " --help >/dev/null\n",
		 wsp("ok/step.sh"));
	bw_case_run_sh(&S, "enforce", script);
	CHECK(stat(wsp("marker"), &st) == 0, "the allowed script did not run");
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	CHECK(find_exec_violation("") < 0, "an allowed exec was reported as a violation");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_binary_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memfd_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memfd_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_is_also_a_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ldd_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interpreter_reading_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_after_allowed_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allowed_not_refused, setup, teardown),
	};
	int rc;

	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "spawn"))
		return spawn_with(argv[3], argv + 4, exec_path);
	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "memfd"))
		return spawn_with(argv[3], argv + 4, exec_memfd);
	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "fdexec"))
		return spawn_with(argv[3], argv + 4, exec_fd_keep);
	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "deletedexec"))
		return spawn_with(argv[3], argv + 4, exec_fd_deleted);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
