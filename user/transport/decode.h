/* `buildwarden decode`: a framed event stream (plain or gzip) to JSON lines. */
#ifndef BUILDWARDEN_TRANSPORT_DECODE_H
#define BUILDWARDEN_TRANSPORT_DECODE_H

#include <stdint.h>
#include <stdio.h>

#include "buildwarden.pb-c.h"

/* How a decode ended; the CLI owns the exit code each one becomes. */
enum decode_result {
	DECODE_OK = 0,
	DECODE_BAD_DATA,  /* corrupt frame, bad payload, corrupt or truncated gzip */
	DECODE_NO_INPUT,  /* cannot open the input */
	DECODE_NO_MEMORY, /* out of memory */
	DECODE_IO_ERROR,  /* read or write error */
};

/* Reads the framed Event stream at path (NULL or "-": stdin), gzip or plain (detected
 * from the content), and prints each event to out as one proto3-JSON line. Streams:
 * memory stays below one maximal frame (BW_FRAME_MAX) plus buffers whatever the input
 * size, so no input size limit is needed. On bad data every good event before it is
 * printed, then err gets "decode: <path>: corrupt frame at byte offset N: <reason>",
 * N counting bytes of the uncompressed stream from the start of the bad frame.
 * Returns an enum decode_result. */
int decode__stream(const char *path, FILE *out, FILE *err);

/* decode__stream's output forms (0: decode__stream's JSON). */
#define DECODE_EMIT_DEFAULTS (1u << 0) /* JSON with default values: "violation":false */
#define DECODE_TEXT (1u << 1)          /* one readable line per event, not JSON */
#define DECODE_KIND (1u << 2) /* JSON starts with "kind" (the body's proto name: "exec",
				* "run_end"), for filters; `buildwarden decode` sets it */
int decode__stream_opts(const char *path, FILE *out, FILE *err, unsigned flags);

/* What decode__each hands each event to. event returns 0 to go on, or a DECODE_*
 * result to stop with: with *why set, decode__each reports "corrupt frame at byte
 * offset N: <why>"; with *why NULL the visitor has written its own message. ev is
 * freed after the call.
 * progress (may be NULL) is called after each read with the bytes of the input file
 * consumed so far (compressed bytes for gzip), for a progress display. */
struct decode_visitor {
	int (*event)(void *ctx, const Buildwarden__V1__Event *ev, const char **why);
	void (*progress)(void *ctx, uint64_t in_bytes);
	void *ctx;
};

/* decode__stream's reader with a visitor in place of the JSON printer: the same input
 * rules (plain or gzip, bounded memory, one frame at most BW_FRAME_MAX) and the same
 * error messages, prefixed with `who` ("decode: ", "report: "). */
int decode__each(const char *path, const struct decode_visitor *v, const char *who, FILE *err);

#endif /* BUILDWARDEN_TRANSPORT_DECODE_H */
