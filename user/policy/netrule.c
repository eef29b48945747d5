/* Network rules: the text forms a policy may use, and the longest-prefix verdict the
 * kernel computes from the same rules. Kept apart from the YAML code so the CLI can
 * reuse the parser, and so the precedence lives in one small place. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

/* Longest legal rule: "[" + 45-char IPv6 + "/128]:65535", with room to spare. A longer
 * string cannot be valid, and a fixed buffer keeps the parser free of allocation. */
#define NET_RULE_MAX 96

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Digits only: strtoul would accept signs, spaces and hex, which a policy reviewer
 * would not expect to mean a number. */
static int netrule__number(const char *s, unsigned max_digits, unsigned long *out)
{
	unsigned long v = 0;
	size_t n = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++, n++) {
		if (*s < '0' || *s > '9' || n >= max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*out = v;
	return 0;
}

static void netrule__mask(uint8_t addr[16], unsigned prefix_len)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = prefix_len > i * 8 ? prefix_len - i * 8 : 0;

		if (bits < 8)
			addr[i] &= (uint8_t)(0xff00u >> bits);
	}
}

static bool netrule__prefix_match(const uint8_t a[16], const uint8_t b[16], unsigned prefix_len)
{
	unsigned bytes = prefix_len / 8, bits = prefix_len % 8;

	if (memcmp(a, b, bytes))
		return false;
	if (!bits)
		return true;
	return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff00u >> bits)) == 0;
}

/* Suggests the same rule with the host bits cleared, in the form the user wrote. */
static void netrule__suggest(const struct bw_net_rule *r, unsigned user_prefix, bool bracket,
			     char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];
	char port[16] = "";

	if (r->is_v4)
		inet_ntop(AF_INET, r->addr + 12, a, sizeof(a));
	else
		inet_ntop(AF_INET6, r->addr, a, sizeof(a));
	if (r->port && r->port_hi != r->port)
		snprintf(port, sizeof(port), ":%u-%u", r->port, r->port_hi);
	else if (r->port)
		snprintf(port, sizeof(port), ":%u", r->port);
	if (bracket)
		snprintf(out, outlen, "[%s/%u]%s", a, user_prefix, port);
	else
		snprintf(out, outlen, "%s/%u%s", a, user_prefix, port);
}

/* "2001:db8::1:443" is a legal address, but whoever wrote it likely meant port 443 of
 * 2001:db8::1: an unbracketed IPv6 rule with "::" whose last group is decimal and whose
 * text without that group is an address too is refused, with both readings spelled out. */
static bool netrule__v6_ambiguous(const char *addr, char *base, size_t baselen,
				  const char **last)
{
	const char *colon = strrchr(addr, ':');
	uint8_t tmp[16];
	size_t n;

	if (!strstr(addr, "::") || !colon || !colon[1] || colon == addr || colon[-1] == ':')
		return false;
	for (const char *q = colon + 1; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	n = (size_t)(colon - addr);
	if (n >= baselen)
		return false;
	memcpy(base, addr, n);
	base[n] = '\0';
	*last = colon + 1;
	return inet_pton(AF_INET6, base, tmp) == 1;
}

/* "443" or "1000-2000": digits only, 1..65535, lo <= hi. */
static int netrule__ports(const char *text, const char *port, struct bw_net_rule *r, char *err,
			  size_t errlen)
{
	char lo_s[8], *dash = strchr(port, '-');
	unsigned long lo, hi;
	size_t n = dash ? (size_t)(dash - port) : strlen(port);

	if (n < sizeof(lo_s)) {
		memcpy(lo_s, port, n);
		lo_s[n] = '\0';
	}
	if (n >= sizeof(lo_s) || netrule__number(lo_s, 5, &lo) || lo > 65535 ||
	    (dash && (netrule__number(dash + 1, 5, &hi) || hi > 65535))) {
		snprintf(err, errlen, "bad port in '%s': must be 1..65535, a range 1000-2000 or a list 80,443", text);
		return -EINVAL;
	}
	if (!dash)
		hi = lo;
	if (lo == 0) {
		snprintf(err, errlen,
			 "bad port in '%s': port 0 is not allowed; omit the port to match any port",
			 text);
		return -EINVAL;
	}
	if (hi < lo) {
		snprintf(err, errlen, "bad port range in '%s': %lu is above %lu", text, lo, hi);
		return -EINVAL;
	}
	r->port = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;
}

int policy__parse_net_rule(const char *text, struct bw_net_rule *r, char *err, size_t errlen)
{
	char buf[NET_RULE_MAX + 1], fixed[NET_RULE_MAX + 8];
	char *addr, *pfx = NULL, *port = NULL, *p;
	bool v6 = false, bracket = false;
	unsigned long n, max_prefix, user_prefix;
	size_t len = strlen(text);
	uint8_t orig[16];

	memset(r, 0, sizeof(*r));
	if (len == 0) {
		snprintf(err, errlen, "empty network rule");
		return -EINVAL;
	}
	if (len > NET_RULE_MAX) {
		snprintf(err, errlen, "bad network rule '%.40s...': too long", text);
		return -EINVAL;
	}
	memcpy(buf, text, len + 1);

	if (buf[0] == '[') {
		/* [X::Y]:PORT, [X::Y/N]:PORT (documented form) or [X::Y]/N:PORT */
		char *close = strchr(buf, ']');
		char *rest;

		if (!close) {
			snprintf(err, errlen, "bad network rule '%s': missing ']'", text);
			return -EINVAL;
		}
		*close = '\0';
		addr = buf + 1;
		rest = close + 1;
		v6 = bracket = true;
		p = strchr(addr, '/');
		if (p) {
			*p = '\0';
			pfx = p + 1;
		}
		if (*rest == '/') {
			if (pfx) {
				snprintf(err, errlen, "bad network rule '%s': two prefix lengths",
					 text);
				return -EINVAL;
			}
			pfx = rest + 1;
			p = strchr(pfx, ':');
			if (p) {
				*p = '\0';
				port = p + 1;
			}
		} else if (*rest == ':') {
			port = rest + 1;
		} else if (*rest) {
			snprintf(err, errlen, "bad network rule '%s': unexpected text after ']'",
				 text);
			return -EINVAL;
		}
	} else {
		addr = buf;
		p = strchr(buf, ':');
		/* Any IPv6 address has two colons or more, an IPv4 rule at most one (the
		 * port); an unbracketed IPv6 rule therefore never carries a port. */
		v6 = p && strchr(p + 1, ':');
		if (!v6 && p) {
			*p = '\0';
			port = p + 1;
		}
		p = strchr(buf, '/');
		if (p) {
			*p = '\0';
			pfx = p + 1;
		}
	}

	if (v6 && !bracket && !pfx) {
		char base[NET_RULE_MAX + 1];
		const char *last;

		if (netrule__v6_ambiguous(addr, base, sizeof(base), &last)) {
			snprintf(err, errlen,
				 "ambiguous network rule '%s': it reads as the address %s (any port), but may mean port %s of %s; write '[%s]:%s' for the port, or '[%s]' for the address",
				 text, addr, last, base, base, last, addr);
			return -EINVAL;
		}
	}
	if (v6) {
		if (inet_pton(AF_INET6, addr, r->addr) != 1) {
			snprintf(err, errlen, "bad network rule '%s': '%s' is not an IPv6 address",
				 text, addr);
			return -EINVAL;
		}
		max_prefix = 128;
	} else {
		memcpy(r->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		if (inet_pton(AF_INET, addr, r->addr + 12) != 1) {
			snprintf(err, errlen, "bad network rule '%s': '%s' is not an IPv4 address",
				 text, addr);
			return -EINVAL;
		}
		r->is_v4 = true;
		max_prefix = 32;
	}

	user_prefix = max_prefix;
	if (pfx) {
		if (netrule__number(pfx, 3, &n) || n > max_prefix) {
			snprintf(err, errlen, "bad CIDR '%s': prefix length must be 0..%lu", text,
				 max_prefix);
			return -EINVAL;
		}
		user_prefix = n;
	}
	r->prefix_len = (unsigned)(r->is_v4 ? 96 + user_prefix : user_prefix);

	if (port && netrule__ports(text, port, r, err, errlen))
		return -EINVAL;

	memcpy(orig, r->addr, sizeof(orig));
	netrule__mask(r->addr, r->prefix_len);
	if (memcmp(orig, r->addr, sizeof(orig))) {
		netrule__suggest(r, (unsigned)user_prefix, bracket, fixed, sizeof(fixed));
		snprintf(err, errlen, "'%s' has host bits set; did you mean '%s'", text, fixed);
		return -EINVAL;
	}
	return 0;
}

/* Decides which of two matching rules wins: the longer prefix; on equal prefixes a
 * port-specific rule over an any-port one; then deny over allow. The kernel's tries
 * resolve ties the same way, so userspace and kernel verdicts never disagree. */
static bool netrule__beats(const struct bw_net_rule *a, bool a_deny, const struct bw_net_rule *b,
			   bool b_deny)
{
	if (a->prefix_len != b->prefix_len)
		return a->prefix_len > b->prefix_len;
	if ((a->port != 0) != (b->port != 0))
		return a->port != 0;
	return a_deny && !b_deny;
}

int policy__net_verdict(const struct bw_policy *policy, const uint8_t addr[16], uint16_t port,
			const char **rule)
{
	const struct bw_net_rule *best = NULL;
	bool best_deny = false;

	for (int deny = 0; deny < 2; deny++) {
		const struct bw_net_rule *rules = deny ? policy->net_deny : policy->net_allow;
		size_t n = deny ? policy->n_net_deny : policy->n_net_allow;

		for (size_t i = 0; i < n; i++) {
			const struct bw_net_rule *r = &rules[i];

			if (r->port && (port < r->port || port > (r->port_hi > r->port ? r->port_hi : r->port)))
				continue;
			if (!netrule__prefix_match(r->addr, addr, r->prefix_len))
				continue;
			if (!best || netrule__beats(r, deny, best, best_deny)) {
				best = r;
				best_deny = deny;
			}
		}
	}
	if (rule)
		*rule = best ? best->text : NULL;
	if (best)
		return best_deny ? 0 : 1;
	return policy->net_default_deny ? 0 : 1;
}
