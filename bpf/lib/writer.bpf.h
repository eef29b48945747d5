/* The conditions a writers entry may add to its executable (docs/policy.md): the
 * process's real uid, and its parent's executable. Read from the task itself, so they
 * hold for processes the table learned of late as for those it saw start. */
#ifndef BW_WRITER_BPF_H
#define BW_WRITER_BPF_H

#include "lib/common.bpf.h"

static __always_inline bool writer_conditions_hold(const struct bw_writer *w,
						   struct task_struct *task)
{
	struct inode *pexe;

	if ((w->cond & BW_WRITER_UID) && BPF_CORE_READ(task, cred, uid.val) != w->uid)
		return false;
	if (w->cond & BW_WRITER_PARENT) {
		pexe = BPF_CORE_READ(task, real_parent, mm, exe_file, f_inode);
		if (!pexe || BPF_CORE_READ(pexe, i_ino) != w->parent_ino ||
		    BPF_CORE_READ(pexe, i_sb, s_dev) != w->parent_dev)
			return false;
	}
	return true;
}

/* A listed writer: by the table (set at exec, inherited at fork), or for a process
 * whose start the sensor did not see (no fork, no exec: it predates the sensor), by its
 * executable and the entry's conditions, as the agent does for events
 * (pipeline/event_build.c writer_by_exe). Shared by the write guards (write.bpf.c) and
 * the BPF LSM hooks (lsm.bpf.c). */
static __always_inline bool may_write(const struct bw_config *cfg, struct task_struct *task,
				      const struct bw_proc *p, __u32 tree)
{
	struct bw_inode_key exe = {};
	struct bw_writer *w;

	if (tree >= 64)
		return false;
	if (p && (p->writer_mask & (1ull << tree)))
		return true;
	if ((p && (p->flags & (BW_PROC_FROM_FORK | BW_PROC_FROM_EXEC))) ||
	    !(cfg->flags & BW_CFG_HAVE_WRITERS))
		return false;
	exe.ino = BPF_CORE_READ(task, mm, exe_file, f_inode, i_ino);
	exe.dev = BPF_CORE_READ(task, mm, exe_file, f_inode, i_sb, s_dev);
	exe.gen = cfg->gen;
	w = bpf_map_lookup_elem(&writer_exes, &exe);
	return w && (w->mask & (1ull << tree)) && writer_conditions_hold(w, task);
}

#endif
