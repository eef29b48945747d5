// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: an events stream as `buildwarden report` reads it. Frames every
 * input, unpacks each payload as an Event, folds it into the report model and writes
 * all three documents, so the model's lookups, the rename chains, the lineage and
 * every escaper meet hostile events (any bytes in strings, pids that repeat, cycles
 * in parents, seq numbers in any order). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buildwarden.pb-c.h"
#include "report/report.h"
#include "transport/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct report_opts opts = { .source_root = "/w", .md_rows = 5 };
	const uint8_t *payload;
	struct rpt_model *m;
	size_t off = 0, plen;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
	}
	m = rpt_model__new();
	if (!m)
		abort();
	while (frame__next(data, size, &off, BW_FRAME_MAX, &payload, &plen) == 1) {
		Buildwarden__V1__Event *ev = buildwarden__v1__event__unpack(NULL, plen, payload);

		if (!ev)
			break;
		if (rpt_model__add(m, ev) != 0)
			abort(); /* far below RPT_MAX_ITEMS: only out of memory, a bug here */
		buildwarden__v1__event__free_unpacked(ev, NULL);
	}
	rpt_model__finish(m);
	if (report__html(devnull, m, &opts) || report__markdown(devnull, m, &opts) ||
	    report__sarif(devnull, m, &opts))
		abort();
	rpt_model__free(m);
	return 0;
}
