// SPDX-License-Identifier: GPL-2.0
/* Proto3 JSON printer: see pbjson.h.
 *
 * protobuf-c 1.4 descriptor facts this relies on:
 * - fields[] is sorted by tag number, which gives the canonical output order;
 * - a oneof member has PROTOBUF_C_FIELD_FLAG_ONEOF and quantifier_offset points to the
 *   oneof's case (a uint32-sized enum holding the set member's tag);
 * - proto3 singular scalars are PROTOBUF_C_LABEL_NONE (no presence: print if not
 *   default); proto3 `optional` and proto2 optional are LABEL_OPTIONAL with a has_
 *   boolean at quantifier_offset (strings and messages use the pointer instead);
 * - repeated fields keep their size_t count at quantifier_offset. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/utf8.h"
#include "transport/pbjson.h"

static const char pbjson__b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The json_name protoc would compute: drop each '_' and upper-case the letter after it,
 * leave everything else (including a leading capital) as is. */
static void pbjson__print_name(FILE *out, const char *name)
{
	bool upper = false;

	fputc('"', out);
	for (; *name; name++) {
		if (*name == '_') {
			upper = true;
			continue;
		}
		if (upper && *name >= 'a' && *name <= 'z')
			fputc(*name - 'a' + 'A', out);
		else
			fputc(*name, out);
		upper = false;
	}
	fputc('"', out);
}

/* Strings on the wire are whatever the sender put there (a build's argv may hold any
 * byte), so each byte that is not part of valid UTF-8 becomes U+FFFD: the output stays
 * valid JSON for every consumer. */
static void pbjson__print_str(FILE *out, const uint8_t *s, size_t n)
{
	size_t i = 0;

	fputc('"', out);
	while (i < n) {
		uint8_t c = s[i];
		size_t len;

		switch (c) {
		case '"':
			fputs("\\\"", out);
			i++;
			continue;
		case '\\':
			fputs("\\\\", out);
			i++;
			continue;
		case '\n':
			fputs("\\n", out);
			i++;
			continue;
		case '\r':
			fputs("\\r", out);
			i++;
			continue;
		case '\t':
			fputs("\\t", out);
			i++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
			continue;
		}
		len = utf8__len(s + i, n - i);
		if (!len) {
			fputs("\\ufffd", out);
			i++;
			continue;
		}
		fwrite(s + i, 1, len, out);
		i += len;
	}
	fputc('"', out);
}

static void pbjson__print_bytes(FILE *out, const uint8_t *s, size_t n)
{
	char q[4];
	size_t i;

	fputc('"', out);
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		q[0] = pbjson__b64[v >> 18];
		q[1] = pbjson__b64[(v >> 12) & 63];
		q[2] = pbjson__b64[(v >> 6) & 63];
		q[3] = pbjson__b64[v & 63];
		fwrite(q, 1, 4, out);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		q[0] = pbjson__b64[v >> 18];
		q[1] = pbjson__b64[(v >> 12) & 63];
		q[2] = q[3] = '=';
		fwrite(q, 1, 4, out);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		q[0] = pbjson__b64[v >> 18];
		q[1] = pbjson__b64[(v >> 12) & 63];
		q[2] = pbjson__b64[(v >> 6) & 63];
		q[3] = '=';
		fwrite(q, 1, 4, out);
	}
	fputc('"', out);
}

/* JSON has no NaN or infinities; the proto3 mapping spells them as strings. */
static void pbjson__print_double(FILE *out, double d, int digits)
{
	if (isnan(d))
		fputs("\"NaN\"", out);
	else if (isinf(d))
		fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
	else
		fprintf(out, "%.*g", digits, d);
}

static int pbjson__print_msg(FILE *out, const ProtobufCMessage *msg, int depth, unsigned flags);

/* Prints one value of field f stored at p (a struct member or a repeated element). */
static int pbjson__print_value(FILE *out, const ProtobufCFieldDescriptor *f,
			       const void *p, int depth, unsigned flags)
{
	const ProtobufCEnumValue *ev;
	const ProtobufCBinaryData *bd;
	const char *str;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	/* 64-bit integers are strings: JavaScript numbers lose precision above 2^53. */
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		pbjson__print_double(out, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		pbjson__print_double(out, *(const double *)p, 17);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor,
							  *(const int *)p);
		/* A value from a newer schema has no name here: keep the number. */
		if (ev)
			fprintf(out, "\"%s\"", ev->name);
		else
			fprintf(out, "%d", *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		str = *(const char *const *)p;
		if (!str)
			str = "";
		pbjson__print_str(out, (const uint8_t *)str, strlen(str));
		break;
	case PROTOBUF_C_TYPE_BYTES:
		bd = p;
		if (bd->len && !bd->data)
			return -EINVAL;
		pbjson__print_bytes(out, bd->data, bd->len);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		return pbjson__print_msg(out, *(const ProtobufCMessage *const *)p,
					 depth + 1, flags & ~PBJSON_KIND);
	default:
		return -EINVAL;
	}
	return 0;
}

static size_t pbjson__elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* Whether a presence-less (proto3 LABEL_NONE) field holds its default value. */
static bool pbjson__is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	const char *str;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		/* -0.0 is not the default: its sign bit is data. */
		return *(const uint32_t *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_STRING:
		str = *(const char *const *)p;
		return !str || !*str;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const ProtobufCMessage *const *)p == NULL;
	default: /* 32-bit integers and enums */
		return *(const uint32_t *)p == 0;
	}
}

/* Whether field f of msg is printed at all. */
static bool pbjson__is_present(const ProtobufCMessage *msg,
			       const ProtobufCFieldDescriptor *f, unsigned flags)
{
	const char *base = (const char *)msg;
	const void *p = base + f->offset;

	/* A set oneof member is printed even when its value is the default. */
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id &&
		       (f->type != PROTOBUF_C_TYPE_MESSAGE ||
			*(const ProtobufCMessage *const *)p);

	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
		    f->type == PROTOBUF_C_TYPE_STRING)
			return *(const void *const *)p != NULL;
		if (f->label == PROTOBUF_C_LABEL_REQUIRED)
			return true;
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	case PROTOBUF_C_LABEL_REPEATED:
		return (flags & PBJSON_EMIT_DEFAULTS) ||
		       *(const size_t *)(base + f->quantifier_offset) > 0;
	case PROTOBUF_C_LABEL_NONE:
	default:
		/* with EMIT_DEFAULTS: every scalar, but not a message that is not there */
		if ((flags & PBJSON_EMIT_DEFAULTS) && f->type != PROTOBUF_C_TYPE_MESSAGE)
			return true;
		return !pbjson__is_default(f, p);
	}
}

/* The proto name of msg's set oneof member ("exec", "run_end"), or NULL. */
static const char *pbjson__kind(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) == f->id)
			return f->name;
	}
	return NULL;
}

static int pbjson__print_msg(FILE *out, const ProtobufCMessage *msg, int depth, unsigned flags)
{
	const ProtobufCMessageDescriptor *d;
	const char *base = (const char *)msg;
	bool first = true;
	unsigned i;
	int err;

	if (depth > PBJSON_MAX_DEPTH)
		return -ELOOP;
	if (!msg || !msg->descriptor ||
	    msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return -EINVAL;
	d = msg->descriptor;

	fputc('{', out);
	if ((flags & PBJSON_KIND) && pbjson__kind(msg)) {
		fputs("\"kind\":", out);
		pbjson__print_str(out, (const uint8_t *)pbjson__kind(msg), strlen(pbjson__kind(msg)));
		first = false;
	}
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (!pbjson__is_present(msg, f, flags))
			continue;
		if (!first)
			fputc(',', out);
		first = false;
		pbjson__print_name(out, f->name);
		fputc(':', out);

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			size_t sz = pbjson__elem_size(f->type);
			const char *arr = *(const char *const *)(base + f->offset);
			size_t j;

			if ((!arr && n) || !sz)
				return -EINVAL;
			fputc('[', out);
			for (j = 0; j < n; j++) {
				if (j)
					fputc(',', out);
				err = pbjson__print_value(out, f, arr + j * sz,
							  depth, flags & ~PBJSON_KIND);
				if (err)
					return err;
			}
			fputc(']', out);
			continue;
		}
		err = pbjson__print_value(out, f, base + f->offset, depth, flags);
		if (err)
			return err;
	}
	fputc('}', out);
	return 0;
}

int pbjson__print(FILE *out, const ProtobufCMessage *msg)
{
	return pbjson__print_opts(out, msg, 0);
}

int pbjson__print_opts(FILE *out, const ProtobufCMessage *msg, unsigned flags)
{
	int err;

	err = pbjson__print_msg(out, msg, 0, flags);
	if (err)
		return err;
	/* Individual stdio calls are unchecked; the stream's sticky error flag is not. */
	if (ferror(out))
		return -EIO;
	return 0;
}
