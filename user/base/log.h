/* The one logger. Every diagnostic is one whole line, "<prefix>message\n", written
 * under the stream's lock so that threads never interleave, and every format string
 * is checked by the compiler. A limiter keeps a failure that repeats (a collector
 * that is down for an hour) from filling the build log. */
#ifndef BUILDWARDEN_BASE_LOG_H
#define BUILDWARDEN_BASE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

void log__line(FILE *out, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log__vline(FILE *out, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define LOG_LINE_MAX 160

/* The same line at most once per window; a different line always passes. */
struct log_limiter {
	char last[LOG_LINE_MAX];
	int64_t last_ns; /* CLOCK_MONOTONIC of the last line let through */
};

/* true: print `line` now; false: it repeats the last one within window_ns */
bool log_limiter__pass(struct log_limiter *l, const char *line, int64_t now_ns, int64_t window_ns);

#endif /* BUILDWARDEN_BASE_LOG_H */
