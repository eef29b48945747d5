// SPDX-License-Identifier: GPL-2.0
/* An events file into the report model, through transport's decoder. */
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "report/report.h"
#include "transport/decode.h"

struct report_reader {
	struct rpt_model *m;
	void (*progress)(void *ctx, uint64_t in_bytes);
	void *ctx;
	FILE *err;
	const char *name;
};

static int report__event(void *ctx, const Buildwarden__V1__Event *ev, const char **why)
{
	struct report_reader *r = ctx;
	int err = rpt_model__add(r->m, ev);

	(void)why;
	if (!err)
		return 0;
	log__line(r->err, "report: ", "%s: after %llu events: %s", r->name,
		  (unsigned long long)r->m->events,
		  err == -EFBIG ? "more items than a report takes" : strerror(-err));
	return DECODE_NO_MEMORY;
}

static void report__progress(void *ctx, uint64_t in_bytes)
{
	struct report_reader *r = ctx;

	if (r->progress)
		r->progress(r->ctx, in_bytes);
}

int report__read(const char *path, struct rpt_model *m,
		 void (*progress)(void *ctx, uint64_t in_bytes), void *ctx, FILE *err)
{
	struct report_reader r = {
		.m = m, .progress = progress, .ctx = ctx, .err = err,
		.name = (!path || strcmp(path, "-") == 0) ? "<stdin>" : path,
	};
	struct decode_visitor v = {
		.event = report__event, .progress = report__progress, .ctx = &r,
	};

	return decode__each(path, &v, "report: ", err);
}

bool report__fails(const struct rpt_model *m, enum report_fail_on fail_on)
{
	bool incomplete = m->nruns == 0 || m->read_error[0], violations = m->nviolations > 0;

	for (size_t i = 0; i < m->nruns; i++) {
		incomplete |= rpt_run__incomplete(&m->runs[i]);
		violations |= m->runs[i].violations > 0 || m->runs[i].end_violations > 0;
	}
	switch (fail_on) {
	case REPORT_FAIL_VIOLATIONS:
		return violations || incomplete;
	case REPORT_FAIL_INCOMPLETE:
		return incomplete;
	default:
		return false;
	}
}
