/* A cgroup v2 directory of a test's own, for build roots qualified by cgroup: created
 * under the cgroup v2 root found in /proc/mounts, entered by a forked child before it
 * execs, removed by the path the test created (never by name). */
#ifndef BW_TEST_CGTEST_H
#define BW_TEST_CGTEST_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct bw_cg {
	char abs[PATH_MAX]; /* /sys/fs/cgroup/unified/bwtest-PID-N */
	char rel[256];      /* /bwtest-PID-N: what the policy names */
};

/* Creates a fresh cgroup: 0 or -errno. */
int bw_cg_create(struct bw_cg *cg);
/* Moves the calling process into it: 0 or -errno (for a child, before it execs). */
int bw_cg_enter(const struct bw_cg *cg);
/* Forks; the child enters cg (when not NULL), then execs argv; the parent waits
 * (bounded) and returns the exit code, or -1. */
int bw_cg_run(const struct bw_cg *cg, const char *const argv[], unsigned timeout_s);
/* rmdir of the path bw_cg_create made, after its processes are gone (bounded wait). */
void bw_cg_remove(struct bw_cg *cg);

#endif
