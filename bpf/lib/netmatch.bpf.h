/* The network rule decision, apart from the cgroup hooks that ask for it, so that a test
 * program (bpf/tests/logic.bpf.c) runs this very code with BPF_PROG_TEST_RUN. */
#ifndef BW_NETMATCH_BPF_H
#define BW_NETMATCH_BPF_H

#include "lib/maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10

struct net_verdict {
	__u32 rule_index; /* in the list matched names, 0 for the default */
	__u8 action; /* enum bw_net_action */
	__u8 matched; /* enum bw_net_match */
};

/* IPv4 goes in as ::ffff:a.b.c.d, the form IPv4 rules are stored in: an IPv6 socket's
 * v4-mapped destination then meets the same rules as an IPv4 socket's. Addresses are in
 * network byte order, as struct bpf_sock_addr holds them. */
static __always_inline void net_key_addr4(struct bw_net_key *key, __u32 ip4)
{
	__builtin_memset(key->addr, 0, 10);
	key->addr[10] = 0xff;
	key->addr[11] = 0xff;
	__builtin_memcpy(&key->addr[12], &ip4, 4);
}

static __always_inline void net_key_addr6(struct bw_net_key *key, const __u32 ip6[4])
{
	__builtin_memcpy(key->addr, ip6, 16);
}

/* Two lookups: the destination's port, then port 0 (rules for any port). The longer
 * prefix wins; on a tie the port-specific rule does, as in policy__net_verdict. */
static __always_inline const struct bw_net_value *net_match(struct bw_net_key *key, __u16 port_be,
							 __u32 gen)
{
	const struct bw_net_value *specific, *any;

	key->gen = gen;
	key->prefixlen = BW_NET_KEY_FIXED_BITS + 128;
	__builtin_memcpy(key->port_be, &port_be, 2);
	specific = bpf_map_lookup_elem(&net_rules, key);
	key->port_be[0] = 0;
	key->port_be[1] = 0;
	any = bpf_map_lookup_elem(&net_rules, key);
	if (!specific)
		return any;
	if (!any)
		return specific;
	return any->prefixlen > specific->prefixlen ? any : specific;
}

/* An address the agent's resolver answered for an allowed name, with the rule's port or
 * any port, still within its answer's TTL (sensor_abi.h, dns_allow). */
static __always_inline const struct bw_dns_value *net_dns_match(const struct bw_net_key *key,
								__u16 port_be)
{
	const struct bw_dns_value *v;
	struct bw_dns_key dk = {};
	__u64 now = bpf_ktime_get_ns();

	__builtin_memcpy(dk.addr, key->addr, 16);
	__builtin_memcpy(dk.port_be, &port_be, 2);
	v = bpf_map_lookup_elem(&dns_allow, &dk);
	if (v && v->expires_ns > now)
		return v;
	dk.port_be[0] = 0;
	dk.port_be[1] = 0;
	v = bpf_map_lookup_elem(&dns_allow, &dk);
	if (v && v->expires_ns > now)
		return v;
	return NULL;
}

/* key->addr is set (net_key_addr4/6); key's other fields are overwritten. An address
 * rule decides first: a deny rule is never undone by a name, and a name only turns the
 * default into an allow (docs/policy.md, "Network rules by name"). */
static __always_inline void net_decide(struct bw_net_key *key, __u16 port_be,
				       const struct bw_config *cfg, struct net_verdict *v)
{
	const struct bw_net_value *rule = net_match(key, port_be, cfg->gen);

	if (!rule) {
		const struct bw_dns_value *dns = net_dns_match(key, port_be);

		if (dns) {
			v->action = BW_NET_ALLOW;
			v->matched = BW_MATCH_NAME;
			v->rule_index = dns->rule_index;
			return;
		}
		v->action = (cfg->flags & BW_CFG_NET_DEFAULT_DENY) ? BW_NET_DENY : BW_NET_ALLOW;
		v->matched = BW_MATCH_DEFAULT;
		v->rule_index = 0;
		return;
	}
	v->action = rule->action;
	v->matched = rule->action == BW_NET_DENY ? BW_MATCH_DENY : BW_MATCH_ALLOW;
	v->rule_index = rule->rule_index;
}

#endif
