/* The run summary's layer lines (sensor/features.h) follow what the kernel took: the
 * BPF LSM lines only when the programs for every op the README's column names are
 * loaded, and the fallback (detect, kill, taint) otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sensor/features.h"

static bool says(const struct features *f, bool enforce, const char *text)
{
	const char *lines[64];
	size_t n = features__layers(f, enforce, lines, 64);

	for (size_t i = 0; i < n; i++)
		if (strstr(lines[i], text))
			return true;
	return false;
}

static void base(struct features *f)
{
	memset(f, 0, sizeof(*f));
	f->root = f->btf = f->tp_btf = f->cgroup_sock_addr = f->send_signal = true;
	f->fanotify_perm = true;
}

static void test_lsm_core_refused(void **state)
{
	struct features f;

	(void)state;
	base(&f);
	f.bpf_lsm = true;
	f.guard_layer = FEATURES_GUARD_LSM;
	f.lsm_ops = FEATURES_LSM_CORE;
	assert_true(says(&f, true, "refused in the kernel (BPF LSM): EPERM"));
	assert_true(says(&f, true, "enforce kernel layer: BPF LSM"));
	assert_false(says(&f, true, "detected after the fact"));
	/* no file_permission program: writes keep the kill-only line */
	assert_false(says(&f, true, "BPF LSM file_permission"));
	f.lsm_ops |= 1u << BW_LSM_WRITE;
	assert_true(says(&f, true, "refused in the kernel (BPF LSM file_permission)"));
	/* audit mode names no enforce layer */
	assert_false(says(&f, false, "refused in the kernel (BPF LSM)"));
}

/* Where bpf is not an active LSM the same ops are refused by fmod_ret programs on the
 * security_* functions: the summary names that layer, never BPF LSM. */
static void test_fmod_ret_named(void **state)
{
	struct features f;

	(void)state;
	base(&f);
	f.fmod_ret = true;
	f.guard_layer = FEATURES_GUARD_FMOD_RET;
	f.lsm_ops = FEATURES_LSM_CORE | (1u << BW_LSM_WRITE);
	assert_true(says(&f, true, "refused in the kernel (fmod_ret on security_*, bpf not an "
				   "active LSM): EPERM"));
	assert_true(says(&f, true, "refused in the kernel (fmod_ret on security_file_permission)"));
	assert_false(says(&f, true, "(BPF LSM"));
	assert_true(says(&f, true, "enforce kernel layer: fmod_ret on security_*"));
	assert_false(says(&f, true, "security_mmap_file"));
	f.lsm_ops |= 1u << BW_LSM_MMAP;
	assert_true(says(&f, true, "refused in the kernel (fmod_ret on security_mmap_file"));
	assert_false(says(&f, true, "detected after the fact"));
	/* no self-protection from this layer */
	assert_false(says(&f, true, "the sensor's own maps"));
}

static void test_lsm_partial_falls_back(void **state)
{
	struct features f;

	(void)state;
	base(&f);
	f.bpf_lsm = true;
	/* the kernel took all but the xattr program: not the whole-column line; the
	 * summary names the op left to the fallback, and only that one */
	f.lsm_ops = FEATURES_LSM_CORE & ~(1u << BW_LSM_XATTR);
	assert_false(says(&f, true, "refused in the kernel (BPF LSM): EPERM"));
	assert_true(says(&f, true, "refused in the kernel (BPF LSM) but for: setxattr (no "
				   "program for it loads here: detected after the fact"));
	/* the same from fmod_ret, two ops missing, in the README column's order */
	f.guard_layer = FEATURES_GUARD_FMOD_RET;
	f.lsm_ops = FEATURES_LSM_CORE & ~(1u << BW_LSM_CHOWN) & ~(1u << BW_LSM_RENAME);
	assert_true(says(&f, true, "(fmod_ret on security_*, bpf not an active LSM) but for: "
				   "rename chown (no program"));
	f.lsm_ops = 0;
	assert_true(says(&f, true, "detected after the fact"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lsm_core_refused),
		cmocka_unit_test(test_fmod_ret_named),
		cmocka_unit_test(test_lsm_partial_falls_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
