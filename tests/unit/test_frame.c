// SPDX-License-Identifier: GPL-2.0
/* Framing: varint boundaries, every error code, and that hostile lengths never make
 * the reader touch bytes past the buffer (buffers are exact-size heap copies so ASan
 * catches a single byte of over-read). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "transport/frame.h"

/* An exact-size heap copy: any read past len is an ASan error. */
static uint8_t *dup_exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

static void test_frame__varint_round_trip(void **state)
{
	static const struct {
		uint64_t v;
		size_t n;
	} cases[] = {
		{ 0, 1 },
		{ 1, 1 },
		{ 127, 1 },
		{ 128, 2 },
		{ 16383, 2 },
		{ 16384, 3 },
		{ (1ull << 32) - 1, 5 },
		{ 1ull << 32, 5 },
		{ (1ull << 63) - 1, 9 },
		{ 1ull << 63, 10 },
		{ UINT64_MAX, 10 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[FRAME_VARINT_MAX];
		uint64_t v = 0;
		uint8_t *exact;
		size_t n;

		n = frame__encode_len(cases[i].v, out);
		assert_int_equal(n, cases[i].n);
		exact = dup_exact(out, n);
		assert_int_equal(frame__decode_len(exact, n, &v), (int)n);
		assert_true(v == cases[i].v);
		/* every proper prefix is a truncation, not garbage */
		while (--n)
			assert_int_equal(frame__decode_len(exact, n, &v), FRAME_ETRUNC);
		free(exact);
	}
}

static void test_frame__varint_known_bytes(void **state)
{
	uint8_t out[FRAME_VARINT_MAX];

	assert_int_equal(frame__encode_len(300, out), 2);
	assert_int_equal(out[0], 0xac);
	assert_int_equal(out[1], 0x02);
	assert_int_equal(frame__encode_len(0, out), 1);
	assert_int_equal(out[0], 0);
}

static void test_frame__varint_non_minimal_accepted(void **state)
{
	static const uint8_t b[] = { 0x81, 0x80, 0x00 };
	uint64_t v;

	assert_int_equal(frame__decode_len(b, sizeof(b), &v), 3);
	assert_true(v == 1);
}

static void test_frame__varint_too_long(void **state)
{
	uint8_t b[11];
	uint64_t v;

	/* 10 continuation bytes then a terminator: 11 bytes is never a uint64 */
	memset(b, 0xff, 10);
	b[10] = 0x01;
	assert_int_equal(frame__decode_len(b, sizeof(b), &v), FRAME_EVARINT);
	/* 10th byte above 1 overflows bit 63 */
	memset(b, 0x80, 9);
	b[9] = 0x02;
	assert_int_equal(frame__decode_len(b, 10, &v), FRAME_EVARINT);
	b[9] = 0x7f;
	assert_int_equal(frame__decode_len(b, 10, &v), FRAME_EVARINT);
	b[9] = 0x01;
	assert_int_equal(frame__decode_len(b, 10, &v), 10);
	assert_true(v == 1ull << 63);
}

static void test_frame__truncated_varint(void **state)
{
	static const uint8_t src[] = { 0xff, 0xff, 0xff };
	const uint8_t *payload = NULL;
	size_t off = 0, plen = 0;
	uint8_t *b = dup_exact(src, sizeof(src));

	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen),
			 FRAME_ETRUNC);
	assert_int_equal(off, 0);
	free(b);
}

static void test_frame__next_sequence(void **state)
{
	/* "", "a", "bc" then end */
	static const uint8_t src[] = { 0x00, 0x01, 'a', 0x02, 'b', 'c' };
	const uint8_t *payload;
	uint8_t *b = dup_exact(src, sizeof(src));
	size_t off = 0, plen;

	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(plen, 0);
	assert_int_equal(off, 1);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(plen, 1);
	assert_memory_equal(payload, "a", 1);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(plen, 2);
	assert_memory_equal(payload, "bc", 2);
	assert_int_equal(off, sizeof(src));
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 0);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 0);
	free(b);
}

static void test_frame__empty_buffer(void **state)
{
	const uint8_t *payload;
	size_t off = 0, plen;

	assert_int_equal(frame__next(NULL, 0, &off, 0, &payload, &plen), 0);
	off = 1;
	assert_int_equal(frame__next(NULL, 0, &off, 0, &payload, &plen), -EINVAL);
}

static void test_frame__body_spans_end(void **state)
{
	/* one good frame, then a frame declaring 5 bytes with only 3 present */
	static const uint8_t src[] = { 0x01, 'x', 0x05, 'a', 'b', 'c' };
	const uint8_t *payload;
	uint8_t *b = dup_exact(src, sizeof(src));
	size_t off = 0, plen;

	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen),
			 FRAME_ETRUNC);
	assert_int_equal(off, 2); /* left at the bad frame */
	/* once the rest arrives the same call succeeds: what a streaming reader relies on */
	{
		static const uint8_t full[] = { 0x01, 'x', 0x05, 'a', 'b', 'c', 'd', 'e' };
		uint8_t *f = dup_exact(full, sizeof(full));

		assert_int_equal(frame__next(f, sizeof(full), &off, 0, &payload, &plen), 1);
		assert_int_equal(plen, 5);
		assert_memory_equal(payload, "abcde", 5);
		free(f);
	}
	free(b);
}

static void test_frame__varint_spans_end(void **state)
{
	/* 300 needs two varint bytes; only the first is there */
	static const uint8_t src[] = { 0x00, 0xac };
	const uint8_t *payload;
	uint8_t *b = dup_exact(src, sizeof(src));
	size_t off = 0, plen;

	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen),
			 FRAME_ETRUNC);
	assert_int_equal(off, 1);
	free(b);
}

static void test_frame__oversized(void **state)
{
	uint8_t hdr[FRAME_VARINT_MAX + 4] = { 0 };
	const uint8_t *payload;
	size_t n, off, plen;

	/* the length is refused before the body is waited for: no ETRUNC here */
	n = frame__encode_len(BW_FRAME_MAX + 1ull, hdr);
	off = 0;
	assert_int_equal(frame__next(hdr, n, &off, 0, &payload, &plen), FRAME_ETOOBIG);
	assert_int_equal(off, 0);
	n = frame__encode_len(UINT64_MAX, hdr);
	off = 0;
	assert_int_equal(frame__next(hdr, n, &off, SIZE_MAX, &payload, &plen),
			 FRAME_ETRUNC);
	assert_int_equal(frame__next(hdr, n, &off, 0, &payload, &plen), FRAME_ETOOBIG);
	/* a caller's own limit, at and past it */
	hdr[0] = 4;
	off = 0;
	assert_int_equal(frame__next(hdr, 5, &off, 4, &payload, &plen), 1);
	hdr[0] = 5;
	off = 0;
	assert_int_equal(frame__next(hdr, 6, &off, 4, &payload, &plen), FRAME_ETOOBIG);
	/* exactly BW_FRAME_MAX is legal */
	n = frame__encode_len(BW_FRAME_MAX, hdr);
	off = 0;
	assert_int_equal(frame__next(hdr, n, &off, 0, &payload, &plen), FRAME_ETRUNC);
}

static void test_frame__bad_varint_in_stream(void **state)
{
	uint8_t src[13] = { 0x01, 'x' };
	const uint8_t *payload;
	uint8_t *b;
	size_t off = 0, plen;

	memset(src + 2, 0xff, 11);
	b = dup_exact(src, sizeof(src));
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen), 1);
	assert_int_equal(frame__next(b, sizeof(src), &off, 0, &payload, &plen),
			 FRAME_EVARINT);
	assert_int_equal(off, 2);
	free(b);
}

static void test_frame__strerror(void **state)
{
	assert_string_equal(frame__strerror(FRAME_ETRUNC), "truncated frame");
	assert_string_equal(frame__strerror(FRAME_EVARINT), "invalid length varint");
	assert_string_equal(frame__strerror(FRAME_ETOOBIG), "frame length above the limit");
	assert_string_equal(frame__strerror(-ENOENT), strerror(ENOENT));
	assert_non_null(frame__strerror(12345));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame__varint_round_trip),
		cmocka_unit_test(test_frame__varint_known_bytes),
		cmocka_unit_test(test_frame__varint_non_minimal_accepted),
		cmocka_unit_test(test_frame__varint_too_long),
		cmocka_unit_test(test_frame__truncated_varint),
		cmocka_unit_test(test_frame__next_sequence),
		cmocka_unit_test(test_frame__empty_buffer),
		cmocka_unit_test(test_frame__body_spans_end),
		cmocka_unit_test(test_frame__varint_spans_end),
		cmocka_unit_test(test_frame__oversized),
		cmocka_unit_test(test_frame__bad_varint_in_stream),
		cmocka_unit_test(test_frame__strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
