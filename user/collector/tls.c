// SPDX-License-Identifier: GPL-2.0
/* The collector's TLS: the server context (mutual TLS, agents' certificates from one CA)
 * and the non-blocking handshake that yields an agent's identity. See server_priv.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "collector/server_priv.h"

void tls__reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e) {
		snprintf(buf, len, "%s", errno ? strerror(errno) : "the peer closed the connection");
		return;
	}
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

static int tls__setup(SSL_CTX *ctx, const struct server_cfg *cfg, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names;
	char r[256];

	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				      SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
				      /* frames delimit themselves: a missing close_notify
				       * truncates nothing, it is an agent that went away */
				      SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read every TLS record that has arrived in one read(2), not a 5-byte header and
	 * then a body per 16 KiB record: half the syscalls on a busy connection. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 256 * 1024);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		tls__reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': not a usable certificate: %s", cfg->tls_cert, r);
		return SERVER_ERR_TLS_FILE;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls__reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': not the key of '%s': %s", cfg->tls_key, cfg->tls_cert, r);
		return SERVER_ERR_TLS_FILE;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
		tls__reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': no usable CA certificate: %s", cfg->tls_client_ca, r);
		return SERVER_ERR_TLS_FILE;
	}
	names = SSL_load_client_CA_file(cfg->tls_client_ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	/* Agents must present a certificate from --tls-client-ca, meant for client use. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	return 0;
}

int tls__ctx_new(const struct server_cfg *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	for (const char *const *f = (const char *const[]){ cfg->tls_cert, cfg->tls_key,
							   cfg->tls_client_ca, NULL };
	     *f; f++) {
		if (access(*f, R_OK) < 0) {
			snprintf(err, errlen, "cannot read '%s': %s", *f, strerror(errno));
			return SERVER_ERR_TLS_FILE;
		}
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		return SERVER_ERR_INTERNAL;
	}
	rc = tls__setup(ctx, cfg, err, errlen);
	if (rc) {
		SSL_CTX_free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

/* The subject CN of the verified client certificate: the agent's identity. A
 * certificate with no CN or with more than one is refused: either would make the
 * identity ambiguous. */
static bool tls__peer_cn(SSL *ssl, char *out, size_t len)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	const X509_NAME *nm;
	unsigned char *utf8 = NULL;
	int idx, n;

	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	nm = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, idx) >= 0)
		return false;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx)));
	if (n <= 0 || (size_t)n >= len || memchr(utf8, 0, (size_t)n)) {
		OPENSSL_free(utf8);
		return false;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = 0;
	OPENSSL_free(utf8);
	return true;
}

/* The certificate's DNS subjectAltNames, NUL-separated in out (each followed by its
 * NUL), as many whole names as fit; names holding a NUL or longer than BW_HOST_MAX are
 * skipped (they could never equal a valid Hello.host). Returns the bytes used. */
static size_t tls__peer_dns(SSL *ssl, char *out, size_t len)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *gens;
	size_t used = 0;

	if (!cert)
		return 0;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (!gens)
		return 0;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int n;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		n = ASN1_STRING_length(g->d.dNSName);
		if (n <= 0 || n > BW_HOST_MAX || memchr(d, 0, (size_t)n) ||
		    used + (size_t)n + 1 > len)
			continue;
		memcpy(out + used, d, (size_t)n);
		used += (size_t)n;
		out[used++] = 0;
	}
	GENERAL_NAMES_free(gens);
	return used;
}

int tls__accept(SSL *ssl, char *cn, size_t cnlen, char *dns, size_t dnslen, size_t *dns_used,
		char *why, size_t whylen)
{
	char r[256];
	int rc = SSL_accept(ssl), e;

	if (rc == 1) {
		if (!tls__peer_cn(ssl, cn, cnlen)) {
			snprintf(why, whylen, "refused: client certificate has no single usable CN");
			return -1;
		}
		*dns_used = tls__peer_dns(ssl, dns, dnslen);
		return 1;
	}
	e = SSL_get_error(ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	tls__reason(r, sizeof(r));
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		snprintf(why, whylen, "refused: TLS handshake failed: client certificate: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	else
		snprintf(why, whylen, "refused: TLS handshake failed: %s", r);
	return -1;
}
