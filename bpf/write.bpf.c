/* Enforce mode, issue 7: a write into a protected file through a descriptor opened
 * earlier (before the run, or inherited) never passes an open the agent could refuse.
 * At the write-like syscall's entry the descriptor is resolved to its inode in the
 * kernel (never a path string) and compared with the protected set; an outside
 * process that is not a listed writer is sent SIGKILL, which the write paths check
 * before they copy a byte (measured per syscall: tests/integration/test_enforce_write.c).
 * In audit mode nothing runs past the first flag test: fanotify reports the change. */
#include "lib/writer.bpf.h"
#include <bpf/bpf_tracing.h>

#define SIGKILL 9

/* Is enforce on and the protected set non-empty? Everything else is skipped when not. */
static __always_inline const struct bw_config *guard_on(void)
{
	const struct bw_config *cfg = config_get();
	__u32 zero = 0, *n;

	if (!cfg || !(cfg->flags & BW_CFG_ENFORCE_WRITE))
		return NULL;
	n = bpf_map_lookup_elem(&protected_count, &zero);
	return n && *n ? cfg : NULL;
}

/* The file behind descriptor fd of the current task, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt;
	struct file **fds, *file;

	if (fd < 0)
		return NULL;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* file is protected and the current process may not write it: SIGKILL, and a record.
 * Returns true when it sent the kill. */
static __noinline bool guard_file(const struct bw_config *cfg, struct task_struct *task,
				  struct file *file, int fd, __u32 kind)
{
	struct bw_write_kill_event *e;
	struct bw_inode_key key = {};
	struct bw_protected *prot;
	struct bw_proc *p;
	__u32 tgid, tree;
	bool killed;

	if (!file || !cfg)
		return false;
	key.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	prot = bpf_map_lookup_elem(&protected_inodes, &key);
	if (!prot)
		return false;
	/* Another file now has a deleted protected file's inode number (sensor_abi.h,
	 * bw_protected): not the protected one. */
	if (prot->igen && prot->igen != BPF_CORE_READ(file, f_inode, i_generation))
		return false;
	tree = prot->tree;
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = proc_lookup(tgid);
	if ((p && (p->flags & BW_PROC_IN_BUILD)) || may_write(cfg, task, p, tree))
		return false;
	killed = bpf_send_signal(SIGKILL) == 0;
	e = event_reserve(sizeof(*e), BW_EV_WRITE_KILL);
	if (!e)
		return killed;
	e->ino = key.ino;
	e->dev = key.dev;
	e->pid = tgid;
	e->tree = tree;
	e->kind = kind;
	e->fd = fd;
	e->killed = killed;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	event_submit(e, true);
	return killed;
}

/* The build may write its trees: its writes, most of a build's, stop at one map lookup
 * instead of walking the descriptor table (guard_file would allow them anyway). */
static __always_inline bool current_in_build(void)
{
	struct bw_proc *p = proc_lookup(bpf_get_current_pid_tgid() >> 32);

	return p && (p->flags & BW_PROC_IN_BUILD);
}

static __always_inline void guard(int fd, __u32 kind)
{
	const struct bw_config *cfg = guard_on();
	struct task_struct *task;

	if (!cfg || current_in_build())
		return;
	task = (struct task_struct *)bpf_get_current_task();
	guard_file(cfg, task, fd_file(task, fd), fd, kind);
}

/* One program per syscall, never raw sys_enter (see bpf/access.bpf.c). */
SEC("tracepoint/syscalls/sys_enter_write")
int bw_guard_write(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int bw_guard_pwrite64(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int bw_guard_writev(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev")
int bw_guard_pwritev(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int bw_guard_pwritev2(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int bw_guard_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_TRUNCATE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fallocate")
int bw_guard_fallocate(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_TRUNCATE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_copy_file_range")
int bw_guard_copy_file_range(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[2], BW_WRITE_DATA); /* fd_out */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_splice")
int bw_guard_splice(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[2], BW_WRITE_DATA); /* fd_out */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int bw_guard_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	guard((int)ctx->args[0], BW_WRITE_DATA); /* out_fd */
	return 0;
}

/* Shared writable mmap (issue 7): stores through the mapping pass no syscall and no
 * fsnotify hook, so the mapping itself is the last point to stop them. A shared mapping
 * of a protected file on a descriptor open for writing kills an outsider, even with
 * PROT_READ: mprotect() could add PROT_WRITE later with nothing to see it (finding the
 * file of an address at mprotect needs bpf_find_vma and a walk we do not need if the
 * mapping never exists). The kill lands as mmap returns: no store runs. */
#define BW_PROT_WRITE 0x2
#define BW_MAP_TYPE 0x0f
#define BW_MAP_SHARED 0x01
#define BW_MAP_SHARED_VALIDATE 0x03
#define BW_FMODE_WRITE 0x2

SEC("tracepoint/syscalls/sys_enter_mmap")
int bw_guard_mmap(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long prot = ctx->args[2], type = ctx->args[3] & BW_MAP_TYPE;
	const struct bw_config *cfg;
	struct task_struct *task;
	struct file *file;

	if (type != BW_MAP_SHARED && type != BW_MAP_SHARED_VALIDATE)
		return 0;
	cfg = guard_on();
	if (!cfg)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	file = fd_file(task, (int)ctx->args[4]);
	if (!file || (!(prot & BW_PROT_WRITE) && !(BPF_CORE_READ(file, f_mode) & BW_FMODE_WRITE)))
		return 0;
	guard_file(cfg, task, file, (int)ctx->args[4], BW_WRITE_MMAP);
	return 0;
}

/* io_uring (issue 7): its reads and writes pass no syscall tracepoint. Two checks, one
 * decision (a write-like request on a protected file by an outsider: SIGKILL):
 *  - at io_uring_enter's entry, the requests it is about to submit are read from the
 *    ring (at most BW_URING_SCAN of them). A syscall tracepoint runs preemptible, so
 *    the signal is sent at once, to every thread of the process, io-wq workers
 *    included, before any request is consumed: the write sees the fatal signal.
 *  - at io_uring_submit_req, every request once, for what the first cannot see: an
 *    SQPOLL thread submits without io_uring_enter, and requests past the scan's bound.
 *    That tracepoint runs with preemption off, where bpf_send_signal is deferred to an
 *    irq_work, so it is the second choice.
 * Known gap (measured, tests/integration/test_enforce_mapped.c): a write submitted
 * right after a truncating io_uring open, which ran on an io-wq worker, can still land:
 * the idle worker takes the fatal signal and runs the queued write as the ring is torn
 * down. The truncation before it is reported TAINTED; the pre-content permission layer,
 * where present, refuses the write itself.
 * The descriptor is the request's fd, or for a registered ("fixed") file its slot in the
 * ring's file table. Only requests that write are looked at; nobody else is refused
 * io_uring. Opens through io_uring are left to fanotify (reported, TAINTED). */
#define BW_REQ_F_FIXED_FILE 1ULL
#define BW_SIGNAL_GROUP_EXIT 0x4
#define BW_IOSQE_FIXED_FILE 0x1
#define BW_IORING_ENTER_REGISTERED_RING 0x10
#define BW_IORING_SETUP_SQE128 (1U << 10)
#define BW_URING_SCAN 16 /* requests read per io_uring_enter; the rest: submit_req */
#define BW_FFS_MASK (~3UL) /* io_uring/filetable.h: FFS_NOWAIT | FFS_ISREG in the low bits */

static __always_inline __u32 io_uring_write_kind(__u8 op)
{
	switch (op) {
	case IORING_OP_WRITEV:
	case IORING_OP_WRITE_FIXED:
	case IORING_OP_WRITE:
	case IORING_OP_SPLICE: /* sqe->fd is the output */
	case IORING_OP_TEE:
		return BW_WRITE_DATA;
	case IORING_OP_FALLOCATE:
		return BW_WRITE_TRUNCATE;
	default:
		break;
	}
	/* newer than some kernels' enums: compare numbers */
	if (op == 55 /* IORING_OP_FTRUNCATE */)
		return BW_WRITE_TRUNCATE;
	if (op == 61 /* IORING_OP_WRITEV_FIXED */)
		return BW_WRITE_DATA;
	return 0;
}

/* Before 6.13 the registered files were an array of tagged file pointers, counted by
 * ctx->nr_user_files (6.1's layout: what CO-RE resolves there). */
struct io_fixed_file___old {
	unsigned long file_ptr;
};
struct io_file_table___old {
	struct io_fixed_file___old *files;
};
struct io_ring_ctx___old {
	struct io_file_table___old file_table;
	unsigned int nr_user_files;
};

/* One function per layout, never inlined: inlined, the compiler hoists the field
 * addresses of both layouts out of the caller's loop, ahead of the field check, and the
 * relocation this kernel cannot resolve is then on the path the verifier walks. */
static __noinline struct file *fixed_file_nodes(struct io_ring_ctx *rctx, int idx)
{
	struct io_rsrc_node **nodes, *node;
	unsigned long ptr;

	if (!rctx || idx < 0 || (unsigned int)idx >= BPF_CORE_READ(rctx, file_table.data.nr))
		return NULL;
	nodes = BPF_CORE_READ(rctx, file_table.data.nodes);
	if (!nodes || bpf_probe_read_kernel(&node, sizeof(node), &nodes[idx]) || !node)
		return NULL;
	ptr = BPF_CORE_READ(node, file_ptr);
	return (struct file *)(ptr & BW_FFS_MASK);
}

static __noinline struct file *fixed_file_array(struct io_ring_ctx___old *octx, int idx)
{
	struct io_fixed_file___old *files;
	unsigned long ptr;

	if (!octx || idx < 0 || (unsigned int)idx >= BPF_CORE_READ(octx, nr_user_files))
		return NULL;
	files = BPF_CORE_READ(octx, file_table.files);
	if (!files || bpf_probe_read_kernel(&ptr, sizeof(ptr), &files[idx].file_ptr))
		return NULL;
	return (struct file *)(ptr & BW_FFS_MASK);
}

static __always_inline struct file *fixed_file(struct io_ring_ctx *rctx, int idx)
{
	if (bpf_core_field_exists(rctx->file_table.data.nodes))
		return fixed_file_nodes(rctx, idx);
	if (bpf_core_field_exists(((struct io_ring_ctx___old *)rctx)->file_table.files))
		return fixed_file_array((struct io_ring_ctx___old *)rctx, idx);
	return NULL; /* older layouts (5.10): registered files are not resolved */
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(bw_guard_io_uring_submit, struct io_kiocb *req)
{
	__u32 kind = io_uring_write_kind(BPF_CORE_READ(req, opcode));
	const struct bw_config *cfg;
	struct task_struct *task;
	struct file *file;
	int fd;

	if (!kind)
		return 0;
	cfg = guard_on();
	if (!cfg)
		return 0;
	fd = BPF_CORE_READ(req, cqe.fd);
	task = (struct task_struct *)bpf_get_current_task();
	/* already dying (killed at io_uring_enter): said once is enough */
	if (BPF_CORE_READ(task, signal, flags) & BW_SIGNAL_GROUP_EXIT)
		return 0;
	if (BPF_CORE_READ(req, flags) & BW_REQ_F_FIXED_FILE)
		file = fixed_file(BPF_CORE_READ(req, ctx), fd);
	else
		file = fd_file(task, fd);
	guard_file(cfg, task, file, fd, kind);
	return 0;
}

/* The ring behind io_uring_enter's fd: a plain descriptor or a registered ring's index. */
static __always_inline struct io_ring_ctx *enter_ctx(struct task_struct *task, int fd,
						     unsigned long flags)
{
	struct file *file;

	if (flags & BW_IORING_ENTER_REGISTERED_RING) {
		struct io_uring_task *tctx = BPF_CORE_READ(task, io_uring);

		if (!tctx || fd < 0 || fd >= 16)
			return NULL;
		file = BPF_CORE_READ(tctx, registered_rings[fd]);
	} else {
		file = fd_file(task, fd);
	}
	/* not an io_uring file: io_uring_enter fails with EOPNOTSUPP, and what is read
	 * here is only ever compared with the protected set */
	return file ? BPF_CORE_READ(file, private_data) : NULL;
}

SEC("tracepoint/syscalls/sys_enter_io_uring_enter")
int bw_guard_io_uring_enter(struct trace_event_raw_sys_enter *ctx)
{
	unsigned int to_submit = (unsigned int)ctx->args[1], head, tail, mask, entries, shift;
	const struct bw_config *cfg;
	struct io_uring_sqe *sqes;
	struct task_struct *task;
	struct io_ring_ctx *rctx;
	__u32 *sq_array;

	if (!to_submit)
		return 0;
	cfg = guard_on();
	if (!cfg)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	rctx = enter_ctx(task, (int)ctx->args[0], ctx->args[3]);
	if (!rctx)
		return 0;
	head = BPF_CORE_READ(rctx, cached_sq_head);
	tail = BPF_CORE_READ(rctx, rings, sq.tail);
	entries = BPF_CORE_READ(rctx, sq_entries);
	mask = entries - 1;
	sq_array = BPF_CORE_READ(rctx, sq_array);
	sqes = BPF_CORE_READ(rctx, sq_sqes);
	shift = (BPF_CORE_READ(rctx, flags) & BW_IORING_SETUP_SQE128) ? 1 : 0;
	if (!sqes || !entries)
		return 0;
	for (unsigned int i = 0; i < BW_URING_SCAN; i++) {
		struct io_uring_sqe sqe;
		unsigned int idx = (head + i) & mask;
		struct file *file;
		__u32 kind;

		if (i >= to_submit || head + i == tail)
			break;
		if (sq_array && bpf_probe_read_kernel(&idx, sizeof(idx), &sq_array[idx]))
			break;
		if (idx >= entries)
			continue;
		if (bpf_probe_read_kernel(&sqe, sizeof(sqe), &sqes[(__u64)idx << shift]))
			break;
		kind = io_uring_write_kind(sqe.opcode);
		if (!kind)
			continue;
		file = (sqe.flags & BW_IOSQE_FIXED_FILE) ? fixed_file(rctx, sqe.fd)
							 : fd_file(task, sqe.fd);
		if (guard_file(cfg, task, file, sqe.fd, kind))
			break;
	}
	return 0;
}
