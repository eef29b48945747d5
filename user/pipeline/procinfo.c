#include "pipeline/procinfo.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define ARGV_SLOTS 4096
#define EXE_SLOTS 4096
#define ANCESTOR_SLOTS 2048
/* An ancestor's entry is reused this long: lineage and exe do not change under a live
 * process, and each lookup is a bpf() syscall on the build's CPUs. */
#define ANCESTOR_TTL_NS 1000000000ull

struct argv_slot {
	pid_t pid;
	unsigned short len;
	char args[BW_ARGS_LEN];
};

/* A resolved exe path is a function of (pid, exe dev, exe inode): the same process
 * after another exec has another inode, a recycled pid another process entry. */
struct exe_slot {
	pid_t pid;
	uint32_t dev;
	uint64_t ino;
	char path[BW_FILENAME_LEN];
};

struct ancestor_slot {
	pid_t pid;
	bool known;
	uint64_t at_ns;
	struct bw_proc p;
};

struct procinfo {
	struct proc_source src;
	struct argv_slot slots[ARGV_SLOTS];
	struct exe_slot exes[EXE_SLOTS];
	struct ancestor_slot ancestors[ANCESTOR_SLOTS];
};

static bool ancestor_lookup(struct procinfo *pi, pid_t pid, struct bw_proc *out)
{
	struct ancestor_slot *s = &pi->ancestors[(unsigned)pid % ANCESTOR_SLOTS];
	uint64_t now = (uint64_t)clock__mono_ns();

	if (s->pid != pid || now - s->at_ns > ANCESTOR_TTL_NS) {
		s->pid = pid;
		s->at_ns = now;
		s->known = pi->src.lookup(pi->src.ctx, pid, &s->p) == 0;
	}
	if (s->known)
		*out = s->p;
	return s->known;
}

struct procinfo *procinfo__new(const struct proc_source *src)
{
	struct procinfo *pi = calloc(1, sizeof(*pi));

	if (pi)
		pi->src = *src;
	return pi;
}

void procinfo__free(struct procinfo *pi)
{
	free(pi);
}

void procinfo__note_exec(struct procinfo *pi, pid_t pid, const char *args, size_t len)
{
	struct argv_slot *s = &pi->slots[(unsigned)pid % ARGV_SLOTS];

	if (len > sizeof(s->args))
		len = sizeof(s->args);
	s->pid = pid;
	s->len = (unsigned short)len;
	memcpy(s->args, args, len);
}

/* Splits NUL-separated args into argv strings in the arena. */
static void set_argv(struct arena *a, Buildwarden__V1__Process *out, const char *args,
		     size_t len)
{
	char **argv = arena__alloc(a, PROCINFO_MAX_ARGV * sizeof(char *));
	size_t n = 0, off = 0;

	if (!argv)
		return;
	while (off < len && n < PROCINFO_MAX_ARGV) {
		size_t l = strnlen(args + off, len - off);

		argv[n++] = arena__strndup(a, args + off, l);
		off += l + 1;
	}
	out->argv = argv;
	out->n_argv = n;
}

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	close(fd);
	return n;
}

static bool same_file(const char *path, const struct bw_proc *p)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_ino == p->exe_ino &&
	       major(st.st_dev) == BW_KDEV_MAJOR(p->exe_dev) &&
	       minor(st.st_dev) == BW_KDEV_MINOR(p->exe_dev);
}

/* The exe is named by its resolved path, checked against the (dev, inode) the kernel
 * recorded at exec, so that /bin/true and /usr/bin/true are one executable and a file
 * replaced since is not named for the one that ran. */
static void fill_exe_uncached(struct arena *a, pid_t pid, const struct bw_proc *p,
			      Buildwarden__V1__Process *out);

/* Every event names its actor and its ancestors: resolving each exe afresh would cost
 * the agent three syscalls per process per event, on the build's CPUs. */
static void fill_exe(struct procinfo *pi, struct arena *a, pid_t pid, const struct bw_proc *p,
		     Buildwarden__V1__Process *out)
{
	struct exe_slot *slot = &pi->exes[(unsigned)pid % EXE_SLOTS];
	bool cacheable = (p->flags & BW_PROC_EXEC_SEEN) && p->exe_ino;

	if (cacheable && slot->pid == pid && slot->dev == p->exe_dev && slot->ino == p->exe_ino) {
		out->exe = arena__strndup(a, slot->path, sizeof(slot->path));
		return;
	}
	fill_exe_uncached(a, pid, p, out);
	if (cacheable && out->exe && strlen(out->exe) < sizeof(slot->path)) {
		slot->pid = pid;
		slot->dev = p->exe_dev;
		slot->ino = p->exe_ino;
		snprintf(slot->path, sizeof(slot->path), "%s", out->exe);
	}
}

static void fill_exe_uncached(struct arena *a, pid_t pid, const struct bw_proc *p,
			      Buildwarden__V1__Process *out)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	if (!(p->flags & BW_PROC_EXEC_SEEN)) {
		if (p->filename[0])
			out->exe = arena__strndup(a, p->filename, sizeof(p->filename));
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (!(p->flags & BW_PROC_EXITED) && same_file(path, p)) {
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			out->exe = arena__strndup(a, exe, sizeof(exe));
			return;
		}
	}
	if (p->filename[0] == '/' && realpath(p->filename, exe) && same_file(exe, p)) {
		out->exe = arena__strndup(a, exe, sizeof(exe));
		return;
	}
	/* A relative name, a script (exe is its interpreter) or a replaced file: keep what
	 * the exec said; exe_dev/exe_ino still identify the executable. */
	if (p->filename[0])
		out->exe = arena__strndup(a, p->filename, sizeof(p->filename));
}

static bool describe(struct procinfo *pi, pid_t pid, bool exited, struct arena *a,
		     Buildwarden__V1__Process *out, struct bw_proc *raw);

bool procinfo__describe(struct procinfo *pi, pid_t pid, struct arena *a,
			Buildwarden__V1__Process *out, struct bw_proc *raw)
{
	return describe(pi, pid, false, a, out, raw);
}

bool procinfo__describe_exited(struct procinfo *pi, pid_t pid, struct arena *a,
			       Buildwarden__V1__Process *out, struct bw_proc *raw)
{
	return describe(pi, pid, true, a, out, raw);
}

static bool describe(struct procinfo *pi, pid_t pid, bool exited, struct arena *a,
		     Buildwarden__V1__Process *out, struct bw_proc *raw)
{
	struct bw_proc p, anc;
	struct argv_slot *slot;
	bool known;
	pid_t cur;

	buildwarden__v1__process__init(out);
	out->pid = (uint32_t)pid;
	/* The kernel table is seeded from /proc when the sensor starts and kept by the
	 * fork, exec and exit hooks: a pid it does not know left no trace we can trust. */
	if (exited)
		known = pi->src.lookup_exited && pi->src.lookup_exited(pi->src.ctx, pid, &p) == 0;
	else
		known = pi->src.lookup(pi->src.ctx, pid, &p) == 0;
	if (!known) {
		memset(raw, 0, sizeof(*raw));
		out->attributed = false;
		return false;
	}
	*raw = p;
	out->attributed = true;
	out->ppid = p.ppid;
	out->uid = p.uid;
	out->in_build = (p.flags & BW_PROC_IN_BUILD) != 0;
	/* The kernel keeps MKDEV(major, minor); events carry what stat() reports. */
	out->exe_dev = makedev(BW_KDEV_MAJOR(p.exe_dev), BW_KDEV_MINOR(p.exe_dev));
	out->exe_ino = p.exe_ino;
	out->comm = arena__strndup(a, p.comm, sizeof(p.comm));
	fill_exe(pi, a, pid, &p, out);

	slot = &pi->slots[(unsigned)pid % ARGV_SLOTS];
	if (slot->pid == pid && slot->len) {
		set_argv(a, out, slot->args, slot->len);
	} else if (!(p.flags & BW_PROC_EXITED)) {
		/* not for an exited process: /proc/PID is another's, or no one's */
		char path[64], buf[BW_ARGS_LEN];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		n = read_small(path, buf, sizeof(buf));
		if (n > 0)
			set_argv(a, out, buf, (size_t)n);
	}

	out->ancestors = arena__alloc(a, PROCINFO_MAX_ANCESTORS * sizeof(*out->ancestors));
	if (!out->ancestors)
		return true;
	cur = (pid_t)p.ppid;
	for (size_t i = 0; i < PROCINFO_MAX_ANCESTORS && cur > 0; i++) {
		Buildwarden__V1__Ancestor *an = arena__alloc(a, sizeof(*an));

		if (!an)
			break;
		buildwarden__v1__ancestor__init(an);
		an->pid = (uint32_t)cur;
		if (!ancestor_lookup(pi, cur, &anc)) {
			out->ancestors[out->n_ancestors++] = an;
			break;
		}
		an->in_build = (anc.flags & BW_PROC_IN_BUILD) != 0;
		{
			Buildwarden__V1__Process tmp;

			buildwarden__v1__process__init(&tmp);
			fill_exe(pi, a, cur, &anc, &tmp);
			an->exe = tmp.exe;
		}
		out->ancestors[out->n_ancestors++] = an;
		if (anc.ppid == (__u32)cur)
			break;
		cur = (pid_t)anc.ppid;
	}
	return true;
}
