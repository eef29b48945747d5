// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the bytes of a read() of a fanotify descriptor. The kernel writes
 * them, but the parser must not trust a length it did not check: every record it
 * returns must lie inside the input, every name must end inside it, and the cursor
 * must only move forward. The seeds are real records (tests/fuzz/corpus/fuzz_fanotify:
 * create, modify, attrib, link count, renames, mkdir, move of a tree root, an
 * overflow, and all of them in one buffer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sensor/fanotify_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fid(const struct fan_fid *f, const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;

	if (!f->ok)
		return;
	if (f->len > FANOTIFY_PARSE_MAX_HANDLE || f->h < data || f->h > end ||
	    (size_t)(end - f->h) < f->len)
		abort();
	/* the generation reader on every handle, with the inode number the handle's own
	 * bytes would name under each layout, and one it does not */
	for (size_t off = 0; off <= 4 && off + 4 <= f->len; off += 4) {
		uint32_t w, gen;

		memcpy(&w, f->h + off, sizeof(w));
		(void)fanotify_parse__handle_gen(f->type, f->h, f->len, w, &gen);
	}
	{
		uint32_t gen;

		(void)fanotify_parse__handle_gen(f->type, f->h, f->len, UINT64_MAX, &gen);
	}
	if (f->name) {
		const uint8_t *n = (const uint8_t *)f->name;

		if (n < data || n >= end || !memchr(n, '\0', (size_t)(end - n)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fan_cursor c;
	struct fan_record rec;
	size_t last = 0;

	fanotify_parse__init(&c, data, size);
	while (fanotify_parse__next(&c, &rec) == 1) {
		if (c.off <= last || c.off > size)
			abort();
		last = c.off;
		if (rec.status != FAN_REC_OK)
			continue;
		check_fid(&rec.info.fid, data, size);
		check_fid(&rec.info.dfid_name, data, size);
		check_fid(&rec.info.dfid, data, size);
		check_fid(&rec.info.old, data, size);
		check_fid(&rec.info.new, data, size);
	}
	/* The info parser alone, on the whole input as one event, with every metadata
	 * length the first byte can say. */
	if (size) {
		struct fan_info in;

		if (fanotify_parse__info(data, size, data[0], &in) == 0) {
			check_fid(&in.fid, data, size);
			check_fid(&in.dfid_name, data, size);
			check_fid(&in.dfid, data, size);
			check_fid(&in.old, data, size);
			check_fid(&in.new, data, size);
		}
	}
	return 0;
}
