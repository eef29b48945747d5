// SPDX-License-Identifier: GPL-2.0
/* fanwatch's tables, which need no fanotify: the handle -> path index (fw_index) and
 * the write coalescing (fw_coalesce). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sensor/fw_coalesce.h"
#include "sensor/fw_index.h"

static struct fw_key key(uint64_t fsid, uint32_t n, char *buf)
{
	snprintf(buf, 16, "h%08x", n);
	return (struct fw_key){ .fsid = fsid, .type = 1, .len = 9, .h = buf };
}

static void test_upsert_lookup_remove(void **state)
{
	struct fw_index ix = { 0 };
	struct fw_obj *o = NULL, *again = NULL;
	char hb[16];
	struct fw_key k = key(7, 1, hb);

	(void)state;
	assert_int_equal(fw_index__upsert(&ix, &k, "/t/a.c", 0, false, 1, 1, &o), 1);
	assert_non_null(o);
	assert_ptr_equal(fw_index__by_handle(&ix, &k), o);
	assert_ptr_equal(fw_index__by_path(&ix, "/t/a.c"), o);
	/* the same handle again: known, and moved to its new path */
	assert_int_equal(fw_index__upsert(&ix, &k, "/t/b.c", 0, false, 1, 2, &again), 0);
	assert_ptr_equal(again, o);
	assert_int_equal(o->gen, 2);
	assert_null(fw_index__by_path(&ix, "/t/a.c"));
	assert_ptr_equal(fw_index__by_path(&ix, "/t/b.c"), o);
	/* same bytes on another filesystem is another object */
	k.fsid = 8;
	assert_null(fw_index__by_handle(&ix, &k));
	k.fsid = 7;
	fw_index__remove(&ix, o);
	assert_null(fw_index__by_handle(&ix, &k));
	assert_null(fw_index__by_path(&ix, "/t/b.c"));
	assert_int_equal(ix.live, 0);
	fw_index__free(&ix);
}

/* Many objects: the tables grow and rebuild; ids are reused, serials never. */
static void test_grow_and_reuse(void **state)
{
	struct fw_index ix = { 0 };
	enum { N = 5000 };
	static char hb[N][16];
	char path[64];
	uint64_t max_serial = 0;

	(void)state;
	for (uint32_t i = 0; i < N; i++) {
		struct fw_key k = key(1, i, hb[i]);
		struct fw_obj *o;

		snprintf(path, sizeof(path), "/t/%u", i);
		assert_int_equal(fw_index__upsert(&ix, &k, path, i % 3, false, 0, 1, &o), 1);
		assert_int_equal(o->tree, i % 3);
		max_serial = o->serial;
	}
	assert_int_equal(ix.live, N);
	for (uint32_t i = 0; i < N; i += 2) {
		struct fw_key k = key(1, i, hb[i]);

		fw_index__remove(&ix, fw_index__by_handle(&ix, &k));
	}
	for (uint32_t i = 0; i < N; i++) {
		struct fw_key k = key(1, i, hb[i]);
		struct fw_obj *o = fw_index__by_handle(&ix, &k);

		snprintf(path, sizeof(path), "/t/%u", i);
		if (i % 2) {
			assert_non_null(o);
			assert_string_equal(o->path, path);
			assert_ptr_equal(fw_index__by_path(&ix, path), o);
		} else {
			assert_null(o);
			assert_null(fw_index__by_path(&ix, path));
		}
	}
	{
		size_t before = ix.n_objs;
		struct fw_key k = key(2, 0, hb[0]);
		struct fw_obj *o;

		assert_int_equal(fw_index__upsert(&ix, &k, "/t/new", 0, true, 0, 1, &o), 1);
		assert_int_equal(ix.n_objs, before); /* a freed id, not a new one */
		assert_true(o->serial > max_serial);
		assert_true(o->is_dir);
	}
	fw_index__free(&ix);
}

static void test_set_path(void **state)
{
	struct fw_index ix = { 0 };
	struct fw_obj *o;
	char hb[16];
	struct fw_key k = key(3, 3, hb);

	(void)state;
	assert_int_equal(fw_index__upsert(&ix, &k, "/a/x", 0, true, 2, 1, &o), 1);
	assert_int_equal(fw_index__set_path(&ix, o, "/b/x", 1), 0);
	assert_int_equal(o->tree, 1);
	assert_null(fw_index__by_path(&ix, "/a/x"));
	assert_ptr_equal(fw_index__by_path(&ix, "/b/x"), o);
	{
		struct fw_key back = fw_index__key(o);

		assert_ptr_equal(fw_index__by_handle(&ix, &back), o);
	}
	fw_index__free(&ix);
}

static void test_coalesce(void **state)
{
	static struct fw_coalesce c;

	(void)state;
	fw_coalesce__clear(&c);
	assert_true(fw_coalesce__first_write(&c, 1, 100));
	assert_false(fw_coalesce__first_write(&c, 1, 100));
	/* another process, another file: reported */
	assert_true(fw_coalesce__first_write(&c, 1, 101));
	assert_true(fw_coalesce__first_write(&c, 2, 100));
	/* the close after writing is not news; the next write is */
	assert_true(fw_coalesce__close(&c, 1, 100));
	assert_false(fw_coalesce__close(&c, 1, 100));
	assert_true(fw_coalesce__first_write(&c, 1, 100));
	/* a close with no write seen: the caller reports it (an mmap store) */
	assert_false(fw_coalesce__close(&c, 9, 100));
}

/* Full: cleared, so writes are reported again, never dropped. */
static void test_coalesce_bounded(void **state)
{
	static struct fw_coalesce c;
	size_t reported = 0;

	(void)state;
	fw_coalesce__clear(&c);
	for (uint64_t s = 1; s <= 3 * FW_COALESCE_SLOTS; s++)
		assert_true(fw_coalesce__first_write(&c, s, 1));
	assert_true(c.used <= FW_COALESCE_SLOTS * 3 / 4);
	for (uint64_t s = 1; s <= 3 * FW_COALESCE_SLOTS; s++)
		reported += fw_coalesce__first_write(&c, s, 1);
	assert_true(reported > 0);
	/* tombstones from closes do not make lookups loop */
	for (uint64_t s = 1; s <= 3 * FW_COALESCE_SLOTS; s++)
		fw_coalesce__close(&c, s, 1);
	assert_false(fw_coalesce__close(&c, 1, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upsert_lookup_remove),
		cmocka_unit_test(test_grow_and_reuse),
		cmocka_unit_test(test_set_path),
		cmocka_unit_test(test_coalesce),
		cmocka_unit_test(test_coalesce_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
