#include "sensor/procscan.h"

#include <linux/types.h>

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor/loader.h"

static bool scan_one(int dirfd, const char *name, struct bw_proc *p)
{
	char buf[512], *paren;
	struct stat st;
	ssize_t n;
	int fd, ppid;

	memset(p, 0, sizeof(*p));
	fd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1)
		return false;
	p->ppid = (__u32)ppid;
	{
		char *open_paren = strchr(buf, '(');
		size_t len = open_paren ? (size_t)(paren - open_paren - 1) : 0;

		if (len >= sizeof(p->comm))
			len = sizeof(p->comm) - 1;
		if (open_paren)
			memcpy(p->comm, open_paren + 1, len);
	}
	if (fstat(dirfd, &st) == 0)
		p->uid = st.st_uid;
	/* Kernel threads have no exe: they are skipped, they write no files of ours. */
	n = readlinkat(dirfd, "exe", p->filename, sizeof(p->filename) - 1);
	if (n <= 0)
		return false;
	p->filename[n] = '\0';
	if (fstatat(dirfd, "exe", &st, 0) == 0) {
		p->exe_dev = sensor__kdev(st.st_dev);
		p->exe_ino = st.st_ino;
		p->flags |= BW_PROC_EXEC_SEEN;
	}
	(void)name;
	return true;
}

size_t procscan__each(int (*put)(void *ctx, unsigned tgid, const struct bw_proc *p), void *ctx)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t seen = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct bw_proc p;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		int fd;

		if (*end || pid <= 0)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (scan_one(fd, de->d_name, &p) && put(ctx, (unsigned)pid, &p) == 0)
			seen++;
		close(fd);
	}
	closedir(d);
	return seen;
}
