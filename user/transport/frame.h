/* Varint length-delimited framing: the writeDelimited/parseDelimited format of the
 * official protobuf libraries, so any language can read our streams. Pure functions
 * over caller-owned buffers: no allocation, no I/O, safe on hostile input. */
#ifndef BUILDWARDEN_TRANSPORT_FRAME_H
#define BUILDWARDEN_TRANSPORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Largest payload a reader accepts by default. Events are a few KiB; the bound keeps a
 * corrupt or hostile length from making a reader allocate or wait for gigabytes. */
#define BW_FRAME_MAX (1u << 20)
/* A uint64 needs at most 10 varint bytes. */
#define FRAME_VARINT_MAX 10

/* Error codes of frame__next(); distinct from -errno values. */
enum frame_err {
	FRAME_ETRUNC = -1001,  /* the buffer ends inside a varint or a body */
	FRAME_EVARINT = -1002, /* varint longer than 10 bytes or above 2^64-1 */
	FRAME_ETOOBIG = -1003, /* declared length above max_frame */
};

/* Writes len as a varint into out; returns the number of bytes (1..10). */
size_t frame__encode_len(uint64_t len, uint8_t out[FRAME_VARINT_MAX]);

/* Decodes the varint at buf[0..len): returns the bytes it took (1..10) with *val set,
 * FRAME_ETRUNC if buf ends inside it, FRAME_EVARINT if it is malformed. For readers
 * that need the length before the body is there (sockets). */
int frame__decode_len(const uint8_t *buf, size_t len, uint64_t *val);

/* Reads the frame that starts at buf[*off]. Returns 1 with *payload and *plen set and *off
 * moved past the frame; 0 when *off == len (clean end); a FRAME_E* code otherwise, with
 * *off left at the start of the bad frame so the caller can report where. Never reads
 * at or past buf[len]. max_frame 0 means BW_FRAME_MAX. -EINVAL if *off > len. */
int frame__next(const uint8_t *buf, size_t len, size_t *off, size_t max_frame,
		const uint8_t **payload, size_t *plen);

/* A static description of a FRAME_E* code or a -errno value. */
const char *frame__strerror(int err);

#endif /* BUILDWARDEN_TRANSPORT_FRAME_H */
