/* buildwarden policy check FILE: loads the policy as the agent would and says what it
 * holds. */
#include <stdio.h>
#include <string.h>

#include "agent/policy_load.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"

int cmd_policy(int argc, char **argv)
{
	struct bw_policy *p = NULL;
	int rc = cmd_policy_draft(argc, argv);

	if (rc >= 0)
		return rc;
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(help__text("policy"), stdout);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0)
		return usage__error("buildwarden policy", help__text("policy"), "expected: check FILE, learn EVENTS... or test --policy FILE EVENTS...");
	if (policy_load__file(argv[2], &p, NULL))
		return EXIT_POLICY;
	printf("%s: ok (%zu protected trees, %zu exec deny trees, %zu allow, %zu allow by name "
	       "and %zu deny network rules, mode %s)\n",
	       argv[2], p->n_protect, p->n_exec_deny, p->n_net_allow, p->n_net_allow_names,
	       p->n_net_deny,
	       p->mode == BW_MODE_ENFORCE ? "enforce" : "audit");
	policy__free(p);
	return 0;
}
