/* Every map of the sensor, shared by all the .bpf.c files. __weak lets each file include
 * this header; `bpftool gen object` merges the identical definitions into one map. */
#ifndef BW_MAPS_BPF_H
#define BW_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sensor_abi.h"

/* Live processes, keyed by tgid. Not preallocated from Linux 6.1 on: 65536 entries of
 * 320 bytes took 30 ms to create, on every run's start. Older kernels preallocate it
 * (sensor/loader.c prealloc_traced_maps says why). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct bw_proc);
} proc_table SEC(".maps") __weak;

/* Processes that exited recently, so a change reported after its actor died is still
 * attributed (fanotify events are read within ~100 ms; 4096 exits is far more than
 * that window holds, and an LRU map is preallocated: its size is start-up time). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bw_proc);
} recent_exits SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_config);
} sensor_config SEC(".maps") __weak;

/* Directories nothing may be executed from; value = index in the policy's list, or
 * BW_EXEC_TREE_ALLOW | index in exec.allow for an exception inside one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct bw_inode_key);
	__type(value, __u32);
} exec_deny_dirs SEC(".maps") __weak;

/* Agent mode: executables that make a build root, value = mask of build_roots entries;
 * an exec is a root only in one of the entry's cgroups (build_root_cgroups). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct bw_inode_key);
	__type(value, __u64);
} build_root_exes SEC(".maps") __weak;

/* Agent mode: the cgroups build roots may start in (sensor_abi.h, bw_cgroup_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct bw_cgroup_key);
	__type(value, __u64);
} build_root_cgroups SEC(".maps") __weak;

/* Executables allowed to write some protected trees. */
/* The dynamic loaders (include/sensor_abi.h, BW_MAX_LOADERS). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_MAX_LOADERS);
	__type(key, struct bw_inode_key);
	__type(value, __u32);
} exec_loaders SEC(".maps") __weak;

/* argv[0] of an exec, read to find argv[1] (proc.bpf.c). */
#define BW_ARG0_LEN 256
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[BW_ARG0_LEN]);
} arg_scratch SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_writer);
} writer_exes SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536 /* 2 x BW_POLICY_MAX_NET_ENTRIES: port ranges are one entry per port */);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_net_key);
	__type(value, struct bw_net_value);
} net_rules SEC(".maps") __weak;

/* Addresses allowed by name, for as long as their DNS answer lives (sensor_abi.h). */
#define BW_DNS_ALLOW_ENTRIES 16384
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_DNS_ALLOW_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_dns_key);
	__type(value, struct bw_dns_value);
} dns_allow SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_dns_redirect);
} dns_redirect SEC(".maps") __weak;

/* The original destination of each redirected socket, by socket cookie; LRU: a socket
 * closed is never told to us, its entry ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct bw_dns_orig);
} dns_orig SEC(".maps") __weak;

/* Every marked regular file of the protected trees, filled by the agent from fanwatch's
 * marks (user/agent/write_guard.c): the write guards (write.bpf.c) and the BPF LSM hooks
 * (lsm.bpf.c) compare a file's identity with it. Preallocated before Linux 6.1, like
 * proc_table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_MAX_PROTECTED_INODES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_protected);
} protected_inodes SEC(".maps") __weak;

/* Entries in protected_inodes: 0 spares every write on the host the descriptor walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} protected_count SEC(".maps") __weak;

/* The protected trees' roots (sensor_abi.h, BW_MAX_PROTECT_TREES). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * BW_MAX_PROTECT_TREES); /* two generations during a reload */
	__type(key, struct bw_inode_key);
	__type(value, __u32);
} protected_dirs SEC(".maps") __weak;

#define RINGBUF_BYTES (4u << 20)
/* Past this much unread data, a record wakes the agent at once (lib/common.bpf.h). */
#define RINGBUF_WAKE_BYTES (512u << 10)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BW_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps") __weak;

/* A bw_proc is too large for the 512-byte stack next to anything else. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_proc);
} proc_scratch SEC(".maps") __weak;

#endif
