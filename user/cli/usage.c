#include <stdarg.h>
#include <stdio.h>

#include "cli/exitcodes.h"
#include "cli/usage.h"

int usage__error(const char *who, const char *usage_text, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	flockfile(stderr);
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n%s", usage_text);
	funlockfile(stderr);
	va_end(ap);
	return EXIT_USAGE;
}
