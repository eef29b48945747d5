/* What tests/unit/test_bpf_logic.c and bpf/tests/logic.bpf.c exchange through the test
 * object's global data: one case in, one answer out, per BPF_PROG_TEST_RUN. */
#ifndef BW_LOGIC_TEST_H
#define BW_LOGIC_TEST_H

#define LOGIC_CHAIN_MAX 40 /* more than BW_MAX_DENTRY_DEPTH, to reach "too deep" */

struct net_case {
	__u32 ip4; /* network byte order, for family AF_INET */
	__u32 ip6[4]; /* network byte order, for family AF_INET6 */
	__u16 family;
	__u16 port; /* host byte order */
	__u32 cfg_flags; /* BW_CFG_* */
	__u32 gen;
};

struct net_answer {
	__u32 rule_index;
	__u8 action; /* enum bw_net_action */
	__u8 matched; /* enum bw_net_match */
	__u8 pad[2];
};

/* A file's ancestors, chain[0] the file itself, chain[len - 1] the top of all mounts. */
struct tree_case {
	struct bw_inode_key chain[LOGIC_CHAIN_MAX]; /* .gen unused: the walk sets it */
	__u32 len;
	__u32 gen;
};

#endif
