/* A DNS reply, read with ldns (no wire parsing of our own): the name the build asked
 * for and the addresses the answer gives it, through the answer's CNAME chain. What the
 * agent's resolver (user/agent/resolver.c) needs to let those addresses through before
 * the build receives the reply. Pure: fuzzed (tests/fuzz/fuzz_dnsanswer.c). */
#ifndef BUILDWARDEN_PIPELINE_DNSANSWER_H
#define BUILDWARDEN_PIPELINE_DNSANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MSG_MAX 65535 /* a DNS message over TCP has a 16-bit length */
#define DNS_NAME_TEXT_MAX 256 /* 253 characters of a name, its final dot and a NUL */
#define DNS_ANSWER_MAX_ADDRS 64 /* more is never needed to reach a host; the rest is cut */
#define DNS_CNAME_MAX_DEPTH 8 /* a longer chain is not followed */

struct dns_addr {
	uint8_t addr[16]; /* IPv4 (an A record) as ::ffff:a.b.c.d */
	bool v6; /* an AAAA record */
	uint32_t ttl; /* the least TTL on the way from the question's name to this record */
};

struct dns_answer {
	uint16_t id;
	char qname[DNS_NAME_TEXT_MAX]; /* lowercase, without the final dot */
	uint16_t qtype;
	struct dns_addr addrs[DNS_ANSWER_MAX_ADDRS];
	size_t n_addrs;
	bool cut; /* more addresses than DNS_ANSWER_MAX_ADDRS (or too long a chain) */
};

/* Reads a reply (QR set, one question). 0 and *out, or -EINVAL for anything that is not
 * a well-formed reply of one question; a reply with an error rcode has no addresses. */
int dns_answer__parse(const uint8_t *wire, size_t len, struct dns_answer *out);

/* Reads a query's id and checks it is a query of one question: 0 or -EINVAL. */
int dns_answer__query(const uint8_t *wire, size_t len, uint16_t *id);

/* A SERVFAIL reply to query (when the upstream cannot be reached), in *out (malloc'd,
 * the caller frees). 0, or -EINVAL for a query that cannot be read, -ENOMEM. */
int dns_answer__servfail(const uint8_t *query, size_t len, uint8_t **out, size_t *outlen);

#endif
