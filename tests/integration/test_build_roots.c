/* Who is the build in agent mode, beyond the policy's build_roots: `buildwarden enroll`
 * makes a live process a build root through the agent's root-only socket, and nobody
 * else can; and a change is attributed to the process that made it, not to a build
 * process that took its pid since. Real binary, real kernel, root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/cgtest.h"

static struct bw_ws ws;
static char buf[4][PATH_MAX];

static const char *p(int slot, const char *rel)
{
	return bw_ws_path(&ws, rel, buf[slot], sizeof(buf[slot]));
}

static int setup(void **state)
{
	return bw_case_setup(&ws);
}

static int teardown(void **state)
{
	bw_case_teardown();
	return 0;
}

static bool wait_for_text(const char *path, const char *needle, unsigned timeout_ms)
{
	for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
		char *s = bw_read_file(path, NULL);
		bool found = s && strstr(s, needle);

		free(s);
		if (found)
			return true;
		usleep(20000);
	}
	return false;
}

static pid_t start_agent(const char *policy, const char *events, const char *log, const char *sock)
{
	pid_t pid = bw_fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(120);
		execl(bw_bin(), bw_bin(), "agent", "--policy", policy, "--events", events,
		      "--enroll-socket", sock, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		bw_track_pid(pid);
	return pid;
}

static int stop_agent(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	st = bw_wait_bounded(pid, 10);
	return st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A "job": a shell that waits for a line on its stdin, then writes target. Returns its
 * pid; *go is the pipe's write end. */
static pid_t start_job(const char *target, int *go)
{
	char script[PATH_MAX + 64];
	int fds[2];
	pid_t pid;

	snprintf(script, sizeof(script), "read x; echo job > %s", target);
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = bw_fork();
	if (pid == 0) {
		dup2(fds[0], 0);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return -1;
	}
	bw_track_pid(pid);
	*go = fds[1];
	return pid;
}

static int finish_job(pid_t pid, int go)
{
	int st;

	(void)!write(go, "go\n", 3);
	close(go);
	st = bw_wait_bounded(pid, 20);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int enroll(pid_t pid, unsigned flags, struct bw_result *r)
{
	char pidtxt[16];
	const char *args[] = { "enroll", "--pid", pidtxt, "--socket", p(3, "run/enroll.sock"), NULL };

	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)pid);
	return bw_spawn((const char *const[]){ bw_bin(), args[0], args[1], args[2], args[3], args[4], NULL },
			20, flags, r);
}

/* The run's Enroll events with refused and caller uid as given; *last: the last one. */
static size_t enroll_events(const struct bw_events *evs, bool refused, uint32_t uid,
			    const Buildwarden__V1__Event **last)
{
	size_t n = 0;

	for (size_t i = 0; i < evs->n; i++) {
		const Buildwarden__V1__Event *e = evs->ev[i];

		if (e->body_case != BUILDWARDEN__V1__EVENT__BODY_ENROLL || !e->enroll)
			continue;
		if (e->enroll->refused == refused && e->enroll->caller_uid == uid) {
			n++;
			*last = e;
		}
	}
	return n;
}

/* The highest Stats.enrollments / enrollments_refused in the run. */
static void enroll_stats(const struct bw_events *evs, uint64_t *made, uint64_t *refused)
{
	*made = *refused = 0;
	for (size_t i = 0; i < evs->n; i++) {
		const Buildwarden__V1__Event *e = evs->ev[i];

		if (e->body_case != BUILDWARDEN__V1__EVENT__BODY_STATS || !e->stats)
			continue;
		if (e->stats->enrollments > *made)
			*made = e->stats->enrollments;
		if (e->stats->enrollments_refused > *refused)
			*refused = e->stats->enrollments_refused;
	}
}

/* An enrolled process and what it starts afterwards are the build: their writes are
 * allowed. A process nobody enrolled writing the same tree is a violation. */
static void test_enroll_makes_a_build_root(void **state)
{
	struct bw_events evs;
	struct bw_result r;
	struct stat st;
	pid_t agent, job, outsider;
	int go, go2;

	alarm(60);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nprotect:\n  - path: src\n"), 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"), p(3, "run/enroll.sock"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));
	/* root's alone: a 0700 directory, a 0600 socket */
	assert_int_equal(stat(p(0, "run"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(p(0, "run/enroll.sock"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	job = start_job(p(0, "src/enrolled.c"), &go);
	outsider = start_job(p(0, "src/outsider.c"), &go2);
	assert_true(job > 0 && outsider > 0);
	assert_int_equal(enroll(job, 0, &r), 0);
	if (r.exit_code != 0)
		bw_result_print("buildwarden enroll", &r);
	assert_int_equal(r.exit_code, 0);
	assert_non_null(strstr(r.out, "is a build root"));
	bw_result_free(&r);
	/* the shell forks nothing for echo; a child it execs would inherit the same */
	assert_int_equal(finish_job(job, go), 0);
	assert_int_equal(finish_job(outsider, go2), 0);
	usleep(200000);
	assert_int_equal(stop_agent(agent), 77);
	/* the agent removed its socket */
	assert_int_equal(access(p(0, "run/enroll.sock"), F_OK), -1);

	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/enrolled.c"),
							      .violation = BW_YES }),
			 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/enrolled.c"),
							 .in_build = BW_YES }) >= 1);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/outsider.c"),
							 .in_build = BW_NO,
							 .violation = BW_YES }) >= 1);
	/* the enrolment is an event of the run: who designated which build root */
	{
		const Buildwarden__V1__Event *e = NULL;
		uint64_t made, refused;

		if (enroll_events(&evs, false, 0, &e) != 1)
			fail_msg("%zu enroll events for the one enrolment, not 1",
				 enroll_events(&evs, false, 0, &e));
		assert_int_equal(e->enroll->pid, (uint32_t)job);
		assert_non_null(e->process);
		assert_int_equal(e->process->pid, (uint32_t)job);
		assert_true(e->enroll->caller_pid > 0);
		assert_non_null(strstr(e->enroll->caller_exe, "buildwarden"));
		assert_non_null(strstr(e->enroll->reason, "is a build root"));
		assert_false(e->verdict && e->verdict->violation);
		assert_int_equal(enroll_events(&evs, true, 0, &e), 0);
		enroll_stats(&evs, &made, &refused);
		assert_int_equal(made, 1);
		assert_int_equal(refused, 0);
	}
	assert_true(wait_for_text(p(2, "agent.log"), "enrollments: 1 build roots made, 0 requests refused",
				  5000));
	bw_events_free(&evs);
}

/* Only root may enroll: uid 65534 is stopped by the directory's mode, and, where an
 * operator loosened the modes, by the agent's own check of the caller's uid. Either
 * way the process stays outside the build. */
static void test_enroll_refuses_non_root(void **state)
{
	struct bw_events evs;
	struct bw_result r;
	pid_t agent, job;
	int go;

	alarm(60);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nprotect:\n  - path: src\n"), 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"), p(3, "run/enroll.sock"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));
	job = start_job(p(0, "src/job.c"), &go);
	assert_true(job > 0);

	/* 1: the file modes */
	assert_int_equal(enroll(job, BW_SPAWN_AS_NOBODY, &r), 0);
	if (r.exit_code != 76)
		bw_result_print("buildwarden enroll (as 65534)", &r);
	assert_int_equal(r.exit_code, 76);
	assert_non_null(strstr(r.err, "Permission denied"));
	bw_result_free(&r);
	/* 2: the agent's check, with the modes opened up (the ws path is world-searchable) */
	assert_int_equal(chmod(p(0, "run"), 0755), 0);
	assert_int_equal(chmod(p(0, "run/enroll.sock"), 0666), 0);
	assert_int_equal(enroll(job, BW_SPAWN_AS_NOBODY, &r), 0);
	if (r.exit_code != 76)
		bw_result_print("buildwarden enroll (as 65534, open modes)", &r);
	assert_int_equal(r.exit_code, 76);
	assert_non_null(strstr(r.err, "uid 65534 is not root"));
	bw_result_free(&r);
	assert_true(wait_for_text(p(2, "agent.log"), "only root may enroll", 5000));

	assert_int_equal(finish_job(job, go), 0);
	usleep(200000);
	assert_int_equal(stop_agent(agent), 77);
	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/job.c"),
							 .in_build = BW_NO,
							 .violation = BW_YES }) >= 1);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/job.c"),
							      .in_build = BW_YES }),
			 0);
	/* the refused request is an event of the run (the one stopped by the file modes
	 * never reached the agent), and counted */
	{
		const Buildwarden__V1__Event *e = NULL;
		uint64_t made, refused;

		if (enroll_events(&evs, true, 65534, &e) != 1)
			fail_msg("%zu refused enroll events of uid 65534, not 1",
				 enroll_events(&evs, true, 65534, &e));
		assert_true(e->enroll->caller_pid > 0);
		assert_non_null(strstr(e->enroll->reason, "not root"));
		assert_int_equal(enroll_events(&evs, false, 0, &e), 0);
		enroll_stats(&evs, &made, &refused);
		assert_int_equal(made, 0);
		assert_int_equal(refused, 1);
	}
	assert_true(wait_for_text(p(2, "agent.log"), "enrollments: 0 build roots made, 1 requests refused",
				  5000));
	bw_events_free(&evs);
}

/* A loosened directory is refused at start: the agent does not serve a socket others
 * could replace. */
static void test_enroll_socket_dir_must_be_roots(void **state)
{
	struct bw_result r;
	const char *args[] = { "agent", "--policy", p(0, "policy.yaml"), "--enroll-socket",
			       p(1, "open/enroll.sock"), NULL };

	alarm(30);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\n"), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "open"), 0);
	assert_int_equal(chmod(p(2, "open"), 0755), 0);
	assert_int_equal(bw_run(args, 20, &r), 0);
	if (r.exit_code != 71)
		bw_result_print("buildwarden agent --enroll-socket open/", &r);
	assert_int_equal(r.exit_code, 71);
	assert_non_null(strstr(r.err, "must be a directory owned by root with mode 0700"));
	bw_result_free(&r);
}

static int outsider_writes(void *arg)
{
	int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	return fd >= 0 && write(fd, "evil\n", 5) == 5 && close(fd) == 0 ? 0 : 1;
}

/* enforce mode: a chmod, which no hook refuses (an open for write would be): the
 * agent kills its actor through the event's pidfd and taints the file */
static int outsider_chmods(void *arg)
{
	return chmod(arg, 0600) == 0 ? 0 : 1;
}

/* A child with pid want, by setting the host's ns_last_pid just before each fork (other
 * processes on the host may take it first: retried). The child enters cg and execs
 * argv; the others exit at once. Returns the child's pid, or -1. */
static pid_t fork_with_pid(pid_t want, const struct bw_cg *cg, const char *const argv[])
{
	for (int tries = 0; tries < 500; tries++) {
		char last[16];
		pid_t c;

		snprintf(last, sizeof(last), "%d", (int)want - 1);
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);

		/* not bw_write_file: O_TRUNC on this sysctl is refused (EPERM) */
		if (fd < 0)
			return -1;
		if (write(fd, last, strlen(last)) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		c = bw_fork();
		if (c == 0) {
			if (getpid() != want || bw_cg_enter(cg))
				_exit(0);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (c == want) {
			bw_track_pid(c);
			return c;
		}
		if (c > 0)
			waitpid(c, NULL, 0);
	}
	return -1;
}

/* Issue 8: the agent names the actor of a change by pid when it reads the event. An
 * outsider writes src/ and exits while the agent is stopped; a build process (a build
 * root exe'd in the runner's cgroup) is then made to get the same pid. The change is
 * the outsider's: a violation, not the build's allowed write. In enforce mode the
 * same event carries no pidfd (the actor had exited): the agent kills nobody, least
 * of all the build process that has the pid now. */
static void reused_pid_case(bool enforce)
{
	struct bw_cg cg = { .abs = "" };
	struct bw_events evs;
	pid_t agent, outsider, reuser;
	char exe[PATH_MAX], sleep_exe[PATH_MAX];
	const char *sleeper[] = { sleep_exe, "60", NULL };
	int st;

	alarm(90);
	assert_int_equal(bw_cg_create(&cg), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "bin"), 0);
	snprintf(sleep_exe, sizeof(sleep_exe), "%s", p(0, "bin/buildsleep"));
	{
		size_t len;
		char *data = bw_read_file("/bin/sleep", &len);
		int fd = open(p(0, "bin/buildsleep"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

		assert_non_null(data);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, len), (ssize_t)len);
		close(fd);
		free(data);
	}
	assert_int_equal(bw_write_policy(&ws, NULL,
					 "version: 1\nmode: %s\nprotect:\n  - path: src\nbuild_roots:\n"
					 "  - exe: %s\n    cgroup: %s\n",
					 enforce ? "enforce" : "audit", p(0, "bin/buildsleep"), cg.rel),
			 0);
	if (enforce)
		assert_int_equal(bw_write_file(p(0, "src/evil.c"), "int x;\n", 0644), 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"), p(3, "run/enroll.sock"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));

	assert_int_equal(kill(agent, SIGSTOP), 0);
	assert_int_equal(waitpid(agent, &st, WUNTRACED), agent);
	outsider = bw_fork_outsider(enforce ? outsider_chmods : outsider_writes, (void *)p(0, "src/evil.c"));
	assert_true(outsider > 0);
	st = bw_wait_bounded(outsider, 10);
	assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	reuser = fork_with_pid(outsider, &cg, sleeper);
	if (reuser < 0) {
		kill(agent, SIGCONT);
		skip(); /* the host kept taking the pid: nothing to test */
	}
	/* the build root's exec is done when /proc says so */
	{
		char link[64];
		bool execd = false;

		snprintf(link, sizeof(link), "/proc/%d/exe", (int)reuser);
		for (int i = 0; i < 500 && !execd; i++) {
			ssize_t n = readlink(link, exe, sizeof(exe) - 1);

			execd = n > 0 && (exe[n] = '\0', strcmp(exe, sleep_exe) == 0);
			if (!execd)
				usleep(10000);
		}
		assert_true(execd);
	}
	assert_int_equal(kill(agent, SIGCONT), 0);
	usleep(500000);
	if (enforce) {
		/* the event is handled once it is in the events file (bounded wait) */
		for (int i = 0; i < 300; i++) {
			bool seen = false;

			if (bw_events_read(p(1, "ev.pb"), &evs) == 0) {
				seen = bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/evil.c"),
									    .violation = BW_YES }) > 0;
				bw_events_free(&evs);
			}
			if (seen)
				break;
			usleep(10000);
		}
		/* still running: the outsider's violation did not kill the pid's new owner */
		assert_int_equal(waitpid(reuser, &st, WNOHANG), 0);
	}
	kill(reuser, SIGKILL);
	bw_wait_bounded(reuser, 10);
	st = stop_agent(agent);
	if (st != 77) {
		char *log = bw_read_file(p(2, "agent.log"), NULL);

		print_message("agent exit %d, its log:\n%s\n", st, log ? log : "(none)");
		free(log);
	}
	assert_int_equal(st, 77);
	bw_cg_remove(&cg);

	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	if (bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/evil.c"), .in_build = BW_YES }))
		bw_ev_dump(&evs, 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/evil.c"),
							      .in_build = BW_YES }),
			 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/evil.c"),
							 .violation = BW_YES }) >= 1);
	for (size_t i = 0; enforce && i < evs.n; i++) {
		const Buildwarden__V1__Event *e = evs.ev[i];

		if (bw_ev_match(e, &(struct bw_filter){ .path = p(0, "src/evil.c"), .violation = BW_YES })) {
			assert_int_equal(e->verdict->action, BUILDWARDEN__V1__ACTION__TAINTED);
			assert_false(e->verdict->actor_killed);
		}
	}
	bw_events_free(&evs);
}

static void test_reused_pid_is_not_the_actor(void **state)
{
	reused_pid_case(false);
}

static void test_reused_pid_is_not_killed(void **state)
{
	reused_pid_case(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enroll_makes_a_build_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_refuses_non_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_socket_dir_must_be_roots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid_is_not_the_actor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid_is_not_killed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
