/* Writers of protected trees are trusted by more than their executable (issue 8,
 * "Trust boundaries"): an entry may require a uid (`uid:`/`user:`) and a parent
 * executable (`parent:`), and a writer's right is the executable's, not the process's:
 * a writer that execs something else (rsync running /bin/sh) loses it. The writer here
 * is an outside process (its own session, forked by this test before the run) that
 * execs a copy of dash (bin/wsh, the listed writer) once the sensor is up, and writes
 * into the protected out/. Real binary, real kernel, root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwcase.h"

#define EXIT_VIOLATION 77
#define NOBODY 65534

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

static int copy_file(const char *from, const char *to, mode_t mode)
{
	size_t len;
	char *buf = bw_read_file(from, &len);
	int fd, rc = -1;

	if (!buf)
		return -1;
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd >= 0) {
		rc = write(fd, buf, len) == (ssize_t)len ? 0 : -1;
		close(fd);
	}
	free(buf);
	return rc;
}

static int setup(void **state)
{
	if (bw_case_begin(&S))
		return -1;
	/* nobody may enter the workspace and write into out/ (the uid cases) */
	if (chmod(S.ws.path, 0755) || bw_ws_mkdir(&S.ws, "out") || chmod(wsp("out"), 0777) ||
	    bw_ws_mkdir(&S.ws, "bin") || bw_ws_mkdir(&S.ws, "ctl") ||
	    copy_file("/bin/dash", wsp("bin/wsh"), 0755) || bw_ws_mkfifo(&S.ws, "ctl/go") ||
	    bw_ws_mkfifo(&S.ws, "ctl/done") || chmod(wsp("ctl/go"), 0666) ||
	    chmod(wsp("ctl/done"), 0666))
		return -1;
	snprintf(S.events, sizeof(S.events), "%s/events.pb", S.ws.path);
	return 0;
}

static int teardown(void **state)
{
	bw_case_end(&S);
	return 0;
}

struct writer {
	const char *script; /* what bin/wsh runs, in the workspace */
	bool as_nobody;
	int ready;
};

/* Outside the build: waits for "go" (the sensor is up), then becomes the writer. */
static int writer_main(void *arg)
{
	struct writer *w = arg;
	int go = open(wsp("ctl/go"), O_RDWR | O_CLOEXEC);
	/* held open (across the exec: no O_CLOEXEC) until the writer exits, so that the
	 * build's open of done does not block and its read does not end early */
	int done = open(wsp("ctl/done"), O_RDWR);
	char c;

	if (go < 0 || done < 0 || chdir(S.ws.path) < 0)
		return 10;
	if (write(w->ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		return 11;
	if (w->as_nobody && (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
			     setresuid(NOBODY, NOBODY, NOBODY)))
		return 12;
	execl(wsp("bin/wsh"), "wsh", "-c", w->script, (char *)NULL);
	return 13;
}

/* The writer is started (held), the build lets it go and waits until it is done. */
static void run_case(const char *writer_yaml, const char *script, bool as_nobody)
{
	struct writer w = { .script = script, .as_nobody = as_nobody };
	char build[1024], policy[PATH_MAX];
	struct pollfd pf;
	int p[2], st;
	pid_t pid;
	char c;

	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nprotect:\n  - path: out\n    writers:\n      - %s\n",
			      writer_yaml) == 0, "policy");
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	w.ready = p[1];
	pid = bw_fork_outsider(writer_main, &w);
	close(p[1]);
	CHECK(pid > 0, "cannot fork the writer");
	pf = (struct pollfd){ .fd = p[0], .events = POLLIN };
	CHECK(poll(&pf, 1, 5000) == 1 && read(p[0], &c, 1) == 1, "the writer did not get ready");
	close(p[0]);
	/* done is opened before go is sent (a FIFO's data dies with its last opener) */
	snprintf(build, sizeof(build), "exec 3< '%s'; echo go > '%s'; read x <&3; echo \"RESULT $x\"",
		 wsp("ctl/done"), wsp("ctl/go"));
	const char *args[] = { "run", "--policy", bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy)),
			       "--events", S.events, "--", "/bin/sh", "-c", build, NULL };

	S.ran = bw_run_logged(args, bw_run_timeout(), 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran && !S.res.timed_out, "`%s` did not finish", S.cmdline);
	CHECK(S.res.exit_code != 78, "the policy was refused (exit 78)");
	st = bw_wait_bounded(pid, 5);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer failed (status %#x)", st);
	S.have_evs = true;
	CHECK(bw_events_read(S.events, &S.evs) == 0, "events do not parse: %s", S.evs.err);
}

static long violation_on(const char *rel)
{
	char path[PATH_MAX];

	CHECK(realpath(wsp("out"), path) != NULL, "realpath out");
	strncat(path, "/", sizeof(path) - strlen(path) - 1);
	strncat(path, rel, sizeof(path) - strlen(path) - 1);
	return bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_FILE,
							  .path = path, .violation = BW_YES }, 0);
}

static bool has_file_event(const char *rel)
{
	char path[PATH_MAX];

	CHECK(realpath(wsp("out"), path) != NULL, "realpath out");
	strncat(path, "/", sizeof(path) - strlen(path) - 1);
	strncat(path, rel, sizeof(path) - strlen(path) - 1);
	return bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_FILE,
							  .path = path }, 0) >= 0;
}

static const char *writer_yaml(const char *extra)
{
	static char y[2 * PATH_MAX];

	snprintf(y, sizeof(y), "{exe: %s%s}", wsp("bin/wsh"), extra ? extra : "");
	return y;
}

/* Control: the listed writer writing itself is allowed. */
static void test_writers__listed_writer_allowed(void **state)
{
	(void)state;
	alarm(bw_run_timeout() + 20);
	run_case(writer_yaml(NULL), "echo x > out/a; echo ok > ctl/done", false);
	CHECK(has_file_event("a"), "no file event for out/a");
	CHECK(violation_on("a") < 0, "the listed writer's own write is a violation");
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
}

/* The writer execs /bin/sh, which writes: sh is not a writer (today: allowed, the
 * right survived the exec). */
static void test_writers__exec_drops_the_right(void **state)
{
	(void)state;
	alarm(bw_run_timeout() + 20);
	run_case(writer_yaml(NULL), "exec /bin/sh -c 'echo y > out/b; echo ok > ctl/done'", false);
	CHECK(violation_on("b") >= 0, "a write by /bin/sh exec'd by the writer is not a violation");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
}

/* uid: the writer as the listed user is allowed, as another (root) is a violation. */
static void test_writers__uid(void **state)
{
	(void)state;
	alarm(2 * bw_run_timeout() + 20);
	run_case(writer_yaml(", user: nobody"), "echo x > out/c; echo ok > ctl/done", false);
	CHECK(violation_on("c") >= 0, "a listed writer running as root, not nobody, is not a violation");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit %d, expected %d", S.res.exit_code, EXIT_VIOLATION);

	bw_result_free(&S.res);
	bw_events_free(&S.evs);
	S.have_evs = false;
	unlink(S.events);
	run_case(writer_yaml(", uid: 65534"), "echo x > out/d; echo ok > ctl/done", true);
	CHECK(has_file_event("d"), "no file event for out/d");
	CHECK(violation_on("d") < 0, "the writer as uid 65534 (listed) is a violation");
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
}

/* parent: the writer started by the listed parent is allowed, by another a violation. */
static void test_writers__parent(void **state)
{
	char extra[PATH_MAX + 16];

	(void)state;
	alarm(2 * bw_run_timeout() + 20);
	run_case(writer_yaml(", parent: /bin/true"), "echo x > out/e; echo ok > ctl/done", false);
	CHECK(violation_on("e") >= 0, "a writer whose parent is not the listed one is not a violation");

	bw_result_free(&S.res);
	bw_events_free(&S.evs);
	S.have_evs = false;
	unlink(S.events);
	snprintf(extra, sizeof(extra), ", parent: %s", bw_self_exe());
	run_case(writer_yaml(extra), "echo x > out/f; echo ok > ctl/done", false);
	CHECK(has_file_event("f"), "no file event for out/f");
	CHECK(violation_on("f") < 0, "the writer started by the listed parent is a violation");
	CHECK(S.res.exit_code == 0, "exit %d, expected 0", S.res.exit_code);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writers__listed_writer_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers__exec_drops_the_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers__uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers__parent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
