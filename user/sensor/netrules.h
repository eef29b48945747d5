/* The policy's network rules as entries of the kernel's net_rules trie (the key layout is
 * in include/sensor_abi.h). Apart from the loader so that the BPF logic test fills its
 * own trie with the very same entries. */
#ifndef BUILDWARDEN_NETRULES_H
#define BUILDWARDEN_NETRULES_H

#include <stdint.h>

#include "policy/policy.h"

/* Adds every rule of p under generation gen (low 8 bits) to the LPM trie fd. Returns 0 or
 * -errno; on failure some entries of gen may be in the map (netrules__purge them). */
int netrules__install(int fd, const struct bw_policy *p, uint32_t gen);

/* Deletes every entry whose generation is not gen. */
void netrules__purge(int fd, uint32_t gen);

#endif
