#include "pipeline/linknames.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Names are kept per process: the BPF side records the link() calls of every process on
 * the host, and one that links in a loop (git writing objects, a package manager) must
 * not push the build's names out before the LINK they belong to is handled. A process
 * that stops linking is forgotten when a new one needs its place. */
#define LINKNAME_PROCS 256
#define LINKNAME_PER_PROC 8
#define KIND_USED 0xffu /* a truncate note already reported */

struct linkname_proc {
	pid_t pid;		/* 0: free */
	uint64_t last_use;	/* the table's clock at its last note: least recent goes first */
	unsigned next;
	char *path[LINKNAME_PER_PROC];	/* the new name (truncate: the file) */
	char *old[LINKNAME_PER_PROC];	/* LINK: the existing name, or NULL if unresolved */
	unsigned kind[LINKNAME_PER_PROC]; /* enum bw_name_kind */
};

struct linknames {
	struct linkname_proc procs[LINKNAME_PROCS];
	uint64_t clock;
	uint64_t misses;
};

struct linknames *linknames__new(void)
{
	return calloc(1, sizeof(struct linknames));
}

static void proc_clear(struct linkname_proc *p)
{
	for (unsigned i = 0; i < LINKNAME_PER_PROC; i++) {
		free(p->path[i]);
		free(p->old[i]);
	}
	memset(p, 0, sizeof(*p));
}

void linknames__free(struct linknames *ln)
{
	if (!ln)
		return;
	for (unsigned i = 0; i < LINKNAME_PROCS; i++)
		proc_clear(&ln->procs[i]);
	free(ln);
}

static struct linkname_proc *proc_find(struct linknames *ln, pid_t pid)
{
	for (unsigned i = 0; i < LINKNAME_PROCS; i++)
		if (ln->procs[i].pid == pid)
			return &ln->procs[i];
	return NULL;
}

/* pid's entry, or a free one, or the least recently used one, emptied for pid. */
static struct linkname_proc *proc_get(struct linknames *ln, pid_t pid)
{
	struct linkname_proc *p = proc_find(ln, pid), *lru = &ln->procs[0];

	if (p)
		return p;
	for (unsigned i = 0; i < LINKNAME_PROCS; i++) {
		if (!ln->procs[i].pid) {
			lru = &ln->procs[i];
			break;
		}
		if (ln->procs[i].last_use < lru->last_use)
			lru = &ln->procs[i];
	}
	proc_clear(lru);
	lru->pid = pid;
	return lru;
}

/* Resolves the directory part (which exists) and keeps the last component as given:
 * the link itself may not exist yet when the record is read. */
static bool resolve(uint32_t pid, int dirfd, const char *name, size_t name_sz, char *out,
		    size_t len)
{
	char raw[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	const char *base;
	char *slash;
	int n;

	if (name[0] == '\0')
		return false;
	/* /proc/self is the caller's: read from here it would be the agent's */
	if (!strncmp(name, "/proc/self/", 11) && name_sz > 11)
		n = snprintf(raw, sizeof(raw), "/proc/%u/%.*s", pid, (int)(name_sz - 11), name + 11);
	else if (!strncmp(name, "/proc/thread-self/", 18) && name_sz > 18)
		n = snprintf(raw, sizeof(raw), "/proc/%u/%.*s", pid, (int)(name_sz - 18), name + 18);
	else if (name[0] == '/')
		n = snprintf(raw, sizeof(raw), "%.*s", (int)name_sz, name);
	else if (dirfd == BW_AT_FDCWD)
		n = snprintf(raw, sizeof(raw), "/proc/%u/cwd/%.*s", pid, (int)name_sz, name);
	else
		n = snprintf(raw, sizeof(raw), "/proc/%u/fd/%d/%.*s", pid, dirfd, (int)name_sz, name);
	if (n < 0 || (size_t)n >= sizeof(raw))
		return false;
	slash = strrchr(raw, '/');
	base = slash + 1;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - raw), raw);
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/");
	if (!realpath(dir, real))
		return false;
	n = snprintf(out, len, "%s/%s", strcmp(real, "/") ? real : "", base);
	return n > 0 && (size_t)n < len;
}

void linknames__note(struct linknames *ln, const struct bw_link_name_event *r)
{
	struct linkname_proc *p;
	char path[PATH_MAX], old[PATH_MAX];
	char *copy, *old_copy = NULL;
	unsigned slot;

	if (!r->pid ||
	    !resolve(r->pid, r->dirfd, r->newpath, sizeof(r->newpath), path, sizeof(path)))
		return;
	copy = strdup(path);
	if (!copy)
		return;
	if (r->kind == BW_NAME_LINK &&
	    resolve(r->pid, r->olddirfd, r->oldpath, sizeof(r->oldpath), old, sizeof(old)))
		old_copy = strdup(old);
	p = proc_get(ln, (pid_t)r->pid);
	p->last_use = ++ln->clock;
	slot = p->next % LINKNAME_PER_PROC;
	free(p->path[slot]);
	free(p->old[slot]);
	p->path[slot] = copy;
	p->old[slot] = old_copy;
	p->kind[slot] = r->kind;
	p->next++;
}

bool linknames__find(struct linknames *ln, pid_t pid, const char *target, char *out, size_t len)
{
	struct linkname_proc *p = proc_find(ln, pid);
	struct stat want, got;

	if (!p || !pid || stat(target, &want) != 0) {
		ln->misses++;
		return false;
	}
	for (unsigned i = 0; i < LINKNAME_PER_PROC; i++) {
		unsigned slot = (p->next - 1 - i) % LINKNAME_PER_PROC;
		const char *s = p->path[slot];

		if (!s || p->kind[slot] != BW_NAME_LINK || lstat(s, &got) != 0)
			continue;
		if (got.st_ino == want.st_ino && got.st_dev == want.st_dev) {
			snprintf(out, len, "%s", s);
			return true;
		}
	}
	ln->misses++;
	return false;
}

/* The most recent note of kind by pid whose recorded name is the same inode as target;
 * its slot, or -1. */
static int find_slot(struct linknames *ln, pid_t pid, unsigned kind, const char *target)
{
	struct linkname_proc *p = pid ? proc_find(ln, pid) : NULL;
	struct stat want, got;

	if (!p || lstat(target, &want) != 0)
		return -1;
	for (unsigned i = 0; i < LINKNAME_PER_PROC; i++) {
		unsigned slot = (p->next - 1 - i) % LINKNAME_PER_PROC;

		if (!p->path[slot] || p->kind[slot] != kind || lstat(p->path[slot], &got) != 0)
			continue;
		if (got.st_ino == want.st_ino && got.st_dev == want.st_dev)
			return (int)slot;
	}
	return -1;
}

bool linknames__find_old(struct linknames *ln, pid_t pid, const char *target, char *out,
			 size_t len)
{
	int slot = find_slot(ln, pid, BW_NAME_LINK, target);
	struct linkname_proc *p = proc_find(ln, pid);

	if (slot < 0 || !p->old[slot])
		return false;
	snprintf(out, len, "%s", p->old[slot]);
	return true;
}

bool linknames__truncated(struct linknames *ln, pid_t pid, const char *target)
{
	int slot = find_slot(ln, pid, BW_NAME_TRUNCATE, target);

	if (slot < 0)
		return false;
	/* one truncate, one event: a later write by the same process is a write */
	proc_find(ln, pid)->kind[slot] = KIND_USED;
	return true;
}

uint64_t linknames__misses(const struct linknames *ln)
{
	return ln->misses;
}
