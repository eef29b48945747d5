/* Owns the eBPF skeleton: open -> size maps -> load -> attach, the policy maps, the
 * ring buffer and the kernel-side counters. */
#ifndef BUILDWARDEN_LOADER_H
#define BUILDWARDEN_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>

#include "sensor_abi.h"
#include "policy/policy.h"
#include "sensor/features.h"

struct sensor;

/* Called for each ring buffer record; data has been checked to hold at least a header. */
typedef int (*sensor_record_fn)(void *ctx, const void *data, size_t size);

struct sensor_counters {
	uint64_t total[BW_CNT_MAX];
	uint64_t ringbuf_drops_per_cpu[256];
	size_t ncpu;
};

/* Loads and attaches everything; on failure returns -errno and writes a message that
 * says what failed into err. enforce: as for sensor__apply_policy. */
int sensor__open(const struct features *feat, const struct bw_policy *policy, bool enforce,
		 sensor_record_fn on_record, void *ctx, struct sensor **out, char *err,
		 size_t errlen);

/* Installs policy as a new generation and switches to it in one map update. enforce
 * (the effective mode: --mode, else the policy's): the kernel refuses a denied connect
 * or send with EPERM and kills a denied exec before its first instruction. */
int sensor__apply_policy(struct sensor *s, const struct bw_policy *policy, bool enforce,
			 char *err, size_t errlen);

/* Enters pid as a build root: it and all its future descendants are the build. */
int sensor__add_build_root(struct sensor *s, pid_t pid);

/* Agent mode: resolves the build roots' cgroups again (a service restarted gets a new
 * cgroup id) and updates the kernel's map. 0 or -errno. */
int sensor__refresh_root_cgroups(struct sensor *s);

/* Marks a live process as a build root (buildwarden enroll): it and its future
 * descendants are the build; what it already forked is not. 0 or -errno. */
int sensor__enroll(struct sensor *s, pid_t pid);

/* The procfs of /proc (st_dev of a file on it) and whether a fanotify filesystem mark
 * covers its every mount (whole_fs): its /proc/PID/mem writes are then reported by that
 * mark, and the kernel reports opens only through other procfs (bpf/access.bpf.c,
 * check_mem_open). Without a whole mark, other mounts of it are not covered: the kernel
 * reports opens through every procfs. 0 or -errno. */
int sensor__procfs_watched(struct sensor *s, uint64_t st_dev, bool whole_fs);

int sensor__ring_fd(const struct sensor *s);
/* Consumes all available records; returns the count or -errno. */
int sensor__drain(struct sensor *s);
/* Consumes every record reserved before the call: a record another CPU has reserved
 * and not yet submitted holds back the ones behind it, so this waits for it, at most
 * a few milliseconds (then counted in sensor__sync_timeouts). For when another source
 * says a record must be there: fanotify reported a change whose link() name it is. */
int sensor__drain_sync(struct sensor *s);
uint64_t sensor__sync_timeouts(const struct sensor *s);

/* Looks a process up in the live table, then in the recently exited one. */
int sensor__proc_lookup(const struct sensor *s, pid_t pid, struct bw_proc *out);
/* Only in the live table: a hit is a thread group that has not exited. */
int sensor__proc_lookup_live(const struct sensor *s, pid_t pid, struct bw_proc *out);
/* Only in the recently exited table: for an actor known to be gone. */
int sensor__proc_lookup_exited(const struct sensor *s, pid_t pid, struct bw_proc *out);

int sensor__read_counters(const struct sensor *s, struct sensor_counters *out);

void sensor__close(struct sensor *s);

/* For a caller about to exit (`run`, `agent`): the kernel's detach of the programs
 * (an RCU grace period per link, most of them one at a time: 0.4 s in audit mode,
 * 1.3 s in enforce on our hosts) is left to a child ("bw-detach") that waits for the
 * caller's exit, so the caller's exit status is not held back by it. The programs are
 * disarmed (the config map's flags cleared) before, so until then they refuse and
 * kill nothing. Where it cannot be disarmed or the child made, sensor__close. */
void sensor__close_after_exit(struct sensor *s);

/* The protected set the kernel checks write-like syscalls against in enforce mode
 * (bpf/write.bpf.c): regular files of the protected trees, by (st_dev, ino) as stat()
 * reports them, with their tree index. protect returns 0 or -errno (-E2BIG: the map
 * is full, BW_MAX_PROTECTED_INODES). */
int sensor__protect_inode(struct sensor *s, uint64_t st_dev, uint64_t ino, uint32_t igen,
			  unsigned tree);
/* Drops the entry of (st_dev, ino) if it is still the one of generation igen: a file
 * made since on the same inode number (its own, newer entry) keeps its protection. */
void sensor__unprotect_inode(struct sensor *s, uint64_t st_dev, uint64_t ino, uint32_t igen);
void sensor__protect_clear(struct sensor *s);

/* Enforce mode, fanotify permission answers (sensor/permwatch.c); all read maps only,
 * safe from any thread. The open the thread tid is inside now (bpf/intent.bpf.c), or
 * -ENOENT: */
int sensor__open_intent(const struct sensor *s, pid_t tid, struct bw_open_intent *out);
/* Enforce mode where BPF LSM runs or fmod_ret programs attach: bit BW_LSM_*
 * (sensor_abi.h) for each op a loaded and attached program refuses in the kernel
 * (bw_guard_lsm_*, bw_guard_fmr_*); 0 elsewhere, and before enforce is first on. */
unsigned sensor__lsm_ops(const struct sensor *s);
/* Whose programs those are (BPF LSM or fmod_ret on security_*), NONE when lsm_ops is 0. */
enum features_guard_layer sensor__guard_layer(const struct sensor *s);
/* The tree of a protected regular file (st_dev, ino), or -ENOENT. */
int sensor__protected_tree(const struct sensor *s, uint64_t st_dev, uint64_t ino);
/* The trees an executable (st_dev, ino) is a listed writer of, under the current
 * policy generation; -ENOENT if none. */
int sensor__writer_exe_mask(const struct sensor *s, uint64_t st_dev, uint64_t ino,
			    uint64_t *mask);

/* Network rules by name (user/agent/resolver.c); safe from any thread. Where the
 * kernel sends the build's DNS (sensor_abi.h, bw_dns_redirect): 0 or -errno. */
int sensor__dns_redirect(struct sensor *s, const struct bw_dns_redirect *r);
/* addr (v4-mapped for IPv4) may be reached on port (0: any) until expires_ns
 * (CLOCK_MONOTONIC), as allowed by name rule rule_index: 0 or -errno (-E2BIG: full). */
int sensor__dns_allow(struct sensor *s, const uint8_t addr[16], uint16_t port,
		      uint32_t rule_index, int64_t expires_ns);
void sensor__dns_forget(struct sensor *s, const uint8_t addr[16], uint16_t port);

/* The kernel's encoding of a dev_t as stat() reports it. */
uint32_t sensor__kdev(uint64_t st_dev);

#endif
