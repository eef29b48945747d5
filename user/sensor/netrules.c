#include "sensor/netrules.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>

#include <linux/types.h>

#include "sensor_abi.h"

/* only net_rule_entry is used here: the lookups are the kernel's */
#define NETMATCH_FN static inline __attribute__((unused))
#define NETMATCH_RULE_LOOKUP(env, key) ((void)(env), (void)(key), (const struct bw_net_value *)0)
#define NETMATCH_DNS_LOOKUP(env, key) ((void)(env), (void)(key), (const struct bw_dns_value *)0)
#define NETMATCH_NOW(env) ((void)(env), 0)
#include "netmatch.h"

static int netrules__put_port(int fd, const struct bw_net_rule *r, uint16_t port, uint32_t index,
			      uint32_t action, uint32_t gen)
{
	struct bw_net_key key;
	struct bw_net_value val;

	net_rule_entry(&key, &val, r->addr, r->prefix_len, port, action, index, gen);
	/* A key already there stays: denies go in first, so the same prefix in both lists
	 * is denied, and of two equal rules in one list the first names the decision; both
	 * as policy__net_verdict says. */
	if (bpf_map_update_elem(fd, &key, &val, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A port range is one trie entry per port: the key holds the port before the address,
 * so the kernel's lookup stays two exact-port LPM lookups (bpf/lib/netmatch.bpf.h), and
 * the policy bounds the total (BW_POLICY_MAX_NET_ENTRIES). */
static int netrules__put(int fd, const struct bw_net_rule *r, uint32_t index, uint32_t action,
			 uint32_t gen)
{
	/* port_hi 0: a rule built by hand with one port */
	uint32_t hi = r->port_hi > r->port ? r->port_hi : r->port;
	int err;

	for (uint32_t port = r->port; port <= hi; port++)
		if ((err = netrules__put_port(fd, r, (uint16_t)port, index, action, gen)))
			return err;
	return 0;
}

int netrules__install(int fd, const struct bw_policy *p, uint32_t gen)
{
	int err;

	for (size_t i = 0; i < p->n_net_deny; i++)
		if ((err = netrules__put(fd, &p->net_deny[i], (uint32_t)i, BW_NET_DENY, gen)))
			return err;
	for (size_t i = 0; i < p->n_net_allow; i++)
		if ((err = netrules__put(fd, &p->net_allow[i], (uint32_t)i, BW_NET_ALLOW, gen)))
			return err;
	return 0;
}

void netrules__purge(int fd, uint32_t gen)
{
	struct bw_net_key key, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		if (key.gen != (uint8_t)gen && bpf_map_delete_elem(fd, &key) == 0) {
			prev = NULL; /* restart: the iteration order changed */
			continue;
		}
		prev = &key;
	}
}
