/* buildwarden decode [FILE|-]: an events file as JSON lines. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/usage.h"
#include "transport/decode.h"

int cmd_decode(int argc, char **argv)
{
	if (argc > 2)
		return usage__error("buildwarden", usage_text, "usage: buildwarden decode [FILE|-]");
	return decode__stream(argc == 2 ? argv[1] : "-", stdout, stderr);
}
