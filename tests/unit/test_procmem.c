/* The /proc path parser of the mem-write watcher: only a process's or a thread's mem file
 * names a target; every other spelling is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sensor/procmem.h"

static void test_procmem__target(void **state)
{
	assert_int_equal(procmem__target("/proc", "/proc/1234/mem"), 1234);
	assert_int_equal(procmem__target("/proc", "/proc/77/task/78/mem"), 77);
	assert_int_equal(procmem__target("/proc", "/proc/1234/mem2"), 0);
	assert_int_equal(procmem__target("/proc", "/proc/1234/maps"), 0);
	assert_int_equal(procmem__target("/proc", "/proc/self/mem"), 0); /* readlink never says self */
	assert_int_equal(procmem__target("/proc", "/proc/sys/kernel/mem"), 0);
	assert_int_equal(procmem__target("/proc", "/proc/12/task/x/mem"), 0);
	assert_int_equal(procmem__target("/proc", "/proc/99999999999/mem"), 0); /* overflow */
	assert_int_equal(procmem__target("/proc", "/procx/12/mem"), 0);
	assert_int_equal(procmem__target("/proc", "/tmp/proc/12/mem"), 0);
	assert_int_equal(procmem__target("/proc", "/proc/"), 0);
	assert_int_equal(procmem__target("/host/proc", "/host/proc/5/mem"), 5);
	/* a mount in another mount namespace: its path reads back from the procfs root */
	assert_int_equal(procmem__target("/proc", "/4321/mem"), 4321);
	assert_int_equal(procmem__target("/proc", "/4321/task/4322/mem"), 4321);
	assert_int_equal(procmem__target("/proc", "/sys/kernel/mem"), 0);
	assert_int_equal(procmem__target("/proc", "4321/mem"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_procmem__target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
