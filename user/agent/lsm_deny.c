/* Enforce mode where the kernel runs BPF LSM programs (bpf/lsm.bpf.c) or fmod_ret ones
 * on the security_* functions (bw_guard_fmr_*): a rename,
 * unlink, link, create, chmod, chown, xattr change or truncate on a protected tree by
 * an outsider was refused with EPERM before anything changed. Its record becomes a File
 * event with the verdict DENIED: nothing landed, so nothing is tainted and nobody is
 * killed; the run still fails (a violation, exit 77). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "agent/agent_int.h"
#include "pipeline/event_build.h"

static Buildwarden__V1__FileOp lsm_deny__op(uint32_t op)
{
	switch (op) {
	case BW_LSM_RENAME:
		return BUILDWARDEN__V1__FILE_OP__RENAME;
	case BW_LSM_UNLINK:
		return BUILDWARDEN__V1__FILE_OP__UNLINK;
	case BW_LSM_RMDIR:
		return BUILDWARDEN__V1__FILE_OP__RMDIR;
	case BW_LSM_LINK:
		return BUILDWARDEN__V1__FILE_OP__LINK;
	case BW_LSM_CREATE:
		return BUILDWARDEN__V1__FILE_OP__CREATE;
	case BW_LSM_MKDIR:
		return BUILDWARDEN__V1__FILE_OP__MKDIR;
	case BW_LSM_TRUNCATE:
		return BUILDWARDEN__V1__FILE_OP__TRUNCATE;
	case BW_LSM_WRITE:
		return BUILDWARDEN__V1__FILE_OP__WRITE;
	case BW_LSM_MMAP:
		return BUILDWARDEN__V1__FILE_OP__MMAP_WRITE;
	default: /* chmod, chown, xattrs */
		return BUILDWARDEN__V1__FILE_OP__ATTRIB;
	}
}

/* The marked object's in-tree path, by its kernel identity; -ENOENT when unknown. */
static int lsm_deny__path_of(struct agent *a, uint32_t kdev, uint64_t ino, char *out, size_t sz)
{
	uint64_t dev = makedev(BW_KDEV_MAJOR(kdev), BW_KDEV_MINOR(kdev));

	if (!ino || !a->ps.fw)
		return -ENOENT;
	return fanwatch__path_of_inode(a->ps.fw, dev, ino, out, sz) < 0 ? -ENOENT : 0;
}

/* The name the kernel compared: the object's path when it is a marked file or
 * directory, else its directory's path and the entry's name (a new name, the other
 * side of a rename or link); the names are the table's, never the actor's spelling. */
static void lsm_deny__path(struct agent *a, const struct bw_lsm_deny_event *r, char *out,
			   size_t sz)
{
	char dir[4096];
	int n = (int)strnlen(r->name, sizeof(r->name));

	if (lsm_deny__path_of(a, r->dev, r->ino, out, sz) == 0)
		return;
	if (lsm_deny__path_of(a, r->dir_dev, r->dir_ino, dir, sizeof(dir)) == 0)
		snprintf(out, sz, "%s/%.*s", dir, n, r->name);
	else
		snprintf(out, sz, "inode %u:%u/%llu/%.*s", BW_KDEV_MAJOR(r->dir_dev),
			 BW_KDEV_MINOR(r->dir_dev), (unsigned long long)r->dir_ino, n, r->name);
}

void lsm_deny__record(struct agent *a, const struct bw_lsm_deny_event *r)
{
	char path[4096 + BW_LSM_NAME_LEN + 2];
	struct file_change fc = {
		.op = lsm_deny__op(r->op),
		.pid = (pid_t)r->pid,
		.tree = r->tree,
		.path = path,
		.stop = EVENT_STOP_REFUSED,
	};
	Buildwarden__V1__Event ev;
	struct event_ctx c;

	lsm_deny__path(a, r, path, sizeof(path));
	/* a link's or rename's other name is not in the record: say none rather than
	 * let the link-name table guess one */
	if (fc.op == BUILDWARDEN__V1__FILE_OP__LINK || fc.op == BUILDWARDEN__V1__FILE_OP__RENAME)
		fc.new_path = "";
	buildwarden__v1__event__init(&ev);
	c = dispatch__ctx(a);
	(void)event_build__file(&c, &fc, &ev);
	/* The kernel decided on the objects and refused: a violation whatever /proc
	 * says of the actor by now. */
	if (ev.verdict) {
		ev.verdict->violation = true;
		ev.verdict->action = BUILDWARDEN__V1__ACTION__DENIED;
	}
	a->tally.by_kind[TALLY_FILE]++;
	agent__emit(a, &ev, true, r->hdr.ktime);
}
