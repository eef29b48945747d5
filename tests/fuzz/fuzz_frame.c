// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: a byte stream as `buildwarden decode` and the collector see it.
 * Frames every input, unpacks each payload as an Event and prints it as JSON, so the
 * framing bounds, protobuf-c's unpack and the descriptor-driven printer (UTF-8
 * handling, enums, base64, oneofs) all meet hostile bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buildwarden.pb-c.h"
#include "transport/frame.h"
#include "transport/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	const uint8_t *payload;
	size_t off = 0, plen;
	int rc;

	/* Opened once: one fopen per input would dominate the run time. */
	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
	}

	while ((rc = frame__next(data, size, &off, BW_FRAME_MAX, &payload, &plen)) == 1) {
		Buildwarden__V1__Event *ev;

		ev = buildwarden__v1__event__unpack(NULL, plen, payload);
		if (!ev)
			break;
		/* Anything protobuf-c accepted must print: an error here is a printer bug. */
		if (pbjson__print(devnull, &ev->base) != 0)
			abort();
		fputc('\n', devnull);
		buildwarden__v1__event__free_unpacked(ev, NULL);
	}
	/* The reader's contract: off never passes the end, and an error leaves it at a
	 * frame start that is inside the input. */
	if (off > size || (rc < 0 && off >= size))
		abort();
	return 0;
}
