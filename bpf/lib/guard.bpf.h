/* The refusal decision of enforce mode's kernel guards (issue 9), shared by the two
 * layers that can refuse: BPF LSM hooks (bpf/lsm.bpf.c, where bpf is an active LSM)
 * and fmod_ret programs on the security_* functions that call those hooks (where only
 * trampolines are available: bw_guard_fmr_*, in pairs with the LSM programs from
 * bpf/lsm.bpf.c's BW_GUARD_HOOK list, and bpf/fmodret.bpf.c). Both see the same
 * resolved objects (dentries, mounts, files) and answer 0 or -EPERM the same way.
 *
 * What is protected is decided on the objects, never on a path string: a file is
 * protected when its inode is in protected_inodes (every marked regular file, also
 * reached through a hard link outside the trees), or when one of its dentry ancestors,
 * crossing mounts, is a tree root (protected_dirs): so an entry of a directory made a
 * moment ago is inside its tree before any fanotify mark reaches it. A walk deeper
 * than BW_MAX_DENTRY_DEPTH decides by the inode alone and lets the change through:
 * fanotify still reports it, and the fallback taints it and kills the actor. */
#ifndef BW_GUARD_BPF_H
#define BW_GUARD_BPF_H

#include "lib/tree.bpf.h"
#include "lib/writer.bpf.h"

#define EPERM 1
/* MAY_WRITE of the mask security_file_permission and the file_permission hook get */
#define BW_MAY_WRITE 0x2

/* The agent itself (its cleanup of a name a refused O_CREAT made): set before load,
 * defined in lsm.bpf.c. */
extern const volatile __u32 cfg_agent_tgid;

/* The tree of the object at d (seen through mount vmnt, NULL when the hook gives no
 * mount: then the walk stops at d's file system root), or -1. */
static __noinline int dentry_tree(struct dentry *d, struct vfsmount *vmnt, __u32 gen)
{
	struct bw_inode_key key = {};
	struct tree_pos pos = { .d = d, .mnt = NULL };
	struct bw_protected *t;
	struct inode *inode;
	int r;

	if (!d)
		return -1;
	inode = BPF_CORE_READ(d, d_inode);
	if (inode) {
		key.ino = BPF_CORE_READ(inode, i_ino);
		key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		t = bpf_map_lookup_elem(&protected_inodes, &key);
		/* another generation: a new file on a deleted one's inode number
		 * (sensor_abi.h, bw_protected); where it is decides, as for any file */
		if (t && (!t->igen || t->igen == BPF_CORE_READ(inode, i_generation)))
			return (int)t->tree;
	}
	if (vmnt)
		pos.mnt = container_of(vmnt, struct mount, mnt);
	r = tree_walk(&protected_dirs, gen, &pos);
	return r >= 0 ? r : -1;
}

static __always_inline void deny_record(__u32 op, struct dentry *d, __u32 tgid, int tree)
{
	struct bw_lsm_deny_event *e = event_reserve(sizeof(*e), BW_EV_LSM_DENY);
	struct dentry *dir;
	struct inode *inode;

	if (!e)
		return;
	inode = BPF_CORE_READ(d, d_inode);
	e->ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
	e->dev = inode ? BPF_CORE_READ(inode, i_sb, s_dev) : 0;
	dir = BPF_CORE_READ(d, d_parent);
	if (dir && dir != d) {
		e->dir_ino = BPF_CORE_READ(dir, d_inode, i_ino);
		e->dir_dev = BPF_CORE_READ(dir, d_sb, s_dev);
	} else {
		e->dir_ino = 0;
		e->dir_dev = 0;
	}
	e->pid = tgid;
	e->tree = (__u32)tree;
	e->op = op;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_kernel_str(e->name, sizeof(e->name), BPF_CORE_READ(d, d_name.name)) < 0)
		e->name[0] = '\0';
	event_submit(e, true);
}

/* 0 or -EPERM for an operation on a (and b, the other side of a rename or link, or
 * NULL): refused when either side is in a protected tree, the actor is outside the
 * build, not the agent, and not a listed writer of that tree. */
static __noinline int guard_decide(__u32 op, struct dentry *a, struct vfsmount *am,
				   struct dentry *b, struct vfsmount *bm)
{
	const struct bw_config *cfg = config_get();
	struct task_struct *task;
	struct bw_proc *p;
	__u32 tgid;
	int ta, tb;

	if (!cfg || (cfg->flags & (BW_CFG_ENFORCE_WRITE | BW_CFG_HAVE_PROTECT)) !=
			    (BW_CFG_ENFORCE_WRITE | BW_CFG_HAVE_PROTECT))
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == cfg_agent_tgid)
		return 0;
	p = proc_lookup(tgid);
	if (p && (p->flags & BW_PROC_IN_BUILD))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	ta = dentry_tree(a, am, cfg->gen);
	if (ta >= 0 && !may_write(cfg, task, p, (__u32)ta)) {
		deny_record(op, a, tgid, ta);
		return -EPERM;
	}
	tb = b ? dentry_tree(b, bm, cfg->gen) : -1;
	if (tb >= 0 && !may_write(cfg, task, p, (__u32)tb)) {
		deny_record(op, b, tgid, tb);
		return -EPERM;
	}
	return 0;
}

/* Whether file may be a protected regular file (protected_inodes: every marked file);
 * an empty protected set answers after one lookup. Its inode number is enough here:
 * guard_decide's dentry_tree compares the generation, then walks. */
static __always_inline bool file_protected(struct file *file)
{
	struct bw_inode_key key = {};
	__u32 zero = 0, *n;

	n = bpf_map_lookup_elem(&protected_count, &zero);
	if (!n || !*n)
		return false;
	key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	return bpf_map_lookup_elem(&protected_inodes, &key) != NULL;
}

/* A write through a descriptor (write, pwrite, writev, fallocate, copy_file_range,
 * splice, sendfile: every path that checks rw_verify_area or calls the hook itself),
 * whenever it was opened. The write guards (write.bpf.c) kill the outsider at the
 * syscall's entry; this makes the call itself fail, so fallocate allocates nothing and
 * a write leaves the mtime alone. Runs on every read and write of the host while
 * enforce is on: reads and an empty protected set leave after two tests. */
static __always_inline int guard_file_write(struct file *file, int mask)
{
	if (!(mask & BW_MAY_WRITE) || !file_protected(file))
		return 0;
	return guard_decide(BW_LSM_WRITE, BPF_CORE_READ(file, f_path.dentry),
			    BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

#define BW_GUARD_PROT_WRITE 0x2
#define BW_GUARD_MAP_TYPE 0x0f
#define BW_GUARD_MAP_SHARED 0x01
#define BW_GUARD_MAP_SHARED_VALIDATE 0x03
#define BW_GUARD_VM_SHARED 0x08

/* A shared writable mapping of a protected file: stores through it pass no hook, so the
 * mapping is refused (mmap with PROT_WRITE and MAP_SHARED), and so is an mprotect that
 * makes a shared file mapping writable later. The write guard (write.bpf.c) still kills
 * an outsider mapping such a file shared through a writable descriptor at mmap's entry;
 * this makes the call itself fail, so no mapping exists even for a moment. */
static __always_inline int guard_mmap(struct file *file, unsigned long prot, unsigned long flags)
{
	unsigned long type = flags & BW_GUARD_MAP_TYPE;

	if (!file || !(prot & BW_GUARD_PROT_WRITE) ||
	    (type != BW_GUARD_MAP_SHARED && type != BW_GUARD_MAP_SHARED_VALIDATE) ||
	    !file_protected(file))
		return 0;
	return guard_decide(BW_LSM_MMAP, BPF_CORE_READ(file, f_path.dentry),
			    BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

static __always_inline int guard_mprotect(struct vm_area_struct *vma, unsigned long prot)
{
	struct file *file;

	if (!(prot & BW_GUARD_PROT_WRITE) ||
	    !(BPF_CORE_READ(vma, vm_flags) & BW_GUARD_VM_SHARED))
		return 0;
	file = BPF_CORE_READ(vma, vm_file);
	if (!file || !file_protected(file))
		return 0;
	return guard_decide(BW_LSM_MMAP, BPF_CORE_READ(file, f_path.dentry),
			    BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

/* One refusal, both layers: the BPF LSM program on hook (lsm/hook, bw_guard_lsm_name)
 * and the fmod_ret program on the function that calls it (fmod_ret/security_hook,
 * bw_guard_fmr_name), from one argument list and one body, so that a hook guarded by
 * one layer is guarded by the other. For the functions used with it the security_*
 * function's arguments are the hook's (include/linux/security.h); in both the last
 * argument is the answer so far, returned when it already refuses. The loader loads
 * one layer's half (sensor/loader.c, choose_guard_layer). A hook whose function takes
 * other arguments (mmap_file) is written out per layer. */
#define BW_GUARD_ARGS(...) __VA_ARGS__
#define BW_GUARD_PROGS(prefix, sec, name, hook, args, ...)                \
	SEC(sec #hook)                                                     \
	int BPF_PROG(bw_guard_##prefix##_##name, BW_GUARD_ARGS args, int ret) \
	{                                                                  \
		if (ret)                                                   \
			return ret;                                        \
		{                                                          \
			__VA_ARGS__                                        \
		}                                                          \
	}
#define BW_GUARD_HOOK(name, hook, args, ...)                               \
	BW_GUARD_PROGS(lsm, "lsm/", name, hook, args, __VA_ARGS__)          \
	BW_GUARD_PROGS(fmr, "fmod_ret/security_", name, hook, args, __VA_ARGS__)

#endif
