/* One way every subcommand reports a bad command line: "buildwarden[ SUB]: what is
 * wrong", then that subcommand's usage text, and EXIT_USAGE. */
#ifndef BUILDWARDEN_CLI_USAGE_H
#define BUILDWARDEN_CLI_USAGE_H

/* prints to stderr and returns EXIT_USAGE */
int usage__error(const char *who, const char *usage_text, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
