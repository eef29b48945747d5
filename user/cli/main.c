/* buildwarden: the subcommand table (commands.h); the texts are in help.c. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/usage.h"

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "run", cmd_run },
	{ "agent", cmd_agent },
	{ "policy", cmd_policy },
	{ "decode", cmd_decode },
	{ "report", cmd_report },
	{ "collector", cmd_collector },
	{ "query", cmd_query },
	{ "version", cmd_version },
	{ "enroll", cmd_enroll },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage__error("buildwarden", usage_text, "missing subcommand");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	return usage__error("buildwarden", usage_text, "unknown subcommand '%s'", argv[1]);
}
