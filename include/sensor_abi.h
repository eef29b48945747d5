/* The only header shared by bpf/ and user/: event records, map keys and values.
 * Plain fixed-width types, explicit padding, no includes: both sides must agree on
 * every byte, and the static asserts at the end catch a drift at compile time. */
#ifndef BUILDWARDEN_SENSOR_ABI_H
#define BUILDWARDEN_SENSOR_ABI_H

#define BW_ABI_VERSION 1

#define BW_COMM_LEN 16
#define BW_FILENAME_LEN 256
#define BW_ARGS_LEN 512
/* Enough for any real source tree; a deeper file is reported as unresolved, not missed. */
#define BW_MAX_DENTRY_DEPTH 32

enum bw_event_type {
	BW_EV_EXEC = 1,
	BW_EV_CONNECT = 2,
	BW_EV_PROC_ACCESS = 3,
	BW_EV_LINK_NAME = 4,
	BW_EV_WRITE_KILL = 5,
	BW_EV_LSM_DENY = 6,
};

/* proc_entry.flags */
#define BW_PROC_IN_BUILD (1u << 0)
#define BW_PROC_EXEC_SEEN (1u << 1)
#define BW_PROC_EXITED (1u << 2)
/* lineage came from a fork the sensor saw, not from a guess at start-up */
#define BW_PROC_FROM_FORK (1u << 3)
/* the sensor saw this process's last exec: writer_mask was decided for the executable it
 * runs (EXEC_SEEN alone may come from the start-up scan of /proc) */
#define BW_PROC_FROM_EXEC (1u << 4)

/* exec_event.flags: the record holds only a prefix (argv past BW_ARGS_LEN - 1 bytes, a
 * filename of BW_FILENAME_LEN - 1 bytes or more); events say so (ExecBody.truncated). */
#define BW_EXEC_ARGS_TRUNCATED (1u << 0)
#define BW_EXEC_FILENAME_TRUNCATED (1u << 1)
/* enforce mode: the kernel sent the new image SIGKILL before its first instruction */
#define BW_EXEC_KILLED (1u << 2)
/* Ways around exec.deny, each a violation of its own (set only for a process in the
 * scope of a policy with exec.deny trees): the file is deeper than the walk goes, so
 * whether it is in a deny tree cannot be decided; */
#define BW_EXEC_TOO_DEEP (1u << 3)
/* the file has no name in a mounted tree: memfd_create + fexecve, a deleted file, a file
 * of an internal or detached mount; */
#define BW_EXEC_NAMELESS (1u << 4)
/* the image is the dynamic loader, run directly on a program (`ld.so /tmp/x`): the
 * loader maps that program itself, with no exec the kernel could check. */
#define BW_EXEC_LOADER (1u << 5)
#define BW_EXEC_EVASIONS (BW_EXEC_TOO_DEEP | BW_EXEC_NAMELESS | BW_EXEC_LOADER)
/* enforce mode, from the agent: an exec of a #! script in a deny tree was refused with
 * EACCES (fanotify FAN_OPEN_EXEC_PERM); the interpreter never started. */
#define BW_EXEC_REFUSED (1u << 6)

/* connect_event.verdict and net_rule.action */
enum bw_net_action {
	BW_NET_ALLOW = 1,
	BW_NET_DENY = 2,
};

/* connect_event.matched: which list the deciding rule came from */
enum bw_net_match {
	BW_MATCH_DEFAULT = 0, /* no rule: the policy's default */
	BW_MATCH_ALLOW = 1,
	BW_MATCH_DENY = 2,
	/* an address the agent's resolver answered for a name of network.allow (dns_allow) */
	BW_MATCH_NAME = 3,
};

enum bw_net_proto {
	BW_PROTO_TCP = 1,
	BW_PROTO_UDP = 2,
};

/* proc_access_event.kind: an outside process reaching into a build process */
enum bw_proc_access_kind {
	BW_ACCESS_PTRACE = 1,
	BW_ACCESS_VM_WRITEV = 2,
	BW_ACCESS_PROC_MEM = 3, /* opened /proc/PID/mem for writing */
};

/* Slots of the procfs_watched map (bpf/access.bpf.c): which procfs the agent's fanotify
 * mark covers, and whether another may exist. */
enum bw_procfs_slot {
	BW_PROCFS_WATCHED_DEV = 0, /* kdev of the marked super block, 0: none */
	BW_PROCFS_OTHERS = 1,      /* non-zero: a procfs the mark does not cover may exist */
	BW_PROCFS_SLOTS = 2,
};

/* counters map indexes (per-CPU array): only what was lost or could not be decided,
 * each reported in the stats events. What was seen needs no counter: it is an event. */
enum bw_counter {
	BW_CNT_RINGBUF_DROPS = 0,
	BW_CNT_PROC_TABLE_FAIL = 1,
	BW_CNT_ARGS_READ_FAIL = 2,
	BW_CNT_DEPTH_EXCEEDED = 3,
	/* link() names not recorded because the ring was more than half full */
	BW_CNT_LINK_NAMES_SHED = 4,
	BW_CNT_MAX = 5,
};

struct bw_event_hdr {
	__u16 type;
	__u16 version;
	__u32 size; /* bytes of the whole record, header included */
	__u64 ktime;
};

/* Identity of a file system object in the kernel's encoding: dev is sb->s_dev
 * (major << 20 | minor), not the userspace st_dev encoding. */
#define BW_KDEV(major, minor) ((__u32)(major) << 20 | (__u32)(minor))
#define BW_KDEV_MAJOR(kdev) ((kdev) >> 20)
#define BW_KDEV_MINOR(kdev) ((kdev) & 0xfffff)
struct bw_inode_key {
	__u64 ino;
	__u32 dev;
	__u32 gen; /* policy generation: a reload fills gen + 1, then flips bw_config.gen */
};

/* proc_table value, keyed by __u32 tgid */
struct bw_proc {
	__u64 start_ktime;
	__u64 exe_ino;
	__u64 writer_mask; /* bit i: may write protected tree i */
	__u64 inherit_mask; /* the part of writer_mask passed to children */
	__u32 exe_dev;
	__u32 ppid;
	__u32 uid;
	__u32 flags;
	char comm[BW_COMM_LEN];
	char filename[BW_FILENAME_LEN];
};

/* build_root_cgroups key: a cgroup v2 id (its kernfs node id, what
 * bpf_get_current_ancestor_cgroup_id returns and name_to_handle_at gives userspace),
 * under a policy generation. Value: __u64 mask of the build_roots entries (bit i: entry
 * i) whose cgroup it is. build_root_exes maps an exe key to the same kind of mask; an
 * exec makes a root when the two masks share a bit for one of the process's cgroup
 * ancestors, up to BW_CGROUP_MAX_LEVEL levels below the root. */
#define BW_CGROUP_MAX_LEVEL 16
struct bw_cgroup_key {
	__u64 id;
	__u32 gen;
	__u32 pad;
};

/* exec_loaders: the (dev, inode) of each dynamic loader on the host, gen 0, found at
 * start-up (sensor/loaders.c); value unused. */
#define BW_MAX_LOADERS 8

/* writer_exes value, keyed by bw_inode_key of the executable */
#define BW_WRITER_UID (1u << 0)    /* the process's real uid must be uid */
#define BW_WRITER_PARENT (1u << 1) /* its parent must run (parent_dev, parent_ino) */
struct bw_writer {
	__u64 mask;
	__u64 inherit_mask;
	__u64 parent_ino;
	__u32 parent_dev; /* kernel encoding, as bw_inode_key.dev */
	__u32 uid;
	__u32 cond;       /* BW_WRITER_*: all must hold for mask to be granted */
	__u32 pad;
};

/* net_rules: an LPM trie over (gen, port, address); port 0 stands for "any port" and is
 * looked up separately, so a port-specific rule and an any-port rule both apply: the
 * longer prefix wins, a port-specific rule on a tie (bpf/lib/netmatch.bpf.h). */
struct bw_net_key {
	__u32 prefixlen; /* 8 (gen) + 16 (port) + address bits in the v6 space */
	__u8 gen;
	__u8 port_be[2];
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 pad;
};
#define BW_NET_KEY_FIXED_BITS 24

struct bw_net_value {
	__u32 action; /* enum bw_net_action */
	__u32 rule_index; /* index in the policy's allow or deny list */
	__u32 prefixlen; /* of the matching key, to pick the longer of two matches */
};

/* dns_allow: the addresses the agent's resolver answered for a name an allow rule names
 * (`github.com:443`), each with the rule's port (0: any) and the answer's expiry. The
 * kernel ignores an entry past expires_ns; the agent deletes it then, and at the end of
 * the run. Looked up only when no address rule matched (bpf/lib/netmatch.bpf.h). */
struct bw_dns_key {
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 port_be[2];
	__u8 pad[2];
};
struct bw_dns_value {
	__u64 expires_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 rule_index; /* in the policy's list of name rules */
	__u32 pad;
};

/* dns_redirect (one element): where the build's DNS goes. A connect or send to port 53
 * of a process the network rules apply to is rewritten to the agent's resolver on
 * loopback; recvmsg rewrites the reply's source back (dns_orig). */
enum bw_dns_port {
	BW_DNS_UDP4 = 0, /* 127.0.0.1 */
	BW_DNS_TCP4 = 1,
	BW_DNS_UDP6 = 2, /* ::1 */
	BW_DNS_TCP6 = 3,
};
struct bw_dns_redirect {
	__u32 enabled;
	__u32 agent_tgid; /* the resolver's own queries go upstream, not to itself */
	__u16 port_be[4]; /* enum bw_dns_port */
};
/* dns_orig value, keyed by socket cookie: the destination a redirected socket asked for */
struct bw_dns_orig {
	__u8 addr[16]; /* as the socket's family gives it: IPv4 in the last 4 bytes */
	__u16 port_be;
	__u16 family;
	__u32 pad;
};

/* exec_deny_dirs value bit: the tree is an exec.allow exception (index in exec.allow);
 * kept below the sign bit, as tree_walk returns the value as an int */
#define BW_EXEC_TREE_ALLOW (1u << 30)

/* config map value (one element); written as a whole, so a reload is one update */
#define BW_CFG_EXEC_SCOPE_HOST (1u << 0)
#define BW_CFG_NET_SCOPE_HOST (1u << 1)
#define BW_CFG_NET_DEFAULT_DENY (1u << 2)
#define BW_CFG_ENFORCE_NET (1u << 3)
#define BW_CFG_ENFORCE_EXEC (1u << 4)
#define BW_CFG_HAVE_EXEC_DENY (1u << 5)
#define BW_CFG_HAVE_BUILD_ROOTS (1u << 6)
#define BW_CFG_HAVE_WRITERS (1u << 7)
/* kill an outside process writing a protected file through a descriptor (bpf/write.bpf.c) */
#define BW_CFG_ENFORCE_WRITE (1u << 8)
/* enforce mode for process access: an outsider reaching into a build process is killed */
#define BW_CFG_ENFORCE_ACCESS (1u << 9)
/* enforce mode with fanotify permission events: record each outsider's open intent
 * (bpf/intent.bpf.c) for the agent's answer to FAN_OPEN_PERM */
#define BW_CFG_ENFORCE_OPEN (1u << 10)
/* the policy protects some trees (protected_dirs holds their roots, this generation) */
#define BW_CFG_HAVE_PROTECT (1u << 11)
struct bw_config {
	__u32 flags;
	__u32 gen;
};

struct bw_exec_event {
	struct bw_event_hdr hdr;
	__u64 exe_ino;
	__u32 exe_dev;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 flags; /* BW_EXEC_* */
	__u32 proc_flags; /* BW_PROC_* */
	__s32 denied_tree; /* index in the exec deny list, or -1 */
	__u16 filename_len; /* bytes in filename, including the NUL */
	__u16 args_len; /* bytes of NUL-separated argv in args */
	char comm[BW_COMM_LEN];
	char filename[BW_FILENAME_LEN];
	char args[BW_ARGS_LEN];
};

struct bw_connect_event {
	struct bw_event_hdr hdr;
	__u32 pid;
	__u32 uid;
	__u32 proc_flags;
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 port; /* host byte order */
	__u8 addr[16]; /* IPv4 in the first 4 bytes for AF_INET */
	__u8 protocol; /* enum bw_net_proto */
	__u8 action; /* enum bw_net_action: what the rules say */
	__u8 enforced; /* the connect was refused in the kernel */
	__u8 matched; /* enum bw_net_match */
	__u32 rule_index;
	char comm[BW_COMM_LEN];
};

struct bw_proc_access_event {
	struct bw_event_hdr hdr;
	__u32 pid; /* the actor */
	__u32 target_pid;
	__u32 kind; /* enum bw_proc_access_kind */
	__u32 killed; /* enforce mode: the actor was sent SIGKILL before the syscall ran */
	char comm[BW_COMM_LEN];
};

/* The names a link()/linkat() is about to use: fanotify reports a hard link made outside
 * the trees only as a link count change on the protected file, without the new name, and
 * a link made into a tree as a create, without the existing name. Also the path of a
 * truncate(2), which fanotify reports as a plain modification. */
#define BW_AT_FDCWD -100
enum bw_name_kind {
	BW_NAME_LINK = 0, /* newpath: the new name; oldpath: the existing one */
	BW_NAME_TRUNCATE = 1, /* newpath: the file truncate(2) names; oldpath empty */
};
struct bw_link_name_event {
	struct bw_event_hdr hdr;
	__u32 pid;
	__s32 dirfd; /* BW_AT_FDCWD, or the descriptor newpath is relative to */
	__s32 olddirfd; /* the same, for oldpath */
	__u32 kind; /* enum bw_name_kind */
	char newpath[BW_FILENAME_LEN];
	char oldpath[BW_FILENAME_LEN];
};

/* protected_inodes: every marked regular file of the protected trees, keyed by
 * bw_inode_key with gen 0 (it follows fanwatch's marks, not a policy generation);
 * value: bw_protected. What does not fit is counted by the agent (stats). */
#define BW_MAX_PROTECTED_INODES 262144
/* protected_inodes value. igen is the file's inode generation (inode->i_generation, as
 * its file handle carries it: user/sensor/fanotify_parse.h fanotify_parse__handle_gen),
 * or 0 where the agent could not read it: then dev and inode alone decide, as before.
 * Why: a file system hands a freed inode number to the next file it creates (ext4 at
 * once), and between a protected file's deletion and the agent dropping its entry, an
 * unrelated file outside the trees would carry the protected identity; its writer
 * would be killed. The generation differs between the two. */
struct bw_protected {
	__u32 tree;
	__u32 igen;
};
/* bw_write_kill_event.kind */
enum bw_write_kind {
	BW_WRITE_DATA = 1, /* write, pwrite64, writev, pwritev(2), copy_file_range, splice, sendfile */
	BW_WRITE_TRUNCATE = 2, /* ftruncate, fallocate */
	BW_WRITE_MMAP = 3, /* a shared mapping of the file through a writable descriptor */
};
/* Enforce mode: a process outside the build, not a listed writer, entered a write-like
 * syscall on a descriptor of a protected file and was sent SIGKILL before it ran. */
struct bw_write_kill_event {
	struct bw_event_hdr hdr;
	__u64 ino;
	__u32 dev; /* kernel encoding (BW_KDEV) */
	__u32 pid;
	__u32 tree;
	__u32 kind; /* enum bw_write_kind */
	__s32 fd;
	__u32 killed; /* bpf_send_signal succeeded */
	char comm[BW_COMM_LEN];
};

/* protected_dirs: the root directory of each protected tree, keyed by bw_inode_key
 * under the policy generation; value: the tree index. The BPF LSM hooks (bpf/lsm.bpf.c)
 * walk a dentry's parents against it, so a directory made a moment ago is inside its
 * tree before any mark reaches it. */
#define BW_MAX_PROTECT_TREES 64
/* bw_lsm_deny_event.op: the hook that refused */
enum bw_lsm_op {
	BW_LSM_RENAME = 1, /* path_rename: from or to a protected tree, or over a protected file */
	BW_LSM_UNLINK = 2, /* path_unlink */
	BW_LSM_RMDIR = 3, /* path_rmdir */
	BW_LSM_LINK = 4, /* path_link: a protected file linked anywhere, or any file into a tree */
	BW_LSM_CREATE = 5, /* path_mknod (O_CREAT opens too), path_symlink */
	BW_LSM_MKDIR = 6, /* path_mkdir */
	BW_LSM_TRUNCATE = 7, /* path_truncate, file_truncate */
	BW_LSM_CHMOD = 8, /* path_chmod */
	BW_LSM_CHOWN = 9, /* path_chown */
	BW_LSM_XATTR = 10, /* inode_setxattr, inode_removexattr, inode_set_acl, inode_remove_acl */
	BW_LSM_WRITE = 11, /* file_permission: a write-like call on a descriptor (write family,
			    * fallocate, copy_file_range, splice, sendfile) */
	BW_LSM_MMAP = 12, /* mmap_file, file_mprotect: a shared writable mapping of a protected
			   * file */
	BW_LSM_OP_MAX = 13,
};
/* Enforce mode where the kernel runs BPF LSM programs: an operation on a protected tree
 * by a process outside the build, not a listed writer, was refused with EPERM before it
 * changed anything. ino/dev: the object the operation names when it exists (else 0);
 * dir_ino/dir_dev: the directory whose entry it changes (0 for chmod, chown, xattr,
 * truncate); name: the entry's last component (the new name for rename and link). */
#define BW_LSM_NAME_LEN 256
struct bw_lsm_deny_event {
	struct bw_event_hdr hdr;
	__u64 ino;
	__u64 dir_ino;
	__u32 dev; /* kernel encoding (BW_KDEV) */
	__u32 dir_dev;
	__u32 pid;
	__u32 tree;
	__u32 op; /* enum bw_lsm_op */
	__u32 pad;
	char comm[BW_COMM_LEN];
	char name[BW_LSM_NAME_LEN];
};

/* own_objects: the sensor's own maps, programs and links by their kernel ids, entered
 * by the agent once enforce is first on (value unused). Where BPF LSM runs, an fd to
 * one of them is refused to every process but the agent (bpf/selfguard.bpf.c). */
enum bw_own_kind {
	BW_OWN_MAP = 1,
	BW_OWN_PROG = 2,
	BW_OWN_LINK = 3,
};
struct bw_own_key {
	__u32 kind; /* enum bw_own_kind */
	__u32 id;
};
#define BW_MAX_OWN_OBJECTS 1024

/* open_intent: what a thread outside the build asked for in the open it is in now,
 * keyed by __u32 tid, written at sys_enter_open* and deleted at sys_exit_open*. The
 * fanotify listener's descriptor does not carry the opener's flags; this does. An open
 * that passes no syscall tracepoint (io_uring, a kernel-internal open) has no entry. */
#define BW_INTENT_EXEC (1u << 0) /* execve/execveat: the image is opened for reading */
#define BW_INTENT_FLAGS_UNKNOWN (1u << 1) /* openat2's struct could not be read */
struct bw_open_intent {
	__u64 ktime; /* bpf_ktime_get_boot_ns at syscall entry */
	__u32 tgid;
	__u32 open_flags; /* the open's flags argument (O_ACCMODE, O_CREAT, O_TRUNC, ...) */
	__u32 intent_flags; /* BW_INTENT_* */
	__u32 pad;
};

#define BW_STATIC_ASSERT(c, m) _Static_assert(c, m)
BW_STATIC_ASSERT(sizeof(struct bw_event_hdr) == 16, "bw_event_hdr layout");
BW_STATIC_ASSERT(sizeof(struct bw_inode_key) == 16, "bw_inode_key layout");
BW_STATIC_ASSERT(sizeof(struct bw_protected) == 8, "bw_protected layout");
BW_STATIC_ASSERT(sizeof(struct bw_proc) % 8 == 0, "bw_proc layout");
BW_STATIC_ASSERT(sizeof(struct bw_cgroup_key) == 16, "bw_cgroup_key layout");
BW_STATIC_ASSERT(sizeof(struct bw_net_key) == 24, "bw_net_key layout");
BW_STATIC_ASSERT(sizeof(struct bw_net_value) == 12, "bw_net_value layout");
BW_STATIC_ASSERT(sizeof(struct bw_dns_key) == 20, "bw_dns_key layout");
BW_STATIC_ASSERT(sizeof(struct bw_dns_value) == 16, "bw_dns_value layout");
BW_STATIC_ASSERT(sizeof(struct bw_dns_redirect) == 16, "bw_dns_redirect layout");
BW_STATIC_ASSERT(sizeof(struct bw_dns_orig) == 24, "bw_dns_orig layout");
BW_STATIC_ASSERT(sizeof(struct bw_config) == 8, "bw_config layout");
BW_STATIC_ASSERT(sizeof(struct bw_writer) == 40, "bw_writer layout");
BW_STATIC_ASSERT(sizeof(struct bw_exec_event) % 8 == 0, "bw_exec_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_connect_event) % 8 == 0, "bw_connect_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_proc_access_event) % 8 == 0, "bw_proc_access_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_link_name_event) % 8 == 0, "bw_link_name_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_write_kill_event) % 8 == 0, "bw_write_kill_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_open_intent) == 24, "bw_open_intent layout");
BW_STATIC_ASSERT(sizeof(struct bw_lsm_deny_event) % 8 == 0, "bw_lsm_deny_event layout");
BW_STATIC_ASSERT(sizeof(struct bw_own_key) == 8, "bw_own_key layout");

#endif
