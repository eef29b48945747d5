// SPDX-License-Identifier: GPL-2.0
/* Framing: see frame.h. */
#include <errno.h>
#include <string.h>

#include "transport/frame.h"
#include "transport/pbfield.h"

_Static_assert(FRAME_VARINT_MAX == PBFIELD_VARINT_MAX, "a frame length is a protobuf varint");

size_t frame__encode_len(uint64_t len, uint8_t out[FRAME_VARINT_MAX])
{
	return pbfield__put_varint(out, len);
}

/* Non-minimal encodings (0x80 0x00) are accepted, as protobuf's own parsers do; a 10th
 * byte carrying more than bit 63 would overflow uint64 and is rejected rather than
 * silently truncated. */
int frame__decode_len(const uint8_t *buf, size_t len, uint64_t *val)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < FRAME_VARINT_MAX; i++) {
		uint8_t b;

		if (i >= len)
			return FRAME_ETRUNC;
		b = buf[i];
		if (i == FRAME_VARINT_MAX - 1 && b > 1)
			return FRAME_EVARINT;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*val = v;
			return (int)i + 1;
		}
	}
	return FRAME_EVARINT;
}

int frame__next(const uint8_t *buf, size_t len, size_t *off, size_t max_frame,
		const uint8_t **payload, size_t *plen)
{
	size_t pos = *off;
	uint64_t n;
	int err;

	if (pos > len)
		return -EINVAL;
	if (pos == len)
		return 0;
	if (!max_frame)
		max_frame = BW_FRAME_MAX;

	err = frame__decode_len(buf + pos, len - pos, &n);
	if (err < 0)
		return err;
	pos += (size_t)err;
	/* Checked before the body so a hostile length is refused, not waited for. */
	if (n > max_frame)
		return FRAME_ETOOBIG;
	if (n > len - pos)
		return FRAME_ETRUNC;

	*payload = buf + pos;
	*plen = (size_t)n;
	*off = pos + (size_t)n;
	return 1;
}

const char *frame__strerror(int err)
{
	switch (err) {
	case 1:
	case 0:
		return "success";
	case FRAME_ETRUNC:
		return "truncated frame";
	case FRAME_EVARINT:
		return "invalid length varint";
	case FRAME_ETOOBIG:
		return "frame length above the limit";
	default:
		return err < 0 ? strerror(-err) : "unknown error";
	}
}
