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

struct linkname_proc {
	pid_t pid;		/* 0: free */
	uint64_t last_use;	/* the table's clock at its last note: least recent goes first */
	unsigned next;
	char *path[LINKNAME_PER_PROC];
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
	for (unsigned i = 0; i < LINKNAME_PER_PROC; i++)
		free(p->path[i]);
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
static bool resolve(const struct bw_link_name_event *r, char *out, size_t len)
{
	char raw[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	const char *base;
	char *slash;
	int n;

	if (r->newpath[0] == '\0')
		return false;
	if (r->newpath[0] == '/')
		n = snprintf(raw, sizeof(raw), "%.*s", (int)sizeof(r->newpath), r->newpath);
	else if (r->dirfd == BW_AT_FDCWD)
		n = snprintf(raw, sizeof(raw), "/proc/%u/cwd/%.*s", r->pid, (int)sizeof(r->newpath),
			     r->newpath);
	else
		n = snprintf(raw, sizeof(raw), "/proc/%u/fd/%d/%.*s", r->pid, r->dirfd,
			     (int)sizeof(r->newpath), r->newpath);
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
	char path[PATH_MAX];
	char *copy;

	if (!r->pid || !resolve(r, path, sizeof(path)))
		return;
	copy = strdup(path);
	if (!copy)
		return;
	p = proc_get(ln, (pid_t)r->pid);
	p->last_use = ++ln->clock;
	free(p->path[p->next % LINKNAME_PER_PROC]);
	p->path[p->next % LINKNAME_PER_PROC] = copy;
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
		const char *s = p->path[(p->next - 1 - i) % LINKNAME_PER_PROC];

		if (!s || lstat(s, &got) != 0)
			continue;
		if (got.st_ino == want.st_ino && got.st_dev == want.st_dev) {
			snprintf(out, len, "%s", s);
			return true;
		}
	}
	ln->misses++;
	return false;
}

uint64_t linknames__misses(const struct linknames *ln)
{
	return ln->misses;
}
