/* See dnsanswer.h. ldns owns the wire format; this file only walks what it read. */
#include "pipeline/dnsanswer.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

/* An owner or target name as lowercase text without the final dot; false when it does
 * not fit (it cannot then match any rule: those are at most 253 characters). */
static bool dns__name_text(const ldns_rdf *rdf, char out[DNS_NAME_TEXT_MAX])
{
	char *s;
	size_t n;

	if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return false;
	s = ldns_rdf2str(rdf);
	if (!s)
		return false;
	n = strlen(s);
	if (n && s[n - 1] == '.')
		n--;
	if (n >= DNS_NAME_TEXT_MAX) {
		free(s);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	free(s);
	return true;
}

static bool dns__owner_is(const ldns_rr *rr, const char *name)
{
	char owner[DNS_NAME_TEXT_MAX];

	return dns__name_text(ldns_rr_owner(rr), owner) && strcmp(owner, name) == 0;
}

/* The A/AAAA records owned by name, then the CNAME it points to, and so on. */
static void dns__collect(const ldns_rr_list *ans, struct dns_answer *out)
{
	char name[DNS_NAME_TEXT_MAX];
	uint32_t ttl = UINT32_MAX;
	size_t count = ldns_rr_list_rr_count(ans);

	memcpy(name, out->qname, sizeof(name));
	for (int depth = 0; depth <= DNS_CNAME_MAX_DEPTH; depth++) {
		const ldns_rr *cname = NULL;

		for (size_t i = 0; i < count; i++) {
			const ldns_rr *rr = ldns_rr_list_rr(ans, i);
			ldns_rr_type t = ldns_rr_get_type(rr);
			const ldns_rdf *rd;
			struct dns_addr *a;

			if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || !dns__owner_is(rr, name))
				continue;
			if (t == LDNS_RR_TYPE_CNAME) {
				if (!cname)
					cname = rr;
				continue;
			}
			if (t != LDNS_RR_TYPE_A && t != LDNS_RR_TYPE_AAAA)
				continue;
			rd = ldns_rr_rdf(rr, 0);
			if (!rd || ldns_rdf_size(rd) != (t == LDNS_RR_TYPE_A ? 4u : 16u))
				continue;
			if (out->n_addrs >= DNS_ANSWER_MAX_ADDRS) {
				out->cut = true;
				continue;
			}
			a = &out->addrs[out->n_addrs++];
			memset(a, 0, sizeof(*a));
			if (t == LDNS_RR_TYPE_A) {
				a->addr[10] = 0xff;
				a->addr[11] = 0xff;
				memcpy(a->addr + 12, ldns_rdf_data(rd), 4);
			} else {
				memcpy(a->addr, ldns_rdf_data(rd), 16);
				a->v6 = true;
			}
			a->ttl = ldns_rr_ttl(rr) < ttl ? ldns_rr_ttl(rr) : ttl;
		}
		if (!cname)
			return;
		if (ldns_rr_ttl(cname) < ttl)
			ttl = ldns_rr_ttl(cname);
		if (!dns__name_text(ldns_rr_rdf(cname, 0), name))
			return;
	}
	out->cut = true;
}

int dns_answer__parse(const uint8_t *wire, size_t len, struct dns_answer *out)
{
	ldns_pkt *pkt = NULL;
	const ldns_rr_list *q;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (len < LDNS_HEADER_SIZE || len > DNS_MSG_MAX)
		return -EINVAL;
	if (ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK)
		return -EINVAL;
	q = ldns_pkt_question(pkt);
	if (!ldns_pkt_qr(pkt) || !q || ldns_rr_list_rr_count(q) != 1)
		goto out;
	if (!dns__name_text(ldns_rr_owner(ldns_rr_list_rr(q, 0)), out->qname))
		goto out;
	out->id = ldns_pkt_id(pkt);
	out->qtype = (uint16_t)ldns_rr_get_type(ldns_rr_list_rr(q, 0));
	if (ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NOERROR && ldns_pkt_answer(pkt))
		dns__collect(ldns_pkt_answer(pkt), out);
	err = 0;
out:
	ldns_pkt_free(pkt);
	return err;
}

static int dns__read_query(const uint8_t *wire, size_t len, ldns_pkt **pkt)
{
	*pkt = NULL;
	if (len < LDNS_HEADER_SIZE || len > DNS_MSG_MAX)
		return -EINVAL;
	if (ldns_wire2pkt(pkt, wire, len) != LDNS_STATUS_OK)
		return -EINVAL;
	if (ldns_pkt_qr(*pkt) || !ldns_pkt_question(*pkt) ||
	    ldns_rr_list_rr_count(ldns_pkt_question(*pkt)) != 1) {
		ldns_pkt_free(*pkt);
		*pkt = NULL;
		return -EINVAL;
	}
	return 0;
}

int dns_answer__query(const uint8_t *wire, size_t len, uint16_t *id)
{
	ldns_pkt *pkt;
	int e = dns__read_query(wire, len, &pkt);

	if (e)
		return e;
	*id = ldns_pkt_id(pkt);
	ldns_pkt_free(pkt);
	return 0;
}

int dns_answer__servfail(const uint8_t *query, size_t len, uint8_t **out, size_t *outlen)
{
	ldns_pkt *pkt;
	int e = dns__read_query(query, len, &pkt);

	if (e)
		return e;
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_ra(pkt, true);
	ldns_pkt_set_rcode(pkt, LDNS_RCODE_SERVFAIL);
	/* a query's other sections (EDNS, say) are not echoed */
	ldns_rr_list_deep_free(ldns_pkt_additional(pkt));
	ldns_pkt_set_additional(pkt, ldns_rr_list_new());
	ldns_pkt_set_arcount(pkt, 0);
	if (ldns_pkt2wire(out, pkt, outlen) != LDNS_STATUS_OK)
		e = -ENOMEM;
	ldns_pkt_free(pkt);
	return e;
}
