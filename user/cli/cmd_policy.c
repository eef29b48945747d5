/* buildwarden policy SUBCOMMAND: dispatches to the policy tools. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/policy_check.h"
#include "cli/usage.h"

int cmd_policy(int argc, char **argv)
{
	int rc = cmd_policy_draft(argc, argv);

	if (rc >= 0)
		return rc;
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(help__text("policy"), stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return policy_check__main(argc - 1, argv + 1);
	return usage__error("buildwarden policy", help__text("policy"),
			    "expected: policy check FILE (options: --offline, --strict, --set "
			    "VAR=VALUE), policy learn EVENTS... or policy test --policy FILE EVENTS...");
}
