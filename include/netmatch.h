/* The network rule decision, one copy for the kernel and the agent: bpf/net.bpf.c decides
 * every connect and send with it, and `buildwarden policy test` (user/draft/netmatch.c)
 * replays recorded connects through it, so a draft policy is judged by the very code that
 * would enforce it. Only the lookups differ: the kernel's are its maps (net_rules, an LPM
 * trie; dns_allow, a hash), the agent's a table built the way the loader fills them.
 *
 * The includer defines, before including this header:
 *   NETMATCH_FN                 the qualifiers of the functions below (BPF: static
 *                               __always_inline)
 *   NETMATCH_RULE_LOOKUP(env, key)  const struct bw_net_value * for struct bw_net_key *key,
 *                               the longest prefix match of net_rules, or NULL
 *   NETMATCH_DNS_LOOKUP(env, key)   const struct bw_dns_value * for struct bw_dns_key *key,
 *                               the exact match of dns_allow, or NULL
 *   NETMATCH_NOW(env)           __u64, CLOCK_MONOTONIC in ns (as bpf_ktime_get_ns)
 * env is the includer's own (a map set, a table); the kernel's ignores it.
 * Like sensor_abi.h, this header includes nothing: __u8.. come from the includer. */
#ifndef BUILDWARDEN_NETMATCH_H
#define BUILDWARDEN_NETMATCH_H

#if !defined(NETMATCH_FN) || !defined(NETMATCH_RULE_LOOKUP) || !defined(NETMATCH_DNS_LOOKUP) || \
	!defined(NETMATCH_NOW)
#error "define NETMATCH_FN, NETMATCH_RULE_LOOKUP, NETMATCH_DNS_LOOKUP and NETMATCH_NOW first"
#endif

struct net_verdict {
	__u32 rule_index; /* in the list matched names, 0 for the default */
	__u8 action; /* enum bw_net_action */
	__u8 matched; /* enum bw_net_match */
};

/* IPv4 goes in as ::ffff:a.b.c.d, the form IPv4 rules are stored in: an IPv6 socket's
 * v4-mapped destination then meets the same rules as an IPv4 socket's. Addresses are in
 * network byte order, as struct bpf_sock_addr holds them. */
NETMATCH_FN void net_key_addr4(struct bw_net_key *key, __u32 ip4)
{
	__builtin_memset(key->addr, 0, 10);
	key->addr[10] = 0xff;
	key->addr[11] = 0xff;
	__builtin_memcpy(&key->addr[12], &ip4, 4);
}

NETMATCH_FN void net_key_addr6(struct bw_net_key *key, const __u32 ip6[4])
{
	__builtin_memcpy(key->addr, ip6, 16);
}

/* One rule as the loader puts it in net_rules (user/sensor/netrules.c), and as the
 * agent's table holds it: prefix_len in the v6 space (an IPv4 /8 is 104), port in host
 * byte order, 0 for any port. */
NETMATCH_FN void net_rule_entry(struct bw_net_key *key, struct bw_net_value *val,
				const __u8 addr[16], __u32 prefix_len, __u16 port, __u32 action,
				__u32 rule_index, __u32 gen)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->prefixlen = BW_NET_KEY_FIXED_BITS + prefix_len;
	key->gen = (__u8)gen;
	key->port_be[0] = (__u8)(port >> 8);
	key->port_be[1] = (__u8)(port & 0xff);
	__builtin_memcpy(key->addr, addr, 16);
	__builtin_memset(val, 0, sizeof(*val));
	val->action = action;
	val->rule_index = rule_index;
	val->prefixlen = key->prefixlen;
}

/* One address the resolver answered for a name rule (sensor__dns_allow). */
NETMATCH_FN void net_dns_key(struct bw_dns_key *key, const __u8 addr[16], __u16 port)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->addr, addr, 16);
	key->port_be[0] = (__u8)(port >> 8);
	key->port_be[1] = (__u8)(port & 0xff);
}

/* Two lookups: the destination's port, then port 0 (rules for any port). The longer
 * prefix wins; on a tie the port-specific rule does. */
NETMATCH_FN const struct bw_net_value *net_match(void *env, struct bw_net_key *key, __u16 port_be,
						 __u32 gen)
{
	const struct bw_net_value *specific, *any;

	key->gen = (__u8)gen;
	key->prefixlen = BW_NET_KEY_FIXED_BITS + 128;
	__builtin_memcpy(key->port_be, &port_be, 2);
	specific = NETMATCH_RULE_LOOKUP(env, key);
	key->port_be[0] = 0;
	key->port_be[1] = 0;
	any = NETMATCH_RULE_LOOKUP(env, key);
	if (!specific)
		return any;
	if (!any)
		return specific;
	return any->prefixlen > specific->prefixlen ? any : specific;
}

/* An address the agent's resolver answered for an allowed name, with the rule's port or
 * any port, still within its answer's TTL (sensor_abi.h, dns_allow). */
NETMATCH_FN const struct bw_dns_value *net_dns_match(void *env, const struct bw_net_key *key,
						     __u16 port_be)
{
	const struct bw_dns_value *v;
	struct bw_dns_key dk = {};
	__u64 now = NETMATCH_NOW(env);

	__builtin_memcpy(dk.addr, key->addr, 16);
	__builtin_memcpy(dk.port_be, &port_be, 2);
	v = NETMATCH_DNS_LOOKUP(env, &dk);
	if (v && v->expires_ns > now)
		return v;
	dk.port_be[0] = 0;
	dk.port_be[1] = 0;
	v = NETMATCH_DNS_LOOKUP(env, &dk);
	if (v && v->expires_ns > now)
		return v;
	return 0;
}

/* key->addr is set (net_key_addr4/6); key's other fields are overwritten. cfg_flags and
 * gen are sensor_config's. An address rule decides first: a deny rule is never undone by
 * a name, and a name only turns the default into an allow (docs/policy.md, "Network
 * rules by name"). */
NETMATCH_FN void net_decide(void *env, struct bw_net_key *key, __u16 port_be, __u32 cfg_flags,
			    __u32 gen, struct net_verdict *v)
{
	const struct bw_net_value *rule = net_match(env, key, port_be, gen);

	if (!rule) {
		const struct bw_dns_value *dns = net_dns_match(env, key, port_be);

		if (dns) {
			v->action = BW_NET_ALLOW;
			v->matched = BW_MATCH_NAME;
			v->rule_index = dns->rule_index;
			return;
		}
		v->action = (cfg_flags & BW_CFG_NET_DEFAULT_DENY) ? BW_NET_DENY : BW_NET_ALLOW;
		v->matched = BW_MATCH_DEFAULT;
		v->rule_index = 0;
		return;
	}
	v->action = (__u8)rule->action;
	v->matched = rule->action == BW_NET_DENY ? BW_MATCH_DENY : BW_MATCH_ALLOW;
	v->rule_index = rule->rule_index;
}

#endif /* BUILDWARDEN_NETMATCH_H */
