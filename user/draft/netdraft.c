/* include/netmatch.h on tables in memory. The tables are filled as the kernel's maps
 * are: net_rules with the deny rules first, then the allow rules, a key already there
 * staying (BPF_NOEXIST, sensor/netrules.c); dns_allow with every name rule matching the
 * answered name, a later rule replacing an earlier one for the same address and port
 * (BPF_ANY, agent/resolver.c). The lookups are the maps' semantics: longest prefix for
 * the trie, exact key for the hash. Proven against the kernel by tests/unit/test_draft.c
 * and tests/integration/test_netmatch_kernel.c, one table of cases for both. */
#include "draft/netdraft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "sensor_abi.h"

/* ---- the maps, in memory -------------------------------------------------- */

struct net_entry {
	struct bw_net_key key;
	struct bw_net_value val;
	size_t seq; /* order of insertion: of two equal keys the first stays */
};

/* dns_allow for one replayed connect: at most one entry per name rule */
struct dns_entry {
	struct bw_dns_key key;
	struct bw_dns_value val;
};

struct draft_net {
	const struct bw_policy *p;
	struct net_entry *rules;
	size_t n_rules;
};

struct netmatch_env {
	const struct draft_net *n;
	const struct dns_entry *dns;
	size_t n_dns;
};

#define NETMATCH_GEN 1

/* The data an LPM trie key compares, after its prefixlen (the kernel's
 * longest_prefix_match: bytes in order, each from its most significant bit). */
static const uint8_t *lpm_data(const struct bw_net_key *k)
{
	return &k->gen;
}

static bool lpm_covers(const struct bw_net_key *entry, const struct bw_net_key *key)
{
	const uint8_t *a = lpm_data(entry), *b = lpm_data(key);
	__u32 bits = entry->prefixlen, bytes = bits / 8, rest = bits % 8;

	if (entry->prefixlen > key->prefixlen)
		return false;
	if (memcmp(a, b, bytes))
		return false;
	return !rest || ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static unsigned key_port(const struct bw_net_key *k)
{
	return (unsigned)k->port_be[0] << 8 | k->port_be[1];
}

/* The table is sorted by port, then longest prefix first (net_entry_cmp): a lookup
 * is a binary search to its port's entries, then the first that covers the key. */
static const struct bw_net_value *rule_lookup(struct netmatch_env *env, const struct bw_net_key *key)
{
	const struct net_entry *rules = env->n->rules;
	size_t lo = 0, hi = env->n->n_rules;
	unsigned port = key_port(key);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_port(&rules[mid].key) < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < env->n->n_rules && key_port(&rules[i].key) == port; i++)
		if (rules[i].key.gen == key->gen && lpm_covers(&rules[i].key, key))
			return &rules[i].val;
	return NULL;
}

static const struct bw_dns_value *dns_lookup(struct netmatch_env *env, const struct bw_dns_key *key)
{
	for (size_t i = 0; i < env->n_dns; i++)
		if (memcmp(&env->dns[i].key, key, sizeof(*key)) == 0)
			return &env->dns[i].val;
	return NULL;
}

#define NETMATCH_FN static inline
#define NETMATCH_RULE_LOOKUP(env, key) rule_lookup((struct netmatch_env *)(env), (key))
#define NETMATCH_DNS_LOOKUP(env, key) dns_lookup((struct netmatch_env *)(env), (key))
/* a recorded name was answered before its connect and is replayed as still valid */
#define NETMATCH_NOW(env) ((void)(env), (__u64)0)
#include "netmatch.h"

/* ---- the table ---------------------------------------------------------------- */

/* the ports a rule covers (port_hi 0: a rule built by hand with one port) */
static uint32_t rule_port_hi(const struct bw_net_rule *r)
{
	return r->port_hi > r->port ? r->port_hi : r->port;
}

/* One entry per port, as sensor/netrules.c installs a range in the kernel's trie. */
static void put_rule(struct draft_net *n, const struct bw_net_rule *r, uint32_t index,
		     uint32_t action)
{
	for (uint32_t port = r->port; port <= rule_port_hi(r); port++) {
		struct net_entry *e = &n->rules[n->n_rules];

		net_rule_entry(&e->key, &e->val, r->addr, r->prefix_len, (uint16_t)port, action,
			       index, NETMATCH_GEN);
		e->seq = n->n_rules++;
	}
}

static size_t rule_entries(const struct bw_net_rule *rules, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += rule_port_hi(&rules[i]) - rules[i].port + 1;
	return total;
}

/* port, then the longer prefix, then the key's bits, then the order of insertion */
static int net_entry_cmp(const void *a, const void *b)
{
	const struct net_entry *x = a, *y = b;
	int c;

	if (key_port(&x->key) != key_port(&y->key))
		return key_port(&x->key) < key_port(&y->key) ? -1 : 1;
	if (x->key.prefixlen != y->key.prefixlen)
		return x->key.prefixlen > y->key.prefixlen ? -1 : 1;
	if ((c = memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr))))
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* BPF_NOEXIST, as the loader inserts: of entries with one key (the same bits up to the
 * same prefix length) the first inserted stays. Sorted, they are neighbours. */
static void net_table_settle(struct draft_net *n)
{
	size_t k = 0;

	qsort(n->rules, n->n_rules, sizeof(*n->rules), net_entry_cmp);
	for (size_t i = 0; i < n->n_rules; i++) {
		if (k && n->rules[k - 1].key.prefixlen == n->rules[i].key.prefixlen &&
		    key_port(&n->rules[k - 1].key) == key_port(&n->rules[i].key) &&
		    lpm_covers(&n->rules[k - 1].key, &n->rules[i].key))
			continue;
		n->rules[k++] = n->rules[i];
	}
	n->n_rules = k;
}

int draft_net__new(const struct bw_policy *p, struct draft_net **out)
{
	struct draft_net *n = calloc(1, sizeof(*n));

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->p = p;
	n->rules = calloc(rule_entries(p->net_deny, p->n_net_deny) +
				  rule_entries(p->net_allow, p->n_net_allow) + 1,
			  sizeof(*n->rules));
	if (!n->rules) {
		free(n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_net_deny; i++)
		put_rule(n, &p->net_deny[i], (uint32_t)i, BW_NET_DENY);
	for (size_t i = 0; i < p->n_net_allow; i++)
		put_rule(n, &p->net_allow[i], (uint32_t)i, BW_NET_ALLOW);
	net_table_settle(n);
	*out = n;
	return 0;
}

void draft_net__free(struct draft_net *n)
{
	if (!n)
		return;
	free(n->rules);
	free(n);
}

/* What the resolver would have let through for name's answer addr. */
static size_t dns_entries(const struct bw_policy *p, const char *name, const uint8_t addr[16],
			  struct dns_entry *out, size_t max)
{
	size_t n = 0;

	for (size_t k = 0; name && *name && k < p->n_net_allow_names; k++) {
		const struct bw_host_rule *r = &p->net_allow_names[k];
		struct bw_dns_key key;
		size_t i;

		if (!policy__host_match(r, name))
			continue;
		net_dns_key(&key, addr, r->port);
		for (i = 0; i < n && memcmp(&out[i].key, &key, sizeof(key)); i++)
			;
		if (i == n) {
			if (n == max)
				continue;
			n++;
		}
		out[i].key = key;
		memset(&out[i].val, 0, sizeof(out[i].val));
		out[i].val.expires_ns = UINT64_MAX;
		out[i].val.rule_index = (uint32_t)k;
	}
	return n;
}

#define DNS_PORT 53
#define DNS_ENTRIES_MAX 64

void draft_net__decide(const struct draft_net *n, const uint8_t addr[16], uint16_t port,
		       const char *name, bool in_build, struct draft_verdict *v)
{
	struct dns_entry dns[DNS_ENTRIES_MAX];
	struct netmatch_env env = { .n = n, .dns = dns };
	struct bw_net_key key;
	struct net_verdict nv;
	uint32_t flags = n->p->net_default_deny ? BW_CFG_NET_DEFAULT_DENY : 0;
	uint16_t port_be = htons(port);

	memset(v, 0, sizeof(*v));
	/* bpf/net.bpf.c, net_check: scope first, then the redirect, then the rules */
	if (!in_build && n->p->net_scope != BW_SCOPE_HOST) {
		v->out_of_scope = true;
		v->action = BW_NET_ALLOW;
		return;
	}
	if (n->p->n_net_allow_names && port == DNS_PORT) {
		v->redirected = true;
		v->action = BW_NET_ALLOW;
		return;
	}
	env.n_dns = dns_entries(n->p, name, addr, dns, DNS_ENTRIES_MAX);
	memset(&key, 0, sizeof(key));
	memcpy(key.addr, addr, 16);
	net_decide(&env, &key, port_be, flags, NETMATCH_GEN, &nv);
	v->action = nv.action;
	v->matched = nv.matched;
	v->rule_index = nv.rule_index;
}

const char *draft_net__rule(const struct draft_net *n, const struct draft_verdict *v)
{
	const struct bw_policy *p = n->p;

	if (v->redirected || v->out_of_scope)
		return NULL;
	switch (v->matched) {
	case BW_MATCH_DENY:
		return v->rule_index < p->n_net_deny ? p->net_deny[v->rule_index].text : NULL;
	case BW_MATCH_ALLOW:
		return v->rule_index < p->n_net_allow ? p->net_allow[v->rule_index].text : NULL;
	case BW_MATCH_NAME:
		return v->rule_index < p->n_net_allow_names ? p->net_allow_names[v->rule_index].text
							     : NULL;
	default:
		return NULL;
	}
}

int draft_net__addr(const char *text, uint8_t addr[16])
{
	memset(addr, 0, 16);
	addr[10] = addr[11] = 0xff;
	if (inet_pton(AF_INET, text, addr + 12) == 1)
		return 0;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return 0;
	return -EINVAL;
}
