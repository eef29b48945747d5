/* One table of network cases for both sides of include/netmatch.h: tests/unit/test_draft.c
 * decides each row with the agent's copy (draft_net__decide), and
 * tests/integration/test_netmatch_kernel.c connects to each row's loopback listener from a
 * build under `run --mode enforce` and compares EPERM / connected with the same row.
 * Every address is loopback, so the kernel side can connect for real. */
#ifndef BUILDWARDEN_NETCASES_H
#define BUILDWARDEN_NETCASES_H

#include <stddef.h>
#include <stdint.h>

#define NETCASE_PORTS 3

/* A policy's network section, where @1, @2, @3 stand for the three listener ports (the
 * kernel side binds them at run time). */
struct netcase_policy {
	const char *what;
	const char *yaml; /* "network:\n  ..." */
};

struct netcase_row {
	unsigned policy; /* index in netcase_policies */
	const char *addr; /* loopback: 127/8 or ::1 */
	/* NULL: connect to addr. Else the build looks this name up first (the agent's
	 * resolver answers it from netcase_zone, with addr) and connects to the answer. */
	const char *name;
	unsigned port; /* index in the ports, 0..NETCASE_PORTS-1 */
	uint8_t action; /* enum bw_net_action */
	uint8_t matched; /* enum bw_net_match */
	const char *rule; /* the deciding rule's text with its ports filled in; NULL: default */
};

extern const struct netcase_policy netcase_policies[];
extern const size_t netcase_n_policies;
extern const struct netcase_row netcase_rows[];
/* The DNS zone the name rows are answered from (tests/lib/loopnet.h), NULL-terminated */
extern const char *const netcase_zone[];
extern const size_t netcase_n_rows;

/* The policy's network section with ports in, into buf (size len). */
void netcase_policy_text(unsigned policy, const uint16_t ports[NETCASE_PORTS], char *buf, size_t len);
/* A row's expected rule text with ports in (@N as in the yaml), or "" */
void netcase_rule_text(const struct netcase_row *r, const uint16_t ports[NETCASE_PORTS], char *buf,
		       size_t len);

#endif
