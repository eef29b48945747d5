/* The exec guard's decision (sensor/execguard.h) without fanotify: a #! script or any
 * file not an ELF image of this machine, in a deny tree or nameless, is refused; a
 * native binary (the kernel's), and a script elsewhere, are not. And the
 * dynamic loader finder's PT_INTERP reader (sensor/loaders.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor/execguard.h"
#include "sensor/loaders.h"

struct fixture {
	char dir[64];
	struct bw_tree trees[2];
	struct bw_policy p;
};

static void path_in(const struct fixture *f, const char *rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", f->dir, rel);

	assert_true(n > 0 && (size_t)n < len);
}

static void put(const struct fixture *f, const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *fp;

	path_in(f, rel, path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	assert_int_equal(fclose(fp), 0);
}

/* The first 64 bytes of our own ELF image, with e_machine replaced unless machine is 0. */
static void put_elf(const struct fixture *f, const char *rel, uint16_t machine)
{
	unsigned char hdr[64];
	char path[PATH_MAX];
	FILE *in = fopen("/proc/self/exe", "rb"), *out;

	assert_non_null(in);
	assert_int_equal(fread(hdr, 1, sizeof(hdr), in), sizeof(hdr));
	fclose(in);
	if (machine)
		memcpy(hdr + offsetof(Elf64_Ehdr, e_machine), &machine, sizeof(machine));
	path_in(f, rel, path, sizeof(path));
	out = fopen(path, "wb");
	assert_non_null(out);
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), out), sizeof(hdr));
	assert_int_equal(fclose(out), 0);
}

static void tree(struct fixture *f, size_t i, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	path_in(f, rel, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(stat(path, &st), 0);
	f->trees[i].dev = st.st_dev;
	f->trees[i].ino = st.st_ino;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char ok[PATH_MAX];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bw-execguard.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	tree(f, 0, "deny");
	tree(f, 1, "other");
	path_in(f, "ok", ok, sizeof(ok));
	mkdir(ok, 0755);
	path_in(f, "deny/sub", ok, sizeof(ok));
	mkdir(ok, 0755);
	f->p.exec_deny = f->trees;
	f->p.n_exec_deny = 2;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* execguard__script_tree on rel, opened, under the name `name` (default: its path) */
static int decide(const struct fixture *f, const char *rel, const char *name)
{
	char path[PATH_MAX];
	int fd, r;

	path_in(f, rel, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	r = execguard__script_tree(&f->p, fd, name ? name : path);
	close(fd);
	return r;
}

static void test_script_tree(void **state)
{
	struct fixture *f = *state;
	char deleted[PATH_MAX + 16];

	put(f, "deny/x.sh", "#!/bin/sh\ntouch /tmp/m\n");
	put(f, "deny/sub/y.sh", "#!/bin/sh\n");
	put(f, "other/z.sh", "#!/usr/bin/env python3\n");
	put_elf(f, "deny/bin", 0); /* this machine's: the kernel's to judge */
	put_elf(f, "deny/foreign", EM_RISCV); /* run through binfmt_misc, if at all */
	put(f, "deny/short", "#");
	put(f, "ok/x.sh", "#!/bin/sh\n");
	assert_int_equal(decide(f, "deny/x.sh", NULL), 0);
	assert_int_equal(decide(f, "deny/sub/y.sh", NULL), 0); /* any depth */
	assert_int_equal(decide(f, "other/z.sh", NULL), 1);
	assert_int_equal(decide(f, "deny/bin", NULL), -1); /* a binary: the kernel's */
	assert_int_equal(decide(f, "deny/foreign", NULL), 0);
	/* not ELF, not #!: what a binfmt_misc handler would run */
	assert_int_equal(decide(f, "deny/short", NULL), 0);
	assert_int_equal(decide(f, "ok/x.sh", NULL), -1);
	/* no name: the kernel's d_path of a deleted file or a memfd */
	path_in(f, "ok/x.sh", deleted, sizeof(deleted));
	strcat(deleted, " (deleted)");
	assert_int_equal(decide(f, "ok/x.sh", deleted), -2);
	assert_int_equal(decide(f, "ok/x.sh", "/memfd:payload (deleted)"), -2);
	assert_int_equal(decide(f, "ok/x.sh", "anon_inode:[x]"), -2);
}

static void test_interp_of(void **state)
{
	char interp[256];
	struct loader_id ids[8];
	size_t n;

	(void)state;
	/* the test binary itself is dynamically linked */
	assert_int_equal(loaders__interp_of("/proc/self/exe", interp, sizeof(interp)), 0);
	assert_true(interp[0] == '/');
	assert_int_equal(loaders__interp_of("/proc/self/exe", interp, 4), -ENAMETOOLONG);
	assert_int_equal(loaders__interp_of("/proc/self/status", interp, sizeof(interp)), -ENOEXEC);
	assert_int_equal(loaders__interp_of("/nonexistent/x", interp, sizeof(interp)), -ENOENT);
	n = loaders__find(ids, 8);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_false(ids[i].dev == ids[j].dev && ids[i].ino == ids[j].ino);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_script_tree, setup, teardown),
		cmocka_unit_test(test_interp_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
