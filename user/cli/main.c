/* buildwarden: the usage text and the subcommand table (commands.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/usage.h"

const char usage_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE] [--mode audit|enforce] [--user USER[:GROUP]] [TRANSPORT] -- CMD [ARGS...]\n"
	"       buildwarden agent --policy FILE [--events FILE] [--mode audit|enforce] [TRANSPORT]\n"
	"       buildwarden collector --listen ADDR:PORT --db FILE (--tls-cert F --tls-key F --tls-client-ca F | --insecure)\n"
	"       buildwarden query --db FILE [--violations | --findings | --run ID] [--since 1h]\n"
	"       buildwarden policy check FILE\n"
	"       buildwarden decode [FILE|-]\n"
	"       buildwarden report [--format html|markdown|sarif] [-o FILE] [--fail-on violations|incomplete|never] [--source-root DIR] EVENTS\n"
	"       buildwarden version\n"
	"TRANSPORT: --collector HOST:PORT [--spool DIR] (--tls-cert F --tls-key F --tls-ca F | --insecure)\n"
	"           [--spool-max BYTES] [--chain-key FILE] [--agent-id ID] [--drain-timeout SECONDS]\n";

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
