/* Enforce mode where the kernel runs BPF LSM programs (issue 9): the changes no hook
 * refuses elsewhere (rename, unlink, link, chmod, chown, setxattr, truncate by path,
 * and creates in a protected tree) are refused here, with EPERM, before anything
 * changes. Where bpf is not an active LSM but trampolines work (Ubuntu's runners,
 * Debian without lsm=...,bpf) the same decisions refuse through fmod_ret programs on
 * the security_* functions (bpf/fmodret.bpf.c); where neither loads (our 6.18 hosts:
 * EPERM at load) the agent's fallback applies: detect with fanotify, kill the actor,
 * mark the files TAINTED (user/agent/taint.c). The decision is lib/guard.bpf.h's.
 *
 * The programs are named bw_guard_*: attached only when enforce is on, left out of
 * the load where the kernel lacks their hook (sensor/loader.c). Each hook returns the
 * earlier programs' answer when that is already a refusal. */
#include "lib/guard.bpf.h"
#include <bpf/bpf_tracing.h>

/* The agent itself (lib/guard.bpf.h): set before load. */
const volatile __u32 cfg_agent_tgid = 0;

/* 6.1 and later pass the flags (RENAME_EXCHANGE is one call with both sides). */
SEC("lsm/path_rename")
int BPF_PROG(bw_guard_lsm_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	/* the new side first: a file moved over a protected one is named by its target */
	return guard_decide(BW_LSM_RENAME, new_dentry, BPF_CORE_READ(new_dir, mnt), old_dentry,
			    BPF_CORE_READ(old_dir, mnt));
}

SEC("lsm/path_unlink")
int BPF_PROG(bw_guard_lsm_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_UNLINK, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_rmdir")
int BPF_PROG(bw_guard_lsm_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_RMDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_mkdir")
int BPF_PROG(bw_guard_lsm_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_MKDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

/* mknod(2), and the create of an O_CREAT open (may_o_create). */
SEC("lsm/path_mknod")
int BPF_PROG(bw_guard_lsm_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("lsm/path_symlink")
int BPF_PROG(bw_guard_lsm_symlink, const struct path *dir, struct dentry *dentry,
	     const char *old_name, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
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
	return guard_decide(BW_LSM_LINK, new_dentry, mnt, old_dentry, mnt);
}

/* truncate(2), and O_TRUNC opens and ftruncate(2) before 6.2 */
SEC("lsm/path_truncate")
int BPF_PROG(bw_guard_lsm_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

/* ftruncate(2) and O_TRUNC opens from 6.2: left out where the kernel lacks the hook. */
SEC("lsm/file_truncate")
int BPF_PROG(bw_guard_lsm_ftruncate, struct file *file, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(file, f_path.dentry),
			    BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

/* chmod(2) and fchmod(2) */
SEC("lsm/path_chmod")
int BPF_PROG(bw_guard_lsm_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CHMOD, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

/* chown(2) and friends; the ids are passed by value (kuid_t, kgid_t: one word each) */
SEC("lsm/path_chown")
int BPF_PROG(bw_guard_lsm_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CHOWN, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

/* A write through a descriptor: lib/guard.bpf.h, guard_file_write. */
SEC("lsm/file_permission")
int BPF_PROG(bw_guard_lsm_file_write, struct file *file, int mask, int ret)
{
	if (ret)
		return ret;
	return guard_file_write(file, mask);
}

/* A shared writable mapping of a protected file (lib/guard.bpf.h, guard_mmap);
 * reqprot is what the caller asked, prot what will apply (READ_IMPLIES_EXEC adds). */
SEC("lsm/mmap_file")
int BPF_PROG(bw_guard_lsm_mmap, struct file *file, unsigned long reqprot, unsigned long prot,
	     unsigned long flags, int ret)
{
	if (ret)
		return ret;
	return guard_mmap(file, reqprot | prot, flags);
}

SEC("lsm/file_mprotect")
int BPF_PROG(bw_guard_lsm_mprotect, struct vm_area_struct *vma, unsigned long reqprot,
	     unsigned long prot, int ret)
{
	if (ret)
		return ret;
	return guard_mprotect(vma, reqprot | prot);
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
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(bw_guard_lsm_removexattr, void *idmap, struct dentry *dentry, const char *name,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

/* From 6.2 POSIX ACLs are set through these, not the xattr hooks. */
SEC("lsm/inode_set_acl")
int BPF_PROG(bw_guard_lsm_set_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     void *kacl, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("lsm/inode_remove_acl")
int BPF_PROG(bw_guard_lsm_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}
