/* Unit tests of the DNS reply reader (user/pipeline/dnsanswer.c): messages built with
 * ldns, as a server would send them; what the resolver lets through is what these
 * tests say the reader returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "pipeline/dnsanswer.h"

/* A reply to a query for qname/qtype with the records rrs (zone-file lines). */
static uint8_t *reply(const char *qname, ldns_rr_type qtype, ldns_pkt_rcode rcode,
		      const char *const *rrs, size_t n, size_t *len)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;

	assert_int_equal(ldns_pkt_query_new_frm_str(&pkt, qname, qtype, LDNS_RR_CLASS_IN, LDNS_RD),
			 LDNS_STATUS_OK);
	ldns_pkt_set_id(pkt, 4242);
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_rcode(pkt, rcode);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = NULL;

		assert_int_equal(ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
	}
	assert_int_equal(ldns_pkt2wire(&wire, pkt, len), LDNS_STATUS_OK);
	ldns_pkt_free(pkt);
	return wire;
}

static void assert_v4(const struct dns_addr *a, const char *want, uint32_t ttl)
{
	char got[INET_ADDRSTRLEN];

	assert_false(a->v6);
	assert_non_null(inet_ntop(AF_INET, a->addr + 12, got, sizeof(got)));
	assert_string_equal(got, want);
	assert_int_equal(a->addr[10], 0xff);
	assert_int_equal(a->addr[11], 0xff);
	assert_int_equal(a->ttl, ttl);
}

static void test_dnsanswer__a_records(void **state)
{
	static const char *const rrs[] = { "GitHub.com. 60 IN A 140.82.121.3",
					   "github.com. 30 IN A 140.82.121.4",
					   "other.com. 60 IN A 1.2.3.4" /* not the question's */ };
	struct dns_answer a;
	size_t len;
	uint8_t *w = reply("GITHUB.com.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, rrs, 3, &len);

	(void)state;
	assert_int_equal(dns_answer__parse(w, len, &a), 0);
	assert_string_equal(a.qname, "github.com");
	assert_int_equal(a.id, 4242);
	assert_int_equal(a.qtype, LDNS_RR_TYPE_A);
	assert_int_equal(a.n_addrs, 2);
	assert_v4(&a.addrs[0], "140.82.121.3", 60);
	assert_v4(&a.addrs[1], "140.82.121.4", 30);
	assert_false(a.cut);
	free(w);
}

static void test_dnsanswer__cname_chain(void **state)
{
	/* the least TTL on the way counts: the alias may change before the address does */
	static const char *const rrs[] = { "raw.example.com. 20 IN CNAME cdn.example.net.",
					   "cdn.example.net. 300 IN CNAME edge.example.org.",
					   "edge.example.org. 600 IN A 10.1.2.3",
					   "edge.example.org. 600 IN AAAA 2001:db8::1" };
	struct dns_answer a;
	size_t len;
	uint8_t *w = reply("raw.example.com.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, rrs, 4, &len);
	char six[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(dns_answer__parse(w, len, &a), 0);
	assert_string_equal(a.qname, "raw.example.com");
	assert_int_equal(a.n_addrs, 2);
	assert_v4(&a.addrs[0], "10.1.2.3", 20);
	assert_true(a.addrs[1].v6);
	inet_ntop(AF_INET6, a.addrs[1].addr, six, sizeof(six));
	assert_string_equal(six, "2001:db8::1");
	assert_int_equal(a.addrs[1].ttl, 20);
	free(w);
}

static void test_dnsanswer__cname_loop_is_cut(void **state)
{
	static const char *const rrs[] = { "a.test. 60 IN CNAME b.test.", "b.test. 60 IN CNAME a.test." };
	struct dns_answer a;
	size_t len;
	uint8_t *w = reply("a.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, rrs, 2, &len);

	(void)state;
	assert_int_equal(dns_answer__parse(w, len, &a), 0);
	assert_int_equal(a.n_addrs, 0);
	assert_true(a.cut);
	free(w);
}

static void test_dnsanswer__many_addresses_cut(void **state)
{
	char lines[80][64];
	const char *rrs[80];
	struct dns_answer a;
	size_t len;
	uint8_t *w;

	(void)state;
	for (int i = 0; i < 80; i++) {
		snprintf(lines[i], sizeof(lines[i]), "many.test. 60 IN A 10.0.0.%d", i + 1);
		rrs[i] = lines[i];
	}
	w = reply("many.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, rrs, 80, &len);
	assert_int_equal(dns_answer__parse(w, len, &a), 0);
	assert_int_equal(a.n_addrs, DNS_ANSWER_MAX_ADDRS);
	assert_true(a.cut);
	free(w);
}

static void test_dnsanswer__errors_give_nothing(void **state)
{
	static const char *const rrs[] = { "x.test. 60 IN A 10.0.0.1" };
	struct dns_answer a;
	size_t len;
	uint8_t *w = reply("x.test.", LDNS_RR_TYPE_A, LDNS_RCODE_SERVFAIL, rrs, 1, &len);

	(void)state;
	assert_int_equal(dns_answer__parse(w, len, &a), 0);
	assert_int_equal(a.n_addrs, 0);
	/* a query is not a reply; a message cut short is not a message */
	w[2] &= 0x7f;
	assert_int_equal(dns_answer__parse(w, len, &a), -EINVAL);
	w[2] |= 0x80;
	assert_int_equal(dns_answer__parse(w, len - 3, &a), -EINVAL);
	assert_int_equal(dns_answer__parse(w, 5, &a), -EINVAL);
	assert_int_equal(dns_answer__parse(w, DNS_MSG_MAX + 1, &a), -EINVAL);
	free(w);
}

static void test_dnsanswer__query_and_servfail(void **state)
{
	ldns_pkt *q = NULL, *r = NULL;
	uint8_t *w, *fail;
	size_t len, flen;
	uint16_t id = 0;
	struct dns_answer a;

	(void)state;
	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "ok.test.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
						    LDNS_RD), LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 777);
	assert_int_equal(ldns_pkt2wire(&w, q, &len), LDNS_STATUS_OK);
	assert_int_equal(dns_answer__query(w, len, &id), 0);
	assert_int_equal(id, 777);
	assert_int_equal(dns_answer__servfail(w, len, &fail, &flen), 0);
	assert_int_equal(ldns_wire2pkt(&r, fail, flen), LDNS_STATUS_OK);
	assert_true(ldns_pkt_qr(r));
	assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_SERVFAIL);
	assert_int_equal(ldns_pkt_id(r), 777);
	assert_int_equal(dns_answer__parse(fail, flen, &a), 0);
	assert_string_equal(a.qname, "ok.test");
	assert_int_equal(a.n_addrs, 0);
	/* a reply is not a query */
	assert_int_equal(dns_answer__query(fail, flen, &id), -EINVAL);
	free(fail);
	free(w);
	ldns_pkt_free(q);
	ldns_pkt_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dnsanswer__a_records),
		cmocka_unit_test(test_dnsanswer__cname_chain),
		cmocka_unit_test(test_dnsanswer__cname_loop_is_cut),
		cmocka_unit_test(test_dnsanswer__many_addresses_cut),
		cmocka_unit_test(test_dnsanswer__errors_give_nothing),
		cmocka_unit_test(test_dnsanswer__query_and_servfail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
