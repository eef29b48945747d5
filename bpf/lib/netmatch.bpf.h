/* The network rule decision (include/netmatch.h, shared with the agent's `policy test`)
 * bound to the kernel's maps, apart from the cgroup hooks that ask for it, so that a
 * test program (bpf/tests/logic.bpf.c) runs this very code with BPF_PROG_TEST_RUN. */
#ifndef BW_NETMATCH_BPF_H
#define BW_NETMATCH_BPF_H

#include "lib/maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10

#define NETMATCH_FN static __always_inline
#define NETMATCH_RULE_LOOKUP(env, key) \
	((const struct bw_net_value *)bpf_map_lookup_elem(&net_rules, (key)))
#define NETMATCH_DNS_LOOKUP(env, key) \
	((const struct bw_dns_value *)bpf_map_lookup_elem(&dns_allow, (key)))
#define NETMATCH_NOW(env) bpf_ktime_get_ns()
#include "netmatch.h"

#endif
