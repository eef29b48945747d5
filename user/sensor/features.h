/* What this host's kernel lets us use, probed once at start-up. */
#ifndef BUILDWARDEN_FEATURES_H
#define BUILDWARDEN_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

/* fentry and BPF LSM are not used by this version; the probe says whether the kernel
 * would load them (on our 6.18 hosts it refuses both with EPERM), so that the run
 * summary reports what this host offers, not a fixed sentence. */
struct features {
	bool root;
	bool btf; /* /sys/kernel/btf/vmlinux */
	bool tp_btf;
	bool cgroup_sock_addr;
	bool send_signal; /* bpf_send_signal from a tracing program: enforce kills an exec */
	bool fanotify_perm; /* FAN_OPEN_PERM: block opens */
	bool fanotify_pre_content; /* FAN_PRE_ACCESS: block writes before they happen */
	char cgroup2_path[256]; /* empty when no cgroup v2 mount */
	char lsm_layer[160]; /* "host offers/lacks: BPF LSM ..." for features__layers */
	char fentry_layer[160];
};

void features__probe(struct features *f);

/* Writes "guard: layer" lines (one per guarded operation) for the run summary. */
size_t features__layers(const struct features *f, bool enforce, const char **lines, size_t max);

#endif
