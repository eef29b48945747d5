/* The state one case of a suite that drives the binary keeps: its workspace, the last
 * run of buildwarden and that run's events, and a single diagnostic dump (the command,
 * what it printed, the events) before the first failed check. */
#ifndef BUILDWARDEN_BWCASE_H
#define BUILDWARDEN_BWCASE_H

#include <limits.h>
#include <stdbool.h>

#include "lib/bwtest.h"

struct bw_case {
	struct bw_ws ws;
	char events[PATH_MAX];
	unsigned runs;
	char cmdline[4096];
	struct bw_result res;
	bool ran;
	struct bw_events evs;
	bool have_evs;
	bool dumped;
};

/* seconds one run may take: BW_TEST_TIMEOUT, else 20 */
unsigned bw_run_timeout(void);
/* zeroes c and makes its workspace (bw_case_setup): 0 or -1 */
int bw_case_begin(struct bw_case *c);
/* frees the run and events, kills and removes what the case made */
void bw_case_end(struct bw_case *c);
/* prints the run and its events once */
void bw_case_diag(struct bw_case *c);

/* `buildwarden run --mode MODE --policy <ws>/policy.yaml --events <ws>/events-N.pb --
 * /bin/sh -c SCRIPT` (N counts the case's runs), then its events read into c->evs; a
 * failed check (did not start, timed out, events do not parse) dumps c and fails. */
void bw_case_run_sh(struct bw_case *c, const char *mode, const char *script);
/* Did the build print the --bw-helper line "RESULT TAG VALUE"? */
bool bw_case_saw(const struct bw_case *c, const char *tag, const char *value);

#endif
