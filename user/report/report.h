/* `buildwarden report`: an events file read into a model (model.h) and written as a
 * document people read: a self-contained HTML page, the markdown a CI job summary
 * shows, or SARIF 2.1.0 for code-scanning dashboards. */
#ifndef BUILDWARDEN_REPORT_REPORT_H
#define BUILDWARDEN_REPORT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "report/model.h"

struct report_opts {
	/* SARIF: paths under it become URIs relative to %SRCROOT% (a checkout), so code
	 * scanning can place them; NULL: absolute file URIs */
	const char *source_root;
	/* rows per markdown table before "... and N more" (0: 50) */
	unsigned md_rows;
};

/* Reads the events file at path (plain or gzip, "-": stdin) into m with transport's
 * decoder; progress (may be NULL) gets the input bytes consumed. Returns an enum
 * decode_result (transport/decode.h), with the message written to err: on bad data
 * the model keeps every event before it. */
int report__read(const char *path, struct rpt_model *m,
		 void (*progress)(void *ctx, uint64_t in_bytes), void *ctx, FILE *err);

/* The documents. Each returns 0, or -EIO when out reports a write error. */
int report__html(FILE *out, const struct rpt_model *m, const struct report_opts *o);
int report__markdown(FILE *out, const struct rpt_model *m, const struct report_opts *o);
int report__sarif(FILE *out, const struct rpt_model *m, const struct report_opts *o);

/* What a CI job fails on: any violation or an incomplete run; only an incomplete run;
 * never. */
enum report_fail_on {
	REPORT_FAIL_VIOLATIONS,
	REPORT_FAIL_INCOMPLETE,
	REPORT_FAIL_NEVER,
};

/* true when m fails per fail_on. A run that cannot vouch for its build fails under
 * "violations" too: a loss may have hidden one. An empty model (no run) is incomplete. */
bool report__fails(const struct rpt_model *m, enum report_fail_on fail_on);

#endif /* BUILDWARDEN_REPORT_REPORT_H */
