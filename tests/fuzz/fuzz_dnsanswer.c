// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the bytes of a DNS message, as the agent's resolver gets them from
 * the build (a query) and from the upstream server (a reply). ldns reads the wire; what
 * is checked here is what our code makes of it: the name is a bounded, lowercase C
 * string (ldns's text: a '.' or a byte inside a label stays escaped, "a\\.b", so it
 * matches no rule, whose names are letters, digits, '-' and '.'), the addresses fit
 * their array, a SERVFAIL made for a query reads back as a reply to it with no address
 * (unless its name's text is too long to be read: then it is no reply we can name). The seeds (tests/fuzz/corpus/fuzz_dnsanswer) are
 * a query, an A reply, a CNAME chain with AAAA, and an NXDOMAIN. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/dnsanswer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_answer a, back;
	uint8_t *fail;
	size_t flen, n;
	uint16_t id;

	if (dns_answer__parse(data, size, &a) == 0) {
		n = strnlen(a.qname, sizeof(a.qname));
		if (n == sizeof(a.qname) || a.n_addrs > DNS_ANSWER_MAX_ADDRS)
			abort();
		for (size_t i = 0; i < n; i++)
			if (isupper((unsigned char)a.qname[i]))
				abort();
	}
	if (dns_answer__query(data, size, &id) == 0) {
		if (dns_answer__servfail(data, size, &fail, &flen) != 0)
			return 0;
		if (flen > DNS_MSG_MAX)
			abort();
		if (dns_answer__parse(fail, flen, &back) == 0 && (back.id != id || back.n_addrs != 0))
			abort();
		free(fail);
	}
	return 0;
}
