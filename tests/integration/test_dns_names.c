// SPDX-License-Identifier: MIT
/* Network rules by name (issue 10, item 1) against the real kernel: the build's DNS,
 * sent to 127.0.0.1:53 or [::1]:53, is redirected to the agent's resolver, which asks
 * this test's own DNS server (a child of the test, built with ldns, on loopback,
 * answering loopback addresses) and lets the answered addresses of allowed names
 * through. Asserted on the events (ConnectBody.name, the verdict) and on the listeners
 * (what was accepted). Nothing is ever sent to a non-loopback address: the build's
 * client sends its queries to a loopback address it names, never through
 * /etc/resolv.conf, and the agent's upstream is this test's server. Build steps re-exec
 * this binary with --bw-helper. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

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

/* ---- the test's DNS server (tests/lib/loopnet.c: a child process) ------------- */

/* Its zone: every address is loopback. */
static const char *const zone[] = {
	"ok.test. 300 IN A 127.0.0.2",
	"a.wild.test. 300 IN A 127.0.0.3",
	"b.c.wild.test. 300 IN A 127.0.0.3",
	"wild.test. 300 IN A 127.0.0.7",
	"bad.test. 300 IN A 127.0.0.4",
	"short.test. 1 IN A 127.0.0.5",
	"alias.test. 300 IN CNAME target.cdn.test.",
	"target.cdn.test. 300 IN A 127.0.0.6",
	"v6.test. 300 IN AAAA ::1",
	"bad6.test. 300 IN AAAA ::1",
	"!silent.test.", /* never answered: the agent's upstream times out */
	NULL,
};

struct dns_fixture {
	uint16_t dns_port;
	pid_t server;
	/* listeners the build connects to */
	int l_ok, l_ok_other, l_wild, l_wroot, l_bad, l_short, l_alias, l_v6, l_bad6;
	uint16_t p_ok, p_ok_other, p_wild, p_wroot, p_bad, p_short, p_alias, p_v6, p_bad6;
	bool v6;
};

static void dns_setup(struct dns_fixture *d, const char *mode)
{
	memset(d, 0, sizeof(*d));
	/* the server's UDP and TCP sockets share a port: the agent asks both on one */
	d->server = loopnet_dns_start(zone, bw_ws_tmp(&S.ws, "dns-queries"), &d->dns_port);
	CHECK(d->server > 0, "cannot start the test's DNS server: %s", strerror((int)-d->server));
	d->l_ok = loopnet_bind("127.0.0.2", SOCK_STREAM, &d->p_ok);
	d->l_ok_other = loopnet_bind("127.0.0.2", SOCK_STREAM, &d->p_ok_other);
	d->l_wild = loopnet_bind("127.0.0.3", SOCK_STREAM, &d->p_wild);
	d->l_wroot = loopnet_bind("127.0.0.7", SOCK_STREAM, &d->p_wroot);
	d->l_bad = loopnet_bind("127.0.0.4", SOCK_STREAM, &d->p_bad);
	d->l_short = loopnet_bind("127.0.0.5", SOCK_STREAM, &d->p_short);
	d->l_alias = loopnet_bind("127.0.0.6", SOCK_STREAM, &d->p_alias);
	CHECK(d->l_ok >= 0 && d->l_ok_other >= 0 && d->l_wild >= 0 && d->l_wroot >= 0 &&
	      d->l_bad >= 0 && d->l_short >= 0 && d->l_alias >= 0,
	      "cannot bind loopback listeners: %s", strerror(errno));
	d->l_v6 = loopnet_bind("::1", SOCK_STREAM, &d->p_v6);
	d->l_bad6 = loopnet_bind("::1", SOCK_STREAM, &d->p_bad6);
	d->v6 = d->l_v6 >= 0 && d->l_bad6 >= 0;
	if (!d->v6)
		printf("no IPv6 loopback here: the ::1 cases are skipped\n");
	/* bad6.test has no rule: its ::1 is the same address as v6.test's, allowed on
	 * any port; so v6.test's rule names a port, and bad6.test's connect uses another */
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: %s\nnetwork:\n  scope: build\n  default: deny\n"
			      "  allow:\n"
			      "    - \"ok.test:%u\"\n"
			      "    - \"*.wild.test\"\n"
			      "    - \"short.test\"\n"
			      "    - \"ALIAS.test\"\n"
			      "    - \"v6.test:%u\"\n",
			      mode, d->p_ok, d->p_v6) == 0, "write policy");
}

static void dns_close(struct dns_fixture *d)
{
	int *fds[] = { &d->l_ok, &d->l_ok_other, &d->l_wild, &d->l_wroot, &d->l_bad,
		       &d->l_short, &d->l_alias, &d->l_v6, &d->l_bad6 };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	loopnet_stop(d->server);
}

static void run_build(const struct dns_fixture *d, const char *script)
{
	char policy[PATH_MAX], upstream[64];
	const char *args[] = { "run", "--policy", bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy)),
			       "--dns-upstream", upstream, "--events", S.events, "--",
			       "/bin/sh", "-c", script, NULL };

	snprintf(upstream, sizeof(upstream), "127.0.0.1:%u", d->dns_port);
	snprintf(S.events, sizeof(S.events), "%s/events-%u.pb", S.ws.path, ++S.runs);
	S.dumped = false;
	S.ran = bw_run_logged(args, bw_run_timeout() + 40, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish in time");
	if (S.have_evs)
		bw_events_free(&S.evs);
	S.have_evs = true;
	CHECK(bw_events_read(S.events, &S.evs) == 0, "events file %s does not parse: %s", S.events,
	      S.evs.err);
}

static bool saw(const char *tag, const char *value)
{
	char want[160];

	snprintf(want, sizeof(want), "RESULT %s %s\n", tag, value);
	return S.res.out && strstr(S.res.out, want);
}

/* The nth (from 0) connect event to addr:port, or NULL. */
static const Buildwarden__V1__Event *find_connect(const char *addr, uint16_t port, unsigned nth)
{
	const struct bw_filter f = { .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT, .address = addr,
				     .port = port };
	long i = -1;

	for (unsigned k = 0; k <= nth; k++)
		if ((i = bw_ev_find(&S.evs, &f, (size_t)(i + 1))) < 0)
			return NULL;
	return S.evs.ev[i];
}

static void check_connect_nth(const char *addr, uint16_t port, unsigned nth, const char *name,
			      bool violation, Buildwarden__V1__Action action, const char *what)
{
	const Buildwarden__V1__Event *ev = find_connect(addr, port, nth);

	CHECK(ev, "no connect event for %s (%s:%u)", what, addr, port);
	CHECK(ev->connect->name && !strcmp(ev->connect->name, name),
	      "%s: connect.name is '%s', expected '%s'", what,
	      ev->connect->name ? ev->connect->name : "", name);
	CHECK(ev->verdict && ev->verdict->violation == violation, "%s: violation is %d, expected %d",
	      what, ev->verdict ? ev->verdict->violation : -1, violation);
	if (violation)
		CHECK(ev->verdict->action == action, "%s: action %d, expected %d", what,
		      ev->verdict->action, action);
}

static void check_connect(const char *addr, uint16_t port, const char *name, bool violation,
			  Buildwarden__V1__Action action, const char *what)
{
	check_connect_nth(addr, port, 0, name, violation, action, what);
}

/* ---- the build's client (--bw-helper) ---------------------------------------- */

/* One query for name (A, or AAAA when v6) to server:53 over UDP (an unconnected socket,
 * or one connected first as glibc does: either way the reply must come from server:53)
 * or TCP; the first address of the answer into addr. NULL, or a short word saying what
 * failed. */
static const char *resolve(const char *server, const char *proto, const char *name, bool v6,
			   char *addr, size_t addrlen)
{
	bool tcp = !strcmp(proto, "tcp"), connected = !strcmp(proto, "cudp");
	struct sockaddr_storage ss, from;
	socklen_t sl, fl = sizeof(from);
	struct timeval tv = { .tv_sec = 15 };
	ldns_pkt *q = NULL, *r = NULL;
	uint8_t *wire = NULL, buf[65536];
	size_t wlen, n = 0;
	const char *res = "noanswer";
	int fd;

	if (loopnet_addr(server, 53, &ss, &sl))
		return "notloopback";
	if (ldns_pkt_query_new_frm_str(&q, name, v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A,
				       LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
		return "query";
	ldns_pkt_set_random_id(q);
	if (ldns_pkt2wire(&wire, q, &wlen) != LDNS_STATUS_OK)
		return "query";
	fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket";
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (tcp) {
		uint8_t hdr[2] = { (uint8_t)(wlen >> 8), (uint8_t)wlen };

		if (connect(fd, (struct sockaddr *)&ss, sl) || write(fd, hdr, 2) != 2 ||
		    write(fd, wire, wlen) != (ssize_t)wlen || loopnet_read_full(fd, hdr, 2)) {
			res = "tcpio";
			goto out;
		}
		n = (size_t)hdr[0] << 8 | hdr[1];
		if (loopnet_read_full(fd, buf, n)) {
			res = "tcpio";
			goto out;
		}
	} else {
		ssize_t got;

		if (connected && connect(fd, (struct sockaddr *)&ss, sl)) {
			res = "connect";
			goto out;
		}
		if ((connected ? send(fd, wire, wlen, 0)
			       : sendto(fd, wire, wlen, 0, (struct sockaddr *)&ss, sl)) != (ssize_t)wlen) {
			res = errno == EPERM ? "sendEPERM" : "send";
			goto out;
		}
		got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (got <= 0) {
			res = "timeout";
			goto out;
		}
		n = (size_t)got;
		/* the reply must look as if the server asked answered it */
		if (fl != sl || memcmp(&from, &ss, sl) != 0) {
			res = "badsource";
			goto out;
		}
	}
	if (ldns_wire2pkt(&r, buf, n) != LDNS_STATUS_OK || ldns_pkt_id(r) != ldns_pkt_id(q)) {
		res = "badreply";
		goto out;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(r)); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(r), i);
		ldns_rr_type t = ldns_rr_get_type(rr);

		if (t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA) {
			inet_ntop(t == LDNS_RR_TYPE_A ? AF_INET : AF_INET6,
				  ldns_rdf_data(ldns_rr_rdf(rr, 0)), addr, (socklen_t)addrlen);
			res = NULL;
			break;
		}
	}
out:
	close(fd);
	free(wire);
	ldns_pkt_free(q);
	ldns_pkt_free(r);
	return res;
}

static const char *connect_to(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, rc;

	if (loopnet_addr(addr, port, &ss, &sl))
		return "notloopback";
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket";
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	close(fd);
	return rc == 0 ? "ok" : errno == EPERM ? "EPERM" : "error";
}

/* --bw-helper resolve TAG SERVER udp|cudp|tcp 4|6 NAME PORT: looks NAME up at SERVER:53 and
 * connects to the answer on PORT: "RESULT TAG ok ADDR", "RESULT TAG EPERM ADDR", or
 * "RESULT TAG <what failed>". */
static int helper_resolve(char **a)
{
	char addr[INET6_ADDRSTRLEN] = "";
	const char *e = resolve(a[1], a[2], a[4], !strcmp(a[3], "6"), addr, sizeof(addr));

	if (e)
		printf("RESULT %s %s\n", a[0], e);
	else
		printf("RESULT %s %s %s\n", a[0], connect_to(addr, (uint16_t)atoi(a[5])), addr);
	fflush(stdout);
	return 0;
}

/* --bw-helper expire TAG NAME PORT: looks NAME up (UDP, 127.0.0.1:53), connects at once,
 * then again every 200 ms until refused: "RESULT TAG first ok", then "RESULT TAG
 * refused-after N" (tenths of a second) or "RESULT TAG never". */
static int helper_expire(char **a)
{
	char addr[INET6_ADDRSTRLEN] = "";
	const char *e = resolve("127.0.0.1", "udp", a[1], false, addr, sizeof(addr));
	struct timespec t0, t;

	if (e) {
		printf("RESULT %s %s\n", a[0], e);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("RESULT %s first %s\n", a[0], connect_to(addr, (uint16_t)atoi(a[2])));
	for (int i = 0; i < 300; i++) {
		usleep(200 * 1000);
		if (!strcmp(connect_to(addr, (uint16_t)atoi(a[2])), "EPERM")) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			printf("RESULT %s refused-after %ld\n", a[0],
			       (long)((t.tv_sec - t0.tv_sec) * 10 + (t.tv_nsec - t0.tv_nsec) / 100000000));
			fflush(stdout);
			return 0;
		}
	}
	printf("RESULT %s never\n", a[0]);
	fflush(stdout);
	return 0;
}

/* ---- cases ------------------------------------------------------------------- */

static void names_script(const struct dns_fixture *d, char *buf, size_t len)
{
	const char *me = bw_self_exe();
	int k = snprintf(buf, len,
			 "'%s' --bw-helper resolve ok4 127.0.0.1 udp 4 ok.test %u\n"
			 "'%s' --bw-helper resolve okt 127.0.0.1 tcp 4 ok.test %u\n"
			 "'%s' --bw-helper resolve okport 127.0.0.53 cudp 4 ok.test %u\n"
			 "'%s' --bw-helper resolve w1 127.0.0.1 udp 4 a.wild.test %u\n"
			 "'%s' --bw-helper resolve w2 127.0.0.1 tcp 4 b.c.wild.test %u\n"
			 "'%s' --bw-helper resolve wroot 127.0.0.1 udp 4 wild.test %u\n"
			 "'%s' --bw-helper resolve bad 127.0.0.1 udp 4 bad.test %u\n"
			 "'%s' --bw-helper resolve alias 127.0.0.1 udp 4 alias.test %u\n",
			 me, d->p_ok, me, d->p_ok, me, d->p_ok_other, me, d->p_wild, me, d->p_wild,
			 me, d->p_wroot, me, d->p_bad, me, d->p_alias);

	if (d->v6)
		snprintf(buf + k, len - (size_t)k,
			 "'%s' --bw-helper resolve v6 ::1 udp 6 v6.test %u\n"
			 "'%s' --bw-helper resolve v6t ::1 tcp 6 v6.test %u\n"
			 "'%s' --bw-helper resolve bad6 ::1 cudp 6 bad6.test %u\n",
			 me, d->p_v6, me, d->p_v6, me, d->p_bad6);
}

static void check_server_asked(void)
{
	char *count = bw_read_file(bw_ws_tmp(&S.ws, "dns-queries"), NULL);

	CHECK(count && atoi(count) > 0, "the test's DNS server was never asked");
	free(count);
}

static void test_names_enforce(void **state)
{
	struct dns_fixture d;
	char script[8192];

	(void)state;
	alarm(bw_run_timeout() + 60);
	dns_setup(&d, "enforce");
	names_script(&d, script, sizeof(script));
	run_build(&d, script);

	check_server_asked();
	CHECK(saw("ok4", "ok 127.0.0.2"), "ok.test (UDP DNS) was not reached");
	CHECK(saw("okt", "ok 127.0.0.2"), "ok.test (TCP DNS) was not reached");
	CHECK(loopnet_accepted(d.l_ok) == 2, "the listener of ok.test did not accept both connects");
	/* the rule names a port: the same address on another port is refused */
	CHECK(saw("okport", "EPERM 127.0.0.2"), "ok.test on a port its rule does not name was not refused");
	CHECK(loopnet_accepted(d.l_ok_other) == 0, "a refused connect reached 127.0.0.2 on another port");
	CHECK(saw("w1", "ok 127.0.0.3") && saw("w2", "ok 127.0.0.3"),
	      "names below *.wild.test were not reached");
	CHECK(loopnet_accepted(d.l_wild) == 2, "the listener of *.wild.test did not accept both connects");
	CHECK(saw("wroot", "EPERM 127.0.0.7"), "wild.test itself (not below *.wild.test) was not refused");
	CHECK(loopnet_accepted(d.l_wroot) == 0, "a refused connect reached wild.test's listener");
	CHECK(saw("bad", "EPERM 127.0.0.4"), "bad.test (no rule) was not refused with EPERM");
	CHECK(loopnet_accepted(d.l_bad) == 0, "a refused connect reached bad.test's listener");
	CHECK(saw("alias", "ok 127.0.0.6"), "alias.test (a CNAME to another name) was not reached");
	CHECK(loopnet_accepted(d.l_alias) == 1, "the listener of alias.test did not accept");

	check_connect("127.0.0.2", d.p_ok, "ok.test", false, 0, "ok.test");
	check_connect("127.0.0.3", d.p_wild, "a.wild.test", false, 0, "a.wild.test");
	/* one address for two names: each connect names the one the build had looked up */
	check_connect_nth("127.0.0.3", d.p_wild, 1, "b.c.wild.test", false, 0, "b.c.wild.test");
	check_connect("127.0.0.4", d.p_bad, "bad.test", true, BUILDWARDEN__V1__ACTION__DENIED, "bad.test");
	check_connect("127.0.0.7", d.p_wroot, "wild.test", true, BUILDWARDEN__V1__ACTION__DENIED,
		      "wild.test");
	check_connect("127.0.0.2", d.p_ok_other, "ok.test", true, BUILDWARDEN__V1__ACTION__DENIED,
		      "ok.test on another port");
	check_connect("127.0.0.6", d.p_alias, "alias.test", false, 0, "alias.test");
	if (d.v6) {
		CHECK(saw("v6", "ok ::1"), "v6.test (AAAA, UDP DNS to ::1) was not reached");
		CHECK(saw("v6t", "ok ::1"), "v6.test (AAAA, TCP DNS to ::1) was not reached");
		CHECK(loopnet_accepted(d.l_v6) == 2, "the listener of v6.test did not accept both connects");
		CHECK(saw("bad6", "EPERM ::1"), "bad6.test (no rule) was not refused");
		CHECK(loopnet_accepted(d.l_bad6) == 0, "a refused connect reached bad6.test's listener");
		check_connect("::1", d.p_v6, "v6.test", false, 0, "v6.test");
		check_connect_nth("::1", d.p_v6, 1, "v6.test", false, 0, "v6.test over TCP DNS");
		check_connect("::1", d.p_bad6, "bad6.test", true, BUILDWARDEN__V1__ACTION__DENIED,
			      "bad6.test");
	}
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	dns_close(&d);
}

static void test_names_audit(void **state)
{
	struct dns_fixture d;
	char script[4096];
	const char *me = bw_self_exe();

	(void)state;
	alarm(bw_run_timeout() + 60);
	dns_setup(&d, "audit");
	snprintf(script, sizeof(script),
		 "'%s' --bw-helper resolve ok4 127.0.0.1 udp 4 ok.test %u\n"
		 "'%s' --bw-helper resolve bad 127.0.0.1 tcp 4 bad.test %u\n"
		 "'%s' --bw-helper resolve silent 127.0.0.1 udp 4 silent.test %u\n",
		 me, d.p_ok, me, d.p_bad, me, d.p_ok);
	run_build(&d, script);
	/* an upstream that does not answer: the build gets SERVFAIL (no address), and the
	 * summary says how many queries went unanswered */
	CHECK(saw("silent", "noanswer"), "the unanswered lookup did not end in a reply without an address");
	CHECK(S.res.err && strstr(S.res.err, "resolver: 1 of 3 queries not answered by the upstream"),
	      "the summary does not count the unanswered query");

	CHECK(saw("ok4", "ok 127.0.0.2"), "ok.test was not reached");
	CHECK(saw("bad", "ok 127.0.0.4"), "audit mode refused bad.test");
	CHECK(loopnet_accepted(d.l_ok) == 1 && loopnet_accepted(d.l_bad) == 1, "audit: the connects did not all arrive");
	check_connect("127.0.0.2", d.p_ok, "ok.test", false, 0, "ok.test");
	check_connect("127.0.0.4", d.p_bad, "bad.test", true, BUILDWARDEN__V1__ACTION__AUDITED, "bad.test");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code,
	      EXIT_VIOLATION);
	dns_close(&d);
}

/* short.test's answer lives 1 s: its address is refused again once that is over. */
static void test_names_ttl(void **state)
{
	struct dns_fixture d;
	char script[4096];
	const char *out, *p;

	(void)state;
	alarm(bw_run_timeout() + 90);
	dns_setup(&d, "enforce");
	snprintf(script, sizeof(script), "'%s' --bw-helper expire ttl short.test %u\n", bw_self_exe(),
		 d.p_short);
	run_build(&d, script);

	CHECK(saw("ttl", "first ok"), "short.test was not reached within its TTL");
	out = S.res.out;
	p = out ? strstr(out, "RESULT ttl refused-after ") : NULL;
	CHECK(p, "short.test's address was never refused after its TTL");
	/* never before the TTL (1 s): an expiry early would refuse what the answer allows */
	CHECK(atoi(p + strlen("RESULT ttl refused-after ")) >= 10,
	      "short.test's address was refused before its 1 s TTL was over");
	CHECK(loopnet_accepted(d.l_short) >= 1, "the listener of short.test never accepted");
	dns_close(&d);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_ttl, setup, teardown),
	};
	int rc;

	if (argc >= 9 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "resolve"))
		return helper_resolve(argv + 3);
	if (argc >= 6 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "expire"))
		return helper_expire(argv + 3);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
