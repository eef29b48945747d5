/* Enforce mode's refusals in the kernel (issue 9): the changes no hook refuses
 * elsewhere (rename, unlink, link, chmod, chown, setxattr, truncate by path, creates in
 * a protected tree, writes through a descriptor, shared writable mappings) are refused
 * here, with EPERM, before anything changes. Each hook below is two programs
 * (lib/guard.bpf.h, BW_GUARD_HOOK): a BPF LSM program, loaded where bpf is an active
 * LSM, and an fmod_ret program on the security_* function that calls the hook, loaded
 * where bpf is not an active LSM but trampolines work (Ubuntu's runners, Debian without
 * lsm=...,bpf: make vmtest row 2; the verifier lets BPF_MODIFY_RETURN attach to any
 * function named security_*, and a non-zero return skips it and is returned to its
 * caller). The hooks whose function takes other arguments are written out per layer:
 * mmap_file here, its fmod_ret side and the xattr functions before 5.12 in
 * bpf/fmodret.bpf.c. Where neither layer loads (our 6.18 hosts: EPERM at load) the
 * agent's fallback applies: detect with fanotify, kill the actor, mark the files
 * TAINTED (user/agent/taint.c). The decision is lib/guard.bpf.h's.
 *
 * The programs are named bw_guard_lsm_* and bw_guard_fmr_*: attached only when
 * enforce is on, left out of the load where the kernel lacks their hook or function
 * (sensor/loader.c). The security_path_* functions exist where CONFIG_SECURITY_PATH is
 * set (Debian, Ubuntu: AppArmor needs it). */
#include "lib/guard.bpf.h"
#include <bpf/bpf_tracing.h>

/* The agent itself (lib/guard.bpf.h): set before load. */
const volatile __u32 cfg_agent_tgid = 0;

/* 6.1 and later pass the flags to the hook (RENAME_EXCHANGE is one call with both
 * sides); the new side first: a file moved over a protected one is named by its target */
BW_GUARD_HOOK(rename, path_rename,
	      (const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	       struct dentry *new_dentry, unsigned int flags),
	      return guard_decide(BW_LSM_RENAME, new_dentry, BPF_CORE_READ(new_dir, mnt),
				  old_dentry, BPF_CORE_READ(old_dir, mnt));)

BW_GUARD_HOOK(unlink, path_unlink, (const struct path *dir, struct dentry *dentry),
	      return guard_decide(BW_LSM_UNLINK, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);)

BW_GUARD_HOOK(rmdir, path_rmdir, (const struct path *dir, struct dentry *dentry),
	      return guard_decide(BW_LSM_RMDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);)

BW_GUARD_HOOK(mkdir, path_mkdir, (const struct path *dir, struct dentry *dentry, umode_t mode),
	      return guard_decide(BW_LSM_MKDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);)

/* mknod(2), and the create of an O_CREAT open (may_o_create). */
BW_GUARD_HOOK(mknod, path_mknod,
	      (const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev),
	      return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);)

BW_GUARD_HOOK(symlink, path_symlink,
	      (const struct path *dir, struct dentry *dentry, const char *old_name),
	      return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);)

/* A protected file linked anywhere (a writable name outside the trees), or any file
 * linked into a tree. link(2) needs both names on one mount. */
BW_GUARD_HOOK(link, path_link,
	      (struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry),
	      struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	      return guard_decide(BW_LSM_LINK, new_dentry, mnt, old_dentry, mnt);)

/* truncate(2), and O_TRUNC opens and ftruncate(2) before 6.2 */
BW_GUARD_HOOK(truncate, path_truncate, (const struct path *path),
	      return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(path, dentry),
				  BPF_CORE_READ(path, mnt), NULL, NULL);)

/* ftruncate(2) and O_TRUNC opens from 6.2: left out where the kernel lacks the hook. */
BW_GUARD_HOOK(ftruncate, file_truncate, (struct file *file),
	      return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(file, f_path.dentry),
				  BPF_CORE_READ(file, f_path.mnt), NULL, NULL);)

/* chmod(2) and fchmod(2) */
BW_GUARD_HOOK(chmod, path_chmod, (const struct path *path, umode_t mode),
	      return guard_decide(BW_LSM_CHMOD, BPF_CORE_READ(path, dentry),
				  BPF_CORE_READ(path, mnt), NULL, NULL);)

/* chown(2) and friends; the ids are passed by value (kuid_t, kgid_t: one word each) */
BW_GUARD_HOOK(chown, path_chown, (const struct path *path, __u64 uid, __u64 gid),
	      return guard_decide(BW_LSM_CHOWN, BPF_CORE_READ(path, dentry),
				  BPF_CORE_READ(path, mnt), NULL, NULL);)

/* A write through a descriptor: lib/guard.bpf.h, guard_file_write. Runs on every read
 * and write of the host while enforce is on: reads leave at the mask test. */
BW_GUARD_HOOK(file_write, file_permission, (struct file *file, int mask),
	      return guard_file_write(file, mask);)

/* A shared writable mapping of a protected file (lib/guard.bpf.h, guard_mmap);
 * reqprot is what the caller asked, prot what will apply (READ_IMPLIES_EXEC adds).
 * security_mmap_file gets the caller's prot only: its program is in fmodret.bpf.c. */
SEC("lsm/mmap_file")
int BPF_PROG(bw_guard_lsm_mmap, struct file *file, unsigned long reqprot, unsigned long prot,
	     unsigned long flags, int ret)
{
	if (ret)
		return ret;
	return guard_mmap(file, reqprot | prot, flags);
}

BW_GUARD_HOOK(mprotect, file_mprotect,
	      (struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot),
	      return guard_mprotect(vma, reqprot | prot);)

/* The xattr hooks give a dentry, no mount: a tree that spans mounts is found by the
 * file's inode (every marked file) or by the roots on the dentry's own file system.
 * From 5.12 the first argument is the mount's id mapping (its type changed in 6.3);
 * the fmod_ret variants for 5.10 are in fmodret.bpf.c, and the loader keeps the one
 * whose argument count the kernel's function has (sensor/loader.c, fmod_ret_nargs). */
BW_GUARD_HOOK(setxattr, inode_setxattr,
	      (void *idmap, struct dentry *dentry, const char *name, const void *value,
	       __u64 size, int flags),
	      return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);)

BW_GUARD_HOOK(removexattr, inode_removexattr,
	      (void *idmap, struct dentry *dentry, const char *name),
	      return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);)

/* From 6.2 POSIX ACLs are set through these, not the xattr hooks. */
BW_GUARD_HOOK(set_acl, inode_set_acl,
	      (void *idmap, struct dentry *dentry, const char *acl_name, void *kacl),
	      return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);)

BW_GUARD_HOOK(remove_acl, inode_remove_acl,
	      (void *idmap, struct dentry *dentry, const char *acl_name),
	      return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);)
