/* buildwarden version */
#include <stdio.h>

#include "cli/commands.h"

int cmd_version(int argc, char **argv)
{
	printf("buildwarden %s\n", BW_VERSION);
	return 0;
}
