/* Test programs for the decisions the sensor makes in the kernel: the network rule match
 * and the tree walk, run with BPF_PROG_TEST_RUN on cases tests/unit/test_bpf_logic.c
 * writes into global data. Built into its own object, never into the sensor's: raw_tp is
 * only the program type (one BPF_PROG_TEST_RUN can run), nothing is attached. */
#include "lib/netmatch.bpf.h"
#include "tests/logic_test.h"

char LICENSE[] SEC("license") = "GPL";

struct net_case net_in;
struct net_answer net_out;
struct tree_case tree_in;
int tree_out;

SEC("raw_tp")
int bw_test_net(void *ctx)
{
	struct bw_net_key key = {};
	struct net_verdict v;

	if (net_in.family == AF_INET)
		net_key_addr4(&key, net_in.ip4);
	else
		net_key_addr6(&key, net_in.ip6);
	net_decide(NULL, &key, __builtin_bswap16(net_in.port), net_in.cfg_flags, net_in.gen, &v);
	net_out.action = v.action;
	net_out.matched = v.matched;
	net_out.rule_index = v.rule_index;
	return 0;
}

/* The walk over tree_in.chain instead of dentries and mounts. */
struct tree_pos {
	__u32 i;
};

static __always_inline void tree_pos__id(const struct tree_pos *pos, struct bw_inode_key *key)
{
	__u32 i = pos->i;

	if (i >= LOGIC_CHAIN_MAX)
		return;
	key->ino = tree_in.chain[i].ino;
	key->dev = tree_in.chain[i].dev;
}

static __always_inline bool tree_pos__up(struct tree_pos *pos)
{
	if (pos->i + 1 >= tree_in.len)
		return false;
	pos->i++;
	return true;
}

#include "lib/treewalk.bpf.h"

SEC("raw_tp")
int bw_test_tree(void *ctx)
{
	struct tree_pos pos = { 0 };

	tree_out = tree_walk(&exec_deny_dirs, tree_in.gen, &pos);
	return 0;
}
