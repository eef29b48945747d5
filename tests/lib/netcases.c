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
	{ "names, and address rules that decide first",
	  "network:\n  scope: build\n  default: deny\n"
	  "  allow: [\"a.names.test:@1\", \"*.wild.names.test\", \"denied.names.test\",\n"
	  "          \"127.7.0.0/16:@2\"]\n"
	  "  deny: [\"127.8.0.0/16\"]\n" },
};
const size_t netcase_n_policies = sizeof(netcase_policies) / sizeof(netcase_policies[0]);

const struct netcase_row netcase_rows[] = {
	/* an any-port /8 rule for one port */
	{ 0, "127.0.0.9", NULL, 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@1" },
	{ 0, "127.0.0.9", NULL, 1, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* a longer any-port prefix */
	{ 0, "127.1.5.5", NULL, 1, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.1.0.0/16" },
	/* equal prefixes: the port-specific deny over the any-port allow */
	{ 0, "127.1.5.5", NULL, 2, BW_NET_DENY, BW_MATCH_DENY, "127.1.0.0/16:@3" },
	/* a longer prefix wins over a port-specific shorter one */
	{ 0, "127.1.2.3", NULL, 0, BW_NET_DENY, BW_MATCH_DENY, "127.1.2.0/24" },
	{ 0, "127.2.2.2", NULL, 1, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.2.2.0/24:@2" },
	{ 0, "127.2.2.2", NULL, 2, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	{ 0, "127.2.2.2", NULL, 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@1" },
	{ 0, "127.3.1.1", NULL, 0, BW_NET_DENY, BW_MATCH_DENY, "127.3.0.0/16:@1" },
	{ 0, "::1", NULL, 0, BW_NET_ALLOW, BW_MATCH_ALLOW, "[::1]:@1" },
	{ 0, "::1", NULL, 1, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* the same prefix allowed and denied: denied */
	{ 1, "127.4.1.1", NULL, 0, BW_NET_DENY, BW_MATCH_DENY, "127.4.0.0/16" },
	{ 1, "127.5.5.5", NULL, 1, BW_NET_DENY, BW_MATCH_DENY, "127.5.5.5" },
	{ 1, "127.5.5.6", NULL, 1, BW_NET_ALLOW, BW_MATCH_DEFAULT, NULL },
	{ 1, "127.5.5.5", NULL, 2, BW_NET_DENY, BW_MATCH_DENY, "127.5.5.5" },
	{ 1, "127.6.6.6", NULL, 2, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.0.0.0/8:@3" },
	{ 1, "::1", NULL, 0, BW_NET_DENY, BW_MATCH_DENY, "::1" },
	/* by name: the rule's port only */
	{ 2, "127.6.0.1", "a.names.test", 0, BW_NET_ALLOW, BW_MATCH_NAME, "a.names.test:@1" },
	{ 2, "127.6.0.1", "a.names.test", 1, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	{ 2, "127.6.0.2", "b.wild.names.test", 1, BW_NET_ALLOW, BW_MATCH_NAME, "*.wild.names.test" },
	/* a wildcard is names below it, not the name itself */
	{ 2, "127.6.0.4", "wild.names.test", 0, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* a deny by address is never undone by a name */
	{ 2, "127.8.0.1", "denied.names.test", 0, BW_NET_DENY, BW_MATCH_DENY, "127.8.0.0/16" },
	{ 2, "127.6.0.3", "other.names.test", 0, BW_NET_DENY, BW_MATCH_DEFAULT, NULL },
	/* an address rule decides before a name; where none matches, the name does */
	{ 2, "127.7.0.5", "c.wild.names.test", 1, BW_NET_ALLOW, BW_MATCH_ALLOW, "127.7.0.0/16:@2" },
	{ 2, "127.7.0.5", "c.wild.names.test", 2, BW_NET_ALLOW, BW_MATCH_NAME, "*.wild.names.test" },
};

const char *const netcase_zone[] = {
	"a.names.test. 300 IN A 127.6.0.1",
	"b.wild.names.test. 300 IN A 127.6.0.2",
	"other.names.test. 300 IN A 127.6.0.3",
	"wild.names.test. 300 IN A 127.6.0.4",
	"c.wild.names.test. 300 IN A 127.7.0.5",
	"denied.names.test. 300 IN A 127.8.0.1",
	NULL,
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
