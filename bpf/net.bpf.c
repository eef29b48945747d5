/* Network rules, decided in the kernel at connect() and sendmsg() on the cgroup v2 root:
 * the build's connects are recorded, refused ones reported, and in enforce mode refused
 * with EPERM before a packet leaves. */
#include "lib/common.bpf.h"
#include "lib/netmatch.bpf.h"

#define IPPROTO_UDP 17

/* Returns 1 to let the connect proceed, 0 to refuse it. */
static __always_inline int net_check(struct bpf_sock_addr *ctx, __u16 family, bool is_sendmsg)
{
	const struct bw_config *cfg = config_get();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct bw_connect_event *ev;
	struct bw_net_key key = {};
	struct net_verdict v;
	struct bw_proc *proc;
	__u32 proc_flags = 0;
	__u16 port_be;
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
		net_key_addr4(&key, ctx->user_ip4);
	} else {
		__u32 w[4];

		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		net_key_addr6(&key, w);
	}
	net_decide(&key, port_be, cfg, &v);
	violation = v.action == BW_NET_DENY;
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
			ev->action = v.action;
			ev->enforced = enforce;
			ev->matched = v.matched;
			ev->rule_index = v.rule_index;
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
