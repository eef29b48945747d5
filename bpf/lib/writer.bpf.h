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

#endif
