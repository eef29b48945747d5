// SPDX-License-Identifier: MIT
/* Enforce mode must never kill a process for writing a file that merely has a deleted
 * protected file's inode number. The write guard (bpf/write.bpf.c) knows a protected
 * file by (dev, inode) in protected_inodes; the agent drops an entry when it handles the
 * deletion. ext4 hands a freed inode number to the next file it creates, at once: in
 * between, an unrelated file outside the trees carried the protected identity and its
 * writer was SIGKILLed (seen this session: a test process on /work killed on write(2)
 * by another engineer's agent guarding an nginx build's tree on the same file system).
 *
 * The file system is a small ext4 image of the case's own, loop-mounted (and unmounted
 * by that exact path). A build deletes every file of its protected tree one way per case
 * (unlink; a directory emptied and removed, as rm -rf does; moved out of the tree, then
 * deleted) while the agent has not read those deletions yet: the build stops the agent
 * (SIGSTOP, standing for a loaded host where the agent lags) before it deletes, and
 * resumes it only after the outsider reported. The outsider, started before the run in
 * its own session, then creates files outside the tree until one gets a freed inode
 * number, and writes to it: it must survive. Files are named in full, no glob and no
 * rm -r: a directory of the tree opened while the agent is stopped would wait for its
 * permission answer. A last case lets the agent read the deletions first (real rm -rf)
 * and checks the same after they settled. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

#define N_FILES 16	/* protected files deleted per case */
#define MAX_TRIES 1024	/* files the outsider makes looking for a freed inode number */

static struct bw_case S;
static char mnt[256];	/* the image's mount point (in the workspace), "" when not mounted */

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	*state = &S;
	mnt[0] = '\0';
	return bw_case_begin(&S);
}

static int teardown(void **state)
{
	(void)state;
	if (mnt[0]) {
		const char *argv[] = { "/bin/umount", mnt, NULL };
		struct bw_result r = { 0 };

		/* nothing of the case may hold the mount; then the workspace goes */
		bw_kill_tracked();
		bw_reap_tracked();
		if (bw_spawn(argv, 20, 0, &r) || r.exit_code != 0)
			printf("warning: cannot unmount %s: %s\n", mnt, r.err ? r.err : "");
		bw_result_free(&r);
		mnt[0] = '\0';
	}
	bw_case_end(&S);
	return 0;
}

static int run_quiet(const char *const argv[])
{
	struct bw_result r = { 0 };
	int rc = bw_spawn(argv, 30, 0, &r);

	if (!rc && r.exit_code != 0) {
		bw_result_print(argv[0], &r);
		rc = -1;
	}
	bw_result_free(&r);
	return rc;
}

/* A fresh 16 MiB ext4 in the workspace, mounted at <ws>/mnt; false (the case is
 * skipped) where this host cannot make or mount one. */
static bool mount_image(void)
{
	char img[PATH_MAX], dir[PATH_MAX];
	const char *mkfs[] = { "/sbin/mke2fs", "-q", "-F", "-t", "ext4", img, "16M", NULL };
	const char *mount[] = { "/bin/mount", "-o", "loop", img, dir, NULL };

	bw_ws_path(&S.ws, "fs.img", img, sizeof(img));
	bw_ws_path(&S.ws, "mnt", dir, sizeof(dir));
	if (access(mkfs[0], X_OK) || mkdir(dir, 0755) || run_quiet(mkfs) || run_quiet(mount))
		return false;
	if ((size_t)snprintf(mnt, sizeof(mnt), "%s", dir) >= sizeof(mnt))
		mnt[0] = '\0'; /* cannot happen: the workspace path has 256 bytes */
	return mnt[0] != '\0';
}

static const char *at(const char *rel)
{
	static char buf[8][PATH_MAX];
	static unsigned i;
	char *b = buf[i++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", mnt, rel);
	return b;
}

enum way { WAY_UNLINK, WAY_DIR, WAY_MOVE_OUT };
static const char *const WAY_NAME[] = { "unlink", "directory removed", "moved out, deleted" };
static const char *const WAY_DIR_OF[] = { "tree", "tree/d", "tree/m" };

struct outsider {
	const char *go, *done;
	ino_t freed[N_FILES];
	int ready;
};

static bool was_freed(const struct outsider *o, ino_t ino)
{
	for (size_t i = 0; i < N_FILES; i++)
		if (o->freed[i] == ino)
			return true;
	return false;
}

/* Waits for "go", then makes files in <mnt>/other until one has a freed inode number
 * and writes to it through write(2): "wrote INO after N" on done, "noreuse N" if no
 * file got one. Killed, it says nothing. */
static int outsider_main(void *arg)
{
	struct outsider *o = arg;
	int go = open(o->go, O_RDWR | O_CLOEXEC), done = open(o->done, O_RDWR | O_CLOEXEC);
	char c, name[64];
	struct stat st;
	int n, fd = -1;

	if (go < 0 || done < 0 || write(o->ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		return 10;
	for (n = 1; n <= MAX_TRIES; n++) {
		snprintf(name, sizeof(name), "other/n%d", n);
		fd = open(at(name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || fstat(fd, &st))
			return 12;
		if (was_freed(o, st.st_ino))
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		dprintf(done, "noreuse %d\n", MAX_TRIES);
		return 0;
	}
	if (write(fd, "data", 4) != 4)
		return 13;
	dprintf(done, "wrote %lu after %d\n", (unsigned long)st.st_ino, n);
	return 0;
}

static pid_t start_outsider(struct outsider *o)
{
	pid_t pid = bw_start_outsider_ready(outsider_main, o, &o->ready);

	CHECK(pid > 0, "the outsider did not get ready: %s", strerror((int)-pid));
	return pid;
}

/* Appends printf output to a bounded script buffer. */
static void add(char *s, size_t sz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *s, size_t sz, const char *fmt, ...)
{
	size_t l = strlen(s);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s + l, sz - l, fmt, ap);
	va_end(ap);
	CHECK(n >= 0 && (size_t)n < sz - l, "the build script does not fit");
}

/* One case: the tree, the outsider, the build deleting one way; asserts the outsider
 * lived. settle: the agent runs throughout, and the build waits for it to have read the
 * deletions before it says go. */
static void one_case(enum way w, bool settle)
{
	static char script[16384];
	struct outsider o = { 0 };
	const char *said;
	char name[64];
	struct stat st;
	pid_t pid;
	int status;

	if (!mount_image())
		skip();
	CHECK(mkdir(at("tree"), 0755) == 0 && mkdir(at("tree/d"), 0755) == 0 &&
		      mkdir(at("tree/m"), 0755) == 0 && mkdir(at("out"), 0755) == 0 &&
		      mkdir(at("other"), 0755) == 0,
	      "mkdir in the image");
	for (int i = 0; i < N_FILES; i++) {
		snprintf(name, sizeof(name), "%s/f%d", WAY_DIR_OF[w], i);
		CHECK(bw_write_file(at(name), "protected\n", 0644) == 0 && stat(at(name), &st) == 0,
		      "write %s", name);
		o.freed[i] = st.st_ino;
	}
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: %s\n",
			      at("tree")) == 0, "policy");
	CHECK(bw_ws_mkfifo(&S.ws, "go") == 0 && bw_ws_mkfifo(&S.ws, "done") == 0, "mkfifo");
	o.go = bw_ws_tmp(&S.ws, "go");
	o.done = bw_ws_tmp(&S.ws, "done");
	pid = start_outsider(&o);

	script[0] = '\0';
	add(script, sizeof(script), "set -e; exec 3<'%s'; ", o.done);
	if (!settle)
		add(script, sizeof(script), "kill -STOP $PPID; "); /* the agent: run's child */
	if (settle && w == WAY_DIR) {
		add(script, sizeof(script), "rm -rf '%s'; ", at("tree/d"));
	} else {
		for (int i = 0; i < N_FILES; i++) {
			snprintf(name, sizeof(name), "%s/f%d", WAY_DIR_OF[w], i);
			if (w == WAY_MOVE_OUT) {
				add(script, sizeof(script), "mv '%s' '%s/f%d'; ", at(name), at("out"), i);
				add(script, sizeof(script), "rm -f '%s/f%d'; ", at("out"), i);
			} else {
				add(script, sizeof(script), "rm -f '%s'; ", at(name));
			}
		}
		if (w == WAY_DIR)
			add(script, sizeof(script), "rmdir '%s'; ", at("tree/d"));
	}
	if (settle)
		add(script, sizeof(script), "sleep 1; ");
	add(script, sizeof(script), "echo go > '%s'; read x <&3 || true; ", o.go);
	if (!settle)
		add(script, sizeof(script), "kill -CONT $PPID; ");
	add(script, sizeof(script), "echo \"RESULT outsider $x\"");
	bw_case_run_sh(&S, "enforce", script);
	status = bw_wait_bounded(pid, 10);
	said = strstr(S.res.out, "RESULT outsider ");
	said = said ? said + 16 : "";
	printf("%s%s: outsider said \"%.*s\", status %#x\n", WAY_NAME[w],
	       settle ? " (settled)" : "", (int)strcspn(said, "\n"), said, status);
	CHECK(status != -1 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
	      "%s: the outsider was killed writing its own file outside the tree", WAY_NAME[w]);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the outsider failed (status %#x)",
	      WAY_NAME[w], status);
	CHECK(strstr(S.res.out, "RESULT outsider wrote "),
	      "%s: no file of the outsider got a freed inode number: the case tests nothing",
	      WAY_NAME[w]);
	CHECK(S.res.exit_code == 0, "%s: run exit %d", WAY_NAME[w], S.res.exit_code);
}

static void test_unlinked(void **state)
{
	(void)state;
	alarm(60);
	one_case(WAY_UNLINK, false);
}

static void test_directory_removed(void **state)
{
	(void)state;
	alarm(60);
	one_case(WAY_DIR, false);
}

static void test_moved_out_deleted(void **state)
{
	(void)state;
	alarm(60);
	one_case(WAY_MOVE_OUT, false);
}

static void test_settled_rm_rf(void **state)
{
	(void)state;
	alarm(60);
	one_case(WAY_DIR, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unlinked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_out_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settled_rm_rf, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("skipped: needs root\n");
		return 0;
	}
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	bw_cleanup_all();
	return rc;
}
