/* Enforce mode where the kernel runs BPF LSM programs (issue 9): the changes no hook
 * refuses elsewhere (rename, unlink, link, chmod, chown, setxattr, truncate by path,
 * and creates in a protected tree) are refused here, with EPERM, before anything
 * changes. Where the kernel refuses LSM programs (our 6.18 hosts: EPERM at load) these
 * programs are not loaded, and the agent's fallback applies: detect with fanotify,
 * kill the actor, mark the files TAINTED (user/agent/taint.c).
 *
 * What is protected is decided on the objects, never on a path string: a file is
 * protected when its inode is in protected_inodes (every marked regular file, also
 * reached through a hard link outside the trees), or when one of its dentry ancestors,
 * crossing mounts, is a tree root (protected_dirs): so an entry of a directory made a
 * moment ago is inside its tree before any fanotify mark reaches it. A walk deeper
 * than BW_MAX_DENTRY_DEPTH decides by the inode alone and lets the change through:
 * fanotify still reports it, and the fallback taints it and kills the actor.
 *
 * The programs are named bw_guard_*: attached only when enforce is on, left out of
 * the load where the kernel lacks their hook (sensor/loader.c). Each hook returns the
 * earlier programs' answer when that is already a refusal. */
#include "lib/tree.bpf.h"
#include "lib/writer.bpf.h"
#include <bpf/bpf_tracing.h>

#define EPERM 1

/* The agent itself (its cleanup of a name a refused O_CREAT made): set before load. */
const volatile __u32 cfg_agent_tgid = 0;

/* The tree of the object at d (seen through mount vmnt, NULL when the hook gives no
 * mount: then the walk stops at d's file system root), or -1. */
static __noinline int dentry_tree(struct dentry *d, struct vfsmount *vmnt, __u32 gen)
{
	struct bw_inode_key key = {};
	struct tree_pos pos = { .d = d, .mnt = NULL };
	struct inode *inode;
	__u32 *t;
	int r;

	if (!d)
		return -1;
	inode = BPF_CORE_READ(d, d_inode);
	if (inode) {
		key.ino = BPF_CORE_READ(inode, i_ino);
		key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		t = bpf_map_lookup_elem(&protected_inodes, &key);
		if (t)
			return (int)*t;
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
static __noinline int lsm_decide(__u32 op, struct dentry *a, struct vfsmount *am,
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

/* 6.1 and later pass the flags (RENAME_EXCHANGE is one call with both sides). */
SEC("lsm/path_rename")
int BPF_PROG(bw_guard_lsm_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	/* the new side first: a file moved over a protected one is named by its target */
	return lsm_decide(BW_LSM_RENAME, new_dentry, BPF_CORE_READ(new_dir, mnt), old_dentry,
			  BPF_CORE_READ(old_dir, mnt));
}

SEC("lsm/path_unlink")
int BPF_PROG(bw_guard_lsm_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_UNLINK, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_rmdir")
int BPF_PROG(bw_guard_lsm_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_RMDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_mkdir")
int BPF_PROG(bw_guard_lsm_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode,
	     int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_MKDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

/* mknod(2), and the create of an O_CREAT open (may_o_create). */
SEC("lsm/path_mknod")
int BPF_PROG(bw_guard_lsm_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_symlink")
int BPF_PROG(bw_guard_lsm_symlink, const struct path *dir, struct dentry *dentry,
	     const char *old_name, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

/* A protected file linked anywhere (a writable name outside the trees), or any file
 * linked into a tree. link(2) needs both names on one mount. */
SEC("lsm/path_link")
int BPF_PROG(bw_guard_lsm_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct vfsmount *mnt;

	if (ret)
		return ret;
	mnt = BPF_CORE_READ(new_dir, mnt);
	return lsm_decide(BW_LSM_LINK, new_dentry, mnt, old_dentry, mnt);
}

/* truncate(2), and O_TRUNC opens and ftruncate(2) before 6.2 */
SEC("lsm/path_truncate")
int BPF_PROG(bw_guard_lsm_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			  NULL, NULL);
}

/* ftruncate(2) and O_TRUNC opens from 6.2: left out where the kernel lacks the hook. */
SEC("lsm/file_truncate")
int BPF_PROG(bw_guard_lsm_ftruncate, struct file *file, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(file, f_path.dentry),
			  BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

/* chmod(2) and fchmod(2) */
SEC("lsm/path_chmod")
int BPF_PROG(bw_guard_lsm_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_CHMOD, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			  NULL, NULL);
}

/* chown(2) and friends; the ids are passed by value (kuid_t, kgid_t: one word each) */
SEC("lsm/path_chown")
int BPF_PROG(bw_guard_lsm_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_CHOWN, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			  NULL, NULL);
}

/* A write through a descriptor (write, pwrite, writev, fallocate, copy_file_range,
 * splice, sendfile: every path that checks rw_verify_area or calls the hook itself),
 * whenever it was opened. The write guards (write.bpf.c) kill the outsider at the
 * syscall's entry; this makes the call itself fail, so fallocate allocates nothing and
 * a write leaves the mtime alone. Runs on every read and write of the host while
 * enforce is on: reads and an empty protected set leave after two tests. */
#define BW_MAY_WRITE 0x2
SEC("lsm/file_permission")
int BPF_PROG(bw_guard_lsm_file_write, struct file *file, int mask, int ret)
{
	struct bw_inode_key key = {};
	__u32 zero = 0, *n;

	if (ret)
		return ret;
	if (!(mask & BW_MAY_WRITE))
		return 0;
	n = bpf_map_lookup_elem(&protected_count, &zero);
	if (!n || !*n)
		return 0;
	key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(&protected_inodes, &key))
		return 0;
	return lsm_decide(BW_LSM_WRITE, BPF_CORE_READ(file, f_path.dentry),
			  BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

/* The xattr hooks give a dentry, no mount: a tree that spans mounts is found by the
 * file's inode (every marked file) or by the roots on the dentry's own file system.
 * The first argument is the mount's id mapping (its type changed in 6.3). */
SEC("lsm/inode_setxattr")
int BPF_PROG(bw_guard_lsm_setxattr, void *idmap, struct dentry *dentry, const char *name,
	     const void *value, __u64 size, int flags, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(bw_guard_lsm_removexattr, void *idmap, struct dentry *dentry, const char *name,
	     int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

/* From 6.2 POSIX ACLs are set through these, not the xattr hooks. */
SEC("lsm/inode_set_acl")
int BPF_PROG(bw_guard_lsm_set_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     void *kacl, int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("lsm/inode_remove_acl")
int BPF_PROG(bw_guard_lsm_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     int ret)
{
	if (ret)
		return ret;
	return lsm_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}
