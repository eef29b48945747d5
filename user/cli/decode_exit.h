/* The exit code for a transport/decode.h result: every subcommand that reads an events
 * file (decode, report, policy learn/test) exits the same way on the same failure. */
#ifndef BUILDWARDEN_CLI_DECODE_EXIT_H
#define BUILDWARDEN_CLI_DECODE_EXIT_H

/* DECODE_OK → 0, BAD_DATA → EXIT_DATAERR, NO_INPUT → EXIT_NOINPUT, IO_ERROR →
 * EXIT_IOERR; anything else (DECODE_NO_MEMORY) → EXIT_SOFTWARE. */
int decode_exit__code(int rc);

#endif
