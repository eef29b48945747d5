// SPDX-License-Identifier: MIT
/* Enforce mode against the real kernel (issue 7, rows "connect / UDP send" and "exec
 * of a binary from exec.deny"): the refused operation does not happen, and the
 * assertions are on the socket and the file system, not only on the events. Audit mode
 * runs the same cases and the operation does happen, reported. Every address is
 * loopback (127.0.0.x, ::ffff:127.0.0.x, ::1), with listeners this test owns. Build
 * steps re-exec this binary with --bw-helper. */
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
	bw_case_end(&S);
	return 0;
}

static long find_connect(const char *addr, uint16_t port, Buildwarden__V1__Protocol proto)
{
	for (long i = 0; (i = bw_ev_find(&S.evs, &(struct bw_filter){
							 .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
							 .address = addr, .port = port, .violation = BW_YES },
				     (size_t)i)) >= 0; i++)
		if (S.evs.ev[i]->connect->protocol == proto)
			return i;
	return -1;
}

static void check_action(long i, Buildwarden__V1__Action want, const char *what)
{
	char line[PATH_MAX * 2];

	CHECK(i >= 0, "no violation event for %s", what);
	CHECK(S.evs.ev[i]->verdict->action == want, "%s: action %d, expected %d: %s", what,
	      S.evs.ev[i]->verdict->action, want, bw_ev_describe(S.evs.ev[i], line, sizeof(line)));
}

/* runStart.layers says what enforce stops on this host. */
static bool layer_says(const char *prefix)
{
	long i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_START }, 0);

	if (i < 0)
		return false;
	for (size_t k = 0; k < S.evs.ev[i]->run_start->n_layers; k++)
		if (!strncmp(S.evs.ev[i]->run_start->layers[k], prefix, strlen(prefix)))
			return true;
	return false;
}

/* ---- network ------------------------------------------------------------- */

struct net_fixture {
	int tcp_ok, tcp_no, tcp6_no, udp_ok, udp_no;
	uint16_t p_tcp_ok, p_tcp_no, p_tcp6_no, p_udp_ok, p_udp_no;
	bool v6;
};

/* 127.0.0.1 allowed, 127.0.0.2 (and its v4-mapped spelling) and ::1 refused. */
static void net_setup(struct net_fixture *n)
{
	memset(n, 0, sizeof(*n));
	n->tcp_ok = loopnet_bind_any("127.0.0.1", SOCK_STREAM, &n->p_tcp_ok);
	n->tcp_no = loopnet_bind_any("127.0.0.2", SOCK_STREAM, &n->p_tcp_no);
	n->udp_ok = loopnet_bind_any("127.0.0.1", SOCK_DGRAM, &n->p_udp_ok);
	n->udp_no = loopnet_bind_any("127.0.0.2", SOCK_DGRAM, &n->p_udp_no);
	CHECK(n->tcp_ok >= 0 && n->tcp_no >= 0 && n->udp_ok >= 0 && n->udp_no >= 0,
	      "cannot bind loopback sockets: %s", strerror(errno));
	n->tcp6_no = loopnet_bind_any("::1", SOCK_STREAM, &n->p_tcp6_no);
	n->v6 = n->tcp6_no >= 0;
	if (!n->v6)
		printf("no IPv6 loopback here: the ::1 and ::ffff: cases are skipped\n");
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nnetwork:\n  scope: build\n  default: allow\n"
			      "  deny: [\"127.0.0.2/32\", \"::1/128\"]\n") == 0, "write policy");
}

static void net_close(struct net_fixture *n)
{
	int *fds[] = { &n->tcp_ok, &n->tcp_no, &n->tcp6_no, &n->udp_ok, &n->udp_no };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
}

static void net_script(const struct net_fixture *n, char *buf, size_t len)
{
	const char *me = bw_self_exe();
	int k;

	k = snprintf(buf, len,
		     "'%s' --bw-helper tcp v4ok 127.0.0.1 %u\n"
		     "'%s' --bw-helper tcp v4no 127.0.0.2 %u\n"
		     "'%s' --bw-helper udp u4ok 127.0.0.1 %u\n"
		     "'%s' --bw-helper udp u4no 127.0.0.2 %u\n",
		     me, n->p_tcp_ok, me, n->p_tcp_no, me, n->p_udp_ok, me, n->p_udp_no);
	if (n->v6)
		snprintf(buf + k, len - (size_t)k,
			 "'%s' --bw-helper tcp m4no ::ffff:127.0.0.2 %u\n"
			 "'%s' --bw-helper udp mu4no ::ffff:127.0.0.2 %u\n"
			 "'%s' --bw-helper tcp v6no ::1 %u\n",
			 me, n->p_tcp_no, me, n->p_udp_no, me, n->p_tcp6_no);
}

static void test_net_enforce(void **state)
{
	struct net_fixture n;
	char script[4096];

	(void)state;
	alarm(bw_run_timeout() + 20);
	net_setup(&n);
	net_script(&n, script, sizeof(script));
	bw_case_run_sh(&S, "enforce", script);

	CHECK(bw_case_saw(&S, "v4ok", "ok"), "the allowed connect to 127.0.0.1 failed");
	CHECK(bw_case_saw(&S, "u4ok", "ok"), "the allowed send to 127.0.0.1 failed");
	CHECK(bw_case_saw(&S, "v4no", "EPERM"), "the connect to 127.0.0.2 was not refused with EPERM");
	CHECK(bw_case_saw(&S, "u4no", "EPERM"), "the UDP send to 127.0.0.2 was not refused with EPERM");
	/* on the sockets: what was allowed arrived, nothing refused did */
	CHECK(loopnet_accepted(n.tcp_ok) == 1, "the allowed connect did not reach 127.0.0.1");
	CHECK(loopnet_received(n.udp_ok) == 1, "the allowed datagram did not reach 127.0.0.1");
	CHECK(loopnet_accepted(n.tcp_no) == 0, "a refused connect reached 127.0.0.2");
	CHECK(loopnet_received(n.udp_no) == 0, "a refused datagram reached 127.0.0.2");
	check_action(find_connect("127.0.0.2", n.p_tcp_no, BUILDWARDEN__V1__PROTOCOL__TCP),
		     BUILDWARDEN__V1__ACTION__DENIED, "the connect to 127.0.0.2");
	check_action(find_connect("127.0.0.2", n.p_udp_no, BUILDWARDEN__V1__PROTOCOL__UDP),
		     BUILDWARDEN__V1__ACTION__DENIED, "the UDP send to 127.0.0.2");
	if (n.v6) {
		CHECK(bw_case_saw(&S, "m4no", "EPERM"), "the connect to ::ffff:127.0.0.2 was not refused with EPERM");
		CHECK(bw_case_saw(&S, "mu4no", "EPERM"), "the send to ::ffff:127.0.0.2 was not refused with EPERM");
		CHECK(bw_case_saw(&S, "v6no", "EPERM"), "the connect to ::1 was not refused with EPERM");
		CHECK(loopnet_accepted(n.tcp6_no) == 0, "a refused connect reached ::1");
		check_action(find_connect("::ffff:127.0.0.2", n.p_tcp_no, BUILDWARDEN__V1__PROTOCOL__TCP),
			     BUILDWARDEN__V1__ACTION__DENIED, "the connect to ::ffff:127.0.0.2");
		check_action(find_connect("::1", n.p_tcp6_no, BUILDWARDEN__V1__PROTOCOL__TCP),
			     BUILDWARDEN__V1__ACTION__DENIED, "the connect to ::1");
	}
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	CHECK(layer_says("enforce connect/send: stopped"), "runStart.layers does not say connects are stopped");
	CHECK(S.res.err && strstr(S.res.err, "enforce connect/send: stopped"),
	      "the summary does not say connects are stopped");
	net_close(&n);
}

static void test_net_audit(void **state)
{
	struct net_fixture n;
	char script[4096];

	(void)state;
	alarm(bw_run_timeout() + 20);
	net_setup(&n);
	net_script(&n, script, sizeof(script));
	bw_case_run_sh(&S, "audit", script);

	CHECK(bw_case_saw(&S, "v4no", "ok") && bw_case_saw(&S, "u4no", "ok"), "audit mode refused a connect or send");
	CHECK(loopnet_accepted(n.tcp_no) == (n.v6 ? 2u : 1u), "audit: the connects to 127.0.0.2 did not all arrive");
	CHECK(loopnet_received(n.udp_no) == (n.v6 ? 2u : 1u), "audit: the datagrams to 127.0.0.2 did not all arrive");
	check_action(find_connect("127.0.0.2", n.p_tcp_no, BUILDWARDEN__V1__PROTOCOL__TCP),
		     BUILDWARDEN__V1__ACTION__AUDITED, "the connect to 127.0.0.2");
	check_action(find_connect("127.0.0.2", n.p_udp_no, BUILDWARDEN__V1__PROTOCOL__UDP),
		     BUILDWARDEN__V1__ACTION__AUDITED, "the UDP send to 127.0.0.2");
	if (n.v6) {
		CHECK(bw_case_saw(&S, "v6no", "ok") && bw_case_saw(&S, "m4no", "ok"), "audit mode refused a v6 connect");
		CHECK(loopnet_accepted(n.tcp6_no) == 1, "audit: the connect to ::1 did not arrive");
		check_action(find_connect("::1", n.p_tcp6_no, BUILDWARDEN__V1__PROTOCOL__TCP),
			     BUILDWARDEN__V1__ACTION__AUDITED, "the connect to ::1");
	}
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	CHECK(!layer_says("enforce "), "audit mode's runStart claims enforcement");
	net_close(&n);
}

/* A process outside the build is not refused: the network scope is the build. */
struct outside_connect {
	const char *ws;
	uint16_t port;
};

static int outsider_connect(void *arg)
{
	const struct outside_connect *o = arg;
	struct sockaddr_storage ss;
	char p[PATH_MAX], buf[16];
	socklen_t sl;
	int fd, rc = 50;

	snprintf(p, sizeof(p), "%s/ctl/go", o->ws);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return 100;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	if (loopnet_addr("127.0.0.2", o->port, &ss, &sl) == 0) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		rc = s >= 0 && connect(s, (struct sockaddr *)&ss, sl) == 0 ? 0 : 10 + errno;
		if (s >= 0)
			close(s);
	}
	snprintf(p, sizeof(p), "%s/ctl/done", o->ws);
	fd = open(p, O_WRONLY);
	if (fd < 0)
		return 101;
	if (write(fd, "done\n", 5) != 5)
		rc = 102;
	close(fd);
	return rc;
}

static void test_net_outsider_not_refused(void **state)
{
	struct outside_connect oc = { .ws = S.ws.path };
	char script[1024];
	int lfd, st;
	pid_t pid;

	(void)state;
	alarm(bw_run_timeout() + 20);
	lfd = loopnet_bind_any("127.0.0.2", SOCK_STREAM, &oc.port);
	CHECK(lfd >= 0, "cannot listen on 127.0.0.2");
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: enforce\nnetwork:\n  scope: build\n  default: allow\n"
			      "  deny: [\"127.0.0.2/32\"]\n") == 0, "write policy");
	CHECK(bw_ws_mkfifo(&S.ws, "ctl/go") == 0 && bw_ws_mkfifo(&S.ws, "ctl/done") == 0, "mkfifo");
	pid = bw_fork_outsider(outsider_connect, &oc);
	CHECK(pid > 0, "fork outsider");
	/* the outsider connects while the enforcing sensor runs */
	snprintf(script, sizeof(script), "printf 'go\\n' > '%s'\nread ack < '%s'\n", wsp("ctl/go"),
		 wsp("ctl/done"));
	bw_case_run_sh(&S, "enforce", script);
	st = bw_wait_bounded(pid, 5);
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the outsider's connect to 127.0.0.2 failed (status %d): outside the build it must not be refused", st);
	CHECK(loopnet_accepted(lfd) == 1, "the outsider's connect did not arrive");
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0 (nothing in the build broke the policy)",
	      S.res.exit_code);
	close(lfd);
}

/* ---- exec ---------------------------------------------------------------- */

static void exec_setup(void)
{
	char cmd[PATH_MAX * 2];

	CHECK(bw_ws_mkdir(&S.ws, "deny") == 0, "mkdir deny");
	snprintf(cmd, sizeof(cmd), "cp /usr/bin/touch '%s'", wsp("deny/touch"));
	CHECK(system(cmd) == 0, "copy touch into the deny tree");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nexec:\n  scope: build\n  deny: [\"%s\"]\n",
			      wsp("deny")) == 0, "write policy");
}

static void exec_script(char *buf, size_t len)
{
	snprintf(buf, len, "'%s' --bw-helper spawn drop '%s' '%s'\n", bw_self_exe(), wsp("deny/touch"),
		 wsp("marker"));
}

static long find_exec(void)
{
	return bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						       .filename = wsp("deny/touch"),
						       .violation = BW_YES }, 0);
}

static void test_exec_enforce(void **state)
{
	char script[PATH_MAX * 3];
	struct stat st;

	(void)state;
	alarm(bw_run_timeout() + 20);
	exec_setup();
	exec_script(script, sizeof(script));
	bw_case_run_sh(&S, "enforce", script);
	CHECK(stat(wsp("marker"), &st) != 0 && errno == ENOENT,
	      "the denied binary ran: its marker file exists");
	CHECK(bw_case_saw(&S, "drop", "signal 9"), "the caller did not see its child die by SIGKILL");
	check_action(find_exec(), BUILDWARDEN__V1__ACTION__KILLED, "the exec from the deny tree");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	CHECK(layer_says("enforce exec of a binary from exec.deny: stopped"),
	      "runStart.layers does not say denied execs are stopped");
}

static void test_exec_audit(void **state)
{
	char script[PATH_MAX * 3];
	struct stat st;

	(void)state;
	alarm(bw_run_timeout() + 20);
	exec_setup();
	exec_script(script, sizeof(script));
	bw_case_run_sh(&S, "audit", script);
	CHECK(stat(wsp("marker"), &st) == 0, "audit mode: the binary did not run (no marker)");
	CHECK(bw_case_saw(&S, "drop", "exit 0"), "audit mode: the binary did not exit 0");
	check_action(find_exec(), BUILDWARDEN__V1__ACTION__AUDITED, "the exec from the deny tree");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_net_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_outsider_not_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_audit, setup, teardown),
	};
	int rc;

	if (argc >= 6 && !strcmp(argv[1], "--bw-helper") &&
	    (!strcmp(argv[2], "tcp") || !strcmp(argv[2], "udp")))
		return loopnet_helper_net(!strcmp(argv[2], "udp"), argv[3], argv[4], argv[5]);
	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "spawn"))
		return bw_helper_spawn(argv[3], argv + 4);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
