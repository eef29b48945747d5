/* buildwarden decode [FILE|-]: an events file as JSON lines. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "transport/decode.h"

int cmd_decode(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(help__text("decode"), stdout);
		return 0;
	}
	if (argc > 2)
		return usage__error("buildwarden decode", help__text("decode"), "one FILE at most");
	switch (decode__stream(argc == 2 ? argv[1] : "-", stdout, stderr)) {
	case DECODE_OK:
		return 0;
	case DECODE_BAD_DATA:
		return EXIT_DATAERR;
	case DECODE_NO_INPUT:
		return EXIT_NOINPUT;
	case DECODE_IO_ERROR:
		return EXIT_IOERR;
	default: /* DECODE_NO_MEMORY: out of memory is internal, as in the collector */
		return EXIT_SOFTWARE;
	}
}
