/* The fmod_ret programs that have no BPF LSM twin (the others come in pairs from
 * bpf/lsm.bpf.c, BW_GUARD_HOOK): where the security_* function's arguments are not its
 * hook's. Loaded only where no BPF LSM runs and the kernel loads fmod_ret programs
 * (sensor/loader.c, choose_guard_layer); the last argument is the return value so far
 * (0, or an earlier fmod_ret program's refusal). */
#include "lib/guard.bpf.h"
#include <bpf/bpf_tracing.h>

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

/* Before 5.12 (Debian 11's 5.10): no id mapping. The loader keeps these or lsm.bpf.c's
 * by the kernel's argument count (sensor/loader.c, fmod_ret_nargs). */
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

/* Before 5.13 the verifier cannot attach to a function that takes a struct by value,
 * so security_path_chown (kuid_t, kgid_t) refuses bw_guard_fmr_chown on 5.10 and the
 * loader drops that one program. There chown(2) is refused one step later, where
 * notify_change asks security_inode_setattr with pointers only; the loader keeps this
 * variant only where that function takes (dentry, attr), as on 5.10. */
#define BW_ATTR_UID 2 /* include/linux/fs.h, ATTR_UID, ATTR_GID */
#define BW_ATTR_GID 4
SEC("fmod_ret/security_inode_setattr")
int BPF_PROG(bw_guard_fmr_setattr_510, struct dentry *dentry, struct iattr *attr, int ret)
{
	if (ret)
		return ret;
	if (!(BPF_CORE_READ(attr, ia_valid) & (BW_ATTR_UID | BW_ATTR_GID)))
		return 0;
	return guard_decide(BW_LSM_CHOWN, dentry, NULL, NULL, NULL);
}
