// SPDX-License-Identifier: GPL-2.0
/* The new names of link() calls, kept per process: a LINK must find its name even when
 * other processes on the host link in a loop (the flake of issue 6: one process linking
 * repeatedly pushed the build's name out of a table shared by every process). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/linknames.h"

struct fixture {
	char dir[64];
	char target[PATH_MAX + 16];
	char link[PATH_MAX + 16];
	struct linknames *ln;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char real[PATH_MAX];
	int fd;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/bwlinknames.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* The table keeps canonical names: compare with the canonical directory. */
	assert_non_null(realpath(f->dir, real));
	snprintf(f->target, sizeof(f->target), "%s/target", real);
	snprintf(f->link, sizeof(f->link), "%s/elsewhere", real);
	fd = open(f->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	f->ln = linknames__new();
	assert_non_null(f->ln);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->link);
	unlink(f->target);
	rmdir(f->dir);
	linknames__free(f->ln);
	free(f);
	return 0;
}

static void note(struct linknames *ln, pid_t pid, int dirfd, const char *newpath)
{
	struct bw_link_name_event r;

	memset(&r, 0, sizeof(r));
	r.hdr.type = BW_EV_LINK_NAME;
	r.pid = (uint32_t)pid;
	r.dirfd = dirfd;
	snprintf(r.newpath, sizeof(r.newpath), "%s", newpath);
	linknames__note(ln, &r);
}

/* The record is read at syscall entry, before the link exists: found once it does. */
static void test_noted_before_the_link_exists(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	assert_int_equal(link(f->target, f->link), 0);
	assert_true(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
	assert_string_equal(out, f->link);
	assert_int_equal(linknames__misses(f->ln), 0);
}

/* A relative name resolves against the process's cwd (here: ours, by our pid). */
static void test_relative_to_cwd(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], old[PATH_MAX];

	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(f->dir), 0);
	note(f->ln, getpid(), BW_AT_FDCWD, "elsewhere");
	assert_int_equal(chdir(old), 0);
	assert_int_equal(link(f->target, f->link), 0);
	assert_true(linknames__find(f->ln, getpid(), f->target, out, sizeof(out)));
	assert_string_equal(out, f->link);
}

/* Another process linking thousands of times does not evict this process's name. */
static void test_other_process_flood(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], other[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	snprintf(other, sizeof(other), "%s/flood", f->dir);
	for (int i = 0; i < 5000; i++)
		note(f->ln, 777, BW_AT_FDCWD, other);
	assert_int_equal(link(f->target, f->link), 0);
	assert_true(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
	assert_string_equal(out, f->link);
}

/* The name is the one this pid made: another pid's link to the same file is not it. */
static void test_only_the_actor(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	assert_int_equal(link(f->target, f->link), 0);
	assert_false(linknames__find(f->ln, 4243, f->target, out, sizeof(out)));
	assert_int_equal(linknames__misses(f->ln), 1);
}

/* A name that no longer names the file (a link removed elsewhere) is a counted miss. */
static void test_miss_is_counted(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	assert_false(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
	assert_false(linknames__find(f->ln, 4242, "/nonexistent/bw", out, sizeof(out)));
	assert_int_equal(linknames__misses(f->ln), 2);
}

/* Bounded: when more processes link than the table holds, the least recent goes, and
 * its lookup is a counted miss rather than a wrong name. */
static void test_bounded_by_processes(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], other[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	snprintf(other, sizeof(other), "%s/flood", f->dir);
	for (pid_t p = 10000; p < 10000 + 1000; p++)
		note(f->ln, p, BW_AT_FDCWD, other);
	assert_int_equal(link(f->target, f->link), 0);
	assert_false(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
	assert_int_equal(linknames__misses(f->ln), 1);
	/* ... and the process that linked most recently is still known. */
	note(f->ln, 4242, BW_AT_FDCWD, f->link);
	assert_true(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
}

/* Records that cannot be resolved are ignored, not kept as garbage. */
static void test_unresolvable(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX];

	note(f->ln, 4242, BW_AT_FDCWD, "");
	note(f->ln, 4242, BW_AT_FDCWD, "/nonexistent/dir/name");
	note(f->ln, 4242, 12345, "relative-to-a-closed-fd");
	assert_false(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
}

/* A link made into a tree: the existing name comes with it, /proc/self meaning the
 * linker's (here ours), not the reader's. */
static void test_old_name_of_link_in(void **state)
{
	struct fixture *f = *state;
	struct bw_link_name_event r;
	char out[PATH_MAX];
	int dfd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(dfd >= 0);
	memset(&r, 0, sizeof(r));
	r.hdr.type = BW_EV_LINK_NAME;
	r.pid = (uint32_t)getpid();
	r.kind = BW_NAME_LINK;
	r.dirfd = BW_AT_FDCWD;
	r.olddirfd = BW_AT_FDCWD;
	snprintf(r.newpath, sizeof(r.newpath), "%.*s", (int)sizeof(r.newpath) - 1, f->link);
	snprintf(r.oldpath, sizeof(r.oldpath), "/proc/self/fd/%d/target", dfd);
	linknames__note(f->ln, &r);
	close(dfd);
	assert_int_equal(link(f->target, f->link), 0);
	assert_true(linknames__find_old(f->ln, getpid(), f->link, out, sizeof(out)));
	assert_string_equal(out, f->target);
	assert_false(linknames__find_old(f->ln, getpid() + 1, f->link, out, sizeof(out)));
}

/* truncate(2) answers once per call, for its file only, and is never a link name. */
static void test_truncate_once(void **state)
{
	struct fixture *f = *state;
	struct bw_link_name_event r;
	char out[PATH_MAX];

	memset(&r, 0, sizeof(r));
	r.hdr.type = BW_EV_LINK_NAME;
	r.pid = 4242;
	r.kind = BW_NAME_TRUNCATE;
	r.dirfd = BW_AT_FDCWD;
	snprintf(r.newpath, sizeof(r.newpath), "%.*s", (int)sizeof(r.newpath) - 1, f->target);
	linknames__note(f->ln, &r);
	assert_false(linknames__truncated(f->ln, 4243, f->target));
	assert_false(linknames__find(f->ln, 4242, f->target, out, sizeof(out)));
	assert_true(linknames__truncated(f->ln, 4242, f->target));
	assert_false(linknames__truncated(f->ln, 4242, f->target));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_noted_before_the_link_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_to_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_process_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_the_actor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_miss_is_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_by_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unresolvable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_name_of_link_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
