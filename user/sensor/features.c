#include "sensor/features.h"
#include "sensor/fanotify_compat.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>


static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static void find_cgroup2(char *out, size_t len)
{
	char line[1024], dev[256], mnt[256], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");

	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %255s %63s", dev, mnt, type) == 3 &&
		    strcmp(type, "cgroup2") == 0) {
			snprintf(out, len, "%s", mnt);
			break;
		}
	}
	fclose(f);
}

/* The probe's temporary file: in /tmp, else in the service's state directory (the first
 * of systemd's $STATE_DIRECTORY). buildwarden-agent.service runs with ProtectSystem=strict
 * and the host's /tmp, read-only there: the failed mkstemp read as "host lacks fanotify
 * permission events", and enforce mode lost its permission answers under the unit alone
 * (tests/packaging/test_systemd.sh). Returns the open file or -1. */
static int probe_file(char *path, size_t len)
{
	const char *state = secure_getenv("STATE_DIRECTORY");
	int fd, n;

	if ((size_t)snprintf(path, len, "/tmp/.buildwarden-probe-XXXXXX") >= len)
		return -1;
	fd = mkstemp(path);
	if (fd >= 0 || !state || state[0] != '/')
		return fd;
	n = (int)strcspn(state, ":");
	if ((size_t)snprintf(path, len, "%.*s/.buildwarden-probe-XXXXXX", n, state) >= len)
		return -1;
	return mkstemp(path);
}

/* Marks a temporary file: the only reliable test of a fanotify class is to use it. */
static bool fanotify_mark_works(unsigned int class, unsigned long long mask)
{
	char path[4096];
	bool ok = false;
	int fd, tmp;

	fd = fanotify_init(class | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
	if (fd < 0)
		return false;
	tmp = probe_file(path, sizeof(path));
	if (tmp >= 0) {
		ok = fanotify_mark(fd, FAN_MARK_ADD, mask, AT_FDCWD, path) == 0;
		close(tmp);
		unlink(path);
	}
	close(fd);
	return ok;
}

/* Loads `return 0` as a program of this type with no attach target. A kernel that takes
 * the type gets as far as the verifier, which asks for the target ("must provide
 * btf_id"): 0. Else -errno, e.g. -EPERM when the kernel refuses the type to us. The
 * target would cost a parse of the kernel's BTF (30 ms here) on every start, for
 * programs this version does not attach. */
static int prog_type_loads(enum bpf_prog_type type, enum bpf_attach_type attach)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[256] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach, .log_buf = log,
		    .log_size = sizeof(log), .log_level = 1);
	int fd = bpf_prog_load(type, "bw_probe", "GPL", insns, 2, &opts);
	int err = fd < 0 ? -errno : 0;

	if (fd >= 0)
		close(fd);
	if (err == -EINVAL && strstr(log, "btf_id"))
		return 0;
	return err;
}

/* Whether bpf is an active LSM, from securityfs: 1, 0, or -1 when it is not mounted
 * (it is not mounted on our hosts; mounting it is not the probe's business). */
static int bpf_lsm_active(void)
{
	char list[512];
	FILE *fp = fopen("/sys/kernel/security/lsm", "re");
	size_t n;

	if (!fp)
		return -1;
	n = fread(list, 1, sizeof(list) - 1, fp);
	fclose(fp);
	list[n] = '\0';
	for (char *tok = strtok(list, ",\n"); tok; tok = strtok(NULL, ",\n"))
		if (strcmp(tok, "bpf") == 0)
			return 1;
	return 0;
}

static void describe_load(char *out, size_t len, const char *what, int err, const char *extra,
			  const char *use)
{
	if (err == 0)
		snprintf(out, len, "host offers: %s (programs load%s; %s)", what, extra, use);
	else
		snprintf(out, len, "host lacks: %s (the kernel refuses to load them: %s)", what,
			 strerror(-err));
}

static void probe_guard_layers(struct features *f)
{
	int lsm = prog_type_loads(BPF_PROG_TYPE_LSM, BPF_LSM_MAC);
	int fmod_ret = prog_type_loads(BPF_PROG_TYPE_TRACING, BPF_MODIFY_RETURN);
	int active = lsm == 0 ? bpf_lsm_active() : -1;

	/* Loaded and attached where bpf is not an active LSM, a program never runs: only
	 * a list that names bpf counts. */
	f->bpf_lsm = lsm == 0 && active == 1;
	f->fmod_ret = fmod_ret == 0;
	if (lsm == 0 && active == 0)
		snprintf(f->lsm_layer, sizeof(f->lsm_layer),
			 "host lacks: BPF LSM (programs load, but bpf is not in "
			 "/sys/kernel/security/lsm)");
	else if (lsm == 0 && active < 0)
		snprintf(f->lsm_layer, sizeof(f->lsm_layer),
			 "host lacks: BPF LSM (programs load, but securityfs is not mounted: "
			 "whether bpf is an active LSM is unknown, so it is not used)");
	else
		describe_load(f->lsm_layer, sizeof(f->lsm_layer), "BPF LSM", lsm, "",
			      "used in enforce mode");
	describe_load(f->trampoline_layer, sizeof(f->trampoline_layer),
		      "fmod_ret on security_* functions", fmod_ret, "",
		      f->bpf_lsm ? "not used: BPF LSM is"
				 : "used in enforce mode where their trampolines attach");
}

void features__probe(struct features *f)
{
	libbpf_print_fn_t old;

	memset(f, 0, sizeof(*f));
	f->root = geteuid() == 0;
	f->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	find_cgroup2(f->cgroup2_path, sizeof(f->cgroup2_path));
	if (!f->root)
		return;
	old = libbpf_set_print(silent_print);
	/* TRACING can't be probed without an attach target; the loader attaching tp_btf
	 * programs is the real test, and it fails with a clear message. */
	f->tp_btf = f->btf;
	f->cgroup_sock_addr =
		libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) == 1 &&
		f->cgroup2_path[0];
	/* tp_btf programs cannot be probed without a target; the helper is the same one
	 * every tracing program type gets, so a tracepoint program stands in. */
	f->send_signal = libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_send_signal,
						 NULL) == 1;
	libbpf_set_print(old);
	probe_guard_layers(f);
	f->fanotify_perm = fanotify_mark_works(FAN_CLASS_CONTENT, FAN_OPEN_PERM);
	f->fanotify_pre_content = fanotify_mark_works(FAN_CLASS_PRE_CONTENT, FAN_PRE_ACCESS);
}

size_t features__layers(const struct features *f, bool enforce, const char **lines, size_t max)
{
	bool fmod_ret = f->guard_layer == FEATURES_GUARD_FMOD_RET;
	size_t n = 0;

#define LAYER(s)                      \
	do {                          \
		if (n < max)          \
			lines[n++] = s; \
	} while (0)
/* One sentence for what either kernel layer refuses, naming the layer attached */
#define BY_LAYER(head, lsm, fmr, tail) (fmod_ret ? head fmr tail : head lsm tail)
	LAYER(f->tp_btf ? "exec: observed at sched_process_exec (kernel memory)"
			: "exec: not observed (no tp_btf)");
	LAYER(f->cgroup_sock_addr ? "connect: decided in the kernel (cgroup sock_addr hooks)"
				  : "connect: not observed (no cgroup v2)");
	LAYER("file changes: detected by fanotify (inode marks), attributed by pid");
	if (enforce) {
		/* The alternative the loader chose (sensor/loader.c, choose_guard_layer), as
		 * attached: make vmtest prints it per row. */
		LAYER(fmod_ret ? "enforce kernel layer: fmod_ret on security_* (bpf is not an "
				 "active LSM)"
		      : f->guard_layer == FEATURES_GUARD_LSM
			      ? "enforce kernel layer: BPF LSM"
			      : "enforce kernel layer: none (tracepoints and fanotify: detect, kill, "
				"taint)");
		/* The sensor does not start without its cgroup hooks attached, so a run that
		 * prints this has them. */
		LAYER(f->cgroup_sock_addr
			      ? "enforce connect/send: stopped: a refused destination gets EPERM in "
				"the kernel, no packet leaves"
			      : "enforce connect/send: not stopped (no cgroup sock_addr hooks)");
		LAYER(f->tp_btf && f->send_signal
			      ? "enforce exec of a binary from exec.deny: stopped: killed at "
				"sched_process_exec before its first instruction"
			      : "enforce exec of a binary from exec.deny: not stopped (no "
				"bpf_send_signal)");
		LAYER(f->tp_btf && f->send_signal
			      ? "enforce exec.deny sidesteps (ld.so PROGRAM, memfd/deleted file, "
				"a tree deeper than the walk): stopped: killed at "
				"sched_process_exec before its first instruction"
			      : "enforce exec.deny sidesteps: not stopped (no bpf_send_signal)");
		LAYER(f->fanotify_perm
			      ? "enforce exec of a #! script from exec.deny: stopped: the exec "
				"fails with EPERM (fanotify FAN_OPEN_EXEC_PERM), the interpreter "
				"never starts"
			      : "enforce exec of a #! script from exec.deny: reported, not stopped "
				"(no fanotify permission events)");
		LAYER(f->send_signal
			      ? "enforce process access (ptrace, process_vm_writev, /proc/PID/mem "
				"write): stopped: the actor is killed at the syscall's entry"
			      : "enforce process access: not stopped (no bpf_send_signal)");
		LAYER(f->fanotify_perm
			      ? "enforce open for write, O_TRUNC, O_CREAT in a protected tree by an "
				"outsider: refused with EPERM (fanotify permission events, answered "
				"from memory)"
			      : "enforce open for write in a protected tree: not refused (no fanotify "
				"permission events); what lands is TAINTED and the outsider killed");
		LAYER(f->fanotify_pre_content
			      ? "enforce truncate (ftruncate, truncate) of a protected file by an "
				"outsider: refused with EPERM (fanotify pre-content events)"
			      : "enforce truncate of a protected file: the actor is killed at entry; "
				"the truncate may land (no pre-content events)");
		if (f->send_signal && (f->lsm_ops & (1u << BW_LSM_WRITE)))
			LAYER(BY_LAYER("enforce writes to a protected file through a descriptor "
				       "opened before the run (write family, fallocate, "
				       "copy_file_range, splice, sendfile): refused in the kernel (",
				       "BPF LSM file_permission", "fmod_ret on security_file_permission",
				       "), and the outsider killed at entry: nothing lands, mtime "
				       "unchanged; shared writable mmap, io_uring: the outsider is "
				       "killed before a byte lands"));
		else
			LAYER(f->send_signal
				      ? "enforce writes to a protected file through a descriptor opened "
					"before the run (write family, shared writable mmap, io_uring): the "
					"outsider is killed before a byte lands (mtime may change; fallocate "
					"may allocate)"
				      : "enforce writes to a protected file: not stopped (no "
					"bpf_send_signal)");
		if (f->lsm_ops & (1u << BW_LSM_MMAP))
			LAYER(BY_LAYER("enforce a shared writable mapping of a protected file by an "
				       "outsider (mmap, or mprotect adding PROT_WRITE): refused in the "
				       "kernel (",
				       "BPF LSM mmap_file, file_mprotect",
				       "fmod_ret on security_mmap_file, security_file_mprotect",
				       "): EPERM, no mapping"));
		if (f->lsm_ops & (1u << FEATURES_LSM_SELF_BIT))
			LAYER("enforce the sensor's own maps, programs and links: no other process, "
			      "root included, gets a descriptor to them (BPF LSM bpf_map, bpf_prog, "
			      "bpf hooks)");
		if ((f->lsm_ops & FEATURES_LSM_CORE) == FEATURES_LSM_CORE)
			LAYER(BY_LAYER("enforce rename, unlink, link, chmod/chown/setxattr, truncate "
				       "by path, create/mkdir/rmdir in a protected tree by an outsider: "
				       "refused in the kernel (",
				       "BPF LSM", "fmod_ret on security_*, bpf not an active LSM",
				       "): EPERM, nothing changes"));
		else if (f->lsm_ops & FEATURES_LSM_CORE) {
			/* A layer with a program this kernel refused (and no variant for its
			 * op): say which ops it still refuses and which are detected. */
			static const struct {
				unsigned op;
				const char *name;
			} core[] = {
				{ BW_LSM_RENAME, "rename" },	 { BW_LSM_UNLINK, "unlink" },
				{ BW_LSM_LINK, "link" },	 { BW_LSM_TRUNCATE, "truncate by path" },
				{ BW_LSM_CHMOD, "chmod" },	 { BW_LSM_CHOWN, "chown" },
				{ BW_LSM_XATTR, "setxattr" },
			};
			static char partial[512];
			size_t len = (size_t)snprintf(
				partial, sizeof(partial), "%s",
				BY_LAYER("enforce rename, unlink, link, chmod/chown/setxattr, truncate "
					 "by path in a protected tree by an outsider: refused in the "
					 "kernel (",
					 "BPF LSM", "fmod_ret on security_*, bpf not an active LSM",
					 ") but for:"));

			for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
				if (!(f->lsm_ops & (1u << core[i].op)) && len < sizeof(partial))
					len += (size_t)snprintf(partial + len, sizeof(partial) - len,
								" %s", core[i].name);
			if (len < sizeof(partial))
				snprintf(partial + len, sizeof(partial) - len,
					 " (no program for it loads here: detected after the fact, "
					 "the outsider killed, the files TAINTED)");
			LAYER(partial);
		} else
			LAYER("enforce rename, unlink, link, chmod/chown/setxattr, truncate by path: "
			      "detected after the fact (no hook here refuses them): the outsider is "
			      "killed, the files are TAINTED, the run fails");
	}
	LAYER(f->fanotify_perm ? "host offers: fanotify permission events (block opens)"
			       : "host lacks: fanotify permission events");
	LAYER(f->fanotify_pre_content ? "host offers: fanotify pre-content events (block writes)"
				      : "host lacks: fanotify pre-content events");
	if (f->lsm_layer[0]) {
		LAYER(f->lsm_layer);
		LAYER(f->trampoline_layer);
	} else {
		LAYER("host: BPF LSM and fmod_ret not probed (not root)");
	}
#undef BY_LAYER
#undef LAYER
	return n;
}
