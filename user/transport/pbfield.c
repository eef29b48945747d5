// SPDX-License-Identifier: GPL-2.0
/* Protobuf fields: see pbfield.h. */
#include <string.h>

#include "transport/pbfield.h"

size_t pbfield__varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t pbfield__put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t pbfield__tag_size(unsigned field)
{
	return pbfield__varint_size(PBFIELD_TAG(field, 0));
}

size_t pbfield__uint64_size(unsigned field, uint64_t v)
{
	return pbfield__tag_size(field) + pbfield__varint_size(v);
}

size_t pbfield__put_uint64(uint8_t *p, unsigned field, uint64_t v)
{
	size_t n = pbfield__put_varint(p, PBFIELD_TAG(field, PB_WIRE_VARINT));

	return n + pbfield__put_varint(p + n, v);
}

size_t pbfield__len_size(unsigned field, size_t n)
{
	return pbfield__tag_size(field) + pbfield__varint_size(n) + n;
}

size_t pbfield__put_len_head(uint8_t *p, unsigned field, size_t n)
{
	size_t k = pbfield__put_varint(p, PBFIELD_TAG(field, PB_WIRE_LEN));

	return k + pbfield__put_varint(p + k, n);
}

size_t pbfield__put_bytes(uint8_t *p, unsigned field, const void *data, size_t n)
{
	size_t k = pbfield__put_len_head(p, field, n);

	if (n)
		memcpy(p + k, data, n);
	return k + n;
}
