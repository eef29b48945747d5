// SPDX-License-Identifier: MIT
/* The network decision of include/netmatch.h, in the kernel, on the table of cases the
 * agent's copy is unit-tested with (tests/lib/netcases.c, tests/unit/test_draft.c): per
 * policy of the table, one `run --mode enforce` whose build connects to every row's
 * loopback listener; each connect's outcome (EPERM or connected) must be what the row
 * says and what draft_net__decide (what `policy test` uses) says. Rows by name are
 * looked up through the agent's resolver (this test's DNS server, tests/lib/loopnet.c,
 * its upstream) and replayed with that name. Build steps re-exec this binary with
 * --bw-helper. Loopback only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include "draft/netdraft.h"
#include "lib/bwcase.h"
#include "lib/bwtest.h"
#include "lib/loopnet.h"
#include "lib/netcases.h"
#include "policy/policy.h"
#include "sensor_abi.h"

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

/* --bw-helper connect ROW ADDR PORT: "CONN ROW ok|EPERM|error" */
static int helper_connect(char **a)
{
	printf("CONN %s %s\n", a[0], loopnet_connect(a[1], (uint16_t)atoi(a[2])));
	fflush(stdout);
	return 0;
}

/* --bw-helper named ROW NAME ADDR PORT: looks NAME up (at 127.0.0.1:53, which the agent
 * redirects to its resolver), checks the answer is ADDR, connects: as connect, or
 * "CONN ROW <what failed>" */
static int helper_named(char **a)
{
	char addr[64];
	const char *e = loopnet_resolve(a[1], addr, sizeof(addr));

	if (!e && strcmp(addr, a[2]))
		e = "wronganswer";
	printf("CONN %s %s\n", a[0], e ? e : loopnet_connect(addr, (uint16_t)atoi(a[3])));
	fflush(stdout);
	return 0;
}

#define LISTENERS_MAX 64

static void test_kernel_agrees(void **state)
{
	int fds[LISTENERS_MAX], nfds = 0;
	uint16_t ports[NETCASE_PORTS], dns_port = 0;
	char upstream[64];
	bool v6 = true;
	pid_t dns;

	(void)state;
	alarm(netcase_n_policies * (bw_run_timeout() + 20) + 30);
	/* three ports, free on 127.0.0.1; the rows' addresses listen on the same numbers */
	for (int i = 0; i < NETCASE_PORTS; i++) {
		ports[i] = 0;
		fds[nfds] = loopnet_bind("127.0.0.1", SOCK_STREAM, &ports[i]);
		CHECK(fds[nfds] >= 0, "cannot bind a port: %s", strerror(errno));
		nfds++;
	}
	for (size_t i = 0; i < netcase_n_rows; i++) {
		const struct netcase_row *r = &netcase_rows[i];
		uint16_t port = ports[r->port];
		int fd = loopnet_bind(r->addr, SOCK_STREAM, &port);

		if (fd < 0 && strchr(r->addr, ':')) {
			v6 = false;
			continue;
		}
		/* bound already by an earlier row: that listener serves */
		if (fd >= 0) {
			CHECK(nfds < LISTENERS_MAX, "too many listeners");
			fds[nfds++] = fd;
		}
	}
	if (!v6)
		printf("no IPv6 loopback here: the ::1 rows are skipped\n");
	/* the upstream of the agent's resolver, for the rows by name */
	dns = loopnet_dns_start(netcase_zone, NULL, &dns_port);
	CHECK(dns > 0, "cannot start the test's DNS server: %s", strerror((int)-dns));
	snprintf(upstream, sizeof(upstream), "127.0.0.1:%u", dns_port);

	for (unsigned k = 0; k < netcase_n_policies; k++) {
		char net[1024], yaml[1400], pol[PATH_MAX], script[8192];
		const char *me = bw_self_exe();
		struct bw_policy *p = NULL;
		struct draft_net *dn = NULL;
		struct bw_diags d;
		size_t used = 0;

		netcase_policy_text(k, ports, net, sizeof(net));
		snprintf(yaml, sizeof(yaml), "version: 1\nmode: enforce\n%s", net);
		CHECK(bw_write_policy(&S.ws, "net.yaml", "%s", yaml) == 0, "write policy");
		memset(&d, 0, sizeof(d));
		CHECK(policy__parse(yaml, strlen(yaml), "net.yaml", "/", BW_POLICY_NO_FS, &p, &d) == 0,
		      "policy %u does not parse", k);
		CHECK(draft_net__new(p, &dn) == 0, "draft_net__new");
		script[0] = '\0';
		for (size_t i = 0; i < netcase_n_rows; i++) {
			const struct netcase_row *r = &netcase_rows[i];

			if (r->policy != k || (!v6 && strchr(r->addr, ':')))
				continue;
			if (r->name)
				used += (size_t)snprintf(script + used, sizeof(script) - used,
							 "'%s' --bw-helper named %zu %s %s %u\n", me, i,
							 r->name, r->addr, ports[r->port]);
			else
				used += (size_t)snprintf(script + used, sizeof(script) - used,
							 "'%s' --bw-helper connect %zu %s %u\n", me, i,
							 r->addr, ports[r->port]);
			CHECK(used < sizeof(script), "script too long");
		}
		{
			const char *args[] = { "run", "--policy", bw_ws_path(&S.ws, "net.yaml", pol, sizeof(pol)),
					       "--dns-upstream", upstream, "--events", S.events, "--",
					       "/bin/sh", "-c", script, NULL };

			snprintf(S.events, sizeof(S.events), "%s/events-%u.pb", S.ws.path, ++S.runs);
			S.ran = bw_run_logged(args, bw_run_timeout() + 20, 0, &S.res, S.cmdline,
					      sizeof(S.cmdline)) == 0;
			CHECK(S.ran && !S.res.timed_out, "cannot run %s", S.cmdline);
		}
		for (size_t i = 0; i < netcase_n_rows; i++) {
			const struct netcase_row *r = &netcase_rows[i];
			struct draft_verdict v;
			uint8_t addr[16];
			char want[64];
			bool refused;

			if (r->policy != k || (!v6 && strchr(r->addr, ':')))
				continue;
			snprintf(want, sizeof(want), "CONN %zu EPERM\n", i);
			refused = strstr(S.res.out, want) != NULL;
			snprintf(want, sizeof(want), "CONN %zu ok\n", i);
			CHECK(refused || strstr(S.res.out, want), "row %zu (%s port %u): the connect neither "
			      "succeeded nor was refused with EPERM", i, r->addr, ports[r->port]);
			CHECK(refused == (r->action == BW_NET_DENY),
			      "row %zu (policy %u, %s port %u): the kernel %s, the table says %s", i, k,
			      r->addr, ports[r->port], refused ? "refused" : "allowed",
			      r->action == BW_NET_DENY ? "deny" : "allow");
			CHECK(draft_net__addr(r->addr, addr) == 0, "address");
			draft_net__decide(dn, addr, ports[r->port], r->name, true, &v);
			CHECK(refused == (v.action == BW_NET_DENY),
			      "row %zu (%s port %u): the kernel %s, draft_net__decide says %s", i, r->addr,
			      ports[r->port], refused ? "refused" : "allowed",
			      v.action == BW_NET_DENY ? "deny" : "allow");
		}
		draft_net__free(dn);
		policy__free(p);
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	loopnet_stop(dns);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_agrees, setup, teardown),
	};
	int rc;

	if (argc >= 6 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "connect"))
		return helper_connect(argv + 3);
	if (argc >= 7 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "named"))
		return helper_named(argv + 3);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
