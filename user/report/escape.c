// SPDX-License-Identifier: GPL-2.0
/* Escapers for the report documents: see escape.h. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/utf8.h"
#include "report/escape.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* Calls one of the per-character writers below for each character of s: a well-formed
 * UTF-8 sequence as it is, a byte that does not start one as U+FFFD. */
typedef void (*esc_char_fn)(FILE *out, const uint8_t *c, size_t len);

static void esc__each(FILE *out, const char *s, esc_char_fn fn)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n, len;

	if (!s)
		return;
	n = strlen(s);
	while (n) {
		len = utf8__len(p, n);
		if (len == 0)
			fn(out, (const uint8_t *)REPLACEMENT, 3);
		else
			fn(out, p, len);
		len = len ? len : 1;
		p += len;
		n -= len;
	}
}

static void esc__html_char(FILE *out, const uint8_t *c, size_t len)
{
	if (len > 1) {
		fwrite(c, 1, len, out);
		return;
	}
	switch (c[0]) {
	case '&': fputs("&amp;", out); break;
	case '<': fputs("&lt;", out); break;
	case '>': fputs("&gt;", out); break;
	case '"': fputs("&quot;", out); break;
	case '\'': fputs("&#39;", out); break;
	default:
		if (c[0] < 0x20 || c[0] == 0x7f)
			fprintf(out, "\\x%02x", c[0]);
		else
			fputc(c[0], out);
	}
}

void esc__html(FILE *out, const char *s)
{
	esc__each(out, s, esc__html_char);
}

static void esc__json_char(FILE *out, const uint8_t *c, size_t len)
{
	if (len == 3 && c[0] == 0xe2 && c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
		/* line and paragraph separators end a JavaScript string literal */
		fprintf(out, "\\u20%s", c[2] == 0xa8 ? "28" : "29");
		return;
	}
	if (len > 1) {
		fwrite(c, 1, len, out);
		return;
	}
	switch (c[0]) {
	case '"': fputs("\\\"", out); break;
	case '\\': fputs("\\\\", out); break;
	case '\n': fputs("\\n", out); break;
	case '\t': fputs("\\t", out); break;
	case '<': case '>': case '&':
		/* "</script>" or "<!--" inside an inline script would end or change it */
		fprintf(out, "\\u%04x", c[0]);
		break;
	default:
		if (c[0] < 0x20 || c[0] == 0x7f)
			fprintf(out, "\\u%04x", c[0]);
		else
			fputc(c[0], out);
	}
}

void esc__json(FILE *out, const char *s)
{
	esc__each(out, s, esc__json_char);
}

static void esc__md_char(FILE *out, const uint8_t *c, size_t len)
{
	if (len > 1) {
		fwrite(c, 1, len, out);
		return;
	}
	if (c[0] < 0x20 || c[0] == 0x7f) {
		/* the backslash of "\xNN" escaped too, so it shows as typed */
		fprintf(out, "\\\\x%02x", c[0]);
		return;
	}
	/* CommonMark: any ASCII punctuation may be backslash-escaped, and then is text */
	if (strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c[0]))
		fputc('\\', out);
	fputc(c[0], out);
}

void esc__md(FILE *out, const char *s)
{
	esc__each(out, s, esc__md_char);
}

void esc__uri_path(FILE *out, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	if (!s)
		return;
	for (; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);

		if (plain)
			fputc(*p, out);
		else
			fprintf(out, "%%%02X", *p);
	}
}
