/* `buildwarden decode`: a framed event stream (plain or gzip) to JSON lines. */
#ifndef BUILDWARDEN_TRANSPORT_DECODE_H
#define BUILDWARDEN_TRANSPORT_DECODE_H

#include <stdio.h>

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

#endif /* BUILDWARDEN_TRANSPORT_DECODE_H */
