/* `buildwarden agent` under systemd's Type=notify: READY=1 reaches $NOTIFY_SOCKET only
 * once the sensor is attached (after "agent running"), so a runner ordered after the
 * unit never starts a job unseen. Runs the real binary, as root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"

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

static int stop_agent(pid_t pid)
{
	int st = -1;

	kill(pid, SIGTERM);
	for (int i = 0; i < 1500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			bw_untrack_pid(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	return -1;
}

static void test_ready_after_attach(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[64] = "", *log;
	struct pollfd pfd;
	pid_t agent;
	ssize_t n;
	int fd;

	alarm(120);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\n"), 0);
	assert_true(strlen(p(0, "notify.sock")) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, p(0, "notify.sock"));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	agent = fork();
	if (agent == 0) {
		int lfd = open(p(1, "agent.log"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (lfd < 0 || dup2(lfd, 2) < 0)
			_exit(120);
		setenv("NOTIFY_SOCKET", p(0, "notify.sock"), 1);
		execl(bw_bin(), bw_bin(), "agent", "--policy", p(2, "policy.yaml"), (char *)NULL);
		_exit(127);
	}
	assert_true(agent > 0);
	bw_track_pid(agent);

	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 30000), 1);
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_string_equal(msg, "READY=1");
	/* ready means attached: the start-up line was written before */
	log = bw_read_file(p(1, "agent.log"), NULL);
	assert_non_null(log);
	if (!strstr(log, "agent running"))
		fail_msg("READY=1 before the agent was running; log:\n%s", log);
	free(log);
	assert_int_equal(stop_agent(agent), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_after_attach, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
