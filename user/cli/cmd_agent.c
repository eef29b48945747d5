/* buildwarden agent --policy FILE [FLAGS]: the agent as a service on the host, until
 * SIGTERM; SIGHUP reloads the policy. */
#include <getopt.h>

#include "cli/agent_cli.h"
#include "cli/commands.h"
#include "cli/usage.h"

int cmd_agent(int argc, char **argv)
{
	struct agent_opts o;
	struct agent_result res;
	int rc;

	rc = agent_cli__parse_flags(argc, argv, &o, NULL);
	if (rc)
		return rc;
	if (!o.policy_path)
		return usage__error("buildwarden", usage_text, "agent needs --policy FILE");
	if (optind < argc)
		return usage__error("buildwarden", usage_text, "unexpected argument '%s'", argv[optind]);
	o.detach_after_exit = true; /* this process exits after the run */
	rc = agent__run(&o, NULL, &res);
	return agent_cli__exit_code(&o, rc, &res);
}
