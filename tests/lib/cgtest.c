/* See cgtest.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/cgtest.h"

static int cg_root(char *out, size_t len)
{
	char line[1024], dev[256], mnt[256], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	int e = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %255s %63s", dev, mnt, type) == 3 && !strcmp(type, "cgroup2")) {
			snprintf(out, len, "%s", mnt);
			e = 0;
			break;
		}
	}
	fclose(f);
	return e;
}

int bw_cg_create(struct bw_cg *cg)
{
	static unsigned counter;
	char root[256];
	int e = cg_root(root, sizeof(root));

	if (e)
		return e;
	snprintf(cg->rel, sizeof(cg->rel), "/bwtest-%d-%u", (int)getpid(), counter++);
	snprintf(cg->abs, sizeof(cg->abs), "%s%s", root, cg->rel);
	if (mkdir(cg->abs, 0755))
		return -errno;
	return 0;
}

int bw_cg_enter(const struct bw_cg *cg)
{
	char path[PATH_MAX + 16];
	int fd, e = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg->abs);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		e = -errno;
	close(fd);
	return e;
}

int bw_cg_run(const struct bw_cg *cg, const char *const argv[], unsigned timeout_s)
{
	pid_t pid = bw_fork();
	int st;

	if (pid == 0) {
		if (cg && bw_cg_enter(cg))
			_exit(121);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	bw_track_pid(pid);
	st = bw_wait_bounded(pid, timeout_s);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void bw_cg_remove(struct bw_cg *cg)
{
	if (!cg->abs[0])
		return;
	/* An exited process leaves its cgroup a moment after it is reaped. */
	for (int i = 0; i < 500 && rmdir(cg->abs) && errno == EBUSY; i++)
		usleep(10000);
	cg->abs[0] = '\0';
}
