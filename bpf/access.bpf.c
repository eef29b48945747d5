/* An outside process reaching into a build process could make the build write for it:
 * ptrace attach, process_vm_writev, or a write-open of /proc/PID/mem. No tracepoint but
 * sys_enter sees those, so this program runs on every syscall: the first test is on the
 * syscall number and everything else returns at once. */
#include "lib/common.bpf.h"
#include <bpf/bpf_tracing.h>

#if defined(__TARGET_ARCH_x86)
#define NR_LINK 86
#define NR_LINKAT 265
#define NR_OPEN 2
#define NR_PTRACE 101
#define NR_OPENAT 257
#define NR_PROCESS_VM_WRITEV 311
#define NR_OPENAT2 437
#elif defined(__TARGET_ARCH_arm64)
#define NR_LINK -1
#define NR_LINKAT 37
#define NR_OPEN -1
#define NR_PTRACE 117
#define NR_OPENAT 56
#define NR_PROCESS_VM_WRITEV 271
#define NR_OPENAT2 437
#endif

#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206
#define O_ACCMODE 3
#define PROC_PATH_LEN 32

static __always_inline bool in_build(__u32 tgid)
{
	struct bw_proc *p = proc_lookup(tgid);

	return p && (p->flags & BW_PROC_IN_BUILD);
}

static __always_inline void report(__u32 target, __u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct bw_proc_access_event *e;

	if (target == tgid || in_build(tgid) || !in_build(target))
		return;
	e = event_reserve(sizeof(*e), BW_EV_PROC_ACCESS);
	if (!e)
		return;
	e->pid = tgid;
	e->target_pid = target;
	e->kind = kind;
	e->actor_flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

/* "/proc/<digits>/mem" -> the pid, or 0. */
static __always_inline __u32 proc_mem_pid(const char *user_path)
{
	char buf[PROC_PATH_LEN] = {};
	__u32 pid = 0;
	int i;

	if (bpf_probe_read_user_str(buf, sizeof(buf), user_path) < 11)
		return 0;
	if (buf[0] != '/' || buf[1] != 'p' || buf[2] != 'r' || buf[3] != 'o' || buf[4] != 'c' ||
	    buf[5] != '/')
		return 0;
	for (i = 6; i < PROC_PATH_LEN - 5; i++) {
		char c = buf[i];

		if (c < '0' || c > '9')
			break;
		pid = pid * 10 + (c - '0');
	}
	if (i == 6 || i >= PROC_PATH_LEN - 5)
		return 0;
	if (buf[i] != '/' || buf[i + 1] != 'm' || buf[i + 2] != 'e' || buf[i + 3] != 'm' ||
	    buf[i + 4] != 0)
		return 0;
	return pid;
}

static __always_inline void record_link_name(const char *newpath, int dirfd)
{
	struct bw_link_name_event *e = event_reserve(sizeof(*e), BW_EV_LINK_NAME);

	if (!e)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->dirfd = dirfd;
	if (bpf_probe_read_user_str(e->newpath, sizeof(e->newpath), newpath) < 0)
		e->newpath[0] = 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(bw_sys_enter, struct pt_regs *regs, long id)
{
	if (id == NR_OPENAT || id == NR_OPENAT2 || id == NR_OPEN) {
		const char *path;
		long flags;

		if (id == NR_OPEN) {
			path = (const char *)PT_REGS_PARM1_CORE(regs);
			flags = PT_REGS_PARM2_CORE(regs);
		} else {
			path = (const char *)PT_REGS_PARM2_CORE(regs);
			flags = PT_REGS_PARM3_CORE(regs); /* openat2: struct open_how *, below */
			if (id == NR_OPENAT2) {
				__u64 how_flags = 0;

				bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)flags);
				flags = (long)how_flags;
			}
		}
		if ((flags & O_ACCMODE) == 0)
			return 0; /* read-only: the common case ends here */
		{
			__u32 target = proc_mem_pid(path);

			if (target)
				report(target, BW_ACCESS_PROC_MEM);
		}
		return 0;
	}
	if (id == NR_PTRACE) {
		long req = PT_REGS_PARM1_CORE(regs);

		if (req == PTRACE_ATTACH || req == PTRACE_SEIZE)
			report((__u32)PT_REGS_PARM2_CORE(regs), BW_ACCESS_PTRACE);
		return 0;
	}
	if (id == NR_PROCESS_VM_WRITEV) {
		report((__u32)PT_REGS_PARM1_CORE(regs), BW_ACCESS_VM_WRITEV);
		return 0;
	}
	if (id == NR_LINK)
		record_link_name((const char *)PT_REGS_PARM2_CORE(regs), BW_AT_FDCWD);
	else if (id == NR_LINKAT)
		record_link_name((const char *)PT_REGS_PARM4_CORE_SYSCALL(regs),
				 (int)PT_REGS_PARM3_CORE(regs));
	return 0;
}
