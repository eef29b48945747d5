#include <string.h>

#include "base/log.h"

void log__vline(FILE *out, const char *prefix, const char *fmt, va_list ap)
{
	flockfile(out);
	if (prefix)
		fputs(prefix, out);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
	funlockfile(out);
	fflush(out);
}

void log__line(FILE *out, const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log__vline(out, prefix, fmt, ap);
	va_end(ap);
}

bool log_limiter__pass(struct log_limiter *l, const char *line, int64_t now_ns, int64_t window_ns)
{
	if (l->last_ns && strncmp(line, l->last, sizeof(l->last) - 1) == 0 &&
	    now_ns - l->last_ns < window_ns)
		return false;
	snprintf(l->last, sizeof(l->last), "%s", line);
	l->last_ns = now_ns;
	return true;
}
