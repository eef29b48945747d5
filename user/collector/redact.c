// SPDX-License-Identifier: GPL-2.0
/* Secret redaction: see redact.h. A pass marks the bytes to hide in a mask; the copy
 * then replaces each marked run with one REDACT_MARK. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/redact.h"

/* Shorter than this after a token prefix is a word, not a token (ghp_ tokens are 36). */
#define REDACT_TOKEN_MIN 16
#define REDACT_NAME_MAX 64

int redact__init(struct redact *r, bool defaults, const char *const *patterns, size_t n,
		 char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->defaults = defaults;
	if (n > REDACT_MAX_RULES) {
		snprintf(err, errlen, "at most %d --redact patterns", REDACT_MAX_RULES);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = regcomp(&r->re[i], patterns[i], REG_EXTENDED);

		if (rc) {
			char why[128];

			regerror(rc, &r->re[i], why, sizeof(why));
			snprintf(err, errlen, "--redact '%s': %s", patterns[i], why);
			r->n_re = i;
			redact__free(r);
			return -EINVAL;
		}
		r->n_re = i + 1;
	}
	return 0;
}

void redact__free(struct redact *r)
{
	for (size_t i = 0; i < r->n_re; i++)
		regfree(&r->re[i]);
	r->n_re = 0;
}

bool redact__active(const struct redact *r)
{
	return r && (r->defaults || r->n_re);
}

static bool redact__tokchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static void redact__mark(uint8_t *mask, size_t from, size_t to, bool *any)
{
	if (to <= from)
		return;
	memset(mask + from, 1, to - from);
	*any = true;
}

/* Tokens with a well-known prefix: GitHub (ghp_ gho_ ghs_ ghu_ ghr_ github_pat_) and
 * GitLab (glpat-). The prefix stays, so a reader sees what kind of secret it was. */
static void redact__tokens(const char *s, uint8_t *mask, bool *any)
{
	static const char *const prefixes[] = { "ghp_", "gho_", "ghs_", "ghu_", "ghr_",
						"github_pat_", "glpat-" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		for (const char *p = strstr(s, prefixes[i]); p; p = strstr(p + 1, prefixes[i])) {
			const char *e = p + pl;

			while (redact__tokchar(*e))
				e++;
			if ((size_t)(e - p) >= pl + REDACT_TOKEN_MIN)
				redact__mark(mask, (size_t)(p - s) + pl, (size_t)(e - s), any);
		}
	}
}

/* NAME=value where NAME says it is a secret: GITHUB_TOKEN=..., --password=...,
 * token=... (also inside a URL's query: ?access_token=...&). The value ends at a
 * separator of URLs, lists or shell words. */
static void redact__assignments(const char *s, uint8_t *mask, bool *any)
{
	static const char *const words[] = { "token", "secret", "password", "passwd",
					     "api_key", "apikey", "api-key", "access_key",
					     "private_key", "credential", "auth" };

	for (const char *eq = strchr(s, '='); eq; eq = strchr(eq + 1, '=')) {
		const char *n = eq, *v = eq + 1;
		char name[REDACT_NAME_MAX + 1];
		size_t nl;
		bool secret = false;

		while (n > s && (redact__tokchar(n[-1]) || n[-1] == '.'))
			n--;
		nl = (size_t)(eq - n);
		if (!nl || nl > REDACT_NAME_MAX)
			continue;
		for (size_t i = 0; i < nl; i++)
			name[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] + ('a' - 'A') : n[i]);
		name[nl] = 0;
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]) && !secret; i++)
			secret = strstr(name, words[i]) != NULL;
		if (!secret)
			continue;
		while (*v && !strchr("& \t;,\"'", *v))
			v++;
		redact__mark(mask, (size_t)(eq + 1 - s), (size_t)(v - s), any);
	}
}

/* "Authorization: Bearer X" (one argv string, as curl -H takes it) and a lone
 * "Bearer X": everything after the scheme. */
static void redact__auth_header(const char *s, uint8_t *mask, bool *any)
{
	const char *p = strcasestr(s, "authorization:");

	if (p) {
		p += strlen("authorization:");
		while (*p == ' ' || *p == '\t')
			p++;
		for (const char *const *w = (const char *const[]){ "bearer", "basic", "token",
								  "digest", NULL };
		     *w; w++) {
			size_t wl = strlen(*w);

			if (!strncasecmp(p, *w, wl) && (p[wl] == ' ' || p[wl] == '\t')) {
				p += wl;
				while (*p == ' ' || *p == '\t')
					p++;
				break;
			}
		}
		redact__mark(mask, (size_t)(p - s), strlen(s), any);
	}
	for (p = strcasestr(s, "bearer "); p; p = strcasestr(p + 1, "bearer ")) {
		const char *v = p + strlen("bearer "), *e;

		while (*v == ' ')
			v++;
		for (e = v; *e && *e != ' ' && *e != '\t'; e++)
			;
		if (e - v >= 8)
			redact__mark(mask, (size_t)(v - s), (size_t)(e - s), any);
	}
}

/* The password of a URL's user info: https://user:PASSWORD@host/. */
static void redact__url_password(const char *s, uint8_t *mask, bool *any)
{
	for (const char *p = strstr(s, "://"); p; p = strstr(p + 3, "://")) {
		const char *h = p + 3, *end = h, *colon = NULL;

		while (*end && *end != '/' && *end != '@' && *end != ' ') {
			if (*end == ':' && !colon)
				colon = end;
			end++;
		}
		if (*end == '@' && colon)
			redact__mark(mask, (size_t)(colon + 1 - s), (size_t)(end - s), any);
	}
}

static void redact__regexes(const struct redact *r, const char *s, size_t len, uint8_t *mask,
			    bool *any)
{
	for (size_t i = 0; i < r->n_re; i++) {
		const regex_t *re = &r->re[i];
		size_t off = 0;

		while (off <= len) {
			regmatch_t m[2];
			size_t from, to;

			if (regexec(re, s + off, 2, m, off ? REG_NOTBOL : 0))
				break;
			if (re->re_nsub > 0 && m[1].rm_so >= 0) {
				from = off + (size_t)m[1].rm_so;
				to = off + (size_t)m[1].rm_eo;
			} else {
				from = off + (size_t)m[0].rm_so;
				to = off + (size_t)m[0].rm_eo;
			}
			redact__mark(mask, from, to, any);
			/* go on after the match; an empty match moves one byte */
			off += m[0].rm_eo > m[0].rm_so ? (size_t)m[0].rm_eo : (size_t)m[0].rm_so + 1;
		}
	}
}

const char *redact__string(const struct redact *r, const char *s, struct slab *mem, bool *nomem)
{
	bool eq = false, colon = false, gh = false, bearer = false, any = false;
	size_t len, o = 0, runs = 0;
	uint8_t small[512], *mask;
	const char *p;
	char *out;

	/* One pass says which built-in rules can match at all: almost every argv string
	 * of a build (paths, -O2, -Isrc) has none of '=', ':', "gh"/"gl", "be", and costs
	 * this loop only (measured: the rules run unconditionally cost ~0.7 us of
	 * collector CPU per event with the bench's 8-string argv, ~20%). */
	for (p = s; *p; p++) {
		switch (*p) {
		case '=':
			eq = true;
			break;
		case ':':
			colon = true;
			break;
		case 'g':
			gh |= p[1] == 'h' || p[1] == 'l';
			break;
		case 'b':
		case 'B':
			bearer |= (p[1] | 0x20) == 'e';
			break;
		default:
			break;
		}
	}
	len = (size_t)(p - s);
	if (!r->n_re && (!r->defaults || !(eq || colon || gh || bearer)))
		return NULL;
	mask = len <= sizeof(small) ? small : slab__alloc(mem, len);
	if (!mask) {
		*nomem = true;
		return NULL;
	}
	memset(mask, 0, len);
	if (r->defaults) {
		if (gh)
			redact__tokens(s, mask, &any);
		if (eq)
			redact__assignments(s, mask, &any);
		if (colon || bearer)
			redact__auth_header(s, mask, &any);
		if (colon)
			redact__url_password(s, mask, &any);
	}
	redact__regexes(r, s, len, mask, &any);
	if (!any)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (mask[i] && (!i || !mask[i - 1]))
			runs++;
	out = slab__alloc(mem, len + runs * strlen(REDACT_MARK) + 1);
	if (!out) {
		*nomem = true;
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!mask[i]) {
			out[o++] = s[i];
		} else if (!i || !mask[i - 1]) {
			memcpy(out + o, REDACT_MARK, strlen(REDACT_MARK));
			o += strlen(REDACT_MARK);
		}
	}
	out[o] = 0;
	return out;
}
