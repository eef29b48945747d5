/* The state one case of a CLI suite (tests/cli) keeps: its workspace and the last run of
 * buildwarden, printed once (the command and what it printed) before the first failed
 * check. The integration suites, which also read events, use bwcase.h. */
#ifndef BUILDWARDEN_CLICASE_H
#define BUILDWARDEN_CLICASE_H

#include <stdbool.h>

#include "lib/bwtest.h"

struct bw_cli {
	struct bw_ws ws;
	char cmdline[4096];
	struct bw_result res;
	bool ran;
	bool dumped;
};

/* zeroes c and makes its workspace (bw_case_setup): 0 or -1 */
int bw_cli_begin(struct bw_cli *c);
/* frees the last run, kills and removes what the case made */
void bw_cli_end(struct bw_cli *c);
/* prints the last run once (the command alone if it did not start) */
void bw_cli_diag(struct bw_cli *c);
/* runs `buildwarden ARGS...` (flags: BW_SPAWN_*) into c->res and re-arms the dump;
 * returns c->ran: whether it started */
bool bw_cli_run(struct bw_cli *c, const char *const args[], unsigned timeout_s, unsigned flags);

#endif
