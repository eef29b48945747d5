/* Network rules, decided in the kernel at connect() and sendmsg() on the cgroup v2 root:
 * the build's connects are recorded, refused ones reported, and in enforce mode refused
 * with EPERM before a packet leaves. With name rules, the build's DNS (port 53) is sent
 * to the agent's resolver instead, and recvmsg() gives the reply the source asked for. */
#include "lib/common.bpf.h"
#include "lib/netmatch.bpf.h"

#define IPPROTO_UDP 17
#define DNS_PORT_BE 0x3500 /* 53 in network byte order, as user_port holds it */
#define LOOPBACK4_BE 0x0100007f /* 127.0.0.1 in network byte order */

static __always_inline const struct bw_dns_redirect *dns_redirect_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dns_redirect, &zero);
}

/* The build's DNS goes to the agent's resolver (user/agent/resolver.c), which lets an
 * answer's addresses through for an allowed name before the build sees the answer.
 * Returns the resolver's port (network byte order) when ctx, a DNS destination, is to
 * be rewritten to it, else 0. */
static __always_inline __u16 dns_redirect_port(struct bpf_sock_addr *ctx, enum bw_dns_port udp_port,
					       enum bw_dns_port tcp_port, __u32 tgid)
{
	const struct bw_dns_redirect *r = dns_redirect_get();

	if (!r || !r->enabled || tgid == r->agent_tgid || (__u16)ctx->user_port != DNS_PORT_BE)
		return 0;
	return r->port_be[ctx->protocol == IPPROTO_UDP ? udp_port : tcp_port];
}

/* Only a datagram reply needs its source rewritten back (bw_recvmsg4/6). */
static __always_inline void dns_remember(struct bpf_sock_addr *ctx, struct bw_dns_orig *orig,
					 __u16 family)
{
	__u64 cookie;

	if (ctx->protocol != IPPROTO_UDP)
		return;
	orig->port_be = DNS_PORT_BE;
	orig->family = family;
	cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&dns_orig, &cookie, orig, BPF_ANY);
}

/* True when ctx was rewritten: the caller lets it go without a verdict (the resolver
 * is on loopback, and what the build asked for is a name, not this address). */
static __always_inline bool dns_redirect4(struct bpf_sock_addr *ctx, __u32 tgid)
{
	struct bw_dns_orig orig = {};
	__u16 port = dns_redirect_port(ctx, BW_DNS_UDP4, BW_DNS_TCP4, tgid);
	__u32 ip4;

	if (!port)
		return false;
	ip4 = ctx->user_ip4;
	__builtin_memcpy(&orig.addr[12], &ip4, 4);
	/* the writes before the call: held across it, the address of a context field was
	 * kept as ctx + offset in a register, which the verifier refuses */
	ctx->user_ip4 = LOOPBACK4_BE;
	ctx->user_port = port;
	dns_remember(ctx, &orig, AF_INET);
	return true;
}

static __always_inline bool dns_redirect6(struct bpf_sock_addr *ctx, __u32 tgid)
{
	struct bw_dns_orig orig = {};
	__u16 port = dns_redirect_port(ctx, BW_DNS_UDP6, BW_DNS_TCP6, tgid);
	__u32 w[4];

	if (!port)
		return false;
	/* one 4-byte load per word: the context allows no wider access */
	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memcpy(orig.addr, w, 16);
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = 0;
	ctx->user_ip6[3] = 0x01000000; /* ::1 in network byte order */
	ctx->user_port = port;
	dns_remember(ctx, &orig, AF_INET6);
	return true;
}

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
	if (family == AF_INET ? dns_redirect4(ctx, tgid) : dns_redirect6(ctx, tgid))
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
	net_decide(NULL, &key, port_be, cfg->flags, cfg->gen, &v);
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

/* A reply from the resolver to a redirected UDP socket: its source becomes the server
 * the socket asked, so a resolver library that checks where the answer came from (glibc
 * does, for an unconnected socket) takes it. */
static __always_inline void dns_reply_source(struct bpf_sock_addr *ctx, __u16 family)
{
	const struct bw_dns_redirect *r = dns_redirect_get();
	const struct bw_dns_orig *orig;
	__u64 cookie;

	if (!r || !r->enabled)
		return;
	cookie = bpf_get_socket_cookie(ctx);
	orig = bpf_map_lookup_elem(&dns_orig, &cookie);
	if (!orig || orig->family != family)
		return;
	if (family == AF_INET) {
		__u32 ip4;

		if (ctx->user_ip4 != LOOPBACK4_BE || (__u16)ctx->user_port != r->port_be[BW_DNS_UDP4])
			return;
		__builtin_memcpy(&ip4, &orig->addr[12], 4);
		ctx->user_ip4 = ip4;
	} else {
		__u32 w[4];

		if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 || ctx->user_ip6[2] != 0 ||
		    ctx->user_ip6[3] != 0x01000000 ||
		    (__u16)ctx->user_port != r->port_be[BW_DNS_UDP6])
			return;
		__builtin_memcpy(w, orig->addr, 16);
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	ctx->user_port = orig->port_be;
}

SEC("cgroup/recvmsg4")
int bw_recvmsg4(struct bpf_sock_addr *ctx)
{
	dns_reply_source(ctx, AF_INET);
	return 1;
}

SEC("cgroup/recvmsg6")
int bw_recvmsg6(struct bpf_sock_addr *ctx)
{
	dns_reply_source(ctx, AF_INET6);
	return 1;
}
