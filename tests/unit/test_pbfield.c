// SPDX-License-Identifier: GPL-2.0
/* The hand field writers against protobuf-c itself: what pbfield writes, protobuf-c's
 * generated unpack must read back to the same values, and where protobuf-c would write
 * the same fields (proto3 leaves out zeros and empty strings) the bytes must be equal.
 * Edge values: varint length steps (0, 127, 128, 16383, 16384, 2^32, 2^63, UINT64_MAX),
 * empty and long strings, a two-byte key (Event.chain is field 20), and a message
 * nested by its length head the way the spool writes an EventFrame around an event
 * packed in place. Buffers are exact-size heap copies, so ASan sees any overrun. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "transport/pbfield.h"

static const uint64_t edge[] = {
	0,
	1,
	127,
	128,
	300,
	16383,
	16384,
	(1ull << 21) - 1,
	1ull << 21,
	UINT32_MAX,
	1ull << 32,
	(1ull << 56) - 1,
	1ull << 56,
	(1ull << 63) - 1,
	1ull << 63,
	UINT64_MAX - 1,
	UINT64_MAX,
};
#define N_EDGE (sizeof(edge) / sizeof(edge[0]))

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	return p;
}

static char *long_string(size_t n, char c)
{
	char *s = (char *)xmalloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* The minimal varint by the definition: 7 bits a byte, low group first. */
static void test_pbfield__varint(void **state)
{
	for (size_t i = 0; i < N_EDGE; i++) {
		uint64_t v = edge[i], back = 0;
		size_t want = 1, n;
		uint8_t buf[PBFIELD_VARINT_MAX + 1];

		for (uint64_t x = v; x >= 0x80; x >>= 7)
			want++;
		memset(buf, 0xee, sizeof(buf));
		n = pbfield__put_varint(buf, v);
		assert_int_equal(n, want);
		assert_int_equal(pbfield__varint_size(v), n);
		assert_int_equal(buf[n], 0xee); /* nothing past what it says it wrote */
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(!!(buf[k] & 0x80), k + 1 < n);
			back |= (uint64_t)(buf[k] & 0x7f) << (7 * k);
		}
		assert_true(back == v);
	}
	assert_int_equal(pbfield__varint_size(UINT64_MAX), PBFIELD_VARINT_MAX);
}

static void test_pbfield__tag(void **state)
{
	/* the keys the spool's parser switches on */
	assert_int_equal(PBFIELD_TAG(1, PB_WIRE_VARINT), 0x08);
	assert_int_equal(PBFIELD_TAG(2, PB_WIRE_VARINT), 0x10);
	assert_int_equal(PBFIELD_TAG(2, PB_WIRE_LEN), 0x12);
	assert_int_equal(PBFIELD_TAG(3, PB_WIRE_LEN), 0x1a);
	/* from field 16 on, a key takes two bytes */
	assert_int_equal(pbfield__uint64_size(15, 1), 2);
	assert_int_equal(pbfield__uint64_size(16, 1), 3);
	assert_int_equal(pbfield__len_size(20, 0), 3);
}

/* Ack{seq}: one varint field, against protobuf-c's pack and unpack. */
static void test_pbfield__uint64_field(void **state)
{
	for (size_t i = 0; i < N_EDGE; i++) {
		Buildwarden__V1__Ack want = BUILDWARDEN__V1__ACK__INIT, *got;
		size_t n = pbfield__uint64_size(1, edge[i]), pn;
		uint8_t *buf = xmalloc(n), *ref;

		assert_int_equal(pbfield__put_uint64(buf, 1, edge[i]), n);
		got = buildwarden__v1__ack__unpack(NULL, n, buf);
		assert_non_null(got);
		assert_true(got->seq == edge[i]);
		buildwarden__v1__ack__free_unpacked(got, NULL);

		/* protobuf-c leaves a zero out; any other value it writes as we do */
		want.seq = edge[i];
		pn = buildwarden__v1__ack__get_packed_size(&want);
		if (edge[i]) {
			ref = xmalloc(pn);
			assert_int_equal(buildwarden__v1__ack__pack(&want, ref), pn);
			assert_int_equal(pn, n);
			assert_memory_equal(ref, buf, n);
			free(ref);
		} else {
			assert_int_equal(pn, 0);
		}
		free(buf);
	}
}

/* Skip{first_seq, last_seq, reason}: the record the spool writes for what it lost. */
static size_t put_skip(uint8_t *p, uint64_t first, uint64_t last, const char *reason,
		       bool defaults)
{
	size_t n = 0, rlen = strlen(reason);

	if (first || defaults)
		n += pbfield__put_uint64(p + n, 1, first);
	if (last || defaults)
		n += pbfield__put_uint64(p + n, 2, last);
	if (rlen || defaults)
		n += pbfield__put_bytes(p + n, 3, reason, rlen);
	return n;
}

static size_t skip_size(uint64_t first, uint64_t last, size_t rlen, bool defaults)
{
	return (first || defaults ? pbfield__uint64_size(1, first) : 0) +
	       (last || defaults ? pbfield__uint64_size(2, last) : 0) +
	       (rlen || defaults ? pbfield__len_size(3, rlen) : 0);
}

static void check_skip(uint64_t first, uint64_t last, const char *reason)
{
	Buildwarden__V1__Skip want = BUILDWARDEN__V1__SKIP__INIT;
	size_t rlen = strlen(reason);

	want.first_seq = first;
	want.last_seq = last;
	want.reason = (char *)reason;
	for (int defaults = 0; defaults < 2; defaults++) {
		size_t n = skip_size(first, last, rlen, defaults), pn;
		uint8_t *buf = xmalloc(n), *ref;
		Buildwarden__V1__Skip *got;

		assert_int_equal(put_skip(buf, first, last, reason, defaults), n);
		got = buildwarden__v1__skip__unpack(NULL, n, buf);
		assert_non_null(got);
		assert_true(got->first_seq == first);
		assert_true(got->last_seq == last);
		assert_string_equal(got->reason, reason);
		buildwarden__v1__skip__free_unpacked(got, NULL);
		if (!defaults) {
			pn = buildwarden__v1__skip__get_packed_size(&want);
			assert_int_equal(pn, n);
			ref = xmalloc(pn);
			assert_int_equal(buildwarden__v1__skip__pack(&want, ref), pn);
			assert_memory_equal(ref, buf, n);
			free(ref);
		}
		free(buf);
	}
}

static void test_pbfield__skip(void **state)
{
	static const size_t lens[] = { 0, 1, 127, 128, 16383, 16384, 70000 };
	char *s[sizeof(lens) / sizeof(lens[0])];

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		s[k] = long_string(lens[k], 'a' + (char)k);
	for (size_t i = 0; i < N_EDGE; i++)
		for (size_t j = 0; j < N_EDGE; j += 3)
			check_skip(edge[i], edge[j], s[(i + j) % 3]);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		check_skip(1, UINT64_MAX, s[k]);
		free(s[k]);
	}
}

/* AgentMessage{event: EventFrame{seq, event, chain}} written as the spool writes it:
 * the outer messages by their length heads, the event bytes copied after. */
static void check_event_frame(uint64_t seq, size_t evlen)
{
	uint8_t chain[32], *ev = xmalloc(evlen), *buf, *ref;
	size_t inner, msg, n = 0, pn;
	Buildwarden__V1__AgentMessage *got, want = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__EventFrame frame = BUILDWARDEN__V1__EVENT_FRAME__INIT;

	for (size_t i = 0; i < evlen; i++)
		ev[i] = (uint8_t)(i * 31 + seq);
	for (size_t i = 0; i < sizeof(chain); i++)
		chain[i] = (uint8_t)(0xc0 ^ i);
	inner = pbfield__uint64_size(1, seq) + pbfield__len_size(2, evlen) +
		pbfield__len_size(3, sizeof(chain));
	msg = pbfield__len_size(2, inner);
	buf = xmalloc(msg);
	n += pbfield__put_len_head(buf + n, 2, inner);
	n += pbfield__put_uint64(buf + n, 1, seq);
	n += pbfield__put_len_head(buf + n, 2, evlen);
	if (evlen)
		memcpy(buf + n, ev, evlen);
	n += evlen;
	n += pbfield__put_bytes(buf + n, 3, chain, sizeof(chain));
	assert_int_equal(n, msg);

	got = buildwarden__v1__agent_message__unpack(NULL, n, buf);
	assert_non_null(got);
	assert_int_equal(got->msg_case, BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT);
	assert_true(got->event->seq == seq);
	assert_int_equal(got->event->event.len, evlen);
	if (evlen)
		assert_memory_equal(got->event->event.data, ev, evlen);
	assert_int_equal(got->event->chain.len, sizeof(chain));
	assert_memory_equal(got->event->chain.data, chain, sizeof(chain));
	buildwarden__v1__agent_message__free_unpacked(got, NULL);

	/* with every field set, protobuf-c writes exactly these bytes */
	if (seq && evlen) {
		frame.seq = seq;
		frame.event.data = ev;
		frame.event.len = evlen;
		frame.chain.data = chain;
		frame.chain.len = sizeof(chain);
		want.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
		want.event = &frame;
		pn = buildwarden__v1__agent_message__get_packed_size(&want);
		assert_int_equal(pn, n);
		ref = xmalloc(pn);
		assert_int_equal(buildwarden__v1__agent_message__pack(&want, ref), pn);
		assert_memory_equal(ref, buf, n);
		free(ref);
	}
	free(buf);
	free(ev);
}

static void test_pbfield__nested_event_frame(void **state)
{
	static const size_t lens[] = { 0, 1, 95, 96, 127, 128, 16383, 16384, 1u << 20 };

	for (size_t i = 0; i < N_EDGE; i++)
		check_event_frame(edge[i], lens[i % (sizeof(lens) / sizeof(lens[0]))]);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		check_event_frame(UINT64_MAX, lens[k]);
}

/* Event{seq, time_ns, host, chain = 20}: a two-byte key among one-byte ones. */
static void test_pbfield__two_byte_key(void **state)
{
	Buildwarden__V1__Event want = BUILDWARDEN__V1__EVENT__INIT, *got;
	char *host = long_string(200, 'h');
	uint8_t chain[32], *buf, *ref;
	size_t size, n = 0, pn;

	memset(chain, 0x5a, sizeof(chain));
	size = pbfield__uint64_size(1, 128) + pbfield__uint64_size(2, UINT64_MAX) +
	       pbfield__len_size(3, 200) + pbfield__len_size(20, sizeof(chain));
	buf = xmalloc(size);
	n += pbfield__put_uint64(buf + n, 1, 128);
	n += pbfield__put_uint64(buf + n, 2, UINT64_MAX);
	n += pbfield__put_bytes(buf + n, 3, host, 200);
	n += pbfield__put_bytes(buf + n, 20, chain, sizeof(chain));
	assert_int_equal(n, size);

	got = buildwarden__v1__event__unpack(NULL, n, buf);
	assert_non_null(got);
	assert_true(got->seq == 128);
	assert_true(got->time_ns == UINT64_MAX);
	assert_string_equal(got->host, host);
	assert_int_equal(got->chain.len, sizeof(chain));
	assert_memory_equal(got->chain.data, chain, sizeof(chain));
	buildwarden__v1__event__free_unpacked(got, NULL);

	want.seq = 128;
	want.time_ns = UINT64_MAX;
	want.host = host;
	want.chain.data = chain;
	want.chain.len = sizeof(chain);
	pn = buildwarden__v1__event__get_packed_size(&want);
	assert_int_equal(pn, n);
	ref = xmalloc(pn);
	assert_int_equal(buildwarden__v1__event__pack(&want, ref), pn);
	assert_memory_equal(ref, buf, n);
	free(ref);
	free(buf);
	free(host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pbfield__varint),
		cmocka_unit_test(test_pbfield__tag),
		cmocka_unit_test(test_pbfield__uint64_field),
		cmocka_unit_test(test_pbfield__skip),
		cmocka_unit_test(test_pbfield__nested_event_frame),
		cmocka_unit_test(test_pbfield__two_byte_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
