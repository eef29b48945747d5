/* The process table: who is the build (lineage inherited on fork, in the kernel, so it
 * cannot be lost by double-forking and never gained by an outside process), what each
 * process executes (identity read from kernel memory at sched_process_exec), and the
 * exec rules. */
#include "lib/tree.bpf.h"
#include "lib/writer.bpf.h"
#include <bpf/bpf_tracing.h>

#define SIGKILL 9

static __always_inline struct bw_proc *scratch_proc(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&proc_scratch, &zero);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(bw_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct bw_proc *pp, *cp;

	if (ptgid == ctgid)
		return 0; /* a new thread, same process */
	pp = proc_lookup(ptgid);
	if (!pp)
		return 0; /* an untracked parent: its child is entered at its exec */
	cp = scratch_proc();
	if (!cp)
		return 0;
	__builtin_memcpy(cp, pp, sizeof(*cp));
	cp->ppid = ptgid;
	cp->start_ktime = BPF_CORE_READ(child, start_time);
	cp->flags = (pp->flags & (BW_PROC_IN_BUILD | BW_PROC_EXEC_SEEN)) | BW_PROC_FROM_FORK;
	cp->writer_mask = pp->inherit_mask;
	cp->inherit_mask = pp->inherit_mask;
	if (bpf_map_update_elem(&proc_table, &ctgid, cp, BPF_ANY))
		count(BW_CNT_PROC_TABLE_FAIL);
	return 0;
}

/* Is the exec'd file outside every mounted tree, so that no deny tree can contain it?
 * memfd_create + fexecve (a dentry never hashed, on the kernel's internal shm mount), a
 * file deleted before or after it was opened (no links left, or its dentry unhashed),
 * and a file of a mount detached from every namespace (umount -l, open_tree). */
static __always_inline bool exec_file_nameless(struct file *file)
{
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vmnt = BPF_CORE_READ(file, f_path.mnt);
	struct mount *mnt = container_of(vmnt, struct mount, mnt);
	unsigned long ns = (unsigned long)BPF_CORE_READ(mnt, mnt_ns);

	if (BPF_CORE_READ(d, d_inode, __i_nlink) == 0)
		return true;
	/* NULL: detached; MNT_NS_INTERNAL (an error pointer): a kernel-internal mount */
	if (ns == 0 || ns >= (unsigned long)-4095)
		return true;
	return BPF_CORE_READ(d, d_hash.pprev) == NULL && BPF_CORE_READ(d, d_parent) != d;
}

/* The loader's options that run no program (ldd's `--verify` maps the file and checks
 * it is dynamic; it relocates nothing and runs none of it). */
static __always_inline bool loader_option_runs_nothing(const char *a)
{
	static const char opts[][20] = { "--help", "--version", "--verify", "--list-tunables",
					  "--list-diagnostics" };

	for (int k = 0; k < 5; k++) {
		bool same = true;

		for (int i = 0; i < 20; i++) {
			if (a[i] != opts[k][i]) {
				same = false;
				break;
			}
			if (!a[i])
				break;
		}
		if (same)
			return true;
	}
	return false;
}

/* The dynamic loader exec'd directly, with an argument: it will map and run a program
 * that no exec checked, and the kernel cannot resolve that argument's path here. Only
 * the loader's own informational options pass. An argv[0] too long to skip is treated
 * as a program argument: unknown is refused, not allowed. */
static __always_inline bool loader_runs_program(struct task_struct *p, const struct bw_inode_key *exe)
{
	struct bw_inode_key k = { .ino = exe->ino, .dev = exe->dev, .gen = 0 };
	unsigned long start, end;
	__u32 zero = 0;
	char *buf;
	long n;

	if (!bpf_map_lookup_elem(&exec_loaders, &k))
		return false;
	buf = bpf_map_lookup_elem(&arg_scratch, &zero);
	if (!buf)
		return true;
	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	n = bpf_probe_read_user_str(buf, BW_ARG0_LEN, (void *)start);
	if (n <= 0 || n >= BW_ARG0_LEN)
		return true;
	if (start + n >= end)
		return false; /* argv[0] alone: the loader prints its usage */
	n = bpf_probe_read_user_str(buf, 20, (void *)(start + n));
	if (n <= 0)
		return true;
	return !loader_option_runs_nothing(buf);
}

static __always_inline void emit_exec(struct task_struct *p, struct linux_binprm *bprm,
				      const struct bw_proc *proc, __u32 tgid, int denied,
				      __u32 flags, bool wake)
{
	struct bw_exec_event *e;
	unsigned long arg_start, arg_end;
	long n;
	__u32 len;

	e = event_reserve(sizeof(*e), BW_EV_EXEC);
	if (!e)
		return;
	e->pid = tgid;
	e->ppid = proc->ppid;
	e->uid = proc->uid;
	e->exe_dev = proc->exe_dev;
	e->exe_ino = proc->exe_ino;
	e->proc_flags = proc->flags;
	e->denied_tree = denied;
	e->flags = flags;
	__builtin_memcpy(e->comm, proc->comm, sizeof(e->comm));
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;
	if (n == sizeof(e->filename))
		e->flags |= BW_EXEC_FILENAME_TRUNCATED;

	/* The new image's argv pages were written by the kernel during exec, so they are
	 * present now, unlike at sys_enter_execve in a freshly forked child. */
	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len >= BW_ARGS_LEN) {
		len = BW_ARGS_LEN - 1;
		e->flags |= BW_EXEC_ARGS_TRUNCATED;
	}
	/* The mask is what the verifier needs to see: a bound on the very register used. */
	len &= BW_ARGS_LEN - 1;
	e->args_len = 0;
	if (len) {
		if (bpf_probe_read_user(e->args, len, (void *)arg_start))
			count(BW_CNT_ARGS_READ_FAIL);
		else
			e->args_len = len;
	}
	event_submit(e, wake);
}

/* Is the current process, exec'ing a file whose build_root_exes entry is exe_mask, in
 * (or below) a cgroup one of those entries names? The cgroup is what an outsider cannot
 * acquire: any process can exec the runner's shell, not from inside the runner's
 * service. Levels start at 1: the root cgroup (level 0) holds every process. */
/* The id of the task's cgroup v2 ancestor at level, read from the cgroup itself:
 * bpf_get_current_ancestor_cgroup_id is not offered to tracing programs before 5.14
 * (make vmtest, Debian 11's 5.10). Before 6.1 a cgroup keeps its ancestors' ids
 * (ancestor_ids[]), later pointers to them (ancestors[]). One function per layout, never
 * inlined, so no relocation of the other layout is on the verifier's path. */
struct cgroup___ids {
	int level;
	__u64 ancestor_ids[];
};

static __noinline __u64 ancestor_id_by_ptr(struct cgroup *cg, int level)
{
	struct cgroup *anc = NULL;

	if (!cg || bpf_probe_read_kernel(&anc, sizeof(anc),
					 (void *)cg + bpf_core_field_offset(cg->ancestors) +
						 (__u64)level * sizeof(anc)) || !anc)
		return 0;
	return BPF_CORE_READ(anc, kn, id);
}

static __noinline __u64 ancestor_id_by_id(struct cgroup___ids *cg, int level)
{
	__u64 id = 0;

	if (!cg || bpf_probe_read_kernel(&id, sizeof(id),
					 (void *)cg + bpf_core_field_offset(cg->ancestor_ids) +
						 (__u64)level * sizeof(id)))
		return 0;
	return id;
}

static __always_inline __u64 ancestor_cgroup_id(struct task_struct *t, int level)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);

	if (!cg || level > BPF_CORE_READ(cg, level))
		return 0;
	if (bpf_core_field_exists(cg->ancestors))
		return ancestor_id_by_ptr(cg, level);
	if (bpf_core_field_exists(((struct cgroup___ids *)cg)->ancestor_ids))
		return ancestor_id_by_id((struct cgroup___ids *)cg, level);
	return 0;
}

static __always_inline bool build_root_in_cgroup(struct task_struct *t, __u64 exe_mask, __u32 gen)
{
	struct bw_cgroup_key ck = { .gen = gen };
	__u64 *mask;

	for (int level = 1; level <= BW_CGROUP_MAX_LEVEL; level++) {
		ck.id = ancestor_cgroup_id(t, level);
		if (!ck.id)
			return false; /* deeper than the process's own cgroup */
		mask = bpf_map_lookup_elem(&build_root_cgroups, &ck);
		if (mask && (*mask & exe_mask))
			return true;
	}
	return false;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(bw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	const struct bw_config *cfg = config_get();
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct bw_inode_key key = {};
	struct bw_proc *e, *old;
	struct file *file;
	int denied = -1;
	__u32 flags = 0;
	bool in_scope, violation;

	if (!cfg)
		return 0;
	e = scratch_proc();
	if (!e)
		return 0;
	old = proc_lookup(tgid);
	if (old) {
		__builtin_memcpy(e, old, sizeof(*e));
	} else {
		__builtin_memset(e, 0, sizeof(*e));
		e->ppid = BPF_CORE_READ(p, real_parent, tgid);
		e->start_ktime = BPF_CORE_READ(p, start_time);
	}
	file = BPF_CORE_READ(bprm, file);
	key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	key.gen = cfg->gen;
	e->exe_ino = key.ino;
	e->exe_dev = key.dev;
	e->uid = BPF_CORE_READ(p, cred, uid.val);
	e->flags |= BW_PROC_EXEC_SEEN | BW_PROC_FROM_EXEC;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));

	if ((cfg->flags & BW_CFG_HAVE_BUILD_ROOTS) && !(e->flags & BW_PROC_IN_BUILD)) {
		__u64 *exe_mask = bpf_map_lookup_elem(&build_root_exes, &key);

		if (exe_mask && build_root_in_cgroup(p, *exe_mask, key.gen))
			e->flags |= BW_PROC_IN_BUILD;
	}
	/* A writer's right belongs to the executable it was granted to (and, with
	 * descendants: true, to its lineage: inherit_mask). A process that execs something
	 * else keeps only what its lineage gives it: rsync running /bin/sh is not rsync. */
	e->writer_mask = e->inherit_mask;
	if (cfg->flags & BW_CFG_HAVE_WRITERS) {
		struct bw_writer *w = bpf_map_lookup_elem(&writer_exes, &key);

		if (w && writer_conditions_hold(w, p)) {
			e->writer_mask |= w->mask;
			e->inherit_mask |= w->inherit_mask;
		}
	}
	if (bpf_map_update_elem(&proc_table, &tgid, e, BPF_ANY))
		count(BW_CNT_PROC_TABLE_FAIL);

	in_scope = (e->flags & BW_PROC_IN_BUILD) || (cfg->flags & BW_CFG_EXEC_SCOPE_HOST);
	/* For a #! script, file is already the interpreter and the script's file is gone:
	 * enforce mode refuses its exec earlier, at the open (sensor/execguard.c); audit
	 * mode checks the script's path afterwards (pipeline/event_build.c).
	 * exec.deny cannot be sidestepped: what the walk cannot place in or out of a deny
	 * tree is a violation too, not only a counter (BW_EXEC_EVASIONS). */
	if (in_scope && (cfg->flags & BW_CFG_HAVE_EXEC_DENY)) {
		denied = tree_lookup(&exec_deny_dirs, file, cfg->gen);
		if (denied == TREE_TOO_DEEP)
			flags |= BW_EXEC_TOO_DEEP;
		/* the nearest tree was an exec.allow subtree of a denied one */
		if (denied < 0 || (denied & BW_EXEC_TREE_ALLOW))
			denied = -1;
		if (exec_file_nameless(file))
			flags |= BW_EXEC_NAMELESS;
		if (loader_runs_program(p, &key))
			flags |= BW_EXEC_LOADER;
	}
	violation = denied >= 0 || flags;
	/* The new image has not run an instruction yet: killing it here stops it. The
	 * signal is delivered on the way back to user space, so the record below is still
	 * written, and it says whether the kill was sent. */
	if (violation && (cfg->flags & BW_CFG_ENFORCE_EXEC) && bpf_send_signal(SIGKILL) == 0)
		flags |= BW_EXEC_KILLED;
	if ((e->flags & BW_PROC_IN_BUILD) || violation)
		emit_exec(p, bprm, e, tgid, denied, flags, violation);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(bw_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct bw_proc *e;

	/* Only when the last thread of the group goes. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	e = proc_lookup(tgid);
	if (!e)
		return 0;
	e->flags |= BW_PROC_EXITED;
	bpf_map_update_elem(&recent_exits, &tgid, e, BPF_ANY);
	bpf_map_delete_elem(&proc_table, &tgid);
	return 0;
}
