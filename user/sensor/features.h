/* What this host's kernel lets us use, probed once at start-up. */
#ifndef BUILDWARDEN_FEATURES_H
#define BUILDWARDEN_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

#include <linux/types.h>

#include "sensor_abi.h"

/* The kernel guards of enforce mode, one alternative chosen at start-up (sensor/loader.c):
 * BPF LSM where bpf is an active LSM, else fmod_ret programs on the security_* functions
 * where the kernel loads them (trampolines), else none (tracepoints and fanotify detect,
 * the agent kills and taints). The probe says whether the kernel would load each (on our
 * 6.18 hosts it refuses both with EPERM), so that the run summary reports what this host
 * offers, not a fixed sentence. */
enum features_guard_layer {
	FEATURES_GUARD_NONE = 0,
	FEATURES_GUARD_LSM,	 /* bpf/lsm.bpf.c */
	FEATURES_GUARD_FMOD_RET, /* bw_guard_fmr_*: bpf/lsm.bpf.c, bpf/fmodret.bpf.c */
};

struct features {
	bool root;
	bool btf; /* /sys/kernel/btf/vmlinux */
	bool tp_btf;
	bool cgroup_sock_addr;
	bool send_signal; /* bpf_send_signal from a tracing program: enforce kills an exec */
	bool fanotify_perm; /* FAN_OPEN_PERM: block opens */
	bool fanotify_pre_content; /* FAN_PRE_ACCESS: block writes before they happen */
	/* BPF LSM programs load and bpf is an active LSM: enforce mode refuses rename,
	 * unlink, link, chmod, chown, setxattr and truncate in the kernel (bpf/lsm.bpf.c) */
	bool bpf_lsm;
	/* BPF_MODIFY_RETURN programs load: where bpf_lsm is false, the same refusals come
	 * from fmod_ret programs on the security_* functions (bw_guard_fmr_*), if their
	 * trampolines attach */
	bool fmod_ret;
	/* set by the agent with lsm_ops: the layer whose programs are attached */
	enum features_guard_layer guard_layer;
	/* set by the agent once the sensor is loaded: bit BW_LSM_* (sensor_abi.h) for each
	 * op a BPF LSM or fmod_ret program refuses (sensor__lsm_ops) */
	unsigned lsm_ops;
	char cgroup2_path[256]; /* empty when no cgroup v2 mount */
	char lsm_layer[160]; /* "host offers/lacks: BPF LSM ..." for features__layers */
	char trampoline_layer[160]; /* "host offers/lacks: fmod_ret ..." */
};

void features__probe(struct features *f);

/* lsm_ops bit of the self-protection (bpf/selfguard.bpf.c), past every bw_lsm_op */
#define FEATURES_LSM_SELF_BIT 31

/* The ops that the README's BPF LSM column says are refused: with all of them the run
 * summary says so, else it names the fallback (bits of enum bw_lsm_op). */
#define FEATURES_LSM_CORE                                                              \
	((1u << BW_LSM_RENAME) | (1u << BW_LSM_UNLINK) | (1u << BW_LSM_LINK) |            \
	 (1u << BW_LSM_TRUNCATE) | (1u << BW_LSM_CHMOD) | (1u << BW_LSM_CHOWN) |          \
	 (1u << BW_LSM_XATTR))

/* Writes "guard: layer" lines (one per guarded operation) for the run summary. */
size_t features__layers(const struct features *f, bool enforce, const char **lines, size_t max);

#endif
