// SPDX-License-Identifier: GPL-2.0
/* Hash chain: see chain.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/fdio.h"
#include "transport/chain.h"

#define SHA256_BLOCK 64

static void chain__be64(uint64_t v, uint8_t out[8])
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* SHA-256 over up to four pieces; NULL pieces are skipped. */
static int chain__sha256(const void *a, size_t alen, const void *b, size_t blen,
			 const void *c, size_t clen, const void *d, size_t dlen,
			 uint8_t out[CHAIN_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     (!a || EVP_DigestUpdate(ctx, a, alen)) &&
	     (!b || EVP_DigestUpdate(ctx, b, blen)) &&
	     (!c || EVP_DigestUpdate(ctx, c, clen)) &&
	     (!d || EVP_DigestUpdate(ctx, d, dlen)) &&
	     EVP_DigestFinal_ex(ctx, out, &n) && n == CHAIN_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* HMAC (RFC 2104) spelled out over the digest: OpenSSL 3 deprecates HMAC_CTX and its
 * EVP_MAC needs a fetch per call or global state; two digests over a 64-byte pad are
 * all HMAC is. The test checks it against OpenSSL's own HMAC(). */
static int chain__hmac(const uint8_t *key, size_t keylen, const void *a, size_t alen,
		       const void *b, size_t blen, const void *c, size_t clen,
		       uint8_t out[CHAIN_LEN])
{
	uint8_t k[SHA256_BLOCK] = { 0 }, pad[SHA256_BLOCK], inner[CHAIN_LEN];
	int err;

	if (keylen > SHA256_BLOCK) {
		err = chain__sha256(key, keylen, NULL, 0, NULL, 0, NULL, 0, k);
		if (err)
			return err;
	} else {
		memcpy(k, key, keylen);
	}
	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	err = chain__sha256(pad, sizeof(pad), a, alen, b, blen, c, clen, inner);
	if (!err) {
		for (int i = 0; i < SHA256_BLOCK; i++)
			pad[i] = k[i] ^ 0x5c;
		err = chain__sha256(pad, sizeof(pad), inner, CHAIN_LEN, NULL, 0, NULL, 0, out);
	}
	memset(k, 0, sizeof(k));
	memset(pad, 0, sizeof(pad));
	return err;
}

int chain__next(const uint8_t prev[CHAIN_LEN], uint64_t seq, const uint8_t *event, size_t len,
		const uint8_t *key, size_t keylen, uint8_t out[CHAIN_LEN])
{
	uint8_t p[CHAIN_LEN], be[8], res[CHAIN_LEN];
	/* A zero-length event is legal protobuf (all defaults); keep the pointer valid. */
	const uint8_t *ev = event ? event : be;
	int err;

	memcpy(p, prev, CHAIN_LEN); /* out may alias prev */
	chain__be64(seq, be);
	if (keylen)
		err = chain__hmac(key, keylen, p, CHAIN_LEN, be, 8, ev, event ? len : 0, res);
	else
		err = chain__sha256(p, CHAIN_LEN, be, 8, ev, event ? len : 0, NULL, 0, res);
	if (err)
		memset(res, 0, sizeof(res));
	memcpy(out, res, CHAIN_LEN);
	return err;
}

int chain__init(const char *run_id, const uint8_t *key, size_t keylen, uint8_t out[CHAIN_LEN])
{
	static const char label[] = CHAIN_INIT_LABEL; /* with its NUL: label and id apart */
	size_t rl = strlen(run_id);
	int err;

	/* rl may be 0: chain__sha256 skips NULL pieces only, so pass a valid pointer */
	if (keylen)
		err = chain__hmac(key, keylen, label, sizeof(label), run_id, rl, NULL, 0, out);
	else
		err = chain__sha256(label, sizeof(label), run_id, rl, NULL, 0, NULL, 0, out);
	if (err)
		memset(out, 0, CHAIN_LEN);
	return err;
}

/* The agent's own key: a secret that whoever can read it can forge the chain with, so
 * only a regular file that the agent's user owns and nobody else may read or write. */
static int chain__check_private(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENXIO;
	if (st.st_uid != geteuid())
		return -EPERM;
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return -EACCES;
	return 0;
}

static int chain__read_key_flags(const char *path, int oflags, bool private_only,
				 uint8_t key[CHAIN_KEY_MAX])
{
	uint8_t extra;
	ssize_t n;
	size_t len = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | oflags);
	if (fd < 0)
		return -errno;
	if (private_only && (err = chain__check_private(fd)))
		goto out;
	n = fdio__read_full(fd, key, CHAIN_KEY_MAX);
	if (n < 0) {
		err = (int)n;
		goto out;
	}
	len = (size_t)n;
	if (len == CHAIN_KEY_MAX) {
		do
			n = read(fd, &extra, 1);
		while (n < 0 && errno == EINTR);
		if (n != 0) {
			err = n < 0 ? -errno : -EFBIG;
			goto out;
		}
	}
	if (!len)
		err = -EINVAL;
out:
	close(fd);
	if (err) {
		memset(key, 0, CHAIN_KEY_MAX);
		return err;
	}
	return (int)len;
}

int chain__read_key(const char *path, uint8_t key[CHAIN_KEY_MAX])
{
	/* O_NONBLOCK: a FIFO planted at the path fails the regular-file check instead of
	 * stalling the start; reads of a regular file ignore it. */
	return chain__read_key_flags(path, O_NONBLOCK | O_NOFOLLOW, true, key);
}

int chain__read_key_nowait(const char *path, uint8_t key[CHAIN_KEY_MAX])
{
	return chain__read_key_flags(path, O_NONBLOCK, false, key);
}

const char *chain__key_error(int rc)
{
	switch (rc) {
	case -EINVAL:
		return "empty";
	case -EFBIG:
		return "larger than 1024 bytes";
	case -ENXIO:
		return "not a regular file";
	case -ELOOP:
		return "a symbolic link: give the path it points to";
	case -EPERM:
		return "owned by another user: the key file must belong to the agent's user (root)";
	case -EACCES:
		return "group or others may read or write it: chmod 600 it (and make a new key, "
		       "the old one may have been read)";
	default:
		return strerror(rc < 0 ? -rc : rc);
	}
}
