#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bwcase.h"

unsigned bw_run_timeout(void)
{
	const char *t = getenv("BW_TEST_TIMEOUT");

	return t && atoi(t) > 0 ? (unsigned)atoi(t) : 20;
}

int bw_case_begin(struct bw_case *c)
{
	memset(c, 0, sizeof(*c));
	return bw_case_setup(&c->ws) ? -1 : 0;
}

void bw_case_end(struct bw_case *c)
{
	bw_result_free(&c->res);
	if (c->have_evs)
		bw_events_free(&c->evs);
	c->have_evs = false;
	bw_case_teardown();
}

void bw_case_diag(struct bw_case *c)
{
	if (c->dumped)
		return;
	c->dumped = true;
	bw_result_print(c->cmdline, c->ran ? &c->res : NULL);
	if (c->have_evs)
		bw_ev_dump(&c->evs, 120);
	fflush(stdout);
}
