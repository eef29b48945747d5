/* Enforce mode's write guard (issue 7, "a descriptor opened earlier"): the kernel kills
 * an outside process entering a write-like syscall on a protected file
 * (bpf/write.bpf.c); here its set is kept equal to fanwatch's marked files, and its
 * records become File events with the verdict KILLED. */
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "agent/agent_int.h"
#include "pipeline/event_build.h"

static int write_guard__inode(void *ctx, bool present, unsigned tree, uint64_t dev, uint64_t ino,
			      uint32_t igen)
{
	struct agent *a = ctx;

	if (!present) {
		sensor__unprotect_inode(a->sensor, dev, ino, igen);
		return 0;
	}
	return sensor__protect_inode(a->sensor, dev, ino, igen, tree);
}

void write_guard__attach(struct agent *a, struct fanwatch *fw, bool enforce)
{
	/* The BPF LSM (or fmod_ret) programs are attached with the other guards, the first time enforce
	 * is on: the layers the run reports follow. */
	a->feat.lsm_ops = sensor__lsm_ops(a->sensor);
	a->feat.guard_layer = sensor__guard_layer(a->sensor);
	sensor__protect_clear(a->sensor);
	if (fw && enforce)
		fanwatch__set_inode_cb(fw, write_guard__inode, a);
}

void write_guard__detach(struct fanwatch *fw)
{
	if (fw)
		fanwatch__set_inode_cb(fw, NULL, NULL);
}

void write_guard__record(struct agent *a, const struct bw_write_kill_event *r)
{
	uint64_t dev = makedev(BW_KDEV_MAJOR(r->dev), BW_KDEV_MINOR(r->dev));
	char path[4096];
	struct file_change fc = {
		.op = r->kind == BW_WRITE_TRUNCATE ? BUILDWARDEN__V1__FILE_OP__TRUNCATE
		      : r->kind == BW_WRITE_MMAP   ? BUILDWARDEN__V1__FILE_OP__MMAP_WRITE
						   : BUILDWARDEN__V1__FILE_OP__WRITE,
		.pid = (pid_t)r->pid,
		.tree = r->tree,
		.path = path,
		.stop = r->killed ? EVENT_STOP_KILLED : EVENT_STOP_NONE,
	};
	Buildwarden__V1__Event ev;
	struct event_ctx c;
	bool violation;

	/* The kernel compared identities; the name is the table's, never the actor's. */
	if (!a->ps.fw || fanwatch__path_of_inode(a->ps.fw, dev, r->ino, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "inode %u:%u/%llu", BW_KDEV_MAJOR(r->dev),
			 BW_KDEV_MINOR(r->dev), (unsigned long long)r->ino);
	buildwarden__v1__event__init(&ev);
	c = dispatch__ctx(a);
	violation = event_build__file(&c, &fc, &ev);
	a->tally.by_kind[TALLY_FILE]++;
	agent__emit(a, &ev, violation, r->hdr.ktime);
}
