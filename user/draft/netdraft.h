/* The kernel's network decision (include/netmatch.h) in the agent, for a draft policy:
 * the rules go into a table the way the loader puts them into the kernel's trie
 * (sensor/netrules.c), and a recorded connect's name stands in for what the resolver
 * would have put into dns_allow. Pure: no kernel, no file system. */
#ifndef BUILDWARDEN_DRAFT_NETDRAFT_H
#define BUILDWARDEN_DRAFT_NETDRAFT_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"

struct draft_net;

/* What the kernel would say: action and matched as in sensor_abi.h (enum bw_net_action,
 * enum bw_net_match), rule_index in the list matched names. */
struct draft_verdict {
	uint32_t rule_index;
	uint8_t action;
	uint8_t matched;
	bool redirected; /* a DNS query the resolver takes: no verdict, never flagged */
	bool out_of_scope; /* network.scope: build, and not a build process: not decided */
};

/* The table for p (kept by reference: p must outlive it). 0 or -ENOMEM. */
int draft_net__new(const struct bw_policy *p, struct draft_net **out);
void draft_net__free(struct draft_net *n);

/* One connect: addr in the v6 space (IPv4 as ::ffff:a.b.c.d), port in host byte order,
 * name the one the build resolved (ConnectBody.name; NULL or "" for none), in_build as
 * the event's process says. */
void draft_net__decide(const struct draft_net *n, const uint8_t addr[16], uint16_t port,
		       const char *name, bool in_build, struct draft_verdict *v);

/* The text of the rule a verdict names (as written in the policy), NULL for the
 * default (or no verdict). */
const char *draft_net__rule(const struct draft_net *n, const struct draft_verdict *v);

/* "1.2.3.4" / "2001:db8::1" / "::ffff:1.2.3.4" into the v6 space; 0 or -EINVAL. */
int draft_net__addr(const char *text, uint8_t addr[16]);

#endif /* BUILDWARDEN_DRAFT_NETDRAFT_H */
