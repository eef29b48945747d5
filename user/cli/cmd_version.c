/* buildwarden version */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/help.h"

int cmd_version(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(help__text("version"), stdout);
		return 0;
	}
	printf("buildwarden %s\n", BW_VERSION);
	return 0;
}
