#include "sensor/loader.h"
#include "sensor/loaders.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "sensor.skel.h"
#include "sensor/netrules.h"
#include "sensor/procscan.h"
#include "sensor/ringpos.h"
#include "sensor/rootcg.h"

/* How long sensor__drain_sync waits for a record another CPU is still writing. */
#define SENSOR_SYNC_MAX_NS (10 * NSEC_PER_MSEC)

#define SENSOR_MAX_UNLOADABLE 8
/* connect4/6, sendmsg4/6, recvmsg4/6 (bpf/net.bpf.c) */
#define SENSOR_CG_PROGS 6
struct sensor {
	struct sensor_bpf *skel;
	/* enforce-only programs this kernel refused to load (their guards are missing) */
	char unloadable[SENSOR_MAX_UNLOADABLE][64];
	size_t n_unloadable;
	struct ring_buffer *rb;
	struct ringpos *pos;	/* NULL: sensor__drain_sync is a plain drain */
	uint64_t sync_timeouts;
	struct bpf_link *cg_links[SENSOR_CG_PROGS];
	int cgroup_fd; /* the cgroup v2 root: hooks attach here, root cgroups resolve under it */
	struct rootcg *rootcg; /* the installed generation's build root cgroups */
	sensor_record_fn on_record;
	void *ctx;
	uint32_t gen;
	int ncpu;
	uint32_t n_protected;	/* entries in protected_inodes */
	bool guards_attached;	/* the enforce-only programs (bw_guard_*) */
	bool perm;		/* fanotify permission events: record open intents in enforce */
	unsigned lsm_ops;	/* bit BW_LSM_*: an LSM or fmod_ret program refusing that op is loaded */
	enum features_guard_layer layer; /* whose programs refuse (choose_guard_layer) */
	bool no_fmod_ret;	/* two fmod_ret programs failed to load: that layer is left out */
	bool fmod_ret_refused;	/* one fmod_ret program is left out alone (unloadable[]) */
	bool links_held_elsewhere; /* sensor__close_after_exit: a child releases the links */
};

/* Programs that only act in enforce mode (bpf/write.bpf.c, bpf/procmem.bpf.c) sit on the
 * hottest syscalls of the host (write and friends): attached in audit mode they would
 * cost every write() a program run and every start/stop a dozen more tracepoint
 * grace periods, for nothing. They are attached the first time enforce is on. */
static bool prog__enforce_only(const struct bpf_program *prog)
{
	return strncmp(bpf_program__name(prog), "bw_guard_", 9) == 0;
}

/* The sensor's own maps, programs and links by kernel id, for bpf/selfguard.bpf.c:
 * refused to any other process once enforce is on, where BPF LSM runs. Entered again
 * whenever links are added (idempotent); one that cannot be entered only narrows the
 * guard, and the map holds far more than the sensor has. */
static void own_objects_fill(struct sensor *s)
{
	const struct bpf_object_skeleton *sk = s->skel->skeleton;
	int fd = bpf_map__fd(s->skel->maps.own_objects);
	struct bpf_program *prog;
	struct bpf_map *map;
	uint8_t one = 1;

	if (!(s->lsm_ops & (1u << FEATURES_LSM_SELF_BIT)))
		return; /* no BPF LSM here: nothing would read it */
	bpf_object__for_each_map(map, s->skel->obj) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		struct bw_own_key key = { .kind = BW_OWN_MAP };

		memset(&info, 0, sizeof(info));
		if (bpf_map__fd(map) < 0 || bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len))
			continue;
		key.id = info.id;
		bpf_map_update_elem(fd, &key, &one, BPF_ANY);
	}
	bpf_object__for_each_program(prog, s->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		struct bw_own_key key = { .kind = BW_OWN_PROG };

		memset(&info, 0, sizeof(info));
		if (bpf_program__fd(prog) < 0 ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		key.id = info.id;
		bpf_map_update_elem(fd, &key, &one, BPF_ANY);
	}
	for (int i = 0; i < sk->prog_cnt + 4; i++) {
		struct bpf_link *link =
			i < sk->prog_cnt ? *sk->progs[i].link : s->cg_links[i - sk->prog_cnt];
		struct bpf_link_info info;
		__u32 len = sizeof(info);
		struct bw_own_key key = { .kind = BW_OWN_LINK };

		memset(&info, 0, sizeof(info));
		if (!link || bpf_link__fd(link) < 0 ||
		    bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len))
			continue;
		key.id = info.id;
		bpf_map_update_elem(fd, &key, &one, BPF_ANY);
	}
}

static bool is_fmod_ret(const struct bpf_program *prog)
{
	return strncmp(bpf_program__section_name(prog), "fmod_ret/", 9) == 0;
}

/* A kernel that loads fmod_ret programs but has no trampolines to attach them (no
 * CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) falls back as where none loads: all of
 * them detached, so no op is refused by one layer and detected by the other. */
static void fmod_ret_drop(struct sensor *s)
{
	const struct bpf_object_skeleton *sk = s->skel->skeleton;

	for (int i = 0; i < sk->prog_cnt; i++) {
		struct bpf_program *prog = *sk->progs[i].prog;

		if (!is_fmod_ret(prog))
			continue;
		bpf_link__destroy(*sk->progs[i].link);
		*sk->progs[i].link = NULL;
		bpf_program__set_autoload(prog, false);
	}
	s->lsm_ops = 0;
	s->layer = FEATURES_GUARD_NONE;
}

static int sensor__attach_guards(struct sensor *s, char *err, size_t errlen)
{
	const struct bpf_object_skeleton *sk = s->skel->skeleton;

	if (s->guards_attached)
		return 0;
	for (int i = 0; i < sk->prog_cnt; i++) {
		struct bpf_program *prog = *sk->progs[i].prog;
		struct bpf_link *link;

		if (!prog__enforce_only(prog) || !bpf_program__autoload(prog) || *sk->progs[i].link ||
		    (is_fmod_ret(prog) && s->layer != FEATURES_GUARD_FMOD_RET))
			continue;
		link = bpf_program__attach(prog);
		if (!link && is_fmod_ret(prog)) {
			fprintf(stderr, "buildwarden: the fmod_ret program '%s' does not attach here "
					"(%s): rename, unlink, chmod and the like are detected, not "
					"refused\n",
				bpf_program__name(prog), strerror(errno));
			fmod_ret_drop(s);
			continue;
		}
		if (!link) {
			int e = -errno;

			snprintf(err, errlen, "cannot attach the enforce program '%s': %s",
				 bpf_program__name(prog), strerror(-e));
			return e;
		}
		*sk->progs[i].link = link;
	}
	s->guards_attached = true;
	own_objects_fill(s);
	return 0;
}

/* The program libbpf last failed to load, from its warning ("prog '%s': failed to
 * load"): the load is all or nothing, and this is how an enforce-only program that a
 * kernel cannot take (a field it lacks) is told from one the sensor needs. */
static char load_failed_prog[64];

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	const char *m;

	if (level != LIBBPF_WARN)
		return 0;
	m = strstr(fmt, "prog '%s': failed to load");
	if (m && m == strchr(fmt, '%') - 6) {
		va_list cp;

		va_copy(cp, ap);
		snprintf(load_failed_prog, sizeof(load_failed_prog), "%s", va_arg(cp, const char *));
		va_end(cp);
	}
	if (getenv("BUILDWARDEN_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

uint32_t sensor__kdev(uint64_t st_dev)
{
	return BW_KDEV(major(st_dev), minor(st_dev));
}

static int ring_cb(void *ctx, void *data, size_t size)
{
	struct sensor *s = ctx;

	if (size < sizeof(struct bw_event_hdr))
		return 0;
	return s->on_record(s->ctx, data, size);
}

static void fill_inode_key(struct bw_inode_key *k, uint64_t dev, uint64_t ino, uint32_t gen)
{
	memset(k, 0, sizeof(*k));
	k->ino = ino;
	k->dev = sensor__kdev(dev);
	k->gen = gen;
}

/* Deletes every entry of a map whose key's generation is not gen. */
static void purge_inode_map(int fd, uint32_t gen)
{
	struct bw_inode_key key, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		if (key.gen != gen && bpf_map_delete_elem(fd, &key) == 0) {
			prev = NULL; /* restart: the iteration order changed */
			continue;
		}
		prev = &key;
	}
}

int sensor__apply_policy(struct sensor *s, const struct bw_policy *p, bool enforce, char *err,
			 size_t errlen)
{
	int deny_fd = bpf_map__fd(s->skel->maps.exec_deny_dirs);
	int roots_fd = bpf_map__fd(s->skel->maps.build_root_exes);
	int rootcg_fd = bpf_map__fd(s->skel->maps.build_root_cgroups);
	struct rootcg *rc = NULL;
	int writers_fd = bpf_map__fd(s->skel->maps.writer_exes);
	int net_fd = bpf_map__fd(s->skel->maps.net_rules);
	int cfg_fd = bpf_map__fd(s->skel->maps.sensor_config);
	int pdirs_fd = bpf_map__fd(s->skel->maps.protected_dirs);
	uint32_t gen = (s->gen + 1) & 0xff, zero = 0;
	struct bw_inode_key key;
	struct bw_config cfg;
	size_t i, j;
	int err_no;

	/* Before anything changes: a reload that cannot attach them changes nothing. Their
	 * flags are still off until the config update below. */
	if (enforce && (err_no = sensor__attach_guards(s, err, errlen)))
		return err_no;

	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < p->n_exec_deny; i++) {
		uint32_t idx = (uint32_t)i;

		fill_inode_key(&key, p->exec_deny[i].dev, p->exec_deny[i].ino, gen);
		if (bpf_map_update_elem(deny_fd, &key, &idx, BPF_ANY))
			goto map_fail;
		cfg.flags |= BW_CFG_HAVE_EXEC_DENY;
	}
	/* exec.allow trees in the same map, marked: the nearest tree of a walk decides */
	for (i = 0; i < p->n_exec_allow; i++) {
		uint32_t val = (uint32_t)i | BW_EXEC_TREE_ALLOW;

		fill_inode_key(&key, p->exec_allow[i].dev, p->exec_allow[i].ino, gen);
		if (bpf_map_update_elem(deny_fd, &key, &val, BPF_ANY))
			goto map_fail;
	}
	/* Each exe maps to the entries naming it, each cgroup too: a root needs both to
	 * share an entry (bpf/proc.bpf.c, build_root_in_cgroup). */
	for (i = 0; i < p->n_build_roots && i < 64; i++) {
		uint64_t mask = 0;

		fill_inode_key(&key, p->build_roots[i].dev, p->build_roots[i].ino, gen);
		bpf_map_lookup_elem(roots_fd, &key, &mask);
		mask |= 1ull << i;
		if (bpf_map_update_elem(roots_fd, &key, &mask, BPF_ANY))
			goto map_fail;
		cfg.flags |= BW_CFG_HAVE_BUILD_ROOTS;
	}
	if ((err_no = rootcg__new(p, gen, &rc)))
		goto net_fail;
	if (rootcg__sync(rc, rootcg_fd, s->cgroup_fd))
		goto map_fail;
	for (i = 0; i < p->n_protect && i < BW_MAX_PROTECT_TREES; i++) {
		uint32_t idx = (uint32_t)i;

		/* no identity (a tree the policy did not find on disk): nothing to walk to */
		if (!p->protect[i].ino)
			continue;
		fill_inode_key(&key, p->protect[i].dev, p->protect[i].ino, gen);
		if (bpf_map_update_elem(pdirs_fd, &key, &idx, BPF_ANY))
			goto map_fail;
		cfg.flags |= BW_CFG_HAVE_PROTECT;
	}
	for (i = 0; i < p->n_protect; i++) {
		for (j = 0; j < p->protect[i].n_writers; j++) {
			const struct bw_exe_match *w = &p->protect[i].writers[j];
			struct bw_writer val;

			memset(&val, 0, sizeof(val));
			fill_inode_key(&key, w->dev, w->ino, gen);
			bpf_map_lookup_elem(writers_fd, &key, &val);
			val.mask |= 1ull << i;
			if (w->descendants)
				val.inherit_mask |= 1ull << i;
			/* one set of conditions per executable: the policy checked it */
			if (w->has_uid) {
				val.cond |= BW_WRITER_UID;
				val.uid = w->uid;
			}
			if (w->parent) {
				val.cond |= BW_WRITER_PARENT;
				val.parent_dev = sensor__kdev(w->parent_dev);
				val.parent_ino = w->parent_ino;
			}
			if (bpf_map_update_elem(writers_fd, &key, &val, BPF_ANY))
				goto map_fail;
			cfg.flags |= BW_CFG_HAVE_WRITERS;
		}
	}
	if ((err_no = netrules__install(net_fd, p, gen)))
		goto net_fail;

	if (p->exec_scope == BW_SCOPE_HOST)
		cfg.flags |= BW_CFG_EXEC_SCOPE_HOST;
	if (p->net_scope == BW_SCOPE_HOST)
		cfg.flags |= BW_CFG_NET_SCOPE_HOST;
	if (p->net_default_deny)
		cfg.flags |= BW_CFG_NET_DEFAULT_DENY;
	/* Part of the same single config update as the rules: a reload that switches the
	 * mode switches it together with the rules it applies to. */
	if (enforce)
		cfg.flags |= BW_CFG_ENFORCE_NET | BW_CFG_ENFORCE_EXEC | BW_CFG_ENFORCE_WRITE |
			     BW_CFG_ENFORCE_ACCESS | (s->perm ? BW_CFG_ENFORCE_OPEN : 0);
	cfg.gen = gen;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY))
		goto map_fail;
	s->gen = gen;
	rootcg__free(s->rootcg);
	s->rootcg = rc;
	purge_inode_map(deny_fd, gen);
	purge_inode_map(roots_fd, gen);
	rootcg__purge(rootcg_fd, gen);
	purge_inode_map(writers_fd, gen);
	purge_inode_map(pdirs_fd, gen);
	netrules__purge(net_fd, gen);
	return 0;

map_fail:
	err_no = -errno;
net_fail:
	snprintf(err, errlen, "cannot install the policy in the kernel maps: %s",
		 strerror(-err_no));
	purge_inode_map(deny_fd, s->gen);
	purge_inode_map(roots_fd, s->gen);
	rootcg__purge(rootcg_fd, s->gen);
	rootcg__free(rc);
	purge_inode_map(writers_fd, s->gen);
	purge_inode_map(pdirs_fd, s->gen);
	netrules__purge(net_fd, s->gen);
	return err_no;
}

static void protected_count_set(struct sensor *s)
{
	uint32_t zero = 0;

	bpf_map_update_elem(bpf_map__fd(s->skel->maps.protected_count), &zero, &s->n_protected,
			    BPF_ANY);
}

int sensor__dns_redirect(struct sensor *s, const struct bw_dns_redirect *r)
{
	uint32_t zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.dns_redirect), &zero, r, BPF_ANY))
		return -errno;
	return 0;
}

static void dns_key(struct bw_dns_key *k, const uint8_t addr[16], uint16_t port)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, 16);
	k->port_be[0] = (uint8_t)(port >> 8);
	k->port_be[1] = (uint8_t)(port & 0xff);
}

int sensor__dns_allow(struct sensor *s, const uint8_t addr[16], uint16_t port,
		      uint32_t rule_index, int64_t expires_ns)
{
	struct bw_dns_key k;
	struct bw_dns_value v;

	dns_key(&k, addr, port);
	memset(&v, 0, sizeof(v));
	v.expires_ns = (uint64_t)expires_ns;
	v.rule_index = rule_index;
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.dns_allow), &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

void sensor__dns_forget(struct sensor *s, const uint8_t addr[16], uint16_t port)
{
	struct bw_dns_key k;

	dns_key(&k, addr, port);
	bpf_map_delete_elem(bpf_map__fd(s->skel->maps.dns_allow), &k);
}

int sensor__protect_inode(struct sensor *s, uint64_t st_dev, uint64_t ino, uint32_t igen,
			  unsigned tree)
{
	int fd = bpf_map__fd(s->skel->maps.protected_inodes);
	struct bw_protected val = { .tree = tree, .igen = igen }, old;
	struct bw_inode_key key;
	bool known;

	fill_inode_key(&key, st_dev, ino, 0);
	known = bpf_map_lookup_elem(fd, &key, &old) == 0;
	if (bpf_map_update_elem(fd, &key, &val, BPF_ANY))
		return -errno;
	if (!known) {
		s->n_protected++;
		protected_count_set(s);
	}
	return 0;
}

void sensor__unprotect_inode(struct sensor *s, uint64_t st_dev, uint64_t ino, uint32_t igen)
{
	int fd = bpf_map__fd(s->skel->maps.protected_inodes);
	struct bw_protected cur;
	struct bw_inode_key key;

	fill_inode_key(&key, st_dev, ino, 0);
	/* Only the agent writes the map, so nothing changes between the two calls. */
	if (bpf_map_lookup_elem(fd, &key, &cur) || (igen && cur.igen && cur.igen != igen))
		return;
	if (bpf_map_delete_elem(fd, &key) == 0 && s->n_protected) {
		s->n_protected--;
		protected_count_set(s);
	}
}

void sensor__protect_clear(struct sensor *s)
{
	int fd = bpf_map__fd(s->skel->maps.protected_inodes);
	struct bw_inode_key key;

	/* The count first: no program walks a descriptor for a set being emptied. */
	s->n_protected = 0;
	protected_count_set(s);
	while (bpf_map_get_next_key(fd, NULL, &key) == 0)
		if (bpf_map_delete_elem(fd, &key))
			break;
}

static int attach_cgroup(struct sensor *s, const struct features *feat, char *err,
			 size_t errlen)
{
	struct bpf_program *progs[SENSOR_CG_PROGS] = {
		s->skel->progs.bw_connect4,
		s->skel->progs.bw_connect6,
		s->skel->progs.bw_sendmsg4,
		s->skel->progs.bw_sendmsg6,
		s->skel->progs.bw_recvmsg4,
		s->skel->progs.bw_recvmsg6,
	};
	int e;

	for (int i = 0; i < SENSOR_CG_PROGS; i++) {
		s->cg_links[i] = bpf_program__attach_cgroup(progs[i], s->cgroup_fd);
		if (!s->cg_links[i]) {
			e = -errno;
			snprintf(err, errlen, "cannot attach '%s' to cgroup '%s': %s",
				 bpf_program__name(progs[i]), feat->cgroup2_path, strerror(-e));
			return e;
		}
	}
	return 0;
}

/* BPF_NOEXIST: a process the tracepoints already entered (it forked or exec'd since
 * attach) knows more than /proc can tell. */
static int seed_proc(void *ctx, unsigned tgid, const struct bw_proc *p)
{
	struct sensor *s = ctx;

	return bpf_map_update_elem(bpf_map__fd(s->skel->maps.proc_table), &tgid, p, BPF_NOEXIST);
}

/* The syscall tracepoints need tracefs for their ids; a fresh host may not have it
 * mounted. Mounting it changes nothing for anyone else, and it is left mounted because
 * another tool may start using it meanwhile. libbpf looks in the same two places. */
static const char *tracefs_events(char *err, size_t errlen)
{
	static const char *const dirs[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char path[64];

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/events", dirs[i]);
		if (access(path, F_OK) == 0)
			return dirs[i];
	}
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return dirs[0];
	snprintf(err, errlen, "tracefs is not mounted and cannot be: mount -t tracefs nodev "
			      "/sys/kernel/tracing: %s", strerror(errno));
	return NULL;
}

/* A syscall this architecture lacks (open(2) on arm64) has no tracepoint: its program
 * is not loaded rather than failing the whole sensor. */
static void drop_missing_tracepoints(struct sensor *s, const char *tracefs)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, s->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		char path[256];

		if (strncmp(sec, "tracepoint/", 11) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/events/%s", tracefs, sec + 11);
		if (access(path, F_OK) != 0)
			bpf_program__set_autoload(prog, false);
	}
}

/* The fmod_ret programs on security_* functions whose arguments changed within the
 * kernels we name, with the count each expects: the xattr functions gained the mount's
 * id mapping as their first argument in 5.12 (the 5.10 variants are in
 * bpf/fmodret.bpf.c, the others in bpf/lsm.bpf.c). A program not listed reads arguments every kernel we name has. */
static const struct {
	const char *prog;
	unsigned nargs;
} fmod_ret_nargs[] = {
	{ "bw_guard_fmr_setxattr", 6 },
	{ "bw_guard_fmr_setxattr_510", 5 },
	{ "bw_guard_fmr_removexattr", 3 },
	{ "bw_guard_fmr_removexattr_510", 2 },
	{ "bw_guard_fmr_setattr_510", 2 },
};

/* Whether this kernel has the function an fmod_ret program attaches to, with the
 * arguments it reads: else the program is left out (its op then guarded as where no
 * kernel layer refuses, unless another variant fits). */
static bool fmod_ret_target_fits(const struct btf *vmlinux, const struct bpf_program *prog)
{
	const char *func = bpf_program__section_name(prog) + 9;
	const struct btf_type *t;
	int id = btf__find_by_name_kind(vmlinux, func, BTF_KIND_FUNC);

	if (id < 0)
		return false;
	t = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
	if (!t || !btf_is_func_proto(t))
		return false;
	for (size_t i = 0; i < sizeof(fmod_ret_nargs) / sizeof(fmod_ret_nargs[0]); i++)
		if (!strcmp(bpf_program__name(prog), fmod_ret_nargs[i].prog) &&
		    btf_vlen(t) != fmod_ret_nargs[i].nargs)
			return false;
	return true;
}

/* A raw tracepoint this kernel lacks (io_uring_submit_req is io_uring_submit_sqe before
 * 6.4): an enforce-only program on it is not loaded, and the guards it backs up do without
 * it (the io_uring scan at io_uring_enter stays). A missing tracepoint that audit mode
 * needs fails the load, naming it. */
static int drop_missing_btf_tracepoints(struct sensor *s, char *err, size_t errlen)
{
	struct bpf_program *prog;
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int e = 0;

	if (!vmlinux)
		return 0; /* the load reports a kernel without BTF */
	bpf_object__for_each_program(prog, s->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		char type[160];

		/* A BPF LSM hook the kernel lacks (file_truncate, inode_set_acl before 6.2):
		 * its program is enforce-only, and the op it refuses is guarded as where
		 * there is no BPF LSM. */
		if (strncmp(sec, "lsm/", 4) == 0) {
			snprintf(type, sizeof(type), "bpf_lsm_%s", sec + 4);
			if (btf__find_by_name_kind(vmlinux, type, BTF_KIND_FUNC) < 0)
				bpf_program__set_autoload(prog, false);
			continue;
		}
		if (is_fmod_ret(prog)) {
			if (!fmod_ret_target_fits(vmlinux, prog))
				bpf_program__set_autoload(prog, false);
			continue;
		}
		if (strncmp(sec, "tp_btf/", 7) != 0)
			continue;
		snprintf(type, sizeof(type), "btf_trace_%s", sec + 7);
		if (btf__find_by_name_kind(vmlinux, type, BTF_KIND_TYPEDEF) >= 0)
			continue;
		if (prog__enforce_only(prog)) {
			bpf_program__set_autoload(prog, false);
			continue;
		}
		snprintf(err, errlen, "this kernel has no '%s' tracepoint, which the sensor needs",
			 sec + 7);
		e = -ENOTSUP;
		break;
	}
	btf__free(vmlinux);
	return e;
}

/* Where the kernel runs no BPF LSM program (refused at load, as on our 6.18 hosts, or
 * bpf not among the active LSMs, where they would load, attach and never run), none is
 * loaded: trying them one by one would cost a load attempt each. */
static bool kernel_older_than(unsigned major, unsigned minor)
{
	struct utsname u;
	unsigned a, b;

	if (uname(&u) || sscanf(u.release, "%u.%u", &a, &b) != 2)
		return false;
	return a < major || (a == major && b < minor);
}

/* Before Linux 6.1 the verifier calls a hash map that allocates its elements at run time
 * unsafe in a tracing program, and 5.10 says so with a kernel WARN ("trace type BPF
 * program uses run-time allocation"), which taints the kernel: there the hash maps the
 * tracepoint programs use are preallocated, for their memory (about 45 MiB) and tens of
 * milliseconds at start. 6.1 allocates from per-CPU caches that are safe there. */
static void prealloc_traced_maps(struct sensor *s)
{
	struct bpf_map *maps[] = { s->skel->maps.proc_table, s->skel->maps.protected_inodes };

	if (!kernel_older_than(6, 1))
		return;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		bpf_map__set_map_flags(maps[i], bpf_map__map_flags(maps[i]) & ~BPF_F_NO_PREALLOC);
}

/* The probe table of enforce mode's kernel guards, one alternative loaded: BPF LSM where
 * bpf is an active LSM (its hooks also guard the sensor's own objects), else fmod_ret on
 * the security_* functions where the kernel loads such programs (their trampolines are
 * tried at attach: sensor__attach_guards), else neither, and the tracepoint programs
 * and fanotify detect what lands. */
static void choose_guard_layer(struct sensor *s, const struct features *feat)
{
	struct bpf_program *prog;

	const char *only = getenv("BUILDWARDEN_GUARD_LAYER");

	s->skel->rodata->cfg_agent_tgid = (uint32_t)getpid();
	s->layer = feat->bpf_lsm			? FEATURES_GUARD_LSM
		   : feat->fmod_ret && !s->no_fmod_ret ? FEATURES_GUARD_FMOD_RET
							: FEATURES_GUARD_NONE;
	/* For measuring one layer against another on one kernel (make vmtest's
	 * test_guard_cost): a weaker choice only, never one the probe did not offer. */
	if (only && !strcmp(only, "none"))
		s->layer = FEATURES_GUARD_NONE;
	else if (only && !strcmp(only, "fmod_ret") && feat->fmod_ret && !s->no_fmod_ret)
		s->layer = FEATURES_GUARD_FMOD_RET;
	bpf_object__for_each_program(prog, s->skel->obj) {
		const char *sec = bpf_program__section_name(prog);

		if ((s->layer != FEATURES_GUARD_LSM && !strncmp(sec, "lsm/", 4)) ||
		    (s->layer != FEATURES_GUARD_FMOD_RET && is_fmod_ret(prog)))
			bpf_program__set_autoload(prog, false);
	}
}

/* The ops the loaded LSM or fmod_ret programs refuse (sensor_abi.h, enum bw_lsm_op);
 * an fmod_ret program on security_X refuses what the LSM hook X does. */
static unsigned lsm_ops_loaded(struct sensor *s)
{
	static const struct {
		const char *hook;
		unsigned op;
	} hooks[] = {
		{ "path_rename", BW_LSM_RENAME },    { "path_unlink", BW_LSM_UNLINK },
		{ "path_rmdir", BW_LSM_RMDIR },      { "path_link", BW_LSM_LINK },
		{ "path_mknod", BW_LSM_CREATE },     { "path_mkdir", BW_LSM_MKDIR },
		{ "path_truncate", BW_LSM_TRUNCATE }, { "path_chmod", BW_LSM_CHMOD },
		{ "path_chown", BW_LSM_CHOWN },      { "inode_setxattr", BW_LSM_XATTR },
		{ "inode_setattr", BW_LSM_CHOWN }, /* fmod_ret only: 5.10's chown */
		{ "file_permission", BW_LSM_WRITE }, { "mmap_file", BW_LSM_MMAP },
		{ "file_mprotect", BW_LSM_MMAP },
		{ "bpf_map", FEATURES_LSM_SELF_BIT },
	};
	struct bpf_program *prog;
	unsigned ops = 0;

	bpf_object__for_each_program(prog, s->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		const char *hook;

		if (!bpf_program__autoload(prog))
			continue;
		if (!strncmp(sec, "lsm/", 4))
			hook = sec + 4;
		else if (!strncmp(sec, "fmod_ret/security_", 18))
			hook = sec + 18;
		else
			continue;
		for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
			if (!strcmp(hook, hooks[i].hook))
				ops |= 1u << hooks[i].op;
	}
	return ops;
}

unsigned sensor__lsm_ops(const struct sensor *s)
{
	return s->guards_attached ? s->lsm_ops : 0;
}

enum features_guard_layer sensor__guard_layer(const struct sensor *s)
{
	return s->guards_attached && s->lsm_ops ? s->layer : FEATURES_GUARD_NONE;
}

/* The dynamic loaders never change while we run: entered once, with gen 0. */
static int install_loaders(struct sensor *s, char *err, size_t errlen)
{
	struct loader_id ids[BW_MAX_LOADERS];
	size_t n = loaders__find(ids, BW_MAX_LOADERS);
	int fd = bpf_map__fd(s->skel->maps.exec_loaders);
	uint32_t one = 1;

	for (size_t i = 0; i < n; i++) {
		struct bw_inode_key key;

		fill_inode_key(&key, ids[i].dev, ids[i].ino, 0);
		if (bpf_map_update_elem(fd, &key, &one, BPF_ANY)) {
			int e = -errno;

			snprintf(err, errlen, "cannot enter the dynamic loaders: %s", strerror(-e));
			return e;
		}
	}
	return 0;
}

int sensor__open(const struct features *feat, const struct bw_policy *policy, bool enforce,
		 sensor_record_fn on_record, void *ctx, struct sensor **out, char *err,
		 size_t errlen)
{
	struct bpf_program *prog;
	struct sensor *s;
	int e;

	*out = NULL;
	if (!feat->root) {
		snprintf(err, errlen, "the sensor needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)");
		return -EPERM;
	}
	if (!feat->btf) {
		snprintf(err, errlen,
			 "this kernel has no BTF (/sys/kernel/btf/vmlinux): the sensor needs "
			 "CONFIG_DEBUG_INFO_BTF");
		return -ENOTSUP;
	}
	if (!feat->cgroup2_path[0]) {
		snprintf(err, errlen, "no cgroup v2 mount found in /proc/self/mounts");
		return -ENOTSUP;
	}
	libbpf_set_print(libbpf_quiet);
	s = calloc(1, sizeof(*s));
	if (s)
		s->perm = feat->fanotify_perm;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cgroup_fd = -1;
	s->on_record = on_record;
	s->ctx = ctx;
	s->ncpu = libbpf_num_possible_cpus();
	/* An enforce-only program this kernel refuses (5.10 lacks fields the io_uring guard
	 * reads) is left out and the load tried again: its guard is missing on this host,
	 * which the start-up says; everything audit mode needs must load. */
	for (int attempt = 0;; attempt++) {
		bool dropped = false, fmr;

		s->skel = sensor_bpf__open();
		if (!s->skel) {
			e = -errno;
			snprintf(err, errlen, "cannot open the eBPF object: %s", strerror(-e));
			goto fail;
		}
		{
			const char *tracefs = tracefs_events(err, errlen);

			if (!tracefs) {
				e = -ENOTSUP;
				goto fail;
			}
			drop_missing_tracepoints(s, tracefs);
		}
		choose_guard_layer(s, feat);
		prealloc_traced_maps(s);
		e = drop_missing_btf_tracepoints(s, err, errlen);
		if (e)
			goto fail;
		for (size_t i = 0; i < s->n_unloadable; i++) {
			struct bpf_program *p = bpf_object__find_program_by_name(s->skel->obj,
										 s->unloadable[i]);

			if (p)
				bpf_program__set_autoload(p, false);
		}
		load_failed_prog[0] = '\0';
		e = sensor_bpf__load(s->skel);
		if (!e)
			break;
		/* An fmod_ret program refused: the first is left out alone (5.10 refuses
		 * only bw_guard_fmr_chown, for its function's by-value arguments, and its
		 * op has a variant there); a second means the shared decision code is
		 * refused, and the whole layer is left out rather than tried program by
		 * program (a load attempt each). */
		fmr = !strncmp(load_failed_prog, "bw_guard_fmr_", 13);
		if (fmr && s->fmod_ret_refused) {
			s->no_fmod_ret = true;
			dropped = true;
		} else if ((fmr || (attempt < SENSOR_MAX_UNLOADABLE &&
				    !strncmp(load_failed_prog, "bw_guard_", 9))) &&
			   s->n_unloadable < SENSOR_MAX_UNLOADABLE) {
			snprintf(s->unloadable[s->n_unloadable], sizeof(s->unloadable[0]), "%s",
				 load_failed_prog);
			s->n_unloadable++;
			s->fmod_ret_refused |= fmr;
			dropped = true;
		}
		if (!dropped) {
			snprintf(err, errlen,
				 "cannot load the eBPF programs: %s (run with BUILDWARDEN_DEBUG=1 for "
				 "the verifier log)",
				 strerror(-e));
			goto fail;
		}
		fprintf(stderr, "buildwarden: this kernel does not take the enforce program '%s': "
				"its guard is not available here\n",
			load_failed_prog);
		sensor_bpf__destroy(s->skel);
		s->skel = NULL;
	}
	bpf_object__for_each_program(prog, s->skel->obj)
		if (prog__enforce_only(prog))
			bpf_program__set_autoattach(prog, false);
	s->lsm_ops = lsm_ops_loaded(s);
	/* Before the policy: build roots' cgroups are resolved under it. */
	s->cgroup_fd = open(feat->cgroup2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->cgroup_fd < 0) {
		e = -errno;
		snprintf(err, errlen, "cannot open cgroup v2 root '%s': %s", feat->cgroup2_path,
			 strerror(-e));
		goto fail;
	}
	e = install_loaders(s, err, errlen);
	if (e)
		goto fail;
	e = sensor__apply_policy(s, policy, enforce, err, errlen);
	if (e)
		goto fail;
	e = sensor_bpf__attach(s->skel);
	if (e) {
		snprintf(err, errlen, "cannot attach the eBPF tracepoints: %s", strerror(-e));
		goto fail;
	}

	e = attach_cgroup(s, feat, err, errlen);
	if (e)
		goto fail;
	own_objects_fill(s); /* the links exist now */
	/* After attach, so a process forked during the scan is entered by the fork hook
	 * or by the scan, never by neither. */
	procscan__each(seed_proc, s);
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), ring_cb, s, NULL);
	if (!s->rb) {
		e = -errno;
		snprintf(err, errlen, "cannot map the ring buffer: %s", strerror(-e));
		goto fail;
	}
	if (ringpos__open(bpf_map__fd(s->skel->maps.events), &s->pos))
		s->pos = NULL;
	*out = s;
	return 0;
fail:
	sensor__close(s);
	return e;
}

int sensor__add_build_root(struct sensor *s, pid_t pid)
{
	struct bw_proc p;
	uint32_t key = (uint32_t)pid;

	memset(&p, 0, sizeof(p));
	p.ppid = (uint32_t)getpid();
	p.uid = (uint32_t)getuid();
	p.flags = BW_PROC_IN_BUILD;
	snprintf(p.comm, sizeof(p.comm), "buildwarden");
	return bpf_map_update_elem(bpf_map__fd(s->skel->maps.proc_table), &key, &p, BPF_ANY)
		       ? -errno
		       : 0;
}

int sensor__refresh_root_cgroups(struct sensor *s)
{
	if (!s->rootcg)
		return 0;
	return rootcg__sync(s->rootcg, bpf_map__fd(s->skel->maps.build_root_cgroups), s->cgroup_fd);
}

int sensor__enroll(struct sensor *s, pid_t pid)
{
	int fd = bpf_map__fd(s->skel->maps.proc_table);
	uint32_t key = (uint32_t)pid;
	struct bw_proc p;

	/* Keep what the kernel knows of it (its exe, parent): only the flag changes. A
	 * process the table lacks (older than the sensor and missed by the scan) is
	 * entered as add_build_root does. */
	if (bpf_map_lookup_elem(fd, &key, &p) == 0) {
		p.flags |= BW_PROC_IN_BUILD;
		if (bpf_map_update_elem(fd, &key, &p, BPF_EXIST) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
	}
	return sensor__add_build_root(s, pid);
}

int sensor__procfs_watched(struct sensor *s, uint64_t st_dev, bool whole_fs)
{
	int fd = bpf_map__fd(s->skel->maps.procfs_watched);
	uint32_t k = BW_PROCFS_WATCHED_DEV, v = whole_fs ? sensor__kdev(st_dev) : 0;

	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		return -errno;
	if (whole_fs)
		return 0;
	k = BW_PROCFS_OTHERS;
	v = 1;
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

int sensor__ring_fd(const struct sensor *s)
{
	return ring_buffer__epoll_fd(s->rb);
}

int sensor__drain(struct sensor *s)
{
	return ring_buffer__consume(s->rb);
}

int sensor__drain_sync(struct sensor *s)
{
	const struct timespec pause = { .tv_nsec = 20000 };
	uint64_t want;
	int64_t deadline;
	int n, total = 0;

	if (!s->pos)
		return sensor__drain(s);
	want = ringpos__producer(s->pos);
	deadline = clock__mono_ns() + SENSOR_SYNC_MAX_NS;
	for (;;) {
		n = ring_buffer__consume(s->rb);
		if (n < 0)
			return n;
		total += n;
		if (ringpos__consumer(s->pos) >= want)
			return total;
		if (clock__mono_ns() >= deadline) {
			s->sync_timeouts++;
			return total;
		}
		nanosleep(&pause, NULL);
	}
}

uint64_t sensor__sync_timeouts(const struct sensor *s)
{
	return s->sync_timeouts;
}

int sensor__proc_lookup(const struct sensor *s, pid_t pid, struct bw_proc *out)
{
	uint32_t key = (uint32_t)pid;

	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.proc_table), &key, out) == 0)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.recent_exits), &key, out) == 0)
		return 0;
	return -ENOENT;
}

int sensor__proc_lookup_live(const struct sensor *s, pid_t pid, struct bw_proc *out)
{
	uint32_t key = (uint32_t)pid;

	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.proc_table), &key, out) == 0)
		return 0;
	return -ENOENT;
}

int sensor__proc_lookup_exited(const struct sensor *s, pid_t pid, struct bw_proc *out)
{
	uint32_t key = (uint32_t)pid;

	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.recent_exits), &key, out) == 0)
		return 0;
	return -ENOENT;
}

int sensor__read_counters(const struct sensor *s, struct sensor_counters *out)
{
	int fd = bpf_map__fd(s->skel->maps.counters);
	uint64_t *vals;

	memset(out, 0, sizeof(*out));
	if (s->ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)s->ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	out->ncpu = (size_t)s->ncpu < 256 ? (size_t)s->ncpu : 256;
	for (uint32_t i = 0; i < BW_CNT_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals))
			continue;
		for (int c = 0; c < s->ncpu; c++) {
			out->total[i] += vals[c];
			if (i == BW_CNT_RINGBUF_DROPS && (size_t)c < out->ncpu)
				out->ringbuf_drops_per_cpu[c] = vals[c];
		}
	}
	free(vals);
	return 0;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Detaching a program waits for an RCU grace period (a syscall tracepoint: 40-80 ms
 * here; an fmod_ret or lsm trampoline: a tasks-RCU one), and one after the other that
 * was most of `run`'s start-to-exit overhead: with enforce mode's links, past the 16
 * once detached in parallel, 1.7 s after the build had ended. Each link is detached on
 * a thread of its own, so the grace periods overlap; a thread that cannot be started
 * detaches its link here. */
/* The sensor's links, i in [0, n_links(s)): the skeleton's, then the cgroup ones. A
 * slot may be empty (NULL, or a program not attached). */
static size_t n_links(const struct sensor *s)
{
	return (size_t)s->skel->skeleton->prog_cnt + SENSOR_CG_PROGS;
}

static struct bpf_link **link_slot(struct sensor *s, size_t i)
{
	const struct bpf_object_skeleton *sk = s->skel->skeleton;

	return (int)i < sk->prog_cnt ? sk->progs[i].link : &s->cg_links[i - (size_t)sk->prog_cnt];
}

static void detach_links(struct sensor *s)
{
	size_t cap = n_links(s), n = 0;
	pthread_t *threads = calloc(cap, sizeof(*threads));

	for (size_t i = 0; i < cap; i++) {
		struct bpf_link **link = link_slot(s, i);

		if (!link || !*link)
			continue;
		if (threads && pthread_create(&threads[n], NULL, destroy_link, *link) == 0)
			n++;
		else
			bpf_link__destroy(*link);
		*link = NULL;
	}
	for (size_t i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
}

/* Only the descriptors in keep[] (sorted) stay open. */
static void close_all_but(const int *keep, size_t n)
{
	unsigned from = 0;

	for (size_t i = 0; i < n; i++) {
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* The child of sensor__close_after_exit: holds only the links (and the pipe it waits
 * on), so nothing of the caller's (its stdout pipe, the events file, a socket) stays
 * open in it; detaches them once the caller is gone. */
static void __attribute__((noreturn)) release_links_after_exit(struct sensor *s, int wait_fd)
{
	size_t cap = n_links(s) + 1, n = 0;
	int *keep = calloc(cap, sizeof(*keep));
	sigset_t none;
	char c;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the agent blocks them for its signalfd */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	prctl(PR_SET_NAME, "bw-detach");
	if (keep) {
		for (size_t i = 0; i + 1 < cap; i++) {
			struct bpf_link **link = link_slot(s, i);

			if (link && *link)
				keep[n++] = bpf_link__fd(*link);
		}
		keep[n++] = wait_fd;
		qsort(keep, n, sizeof(*keep), cmp_int);
		close_all_but(keep, n);
	}
	while (read(wait_fd, &c, 1) < 0 && errno == EINTR)
		;
	detach_links(s);
	_exit(0);
}

void sensor__close_after_exit(struct sensor *s)
{
	int cfg_fd, p[2];
	uint32_t zero = 0;
	struct bw_config cfg;
	pid_t pid;

	if (!s || !s->skel || !s->skel->skeleton) {
		sensor__close(s);
		return;
	}
	/* Disarmed first: every guard checks these flags, so until the child has detached
	 * them the programs refuse and kill nothing (what they still record, for processes
	 * that were the build's, goes to a ring buffer nobody reads). A sensor that cannot
	 * be disarmed is detached here, as before. */
	cfg_fd = bpf_map__fd(s->skel->maps.sensor_config);
	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg)) {
		sensor__close(s);
		return;
	}
	cfg.flags = 0;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY) || pipe2(p, O_CLOEXEC)) {
		sensor__close(s);
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		release_links_after_exit(s, p[0]);
	}
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		sensor__close(s);
		return;
	}
	/* p[1] stays open until this process exits: its end is the child's signal. Our
	 * own references to the links go now, cheaply: the child's keep them attached. */
	s->links_held_elsewhere = true;
	sensor__close(s);
}

void sensor__close(struct sensor *s)
{
	if (!s)
		return;
	if (s->skel && s->skel->skeleton && !s->links_held_elsewhere)
		detach_links(s);
	for (int i = 0; i < SENSOR_CG_PROGS; i++)
		bpf_link__destroy(s->cg_links[i]);
	ringpos__close(s->pos);
	ring_buffer__free(s->rb);
	if (s->cgroup_fd >= 0)
		close(s->cgroup_fd);
	rootcg__free(s->rootcg);
	sensor_bpf__destroy(s->skel);
	free(s);
}

int sensor__open_intent(const struct sensor *s, pid_t tid, struct bw_open_intent *out)
{
	uint32_t key = (uint32_t)tid;

	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.open_intent), &key, out))
		return -errno;
	return 0;
}

int sensor__protected_tree(const struct sensor *s, uint64_t st_dev, uint64_t ino)
{
	struct bw_inode_key key;
	struct bw_protected prot;

	fill_inode_key(&key, st_dev, ino, 0);
	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.protected_inodes), &key, &prot))
		return -errno;
	return (int)prot.tree;
}

int sensor__writer_exe_mask(const struct sensor *s, uint64_t st_dev, uint64_t ino,
			    uint64_t *mask)
{
	struct bw_writer w;
	struct bw_inode_key key;

	fill_inode_key(&key, st_dev, ino, s->gen);
	if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.writer_exes), &key, &w))
		return -errno;
	*mask = w.mask;
	return 0;
}
