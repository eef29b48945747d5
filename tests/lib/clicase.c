// SPDX-License-Identifier: MIT
/* See clicase.h. */
#include <stdio.h>
#include <string.h>

#include "lib/clicase.h"

int bw_cli_begin(struct bw_cli *c)
{
	memset(c, 0, sizeof(*c));
	return bw_case_setup(&c->ws) ? -1 : 0;
}

void bw_cli_end(struct bw_cli *c)
{
	bw_result_free(&c->res);
	bw_case_teardown();
}

void bw_cli_diag(struct bw_cli *c)
{
	if (c->dumped)
		return;
	c->dumped = true;
	bw_result_print(c->cmdline, c->ran ? &c->res : NULL);
	fflush(stdout);
}

bool bw_cli_run(struct bw_cli *c, const char *const args[], unsigned timeout_s, unsigned flags)
{
	c->dumped = false;
	c->ran = bw_run_logged(args, timeout_s, flags, &c->res, c->cmdline, sizeof(c->cmdline)) == 0;
	return c->ran;
}
