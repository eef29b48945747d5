/* Proto3 JSON printer driven by protobuf-c descriptors: one function prints any
 * message, so a new field in proto/ shows up in `buildwarden decode` with no code here. */
#ifndef BUILDWARDEN_TRANSPORT_PBJSON_H
#define BUILDWARDEN_TRANSPORT_PBJSON_H

#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

/* Nesting bound: protobuf-c's unpack has none and a recursive schema could otherwise
 * drive the printer's recursion as deep as the input allows. */
#define PBJSON_MAX_DEPTH 64

/* Prints msg as one compact JSON object, no trailing newline, following the proto3 JSON
 * mapping: lowerCamelCase names, enums by name, 64-bit integers as decimal strings, bytes
 * as base64, defaults omitted, invalid UTF-8 replaced by U+FFFD. Fields come in tag order.
 * Returns 0, -ELOOP past PBJSON_MAX_DEPTH, -EINVAL on a corrupt message, or -EIO when
 * out reports an error. On error a partial object may have been written. */
int pbjson__print(FILE *out, const ProtobufCMessage *msg);

/* proto3 JSON's "emit defaults" option: scalars (and empty lists) are printed with
 * their default values, so `.verdict.violation == false` can be asked of every event;
 * unset messages and oneof members stay out. */
#define PBJSON_EMIT_DEFAULTS (1u << 0)
/* A first key "kind": the proto name of the top message's set oneof member ("exec",
 * "run_end"), what a filter selects on (the collector's `query --kind` names). */
#define PBJSON_KIND (1u << 1)
int pbjson__print_opts(FILE *out, const ProtobufCMessage *msg, unsigned flags);

#endif /* BUILDWARDEN_TRANSPORT_PBJSON_H */
