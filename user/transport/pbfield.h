/* Protobuf wire format, one field at a time: for the few messages we write in place
 * instead of through protobuf-c (a spool record holds its event packed once, where it
 * is hashed and later sent, so the EventFrame around it is written by hand).
 *
 * Writers put bytes at p and return how many; the caller makes room first with the
 * matching _size function (at most PBFIELD_VARINT_MAX bytes per varint). Field
 * numbers are the .proto's; tests/unit/test_pbfield.c reads what these write back
 * with protobuf-c's own unpack. */
#ifndef BUILDWARDEN_TRANSPORT_PBFIELD_H
#define BUILDWARDEN_TRANSPORT_PBFIELD_H

#include <stddef.h>
#include <stdint.h>

/* A uint64 needs at most 10 varint bytes. */
#define PBFIELD_VARINT_MAX 10

enum pbfield_wire {
	PB_WIRE_VARINT = 0, /* int32/64, uint32/64, bool, enum */
	PB_WIRE_LEN = 2,    /* string, bytes, embedded message */
};

/* The key of a field: its number and wire type. A constant expression, for parsers
 * that switch on the first byte of a message. */
#define PBFIELD_TAG(field, wire) (((uint64_t)(field) << 3) | (uint64_t)(wire))

size_t pbfield__varint_size(uint64_t v);
size_t pbfield__put_varint(uint8_t *p, uint64_t v);

/* A varint field (uint64 here, and uint32/bool/enum, which encode the same way). */
size_t pbfield__uint64_size(unsigned field, uint64_t v);
size_t pbfield__put_uint64(uint8_t *p, unsigned field, uint64_t v);

/* A length-delimited field of n bytes: the whole field's size, its key and length
 * alone (the caller writes the n bytes after, e.g. a message packed in place), or
 * the whole field from data. */
size_t pbfield__len_size(unsigned field, size_t n);
size_t pbfield__put_len_head(uint8_t *p, unsigned field, size_t n);
size_t pbfield__put_bytes(uint8_t *p, unsigned field, const void *data, size_t n);

#endif /* BUILDWARDEN_TRANSPORT_PBFIELD_H */
