// SPDX-License-Identifier: GPL-2.0
/* Chain verification: see verify.h. Not transport's chain__next: the HMAC key pads are
 * hashed once per connection, not per frame (cross-checked by test_collector_ingest). */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "collector/verify.h"

#define SHA256_BLOCK 64

void verify__free(struct verify *v)
{
	EVP_MD_CTX_free(v->inner);
	EVP_MD_CTX_free(v->outer);
	EVP_MD_CTX_free(v->work);
	memset(v, 0, sizeof(*v));
}

int verify__init(struct verify *v, const uint8_t *key, size_t keylen)
{
	uint8_t k[SHA256_BLOCK] = { 0 }, pad[SHA256_BLOCK];
	unsigned int n;
	int ok = 1;

	memset(v, 0, sizeof(*v));
	v->inner = EVP_MD_CTX_new();
	v->work = EVP_MD_CTX_new();
	if (!v->inner || !v->work)
		goto nomem;
	if (!EVP_DigestInit_ex(v->inner, EVP_sha256(), NULL))
		goto eio;
	if (!key || !keylen)
		return 0;

	/* HMAC (RFC 2104): a key longer than a block is hashed first. */
	v->keyed = true;
	v->outer = EVP_MD_CTX_new();
	if (!v->outer)
		goto nomem;
	if (keylen > SHA256_BLOCK) {
		ok = EVP_DigestInit_ex(v->work, EVP_sha256(), NULL) &&
		     EVP_DigestUpdate(v->work, key, keylen) &&
		     EVP_DigestFinal_ex(v->work, k, &n);
	} else {
		memcpy(k, key, keylen);
	}
	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && EVP_DigestUpdate(v->inner, pad, sizeof(pad));
	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex(v->outer, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(v->outer, pad, sizeof(pad));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	if (ok)
		return 0;
eio:
	verify__free(v);
	return -EIO;
nomem:
	verify__free(v);
	return -ENOMEM;
}

int verify__chain(struct verify *v, const uint8_t prev[32], uint64_t seq,
		  const uint8_t *event, size_t len, uint8_t out[32])
{
	uint8_t be[8], p[32], inner[32];
	unsigned int n = 0;
	int ok;

	memcpy(p, prev, 32); /* out may alias prev */
	for (int i = 7; i >= 0; i--, seq >>= 8)
		be[i] = (uint8_t)seq;
	ok = EVP_MD_CTX_copy_ex(v->work, v->inner) &&
	     EVP_DigestUpdate(v->work, p, sizeof(p)) &&
	     EVP_DigestUpdate(v->work, be, sizeof(be)) &&
	     (!len || EVP_DigestUpdate(v->work, event, len)) &&
	     EVP_DigestFinal_ex(v->work, inner, &n) && n == 32;
	if (ok && v->keyed)
		ok = EVP_MD_CTX_copy_ex(v->work, v->outer) &&
		     EVP_DigestUpdate(v->work, inner, sizeof(inner)) &&
		     EVP_DigestFinal_ex(v->work, inner, &n) && n == 32;
	if (!ok) {
		memset(out, 0, 32);
		return -EIO;
	}
	memcpy(out, inner, 32);
	return 0;
}

int verify__start(struct verify *v, const char *run_id, uint8_t out[32])
{
	/* the label as the protocol spells it, with its NUL (transport's CHAIN_INIT_LABEL:
	 * written out again here, so the cross-check test compares two implementations) */
	static const char label[] = "buildwarden chain v2";
	uint8_t inner[32];
	unsigned int n = 0;
	int ok;

	ok = EVP_MD_CTX_copy_ex(v->work, v->inner) &&
	     EVP_DigestUpdate(v->work, label, sizeof(label)) &&
	     (!*run_id || EVP_DigestUpdate(v->work, run_id, strlen(run_id))) &&
	     EVP_DigestFinal_ex(v->work, inner, &n) && n == 32;
	if (ok && v->keyed)
		ok = EVP_MD_CTX_copy_ex(v->work, v->outer) &&
		     EVP_DigestUpdate(v->work, inner, sizeof(inner)) &&
		     EVP_DigestFinal_ex(v->work, inner, &n) && n == 32;
	if (!ok) {
		memset(out, 0, 32);
		return -EIO;
	}
	memcpy(out, inner, 32);
	return 0;
}
