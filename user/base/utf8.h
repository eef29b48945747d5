/* UTF-8 well-formedness, for every printer of strings that came from a build (argv,
 * paths, comm hold any byte): the JSON printer and the reports. */
#ifndef BUILDWARDEN_BASE_UTF8_H
#define BUILDWARDEN_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at s does not start one.
 * n must be at least 1. */
size_t utf8__len(const uint8_t *s, size_t n);

#endif /* BUILDWARDEN_BASE_UTF8_H */
