/* `buildwarden decode`: a framed event stream (plain or gzip) to JSON lines. */
#ifndef BUILDWARDEN_TRANSPORT_DECODE_H
#define BUILDWARDEN_TRANSPORT_DECODE_H

#include <stdio.h>

/* Exit codes, sysexits.h values so scripts can tell bad data from a missing file. */
#define DECODE_EX_OK 0
#define DECODE_EX_DATAERR 65 /* corrupt frame, bad payload, corrupt gzip */
#define DECODE_EX_NOINPUT 66 /* cannot open the input */
#define DECODE_EX_OSERR 71   /* out of memory */
#define DECODE_EX_IOERR 74   /* read or write error */

/* Reads the framed Event stream at path (NULL or "-": stdin), gzip or plain (detected
 * from the content), and prints each event to out as one proto3-JSON line. Streams:
 * memory stays below one maximal frame (BW_FRAME_MAX) plus buffers whatever the input
 * size, so no input size limit is needed. On bad data every good event before it is
 * printed, then err gets "decode: <path>: corrupt frame at byte offset N: <reason>",
 * N counting bytes of the uncompressed stream from the start of the bad frame.
 * Returns one of the DECODE_EX_* codes. */
int decode__stream(const char *path, FILE *out, FILE *err);

#endif /* BUILDWARDEN_TRANSPORT_DECODE_H */
