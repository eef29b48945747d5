/* Network rules by name: `github.com:443`, `*.githubusercontent.com:443`, `example.org`.
 * Only the text and the match live here; the agent's resolver (user/agent/resolver.c)
 * lets an answer's addresses through for a name that matches. Apart from netrule.c so
 * that address rules and name rules each keep one small parser. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

/* A name rule is "NAME" or "NAME:PORT" where NAME is not an address: an IPv6 address
 * has two colons or more, an IPv4 one only digits, dots and a prefix length. A text
 * that starts like an IPv4 address ("10.0.0.1a", a typo) is left to the address parser
 * and its error, rather than read as a name nobody meant. */
bool policy__is_host_rule(const char *text)
{
	const char *colon = strchr(text, ':');
	size_t n = colon ? (size_t)(colon - text) : strlen(text), dots = 0;

	if (text[0] == '[' || (colon && strchr(colon + 1, ':')))
		return false;
	for (size_t i = 0; i < n && (isdigit((unsigned char)text[i]) || text[i] == '.'); i++)
		dots += text[i] == '.';
	if (dots >= 3)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)text[i]) && text[i] != '.' && text[i] != '/')
			return true;
	return false;
}

/* One label: 1..63 of [a-z0-9-], not starting or ending with '-' (RFC 1123). */
static int hostrule__label(const char *s, size_t n)
{
	if (n == 0 || n > BW_HOST_LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return -EINVAL;
	return 0;
}

int policy__parse_host_rule(const char *text, struct bw_host_rule *r, char *err, size_t errlen)
{
	char name[BW_HOST_NAME_MAX + 1];
	const char *colon = strchr(text, ':');
	size_t n = colon ? (size_t)(colon - text) : strlen(text);
	const char *labels;
	unsigned long port = 0;

	memset(r, 0, sizeof(*r));
	if (n == 0 || n > BW_HOST_NAME_MAX) {
		snprintf(err, errlen, "bad name rule '%.60s': the name must be 1..%d characters",
			 text, BW_HOST_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)text[i]);
	name[n] = '\0';
	if (colon) {
		const char *p = colon + 1;

		if (!*p || strlen(p) > 5) {
			snprintf(err, errlen, "bad port in '%s': must be 1..65535", text);
			return -EINVAL;
		}
		for (; *p; p++) {
			if (*p < '0' || *p > '9') {
				snprintf(err, errlen, "bad port in '%s': must be 1..65535", text);
				return -EINVAL;
			}
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port == 0 || port > 65535) {
			snprintf(err, errlen,
				 "bad port in '%s': must be 1..65535; omit the port to match any port",
				 text);
			return -EINVAL;
		}
	}
	labels = name;
	if (name[0] == '*') {
		if (name[1] != '.') {
			snprintf(err, errlen,
				 "bad name rule '%s': a wildcard is only '*.' before a name (\"*.example.com\")",
				 text);
			return -EINVAL;
		}
		r->wildcard = true;
		labels = name + 2;
	}
	if (strchr(labels, '*')) {
		snprintf(err, errlen,
			 "bad name rule '%s': a wildcard is only '*.' before a name (\"*.example.com\")",
			 text);
		return -EINVAL;
	}
	for (const char *l = labels;;) {
		const char *dot = strchr(l, '.');
		size_t ln = dot ? (size_t)(dot - l) : strlen(l);

		if (hostrule__label(l, ln)) {
			snprintf(err, errlen,
				 "bad name rule '%s': '%.*s' is not a DNS label (letters, digits, '-'; 1..63)",
				 text, (int)ln, l);
			return -EINVAL;
		}
		if (!dot)
			break;
		l = dot + 1;
	}
	/* "*.com" would let a build reach any host it can name: a second label at least */
	if (r->wildcard && !strchr(labels, '.')) {
		snprintf(err, errlen,
			 "bad name rule '%s': a wildcard needs at least two labels after '*.'", text);
		return -EINVAL;
	}
	r->name = strdup(labels);
	if (!r->name) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->port = (uint16_t)port;
	return 0;
}

bool policy__host_match(const struct bw_host_rule *r, const char *name)
{
	size_t n = strlen(name), rn = strlen(r->name);

	/* the answer's owner names are absolute: "github.com." */
	if (n && name[n - 1] == '.')
		n--;
	if (!r->wildcard)
		return n == rn && strncasecmp(name, r->name, n) == 0;
	/* "*.example.com": any name below example.com, at any depth, not example.com */
	return n > rn + 1 && name[n - rn - 1] == '.' &&
	       strncasecmp(name + n - rn, r->name, rn) == 0;
}

int policy__host_verdict(const struct bw_policy *p, const char *name, uint16_t port,
			 const char **rule)
{
	for (size_t i = 0; i < p->n_net_allow_names; i++) {
		const struct bw_host_rule *r = &p->net_allow_names[i];

		if ((r->port == 0 || r->port == port) && policy__host_match(r, name)) {
			if (rule)
				*rule = r->text;
			return (int)i;
		}
	}
	return -1;
}
