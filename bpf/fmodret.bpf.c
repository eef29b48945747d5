/* Enforce mode's refusals where bpf is not an active LSM but trampolines work (issue 9,
 * make vmtest row 2; Ubuntu's GitHub runners: BPF LSM built, not in lsm=): the
 * verifier lets a BPF_MODIFY_RETURN program attach to any kernel function whose name
 * starts with "security_" (kernel/bpf/verifier.c, check_attach_modify_return), and a
 * non-zero return skips the function and is returned to its caller. So the same
 * decision as the BPF LSM programs (lib/guard.bpf.h) refuses rename, unlink, link,
 * chmod, chown, setxattr, truncate by path and creates in a protected tree with EPERM
 * before any LSM or the file system sees them. The security_path_* functions exist
 * where CONFIG_SECURITY_PATH is set (Debian, Ubuntu: AppArmor needs it).
 *
 * One alternative of the loader's probe table (sensor/loader.c): loaded only where no
 * BPF LSM runs and the kernel loads fmod_ret programs; each left out where the kernel
 * lacks its function (security_file_truncate, security_inode_set_acl before 6.2) or
 * has it with other arguments (the xattr functions before 5.12 had no id-mapping
 * argument). The arguments are those of the security_* functions, which for these
 * functions are the LSM hooks' (include/linux/security.h), and the last is the return
 * value so far (0, or an earlier fmod_ret program's refusal). Named bw_guard_*:
 * attached when enforce is first on. */
#include "lib/guard.bpf.h"
#include <bpf/bpf_tracing.h>

SEC("fmod_ret/security_path_rename")
int BPF_PROG(bw_guard_fmr_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_RENAME, new_dentry, BPF_CORE_READ(new_dir, mnt), old_dentry,
			    BPF_CORE_READ(old_dir, mnt));
}

SEC("fmod_ret/security_path_unlink")
int BPF_PROG(bw_guard_fmr_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_UNLINK, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("fmod_ret/security_path_rmdir")
int BPF_PROG(bw_guard_fmr_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_RMDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("fmod_ret/security_path_mkdir")
int BPF_PROG(bw_guard_fmr_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_MKDIR, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

/* mknod(2), and the create of an O_CREAT open (may_o_create). */
SEC("fmod_ret/security_path_mknod")
int BPF_PROG(bw_guard_fmr_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("fmod_ret/security_path_symlink")
int BPF_PROG(bw_guard_fmr_symlink, const struct path *dir, struct dentry *dentry,
	     const char *old_name, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CREATE, dentry, BPF_CORE_READ(dir, mnt), NULL, NULL);
}

SEC("fmod_ret/security_path_link")
int BPF_PROG(bw_guard_fmr_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct vfsmount *mnt;

	if (ret)
		return ret;
	mnt = BPF_CORE_READ(new_dir, mnt);
	return guard_decide(BW_LSM_LINK, new_dentry, mnt, old_dentry, mnt);
}

/* truncate(2), and O_TRUNC opens and ftruncate(2) before 6.2 */
SEC("fmod_ret/security_path_truncate")
int BPF_PROG(bw_guard_fmr_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

/* ftruncate(2) and O_TRUNC opens from 6.2 */
SEC("fmod_ret/security_file_truncate")
int BPF_PROG(bw_guard_fmr_ftruncate, struct file *file, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_TRUNCATE, BPF_CORE_READ(file, f_path.dentry),
			    BPF_CORE_READ(file, f_path.mnt), NULL, NULL);
}

SEC("fmod_ret/security_path_chmod")
int BPF_PROG(bw_guard_fmr_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CHMOD, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

SEC("fmod_ret/security_path_chown")
int BPF_PROG(bw_guard_fmr_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_CHOWN, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt),
			    NULL, NULL);
}

SEC("fmod_ret/security_file_permission")
int BPF_PROG(bw_guard_fmr_file_write, struct file *file, int mask, int ret)
{
	if (ret)
		return ret;
	return guard_file_write(file, mask);
}

/* Unlike its hook, security_mmap_file gets the caller's prot only (it computes the
 * hook's prot itself). */
SEC("fmod_ret/security_mmap_file")
int BPF_PROG(bw_guard_fmr_mmap, struct file *file, unsigned long prot, unsigned long flags,
	     int ret)
{
	if (ret)
		return ret;
	return guard_mmap(file, prot, flags);
}

SEC("fmod_ret/security_file_mprotect")
int BPF_PROG(bw_guard_fmr_mprotect, struct vm_area_struct *vma, unsigned long reqprot,
	     unsigned long prot, int ret)
{
	if (ret)
		return ret;
	return guard_mprotect(vma, reqprot | prot);
}

/* From 5.12 the first argument is the mount's id mapping (its type changed in 6.3); the
 * loader keeps the variant whose count the kernel's function has (sensor/loader.c,
 * fmod_ret_nargs). */
SEC("fmod_ret/security_inode_setxattr")
int BPF_PROG(bw_guard_fmr_setxattr, void *idmap, struct dentry *dentry, const char *name,
	     const void *value, __u64 size, int flags, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("fmod_ret/security_inode_removexattr")
int BPF_PROG(bw_guard_fmr_removexattr, void *idmap, struct dentry *dentry, const char *name,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

/* Before 5.12 (Debian 11's 5.10): no id mapping. */
SEC("fmod_ret/security_inode_setxattr")
int BPF_PROG(bw_guard_fmr_setxattr_510, struct dentry *dentry, const char *name,
	     const void *value, __u64 size, int flags, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("fmod_ret/security_inode_removexattr")
int BPF_PROG(bw_guard_fmr_removexattr_510, struct dentry *dentry, const char *name, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("fmod_ret/security_inode_set_acl")
int BPF_PROG(bw_guard_fmr_set_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     void *kacl, int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}

SEC("fmod_ret/security_inode_remove_acl")
int BPF_PROG(bw_guard_fmr_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name,
	     int ret)
{
	if (ret)
		return ret;
	return guard_decide(BW_LSM_XATTR, dentry, NULL, NULL, NULL);
}
