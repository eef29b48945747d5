// SPDX-License-Identifier: GPL-2.0
/* user/base: the growth helper's overflow and cap checks (a wrong one here is a heap
 * overflow everywhere), the repeat limiter, the clocks, the whole-line logger and hex. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fdio.h"
#include "base/grow.h"
#include "base/hex.h"
#include "base/log.h"

static void test_grow__doubles_from_first(void **state)
{
	int *v = NULL;
	size_t cap = 0;

	assert_int_equal(grow__reserve((void **)&v, &cap, 1, sizeof(*v), 8, 0), 0);
	assert_int_equal(cap, 8);
	v[7] = 7; /* ASan: the 8 elements are really there */
	assert_int_equal(grow__reserve((void **)&v, &cap, 8, sizeof(*v), 8, 0), 0);
	assert_int_equal(cap, 8);
	assert_int_equal(grow__reserve((void **)&v, &cap, 9, sizeof(*v), 8, 0), 0);
	assert_int_equal(cap, 16);
	assert_int_equal(v[7], 7);
	assert_int_equal(grow__reserve((void **)&v, &cap, 100, sizeof(*v), 8, 0), 0);
	assert_int_equal(cap, 128);
	v[127] = 1;
	free(v);
}

static void test_grow__cap_and_overflow_leave_buffer_untouched(void **state)
{
	char *v = NULL;
	size_t cap = 0;

	assert_int_equal(grow__reserve((void **)&v, &cap, 10, 1, 4, 12), 0);
	assert_int_equal(cap, 12); /* doubled to 16, clamped to the cap */
	assert_int_equal(grow__reserve((void **)&v, &cap, 13, 1, 4, 12), -EOVERFLOW);
	assert_int_equal(cap, 12);
	assert_non_null(v);
	free(v);

	v = NULL;
	cap = 0;
	/* need * size wraps around SIZE_MAX: refused, never a short allocation */
	assert_int_equal(grow__reserve((void **)&v, &cap, SIZE_MAX / 2 + 1, 4, 1, 0), -EOVERFLOW);
	assert_null(v);
	assert_int_equal(cap, 0);
	assert_int_equal(grow__reserve((void **)&v, &cap, 1, 0, 1, 0), -EOVERFLOW);
}

static void test_log_limiter__repeats_held_back_within_window(void **state)
{
	struct log_limiter l = { 0 };
	const int64_t w = 10 * NSEC_PER_SEC;

	assert_true(log_limiter__pass(&l, "collector down", 1, w));
	assert_false(log_limiter__pass(&l, "collector down", 2, w));
	assert_false(log_limiter__pass(&l, "collector down", w, w));
	assert_true(log_limiter__pass(&l, "collector down", w + 1, w));
	assert_true(log_limiter__pass(&l, "another failure", w + 2, w));
	assert_true(log_limiter__pass(&l, "collector down", w + 3, w));
}

static void test_clock__monotonic_and_deadline(void **state)
{
	int64_t a = clock__mono_ns(), b = clock__mono_ns();
	int64_t before = clock__real_ns();
	struct timespec d = clock__real_deadline(1500);
	int64_t dn = (int64_t)d.tv_sec * NSEC_PER_SEC + d.tv_nsec;

	assert_true(a > 0 && b >= a);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < NSEC_PER_SEC);
	assert_true(dn >= before + 1500 * NSEC_PER_MSEC);
	assert_true(dn < before + 60 * NSEC_PER_SEC);
	assert_true(clock__mono_ms() >= a / NSEC_PER_MSEC);
}

static void test_log__whole_line_with_prefix(void **state)
{
	char buf[128] = { 0 };
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(f);
	log__line(f, "buildwarden: spool: ", "run '%s': %d segments", "r1", 3);
	log__line(f, NULL, "%s", "bare");
	fclose(f);
	assert_string_equal(buf, "buildwarden: spool: run 'r1': 3 segments\nbare\n");
}

/* Whole transfers across a pipe: a read stops short only at end of file. */
static void test_fdio__write_all_then_read_full(void **state)
{
	char out[3000], in[4000];
	int p[2];

	memset(out, 'b', sizeof(out));
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fdio__write_all(p[1], out, sizeof(out)), 0);
	close(p[1]);
	assert_int_equal(fdio__read_full(p[0], in, 1000), 1000);
	assert_int_equal(fdio__read_full(p[0], in, sizeof(in)), 2000);
	assert_int_equal(fdio__read_full(p[0], in, sizeof(in)), 0);
	assert_memory_equal(in, out, 2000);
	close(p[0]);
	assert_int_equal(fdio__read_full(-1, in, 1), -EBADF);
	assert_int_equal(fdio__write_all(-1, out, 1), -EBADF);
}

static void test_hex__every_byte_value_and_exact_length(void **state)
{
	unsigned char all[256];
	char out[2 * sizeof(all) + 2];

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	memset(out, 'X', sizeof(out));
	hex__encode(all, sizeof(all), out);
	assert_int_equal(strlen(out), 512);
	assert_int_equal(out[513], 'X'); /* nothing past the NUL */
	assert_memory_equal(out, "000102", 6);
	assert_memory_equal(out + 2 * 0x7f, "7f80", 4);
	assert_string_equal(out + 2 * 0xfe, "feff");
	hex__encode(all, 0, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow__doubles_from_first),
		cmocka_unit_test(test_grow__cap_and_overflow_leave_buffer_untouched),
		cmocka_unit_test(test_log_limiter__repeats_held_back_within_window),
		cmocka_unit_test(test_clock__monotonic_and_deadline),
		cmocka_unit_test(test_log__whole_line_with_prefix),
		cmocka_unit_test(test_fdio__write_all_then_read_full),
		cmocka_unit_test(test_hex__every_byte_value_and_exact_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
