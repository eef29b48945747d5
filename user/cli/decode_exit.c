// SPDX-License-Identifier: GPL-2.0
/* See decode_exit.h. */
#include "cli/decode_exit.h"
#include "cli/exitcodes.h"
#include "transport/decode.h"

int decode_exit__code(int rc)
{
	switch (rc) {
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
