/* Lower-case hex of bytes: run ids, digests and hash-chain values, wherever they are
 * written as text (the events, the spool's meta file, the collector's exports). */
#ifndef BUILDWARDEN_BASE_HEX_H
#define BUILDWARDEN_BASE_HEX_H

#include <stddef.h>

/* Writes 2 * n hex digits and a NUL to out, which holds at least 2 * n + 1 chars. */
void hex__encode(const void *in, size_t n, char *out);

#endif /* BUILDWARDEN_BASE_HEX_H */
