/* The cgroups agent-mode build roots may start in (policy `build_roots[].cgroup`), kept
 * in the kernel's build_root_cgroups map by cgroup id. A service's cgroup is created
 * when the service starts and gets a new id each time, so the ids are resolved again
 * on every sync: at policy install and then periodically. A cgroup that does not
 * exist matches nothing: its execs are not the build (the safe side). */
#ifndef BUILDWARDEN_SENSOR_ROOTCG_H
#define BUILDWARDEN_SENSOR_ROOTCG_H

#include <stdint.h>

#include "policy/policy.h"

struct rootcg;

/* A snapshot of p's build roots' cgroups for generation gen: 0 or -ENOMEM. */
int rootcg__new(const struct bw_policy *p, uint32_t gen, struct rootcg **out);
void rootcg__free(struct rootcg *rc);

/* Resolves every cgroup under cgroot_fd (the cgroup v2 root) and makes the map's
 * entries of rc's generation say exactly that. Says on stderr when a cgroup is missing
 * or appears. Returns 0 or -errno of a map update. */
int rootcg__sync(struct rootcg *rc, int map_fd, int cgroot_fd);

/* The cgroup id of path (absolute, under the cgroup v2 root cgroot_fd): 0 or -errno. */
int rootcg__id(int cgroot_fd, const char *path, uint64_t *id);

/* Deletes every entry whose generation is not gen. */
void rootcg__purge(int map_fd, uint32_t gen);

#endif
