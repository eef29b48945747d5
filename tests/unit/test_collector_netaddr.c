// SPDX-License-Identifier: GPL-2.0
/* The collector's --listen parser and peer formatter, table-driven: every form the
 * docs promise (IPv4:PORT, [IPv6]:PORT, port 0), and the ways a flag goes wrong. A
 * good address must also print back as the text it came from. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "collector/netaddr.h"

static const struct {
	const char *spec;
	int family;
	int port;
	const char *text; /* netaddr__format of the result */
} good[] = {
	{ "127.0.0.1:7400", AF_INET, 7400, "127.0.0.1:7400" },
	{ "0.0.0.0:0", AF_INET, 0, "0.0.0.0:0" },
	{ "10.1.2.3:65535", AF_INET, 65535, "10.1.2.3:65535" },
	{ "1.2.3.4:007", AF_INET, 7, "1.2.3.4:7" },
	{ "[::1]:7400", AF_INET6, 7400, "[::1]:7400" },
	{ "[::]:0", AF_INET6, 0, "[::]:0" },
	{ "[2001:db8::42]:443", AF_INET6, 443, "[2001:db8::42]:443" },
	{ "[::ffff:192.0.2.1]:1", AF_INET6, 1, "[::ffff:192.0.2.1]:1" },
	{ "[2001:0db8:0000:0000:0000:0000:0000:0001]:9", AF_INET6, 9, "[2001:db8::1]:9" },
};

static const struct {
	const char *spec;
	const char *why;
} bad[] = {
	{ "", "empty" },
	{ "127.0.0.1", "no port" },
	{ "127.0.0.1:", "empty port" },
	{ ":7400", "no host" },
	{ "127.0.0.1:65536", "port above 65535" },
	{ "127.0.0.1:-1", "negative port" },
	{ "127.0.0.1:80x", "trailing text" },
	{ "127.0.0.1:0x50", "hex port" },
	{ "127.0.0.1:99999999999999999999999", "port overflows long" },
	{ "localhost:7400", "a host name: nothing resolves" },
	{ "256.1.1.1:80", "not an IPv4 literal" },
	{ "1.2.3.4.5:80", "five octets" },
	{ "::1:7400", "IPv6 without brackets" },
	{ "[::1]7400", "no colon after the bracket" },
	{ "[::1]", "bracketed, no port" },
	{ "[::1]:", "bracketed, empty port" },
	{ "[::1:7400", "no closing bracket" },
	{ "[]:7400", "empty brackets" },
	{ "[127.0.0.1]:80", "IPv4 in brackets" },
	{ "[fe80::1%eth0]:80", "zone ids are not literals inet_pton takes" },
	{ "[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa]:1", "host longer than any literal" },
};

static void test_collector_netaddr__good(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t sl = 0;
		char text[NETADDR_TEXT_MAX];

		if (netaddr__parse_listen(good[i].spec, &ss, &sl) != 0)
			fail_msg("'%s' refused", good[i].spec);
		assert_int_equal(ss.ss_family, good[i].family);
		assert_int_equal(sl, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
							      : sizeof(struct sockaddr_in6));
		assert_int_equal(netaddr__port(&ss), good[i].port);
		assert_string_equal(netaddr__format(&ss, text, sizeof(text)), good[i].text);
	}
}

static void test_collector_netaddr__bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t sl = 0;

		if (netaddr__parse_listen(bad[i].spec, &ss, &sl) != -EINVAL)
			fail_msg("'%s' (%s) accepted", bad[i].spec, bad[i].why);
	}
}

/* A peer's text is never cut (INET6_ADDRSTRLEN covers the longest literal), and an
 * address of another family prints as a placeholder. */
static void test_collector_netaddr__format_edges(void **state)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
	char text[NETADDR_TEXT_MAX];

	assert_true(sizeof("[]:65535") - 1 + INET6_ADDRSTRLEN <= NETADDR_TEXT_MAX);
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(65535);
	memset(&a->sin6_addr, 0xff, sizeof(a->sin6_addr));
	assert_string_equal(netaddr__format(&ss, text, sizeof(text)),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	ss.ss_family = AF_UNIX;
	assert_string_equal(netaddr__format(&ss, text, sizeof(text)), "?");
	assert_int_equal(netaddr__port(&ss), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_netaddr__good),
		cmocka_unit_test(test_collector_netaddr__bad),
		cmocka_unit_test(test_collector_netaddr__format_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
