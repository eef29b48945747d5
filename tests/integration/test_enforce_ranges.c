// SPDX-License-Identifier: MIT
/* Issue 10, pain 5, in the real kernel: port ranges and lists in network rules, and an
 * exec.allow subtree inside an exec.deny tree, enforced. A connect to a port inside the
 * range or the list goes through, one outside is refused with EPERM; a binary (and a #!
 * script) in the allowed subtree runs, one beside it in the denied tree is killed
 * (refused). Loopback only, listeners this test owns. Build steps re-exec this binary
 * with --bw-helper. Before issue 10 the policy itself was refused (exit 78). */
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

/* ---- port ranges and lists --------------------------------------------------- */

static void test_port_range_and_list(void **state)
{
	const char *me = bw_self_exe();
	uint16_t p_in = 0, p_out = 0, p_list = 0;
	long i;
	int l_in, l_out, l_list;
	char script[PATH_MAX * 4];

	(void)state;
	alarm(bw_run_timeout() + 20);
	l_in = loopnet_bind_any("127.0.0.1", SOCK_STREAM, &p_in);
	l_list = loopnet_bind_any("127.0.0.1", SOCK_STREAM, &p_list);
	/* a port outside [p_in-1, p_in+1] and not p_list: rebind until it is */
	for (int tries = 0; tries < 50; tries++) {
		l_out = loopnet_bind_any("127.0.0.1", SOCK_STREAM, &p_out);
		if (l_out < 0 || ((p_out + 1 < p_in || p_out > p_in + 1) && p_out != p_list))
			break;
		close(l_out);
		l_out = -1;
	}
	CHECK(l_in >= 0 && l_out >= 0 && l_list >= 0 && p_in > 1,
	      "cannot bind loopback listeners: %s", strerror(errno));
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: enforce\nnetwork:\n  scope: build\n  default: deny\n"
			      "  allow:\n"
			      "    - {to: \"127.0.0.1/32:%u-%u\", name: range}\n"
			      "    - \"127.0.0.1:1,%u\"\n",
			      p_in - 1, p_in + 1, p_list) == 0, "write policy");
	snprintf(script, sizeof(script),
		 "'%s' --bw-helper tcp in 127.0.0.1 %u\n"
		 "'%s' --bw-helper tcp list 127.0.0.1 %u\n"
		 "'%s' --bw-helper tcp out 127.0.0.1 %u\n",
		 me, p_in, me, p_list, me, p_out);
	bw_case_run_sh(&S, "enforce", script);
	CHECK(bw_case_saw(&S, "in", "ok"), "the connect to a port inside the range %u-%u failed", p_in - 1, p_in + 1);
	CHECK(bw_case_saw(&S, "list", "ok"), "the connect to port %u of the list failed", p_list);
	CHECK(bw_case_saw(&S, "out", "EPERM"), "the connect to port %u (outside the range and list) was not refused with EPERM", p_out);
	CHECK(loopnet_accepted(l_in) == 1, "the allowed connect did not arrive (range)");
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						    .address = "127.0.0.1", .port = p_in,
						    .violation = BW_NO }, 0);
	CHECK(i >= 0 && !strcmp(S.evs.ev[i]->verdict->rule, "range"),
	      "the allowed connect does not name the allow rule 'range'");
	CHECK(loopnet_accepted(l_list) == 1, "the allowed connect did not arrive (list)");
	CHECK(loopnet_accepted(l_out) == 0, "a refused connect arrived");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	close(l_in);
	close(l_out);
	close(l_list);
}

/* An outsider under `network.scope: host`: a deny by port range applies to it too. Only
 * 127.0.0.2 and three ports around this test's listener are denied, so nothing else on
 * the host is touched. */
struct outside_connect {
	const char *ws;
	uint16_t p_in, p_out;
};

static int outsider_connect_ports(void *arg)
{
	const struct outside_connect *o = arg;
	uint16_t ports[2] = { o->p_in, o->p_out };
	int res[2] = { -1, -1 }, fd;
	char p[PATH_MAX], buf[16];

	snprintf(p, sizeof(p), "%s/ctl/go", o->ws);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return 100;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		int s;

		if (loopnet_addr("127.0.0.2", ports[i], &ss, &sl))
			return 103;
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		res[i] = s >= 0 && connect(s, (struct sockaddr *)&ss, sl) == 0 ? 0 : errno;
		if (s >= 0)
			close(s);
	}
	snprintf(p, sizeof(p), "%s/ctl/done", o->ws);
	fd = open(p, O_WRONLY);
	if (fd < 0 || write(fd, "done\n", 5) != 5)
		return 101;
	close(fd);
	/* 0: inside the range refused with EPERM, outside it connected */
	return (res[0] == EPERM ? 0 : 1) | (res[1] == 0 ? 0 : 2);
}

static void test_port_range_outsider_host_scope(void **state)
{
	struct outside_connect oc = { .ws = S.ws.path };
	int l_in, l_out = -1, st;
	char script[1024];
	pid_t pid;

	(void)state;
	alarm(bw_run_timeout() + 20);
	l_in = loopnet_bind_any("127.0.0.2", SOCK_STREAM, &oc.p_in);
	for (int tries = 0; tries < 50; tries++) {
		l_out = loopnet_bind_any("127.0.0.2", SOCK_STREAM, &oc.p_out);
		if (l_out < 0 || oc.p_out + 1 < oc.p_in || oc.p_out > oc.p_in + 1)
			break;
		close(l_out);
		l_out = -1;
	}
	CHECK(l_in >= 0 && l_out >= 0 && oc.p_in > 1, "cannot listen on 127.0.0.2");
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: enforce\nnetwork:\n  scope: host\n  default: allow\n"
			      "  deny: [{to: \"127.0.0.2/32:%u-%u\", name: range}]\n",
			      oc.p_in - 1, oc.p_in + 1) == 0, "write policy");
	CHECK(bw_ws_mkfifo(&S.ws, "ctl/go") == 0 && bw_ws_mkfifo(&S.ws, "ctl/done") == 0, "mkfifo");
	pid = bw_fork_outsider(outsider_connect_ports, &oc);
	CHECK(pid > 0, "fork outsider");
	snprintf(script, sizeof(script), "printf 'go\\n' > '%s'\nread ack < '%s'\n", wsp("ctl/go"),
		 wsp("ctl/done"));
	bw_case_run_sh(&S, "enforce", script);
	st = bw_wait_bounded(pid, 5);
	CHECK(st >= 0 && WIFEXITED(st) && !(WEXITSTATUS(st) & 1),
	      "the outsider's connect to port %u (inside the denied range) was not refused with EPERM (status %d)",
	      oc.p_in, st);
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the outsider's connect to port %u (outside the range) failed (status %d)", oc.p_out, st);
	CHECK(loopnet_accepted(l_in) == 0, "a refused connect arrived");
	CHECK(loopnet_accepted(l_out) == 1, "the allowed connect did not arrive");
	close(l_in);
	close(l_out);
}

/* ---- exec.allow ---------------------------------------------------------------- */

static void test_exec_allow_subtree(void **state)
{
	char cmd[PATH_MAX * 4], script[PATH_MAX * 6];
	const char *me = bw_self_exe();
	struct stat st;
	long i;
	FILE *f;

	(void)state;
	alarm(bw_run_timeout() + 20);
	CHECK(bw_ws_mkdir(&S.ws, "deny") == 0 && bw_ws_mkdir(&S.ws, "deny/go-build1") == 0,
	      "mkdir");
	snprintf(cmd, sizeof(cmd), "cp /usr/bin/touch '%s' && cp /usr/bin/touch '%s'",
		 wsp("deny/touch"), wsp("deny/go-build1/touch"));
	CHECK(system(cmd) == 0, "copy touch into the trees");
	f = fopen(wsp("deny/go-build1/s.sh"), "w");
	CHECK(f, "script");
	fprintf(f, "#!/bin/sh\n/usr/bin/touch '%s'\n", wsp("marker_script"));
	fclose(f);
	CHECK(chmod(wsp("deny/go-build1/s.sh"), 0755) == 0, "chmod");
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: enforce\nexec:\n  scope: build\n"
			      "  deny: [{path: \"%s\", name: drop-zone}]\n"
			      "  allow: [{path: \"%s\", name: go-build}]\n",
			      wsp("deny"), wsp("deny/go-build1")) == 0, "write policy");
	snprintf(script, sizeof(script),
		 "'%s' --bw-helper spawn allowed '%s' '%s'\n"
		 "'%s' --bw-helper spawn script '%s'\n"
		 "'%s' --bw-helper spawn denied '%s' '%s'\n",
		 me, wsp("deny/go-build1/touch"), wsp("marker_ok"), me, wsp("deny/go-build1/s.sh"),
		 me, wsp("deny/touch"), wsp("marker_no"));
	bw_case_run_sh(&S, "enforce", script);
	CHECK(bw_case_saw(&S, "allowed", "exit 0") && stat(wsp("marker_ok"), &st) == 0,
	      "the binary in the exec.allow subtree did not run");
	CHECK(bw_case_saw(&S, "script", "exit 0") && stat(wsp("marker_script"), &st) == 0,
	      "the #! script in the exec.allow subtree did not run");
	CHECK(bw_case_saw(&S, "denied", "signal 9") && stat(wsp("marker_no"), &st) != 0,
	      "the binary beside the subtree, in the denied tree, was not killed");
	/* the events name the rules by their names: the exception that allowed, the deny */
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						    .filename = wsp("deny/go-build1/touch"),
						    .violation = BW_NO }, 0);
	CHECK(i >= 0 && !strcmp(S.evs.ev[i]->verdict->rule, "go-build"),
	      "the allowed exec does not name the exec.allow rule 'go-build'");
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						    .filename = wsp("deny/touch"),
						    .violation = BW_YES }, 0);
	CHECK(i >= 0 && !strcmp(S.evs.ev[i]->verdict->rule, "drop-zone"),
	      "the denied exec does not name the exec.deny rule 'drop-zone'");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_port_range_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_range_outsider_host_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_allow_subtree, setup, teardown),
	};
	int rc;

	if (argc >= 6 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "tcp"))
		return loopnet_helper_net(false, argv[3], argv[4], argv[5]);
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
