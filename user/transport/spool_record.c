// SPDX-License-Identifier: GPL-2.0
/* Spool records: the bytes of a segment, parsed and written. Pure functions over
 * caller-owned buffers, safe on hostile bytes (fuzz_spool); see spool.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/grow.h"
#include "transport/frame.h"
#include "transport/pbfield.h"
#include "transport/spool_internal.h"

#define SPOOL_REASON_MAX 1024

/* The fields of proto/collector.proto a record is made of. */
enum {
	AGENT_MESSAGE_EVENT = 2,
	AGENT_MESSAGE_SKIP = 3,
	EVENT_FRAME_SEQ = 1,
	EVENT_FRAME_EVENT = 2,
	EVENT_FRAME_CHAIN = 3,
	SKIP_FIRST_SEQ = 1,
	SKIP_LAST_SEQ = 2,
	SKIP_REASON = 3,
};

/* The fields of the one EventFrame/Skip inside an AgentMessage. Our writer emits
 * exactly these; anything else in a segment is damage, so the parser is strict. */
static int spool__parse_inner(const uint8_t *p, size_t n, struct spool_rec *rec)
{
	bool seen[4] = { false };
	size_t off = 0;

	while (off < n) {
		uint64_t tag, v;
		unsigned field, wt;
		int k = frame__decode_len(p + off, n - off, &tag);

		if (k < 0)
			return -EBADMSG;
		off += (size_t)k;
		field = (unsigned)(tag >> 3);
		wt = (unsigned)(tag & 7);
		if (field < 1 || field > 3 || seen[field])
			return -EBADMSG;
		seen[field] = true;
		k = frame__decode_len(p + off, n - off, &v);
		if (k < 0)
			return -EBADMSG;
		off += (size_t)k;

		if (rec->kind == SPOOL_REC_EVENT) {
			if (field == EVENT_FRAME_SEQ && wt == PB_WIRE_VARINT) {
				rec->first = rec->last = v;
				continue;
			}
			if (wt != PB_WIRE_LEN || v > n - off)
				return -EBADMSG;
			if (field == EVENT_FRAME_EVENT) {
				rec->event = p + off;
				rec->event_len = (size_t)v;
			} else {
				if (v != CHAIN_LEN)
					return -EBADMSG;
				rec->chain = p + off;
			}
			off += (size_t)v;
		} else {
			if (field == SKIP_FIRST_SEQ && wt == PB_WIRE_VARINT) {
				rec->first = v;
			} else if (field == SKIP_LAST_SEQ && wt == PB_WIRE_VARINT) {
				rec->last = v;
			} else if (field == SKIP_REASON && wt == PB_WIRE_LEN && v <= n - off &&
				   v <= SPOOL_REASON_MAX) {
				rec->reason = p + off;
				rec->reason_len = (size_t)v;
				off += (size_t)v;
			} else {
				return -EBADMSG;
			}
		}
	}
	if (rec->first == 0 || rec->last < rec->first)
		return -EBADMSG;
	if (rec->kind == SPOOL_REC_EVENT && !rec->chain)
		return -EBADMSG;
	return 0;
}

int spool__next_record(const uint8_t *buf, size_t len, size_t *off, struct spool_rec *rec)
{
	const uint8_t *p;
	size_t start = *off, pos = *off, plen, hdr;
	uint64_t inner;
	int rc, k;

	rc = frame__next(buf, len, &pos, BW_FRAME_MAX, &p, &plen);
	if (rc <= 0)
		return rc;
	memset(rec, 0, sizeof(*rec));
	if (plen < 2 || (p[0] != PBFIELD_TAG(AGENT_MESSAGE_EVENT, PB_WIRE_LEN) &&
			 p[0] != PBFIELD_TAG(AGENT_MESSAGE_SKIP, PB_WIRE_LEN)))
		return -EBADMSG;
	rec->kind = p[0] == PBFIELD_TAG(AGENT_MESSAGE_EVENT, PB_WIRE_LEN) ? SPOOL_REC_EVENT :
									   SPOOL_REC_SKIP;
	k = frame__decode_len(p + 1, plen - 1, &inner);
	if (k < 0)
		return -EBADMSG;
	hdr = 1 + (size_t)k;
	if (inner != plen - hdr)
		return -EBADMSG;
	rc = spool__parse_inner(p + hdr, plen - hdr, rec);
	if (rc)
		return rc;
	rec->frame = buf + start;
	rec->frame_len = pos - start;
	*off = pos;
	return 1;
}

int spool__scan(const uint8_t *buf, size_t len, size_t *good_len, uint64_t *first,
		uint64_t *last, uint8_t last_chain[CHAIN_LEN])
{
	struct spool_rec rec;
	size_t off = 0;
	int rc;

	*first = *last = 0;
	while ((rc = spool__next_record(buf, len, &off, &rec)) == 1) {
		if (*last && rec.first <= *last) {
			/* seqs go backwards: not something our writer does */
			off -= rec.frame_len;
			rc = -EBADMSG;
			break;
		}
		if (!*first)
			*first = rec.first;
		*last = rec.last;
		if (rec.kind == SPOOL_REC_EVENT && last_chain)
			memcpy(last_chain, rec.chain, CHAIN_LEN);
	}
	*good_len = off;
	return rc;
}

int spool__inflate(const uint8_t *z, size_t zlen, uint8_t **out, size_t *outlen)
{
	z_stream s;
	uint8_t *buf = NULL;
	size_t cap = 0, first = zlen * 4 < 65536 ? 65536 : zlen * 4;
	int zr, err = 0;

	if (first > SPOOL_SEG_MAX)
		first = SPOOL_SEG_MAX;
	*out = NULL;
	*outlen = 0;
	if (grow__reserve((void **)&buf, &cap, first, 1, first, SPOOL_SEG_MAX))
		return -ENOMEM;
	memset(&s, 0, sizeof(s));
	if (inflateInit(&s) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	/* zlen may exceed uInt in theory; a segment file never does (bounded on read). */
	s.next_in = (Bytef *)z;
	s.avail_in = (uInt)zlen;
	for (;;) {
		if (s.total_out == cap) {
			/* doubles, up to the bound; one byte past it is not a segment we wrote */
			err = grow__reserve((void **)&buf, &cap, cap + 1, 1, 0, SPOOL_SEG_MAX);
			if (err) {
				err = err == -EOVERFLOW ? -EFBIG : -ENOMEM;
				break;
			}
		}
		s.next_out = buf + s.total_out;
		s.avail_out = (uInt)(cap - s.total_out);
		zr = inflate(&s, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_OK)
			continue;
		if (zr == Z_BUF_ERROR && s.avail_out == 0)
			continue; /* grow */
		err = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
		break;
	}
	*out = buf;
	*outlen = s.total_out;
	inflateEnd(&s);
	return err;
}

size_t spool__encode_skip(uint64_t first, uint64_t last, const char *reason, uint8_t *out,
			  size_t cap)
{
	size_t rlen = strnlen(reason, 256), inner, msg, n;

	inner = pbfield__uint64_size(SKIP_FIRST_SEQ, first) +
		pbfield__uint64_size(SKIP_LAST_SEQ, last) +
		(rlen ? pbfield__len_size(SKIP_REASON, rlen) : 0);
	msg = pbfield__len_size(AGENT_MESSAGE_SKIP, inner);
	if (pbfield__varint_size(msg) + msg > cap)
		return 0;
	n = pbfield__put_varint(out, msg);
	n += pbfield__put_len_head(out + n, AGENT_MESSAGE_SKIP, inner);
	n += pbfield__put_uint64(out + n, SKIP_FIRST_SEQ, first);
	n += pbfield__put_uint64(out + n, SKIP_LAST_SEQ, last);
	if (rlen)
		n += pbfield__put_bytes(out + n, SKIP_REASON, reason, rlen);
	return n;
}

static size_t spool__event_inner_size(uint64_t seq, size_t evlen)
{
	return pbfield__uint64_size(EVENT_FRAME_SEQ, seq) +
	       pbfield__len_size(EVENT_FRAME_EVENT, evlen) +
	       pbfield__len_size(EVENT_FRAME_CHAIN, CHAIN_LEN);
}

size_t spool__event_msg_size(uint64_t seq, size_t evlen)
{
	return pbfield__len_size(AGENT_MESSAGE_EVENT, spool__event_inner_size(seq, evlen));
}

size_t spool__put_event_head(uint8_t *out, uint64_t seq, size_t evlen)
{
	size_t inner = spool__event_inner_size(seq, evlen), n;

	n = pbfield__put_varint(out, pbfield__len_size(AGENT_MESSAGE_EVENT, inner));
	n += pbfield__put_len_head(out + n, AGENT_MESSAGE_EVENT, inner);
	n += pbfield__put_uint64(out + n, EVENT_FRAME_SEQ, seq);
	n += pbfield__put_len_head(out + n, EVENT_FRAME_EVENT, evlen);
	return n;
}

size_t spool__put_event_tail(uint8_t *out, const uint8_t chain[CHAIN_LEN])
{
	return pbfield__put_bytes(out, EVENT_FRAME_CHAIN, chain, CHAIN_LEN);
}
