/* The agent protects itself where the kernel runs BPF LSM programs (issue 9): no other
 * process, root included, gets a descriptor to the sensor's maps, programs or links,
 * so none can read or rewrite the maps (the process table, the protected set, the
 * rules) or detach a program through one. Every way to a descriptor passes these
 * hooks: by id (BPF_*_GET_FD_BY_ID), from a pin (BPF_OBJ_GET), and the fds a
 * program's owner hands out. What root can still do is in docs/security.md: kill the
 * agent (its programs go with it, and the run guard kills the build), or load a kernel
 * module. Refused, not reported: the caller gets EPERM.
 * Enforce-only (bw_guard_*), like the other LSM programs (bpf/lsm.bpf.c). */
#include "lib/common.bpf.h"
#include <bpf/bpf_tracing.h>

#define EPERM 1

/* The agent (set before load, in lsm.bpf.c). */
extern const volatile __u32 cfg_agent_tgid;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_MAX_OWN_OBJECTS);
	__type(key, struct bw_own_key);
	__type(value, __u8);
} own_objects SEC(".maps");

static __always_inline int own_refuse(__u32 kind, __u32 id)
{
	const struct bw_config *cfg = config_get();
	struct bw_own_key key = { .kind = kind, .id = id };

	if (!cfg || !(cfg->flags & BW_CFG_ENFORCE_ACCESS))
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == cfg_agent_tgid)
		return 0;
	return bpf_map_lookup_elem(&own_objects, &key) ? -EPERM : 0;
}

/* A new descriptor to a map (bpf_map_new_fd). */
SEC("lsm/bpf_map")
int BPF_PROG(bw_guard_lsm_bpf_map, struct bpf_map *map, unsigned int fmode, int ret)
{
	if (ret)
		return ret;
	return own_refuse(BW_OWN_MAP, BPF_CORE_READ(map, id));
}

/* A new descriptor to a program (bpf_prog_new_fd). */
SEC("lsm/bpf_prog")
int BPF_PROG(bw_guard_lsm_bpf_prog, struct bpf_prog *prog, int ret)
{
	if (ret)
		return ret;
	return own_refuse(BW_OWN_PROG, BPF_CORE_READ(prog, aux, id));
}

/* Links have no hook of their own: their one way in by id is refused at the syscall.
 * The hook's arity changed in 6.9 (a fourth argument), so the earlier answer is not
 * read here; none is lost: the kernel runs no program after one that refuses. */
#define BW_BPF_LINK_GET_FD_BY_ID 30
SEC("lsm/bpf")
int BPF_PROG(bw_guard_lsm_bpf, int cmd, union bpf_attr *attr)
{
	if (cmd != BW_BPF_LINK_GET_FD_BY_ID)
		return 0;
	return own_refuse(BW_OWN_LINK, BPF_CORE_READ(attr, link_id));
}
