/* The cases: precedence of prefixes, ports and lists, as docs/policy.md ("Precedence")
 * states it, on loopback addresses only. */
#include "lib/netcases.h"

#include <stdio.h>

#include <linux/types.h>

#include "sensor_abi.h"

const struct netcase_policy netcase_policies[] = {
	{ "default deny, prefixes and ports",
	  "network:\n  scope: build\n  default: deny\n"
	  "  allow: [\"127.0.0.0/8:@1\", \"127.1.0.0/16\", \"127.2.2.0/24:@2\", \"[::1]:@1\"]\n"
	  "  deny: [\"127.1.2.0/24\", \"127.1.0.0/16:@3\", \"127.3.0.0/16:@1\"]\n" },
	{ "default allow, the same prefix in both lists",
	  "network:\n  scope: build\n  default: allow\n"
	  "  allow: [\"127.4.0.0/16\", \"127.0.0.0/8:@3\"]\n"
	  "  deny: [\"127.4.0.0/16\", \"127.5.5.5\", \"::1\"]\n" },
};
const size_t netcase_n_policies = sizeof(netcase_policies) / sizeof(netcase_policies[0]);

const struct netcase_row netcase_rows[] = {
	/* an any-port /8 rule for one port */
	{ 0, "127.0.0.9", 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@1" },
	{ 0, "127.0.0.9", 1, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* a longer any-port prefix */
	{ 0, "127.1.5.5", 1, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.1.0.0/16" },
	/* equal prefixes: the port-specific deny over the any-port allow */
	{ 0, "127.1.5.5", 2, BW_NET_DENY, BW_MATCH_DENY, "127.1.0.0/16:@3" },
	/* a longer prefix wins over a port-specific shorter one */
	{ 0, "127.1.2.3", 0, BW_NET_DENY, BW_MATCH_DENY, "127.1.2.0/24" },
	{ 0, "127.2.2.2", 1, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.2.2.0/24:@2" },
	{ 0, "127.2.2.2", 2, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	{ 0, "127.2.2.2", 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@1" },
	{ 0, "127.3.1.1", 0, BW_NET_DENY, BW_MATCH_DENY, "127.3.0.0/16:@1" },
	{ 0, "::1", 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "[::1]:@1" },
	{ 0, "::1", 1, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* the same prefix allowed and denied: denied */
	{ 1, "127.4.1.1", 0, BW_NET_DENY, BW_MATCH_DENY, "127.4.0.0/16" },
	{ 1, "127.5.5.5", 1, BW_NET_DENY, BW_MATCH_DENY, "127.5.5.5" },
	{ 1, "127.5.5.6", 1, BW_NET_ALLOW, BW_MATCH_DEFAULT, NULL },
	{ 1, "127.5.5.5", 2, BW_NET_DENY, BW_MATCH_DENY, "127.5.5.5" },
	{ 1, "127.6.6.6", 2, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@3" },
	{ 1, "::1", 0, BW_NET_DENY, BW_MATCH_DENY, "::1" },
};
const size_t netcase_n_rows = sizeof(netcase_rows) / sizeof(netcase_rows[0]);

/* text with each "@N" replaced by ports[N - 1] */
static void fill_ports(const char *text, const uint16_t ports[NETCASE_PORTS], char *buf, size_t len)
{
	size_t k = 0;

	for (const char *s = text; *s && k + 8 < len; s++) {
		if (s[0] == '@' && s[1] >= '1' && s[1] < '1' + NETCASE_PORTS) {
			k += (size_t)snprintf(buf + k, len - k, "%u", ports[s[1] - '1']);
			s++;
		} else {
			buf[k++] = *s;
		}
	}
	buf[k] = '\0';
}

void netcase_policy_text(unsigned policy, const uint16_t ports[NETCASE_PORTS], char *buf, size_t len)
{
	fill_ports(netcase_policies[policy].yaml, ports, buf, len);
}

void netcase_rule_text(const struct netcase_row *r, const uint16_t ports[NETCASE_PORTS], char *buf,
		       size_t len)
{
	if (!r->rule)
		buf[0] = '\0';
	else
		fill_ports(r->rule, ports, buf, len);
}
