/* Network rules, decided in the kernel at connect() and sendmsg() on the cgroup v2 root:
 * the build's connects are recorded, refused ones reported, and in enforce mode refused
 * with EPERM before a packet leaves. */
#include "lib/common.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_UDP 17

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

/* Returns 1 to let the connect proceed, 0 to refuse it. */
static __always_inline int net_check(struct bpf_sock_addr *ctx, __u16 family, bool is_sendmsg)
{
	const struct bw_config *cfg = config_get();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct bw_net_value *rule;
	struct bw_connect_event *ev;
	struct bw_net_key key = {};
	struct bw_proc *proc;
	__u32 proc_flags = 0;
	__u16 port_be;
	__u8 action;
	bool violation, enforce;

	if (!cfg)
		return 1;
	proc = proc_lookup(tgid);
	if (proc)
		proc_flags = proc->flags;
	if (!(proc_flags & BW_PROC_IN_BUILD) && !(cfg->flags & BW_CFG_NET_SCOPE_HOST))
		return 1;

	port_be = (__u16)ctx->user_port;
	if (family == AF_INET) {
		__u32 ip4 = ctx->user_ip4;

		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip4, 4);
	} else {
		__u32 w[4];

		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(key.addr, w, 16);
	}
	rule = net_match(&key, port_be, cfg->gen);
	if (rule)
		action = rule->action;
	else
		action = (cfg->flags & BW_CFG_NET_DEFAULT_DENY) ? BW_NET_DENY : BW_NET_ALLOW;
	violation = action == BW_NET_DENY;
	enforce = violation && (cfg->flags & BW_CFG_ENFORCE_NET);

	/* Allowed datagrams are not recorded one by one: a connect is, a send is not. */
	if (violation || !is_sendmsg) {
		ev = event_reserve(sizeof(*ev), BW_EV_CONNECT);
		if (ev) {
			ev->pid = tgid;
			ev->uid = bpf_get_current_uid_gid();
			ev->proc_flags = proc_flags;
			ev->family = family;
			ev->port = __builtin_bswap16(port_be);
			__builtin_memcpy(ev->addr, family == AF_INET ? &key.addr[12] : key.addr,
					 family == AF_INET ? 4 : 16);
			ev->protocol = ctx->protocol == IPPROTO_UDP ? BW_PROTO_UDP : BW_PROTO_TCP;
			ev->action = action;
			ev->enforced = enforce;
			ev->matched = rule ? (rule->action == BW_NET_DENY ? BW_MATCH_DENY : BW_MATCH_ALLOW)
					   : BW_MATCH_DEFAULT;
			ev->rule_index = rule ? rule->rule_index : 0;
			bpf_get_current_comm(ev->comm, sizeof(ev->comm));
			event_submit(ev, violation);
		}
	}
	return enforce ? 0 : 1;
}

SEC("cgroup/connect4")
int bw_connect4(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, AF_INET, false);
}

SEC("cgroup/connect6")
int bw_connect6(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, AF_INET6, false);
}

SEC("cgroup/sendmsg4")
int bw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, AF_INET, true);
}

SEC("cgroup/sendmsg6")
int bw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, AF_INET6, true);
}
