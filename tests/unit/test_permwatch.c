// SPDX-License-Identifier: MIT
/* The permission answer's decision (sensor/permwatch.h permwatch__decide), table-driven:
 * who is allowed what, and what happens without a recorded intent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/types.h>

#include "sensor/permwatch.h"
#include "sensor_abi.h"

static const struct perm_input OUTSIDER = { .proc_known = true, .have_intent = true };

static enum perm_answer decide(struct perm_input in, bool writer_known)
{
	return permwatch__decide(&in, writer_known);
}

static void test_build_and_self_always_allowed(void **state)
{
	struct perm_input in = OUTSIDER;

	(void)state;
	in.proc_flags = BW_PROC_IN_BUILD;
	in.open_flags = O_WRONLY | O_TRUNC;
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in.have_intent = false; /* io_uring by the build */
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in.pre_access = true; /* a truncate by the build */
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in = OUTSIDER;
	in.self = true;
	in.open_flags = O_RDWR;
	assert_int_equal(decide(in, false), PERM_ALLOW);
}

static void test_outsider_reads_allowed(void **state)
{
	struct perm_input in = OUTSIDER;

	(void)state;
	in.open_flags = O_RDONLY;
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in.open_flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in.open_flags = 0;
	in.intent_flags = BW_INTENT_EXEC;
	assert_int_equal(decide(in, false), PERM_ALLOW);
	in = OUTSIDER;
	in.pre_access = true;
	in.range_count = 4096; /* a read of a file opened during the run */
	assert_int_equal(decide(in, false), PERM_ALLOW);
}

static void test_outsider_writes_need_writer(void **state)
{
	static const int flags[] = { O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_TRUNC,
				     O_RDONLY | O_CREAT, O_WRONLY | O_CREAT | O_EXCL };

	(void)state;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct perm_input in = OUTSIDER;

		in.open_flags = (uint32_t)flags[i];
		assert_int_equal(decide(in, false), PERM_NEED_WRITER);
		assert_int_equal(decide(in, true), PERM_DENY);
		in.writer = true;
		assert_int_equal(decide(in, true), PERM_ALLOW);
	}
}

static void test_unknown_intent_is_a_write(void **state)
{
	struct perm_input in = OUTSIDER;

	(void)state;
	in.have_intent = false; /* io_uring, kernel-internal: never taken as read-only */
	assert_int_equal(decide(in, true), PERM_DENY);
	in.have_intent = true;
	in.intent_flags = BW_INTENT_FLAGS_UNKNOWN;
	assert_int_equal(decide(in, true), PERM_DENY);
	in = OUTSIDER;
	in.proc_known = false; /* not in the table: an outsider too */
	in.open_flags = O_WRONLY;
	assert_int_equal(decide(in, true), PERM_DENY);
	in = OUTSIDER;
	in.pre_access = true;
	in.range_count = 0; /* a truncate */
	assert_int_equal(decide(in, true), PERM_DENY);
	in.writer = true;
	assert_int_equal(decide(in, true), PERM_ALLOW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_self_always_allowed),
		cmocka_unit_test(test_outsider_reads_allowed),
		cmocka_unit_test(test_outsider_writes_need_writer),
		cmocka_unit_test(test_unknown_intent_is_a_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
