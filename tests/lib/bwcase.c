#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

/* BW_CHECK with this case's dump */
#define CASE_CHECK(c, cond, ...)               \
	do {                                   \
		if (!(cond)) {                 \
			bw_case_diag(c);       \
			fail_msg(__VA_ARGS__); \
		}                              \
	} while (0)

void bw_case_run_sh(struct bw_case *c, const char *mode, const char *script)
{
	char policy[PATH_MAX];
	const char *args[] = { "run", "--mode", mode, "--policy",
			       bw_ws_path(&c->ws, "policy.yaml", policy, sizeof(policy)),
			       "--events", c->events, "--", "/bin/sh", "-c", script, NULL };

	snprintf(c->events, sizeof(c->events), "%s/events-%u.pb", c->ws.path, ++c->runs);
	c->dumped = false;
	c->ran = bw_run_logged(args, bw_run_timeout(), 0, &c->res, c->cmdline, sizeof(c->cmdline)) == 0;
	CASE_CHECK(c, c->ran, "cannot start %s", c->cmdline);
	CASE_CHECK(c, !c->res.timed_out, "buildwarden did not finish within %u s", bw_run_timeout());
	if (c->have_evs)
		bw_events_free(&c->evs);
	c->have_evs = true;
	CASE_CHECK(c, bw_events_read(c->events, &c->evs) == 0, "events file %s does not parse: %s",
		   c->events, c->evs.err);
}

bool bw_case_saw(const struct bw_case *c, const char *tag, const char *value)
{
	char want[128];

	snprintf(want, sizeof(want), "RESULT %s %s\n", tag, value);
	return c->res.out && strstr(c->res.out, want);
}
