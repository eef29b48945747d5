/* `buildwarden agent`: the host-wide sensor. The build is whatever descends from a
 * build_roots executable (matched on its inode, not its name) exec'd inside the root's
 * cgroup: the same executable run from anywhere else is not the build; SIGHUP swaps the policy
 * atomically and a bad new policy leaves the old one in force. Runs the real binary
 * against the real kernel, as root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/cgtest.h"

static struct bw_ws ws;
static struct bw_cg cg; /* the "runner service": build roots count only in here */
static char buf[4][PATH_MAX];

static const char *p(int slot, const char *rel)
{
	return bw_ws_path(&ws, rel, buf[slot], sizeof(buf[slot]));
}

static int setup(void **state)
{
	if (bw_case_setup(&ws))
		return -1;
	return bw_cg_create(&cg) ? -1 : 0;
}

static int teardown(void **state)
{
	bw_case_teardown();
	bw_cg_remove(&cg);
	return 0;
}

/* Copies a file, so the copy has an inode of its own. */
static int copy_exe(const char *from, const char *to)
{
	size_t len;
	char *data = bw_read_file(from, &len);
	int fd, rc = -1;

	if (!data)
		return -1;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd >= 0 && write(fd, data, len) == (ssize_t)len)
		rc = 0;
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

/* Waits (bounded) until the file at path contains needle; the agent's stderr goes there. */
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

static pid_t start_agent(const char *policy, const char *events, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(120);
		execl(bw_bin(), bw_bin(), "agent", "--policy", policy, "--events", events, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		bw_track_pid(pid);
	return pid;
}

/* SIGTERM, then the exit code (bounded). */
static int stop_agent(pid_t pid)
{
	int st = -1;

	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			bw_untrack_pid(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	return -1;
}

static int run_sh(const char *sh, const char *script)
{
	const char *argv[] = { sh, "-c", script, NULL };
	struct bw_result r;
	int code;

	if (bw_spawn(argv, 20, 0, &r))
		return -1;
	code = r.exit_code;
	bw_result_free(&r);
	return code;
}

/* The same, started inside the runner's cgroup. */
static int run_sh_in_cg(const char *sh, const char *script)
{
	const char *argv[] = { sh, "-c", script, NULL };

	return bw_cg_run(&cg, argv, 20);
}

static void test_build_roots_lineage(void **state)
{
	char script[PATH_MAX * 2];
	struct bw_events evs;
	pid_t agent;

	alarm(60);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "bin"), 0);
	/* The root is a copy of the shell: same name as any sh, different inode. */
	assert_int_equal(copy_exe("/bin/dash", p(0, "bin/buildsh")), 0);
	assert_int_equal(bw_write_policy(&ws, NULL,
					 "version: 1\nprotect:\n  - path: src\nbuild_roots:\n"
					 "  - exe: %s\n    cgroup: %s\n",
					 p(0, "bin/buildsh"), cg.rel),
			 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));

	/* A grandchild of the root writes: the build. The ordinary shell writes: outside. */
	snprintf(script, sizeof(script), "sh -c 'echo build > %s'", p(0, "src/by_build.c"));
	assert_int_equal(run_sh_in_cg(p(3, "bin/buildsh"), script), 0);
	snprintf(script, sizeof(script), "echo evil > %s", p(0, "src/by_outsider.c"));
	assert_int_equal(run_sh("/bin/dash", script), 0);
	usleep(200000);

	assert_int_equal(stop_agent(agent), 77);
	/* audit mode: both writes really happened */
	{
		char *build = bw_read_file(p(0, "src/by_build.c"), NULL);
		char *evil = bw_read_file(p(1, "src/by_outsider.c"), NULL);

		assert_non_null(build);
		assert_non_null(evil);
		assert_string_equal(build, "build\n");
		assert_string_equal(evil, "evil\n");
		free(build);
		free(evil);
	}
	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/by_build.c"),
							      .violation = BW_YES }),
			 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/by_build.c"),
							 .in_build = BW_YES,
							 .violation = BW_NO }) >= 1);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/by_outsider.c"),
							 .in_build = BW_NO,
							 .violation = BW_YES }) >= 1);
	bw_events_free(&evs);
}

/* The attack of issue 8: an outside process execs the very executable the policy names
 * as a build root (`make --eval 'x:;cp evil.c src/main.c' x`). Outside the runner's
 * cgroup it is not the build: its write is a violation. The same exe inside the cgroup,
 * or in a cgroup below it (a job's own), is the build. */
static void test_build_root_needs_its_cgroup(void **state)
{
	char script[PATH_MAX * 2];
	struct bw_events evs;
	struct bw_cg job = { .abs = "" };
	pid_t agent;

	alarm(60);
	assert_int_equal(bw_ws_mkdir(&ws, "src"), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "bin"), 0);
	assert_int_equal(copy_exe("/bin/dash", p(0, "bin/buildsh")), 0);
	assert_true(strlen(cg.abs) + 5 < sizeof(job.abs));
	memcpy(job.abs, cg.abs, strlen(cg.abs));
	strcat(job.abs, "/job");
	assert_int_equal(mkdir(job.abs, 0755), 0);
	assert_int_equal(bw_write_policy(&ws, NULL,
					 "version: 1\nprotect:\n  - path: src\nbuild_roots:\n"
					 "  - exe: %s\n    cgroup: %s\n",
					 p(0, "bin/buildsh"), cg.rel),
			 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));

	snprintf(script, sizeof(script), "sh -c 'echo build > %s'", p(0, "src/in_cgroup.c"));
	assert_int_equal(run_sh_in_cg(p(3, "bin/buildsh"), script), 0);
	snprintf(script, sizeof(script), "echo job > %s", p(0, "src/in_job_cgroup.c"));
	{
		const char *argv[] = { p(3, "bin/buildsh"), "-c", script, NULL };

		assert_int_equal(bw_cg_run(&job, argv, 20), 0);
	}
	/* the outsider: the same executable, by the same path, from the test's cgroup */
	snprintf(script, sizeof(script), "echo evil > %s", p(0, "src/outsider.c"));
	assert_int_equal(run_sh(p(3, "bin/buildsh"), script), 0);
	usleep(200000);

	assert_int_equal(stop_agent(agent), 77);
	bw_cg_remove(&job);
	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/in_cgroup.c"),
							      .violation = BW_YES }),
			 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/in_cgroup.c"),
							 .in_build = BW_YES }) >= 1);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/in_job_cgroup.c"),
							      .violation = BW_YES }),
			 0);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/in_job_cgroup.c"),
							 .in_build = BW_YES }) >= 1);
	assert_true(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/outsider.c"),
							 .in_build = BW_NO,
							 .violation = BW_YES }) >= 1);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .path = p(0, "src/outsider.c"),
							      .in_build = BW_YES }),
			 0);
	bw_events_free(&evs);
}

/* A listener on 127.0.0.1 and a connect to it from the build root's shell. */
static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static size_t connect_violations(const char *events, int port)
{
	struct bw_events evs;
	size_t n;

	if (bw_events_read(events, &evs))
		return (size_t)-1;
	n = bw_ev_count(&evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						 .port = (uint32_t)port,
						 .violation = BW_YES });
	bw_events_free(&evs);
	return n;
}

static void test_sighup_reload(void **state)
{
	const char *allow = "version: 1\nbuild_roots:\n  - exe: %s\n    cgroup: %s\n"
			    "network:\n  default: allow\n";
	const char *deny = "version: 1\nbuild_roots:\n  - exe: %s\n    cgroup: %s\n"
			   "network:\n  default: deny\n";
	char connect_cmd[256];
	int lfd, port = 0;
	pid_t agent;

	alarm(90);
	assert_int_equal(bw_ws_mkdir(&ws, "bin"), 0);
	assert_int_equal(copy_exe("/usr/bin/python3", p(0, "bin/buildpy")), 0);
	lfd = listener(&port);
	assert_true(lfd >= 0);
	snprintf(connect_cmd, sizeof(connect_cmd),
		 "import socket; socket.create_connection(('127.0.0.1', %d), 5).close()", port);
	assert_int_equal(bw_write_policy(&ws, NULL, allow, p(0, "bin/buildpy"), cg.rel), 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));

	/* 1: allowed */
	assert_int_equal(run_sh_in_cg(p(3, "bin/buildpy"), connect_cmd), 0);
	/* 2: reload to default deny: refused from then on */
	assert_int_equal(bw_write_policy(&ws, NULL, deny, p(0, "bin/buildpy"), cg.rel), 0);
	kill(agent, SIGHUP);
	assert_true(wait_for_text(p(2, "agent.log"), "policy reloaded", 10000));
	assert_int_equal(run_sh_in_cg(p(3, "bin/buildpy"), connect_cmd), 0);
	/* 3: a bad policy is refused with its position, and deny stays in force */
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nnetwork:\n  defualt: allow\n"), 0);
	kill(agent, SIGHUP);
	assert_true(wait_for_text(p(2, "agent.log"), "keeping the old one", 10000));
	assert_true(wait_for_text(p(2, "agent.log"), "policy.yaml:3:3: error: unknown key 'defualt'", 1000));
	assert_int_equal(run_sh_in_cg(p(3, "bin/buildpy"), connect_cmd), 0);
	usleep(200000);

	assert_int_equal(stop_agent(agent), 77);
	close(lfd);
	/* exactly the two connects after the good reload are violations */
	assert_int_equal(connect_violations(p(1, "ev.pb"), port), 2);
}

/* A reload switches the mode with the rules: the same refused connect goes through in
 * audit mode and is refused in the kernel (EPERM, nothing accepted) in enforce mode. */
static void test_sighup_mode_switch(void **state)
{
	const char *pol = "version: 1\nmode: %s\nbuild_roots:\n  - exe: %s\n    cgroup: %s\nnetwork:\n"
			  "  default: allow\n  deny: [\"127.0.0.1/32:%d\"]\n";
	static const char *const modes[] = { "audit", "enforce", "audit" };
	static const Buildwarden__V1__Action want[] = { BUILDWARDEN__V1__ACTION__AUDITED,
							 BUILDWARDEN__V1__ACTION__DENIED,
							 BUILDWARDEN__V1__ACTION__AUDITED };
	char connect_cmd[256];
	struct bw_events evs;
	int lfd, port = 0, c;
	size_t k = 0;
	pid_t agent;

	alarm(90);
	assert_int_equal(bw_ws_mkdir(&ws, "bin"), 0);
	assert_int_equal(copy_exe("/usr/bin/python3", p(0, "bin/buildpy")), 0);
	lfd = listener(&port);
	assert_true(lfd >= 0);
	/* the refused case must find nothing queued without waiting */
	assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	snprintf(connect_cmd, sizeof(connect_cmd),
		 "import socket; socket.create_connection(('127.0.0.1', %d), 5).close()", port);
	assert_int_equal(bw_write_policy(&ws, NULL, pol, modes[0], p(0, "bin/buildpy"), cg.rel, port), 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));
	for (size_t i = 0; i < 3; i++) {
		if (i) {
			assert_int_equal(bw_write_policy(&ws, NULL, pol, modes[i], p(0, "bin/buildpy"), cg.rel, port), 0);
			kill(agent, SIGHUP);
			/* the log says "policy reloaded" once per reload: wait for the i-th */
			for (int w = 0; w < 500; w++) {
				char *log = bw_read_file(p(2, "agent.log"), NULL);
				size_t n = 0;

				for (char *q = log; q && (q = strstr(q, "policy reloaded")); q++)
					n++;
				free(log);
				if (n >= i)
					break;
				usleep(20000);
			}
		}
		/* python exits 1 on the PermissionError of a refused connect */
		assert_int_equal(run_sh_in_cg(p(3, "bin/buildpy"), connect_cmd), i == 1 ? 1 : 0);
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (i == 1) {
			assert_true(c < 0); /* refused: nothing reached the listener */
		} else {
			assert_true(c >= 0);
			close(c);
		}
	}
	usleep(200000);
	assert_int_equal(stop_agent(agent), 77);
	close(lfd);
	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	for (size_t i = 0; i < evs.n; i++) {
		const Buildwarden__V1__Event *ev = evs.ev[i];

		if (ev->body_case != BUILDWARDEN__V1__EVENT__BODY_CONNECT || !ev->verdict->violation ||
		    ev->connect->port != (uint32_t)port)
			continue;
		assert_true(k < 3);
		assert_int_equal(ev->verdict->action, want[k]);
		k++;
	}
	assert_int_equal(k, 3);
	bw_events_free(&evs);
}

/* scope: host puts every process under the exec and network rules, not only the build. */
static void test_scope_host(void **state)
{
	char script[PATH_MAX * 2];
	struct bw_events evs;
	int lfd, port = 0;
	pid_t agent;

	alarm(60);
	assert_int_equal(bw_ws_mkdir(&ws, "drop"), 0);
	assert_int_equal(copy_exe("/bin/true", p(0, "drop/true")), 0);
	lfd = listener(&port);
	assert_true(lfd >= 0);
	assert_int_equal(bw_write_policy(&ws, NULL,
					 "version: 1\nexec:\n  scope: host\n  deny: [drop]\n"
					 "network:\n  scope: host\n  default: deny\n"
					 "  allow: [\"127.0.0.1/32:%d\"]\n",
					 port + 1),
			 0);
	agent = start_agent(p(0, "policy.yaml"), p(1, "ev.pb"), p(2, "agent.log"));
	assert_true(agent > 0);
	assert_true(wait_for_text(p(2, "agent.log"), "agent running", 10000));
	/* no build at all: an ordinary shell, outside; audit mode, so the exec and the
	 * connect both succeed (the shell's status says so) */
	snprintf(script, sizeof(script),
		 "%s && python3 -c \"import socket; socket.create_connection(('127.0.0.1', %d), 5)\"",
		 p(0, "drop/true"), port);
	assert_int_equal(run_sh("/bin/dash", script), 0);
	usleep(200000);
	assert_int_equal(stop_agent(agent), 77);
	close(lfd);
	assert_int_equal(bw_events_read(p(1, "ev.pb"), &evs), 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .filename = p(0, "drop/true"),
							      .in_build = BW_NO,
							      .violation = BW_YES }),
			 1);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
							      .port = (uint32_t)port,
							      .in_build = BW_NO,
							      .violation = BW_YES }),
			 1);
	bw_events_free(&evs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_build_roots_lineage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_root_needs_its_cgroup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_mode_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scope_host, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
