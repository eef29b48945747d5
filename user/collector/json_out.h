/* A C string as a JSON string literal, for the collector's own JSON lines (query, runs,
 * exports): one writer, so every field the collector prints is escaped the same way. */
#ifndef BUILDWARDEN_COLLECTOR_JSON_OUT_H
#define BUILDWARDEN_COLLECTOR_JSON_OUT_H

#include <stdio.h>

/* Prints s quoted: '"' and '\\' backslash-escaped, control bytes and DEL as \u00XX, other
 * bytes as they are (the strings come from the store, checked on the way in). NULL
 * prints as "". */
void json_out__str(FILE *out, const char *s);

#endif /* BUILDWARDEN_COLLECTOR_JSON_OUT_H */
