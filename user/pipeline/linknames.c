#include "pipeline/linknames.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINKNAME_SLOTS 64

struct linkname {
	pid_t pid;
	char path[PATH_MAX];
};

struct linknames {
	struct linkname slots[LINKNAME_SLOTS];
	unsigned next;
	uint64_t misses;
};

struct linknames *linknames__new(void)
{
	return calloc(1, sizeof(struct linknames));
}

void linknames__free(struct linknames *ln)
{
	free(ln);
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
	struct linkname *s = &ln->slots[ln->next % LINKNAME_SLOTS];

	if (!resolve(r, s->path, sizeof(s->path)))
		return;
	s->pid = (pid_t)r->pid;
	ln->next++;
}

bool linknames__find(struct linknames *ln, pid_t pid, const char *target, char *out, size_t len)
{
	struct stat want, got;

	if (stat(target, &want) != 0) {
		ln->misses++;
		return false;
	}
	for (unsigned i = 0; i < LINKNAME_SLOTS; i++) {
		struct linkname *s = &ln->slots[(ln->next - 1 - i) % LINKNAME_SLOTS];

		if (s->pid != pid || lstat(s->path, &got) != 0)
			continue;
		if (got.st_ino == want.st_ino && got.st_dev == want.st_dev) {
			snprintf(out, len, "%s", s->path);
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
