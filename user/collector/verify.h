/* The collector's own implementation of the protocol's hash chain
 * (docs/collector-protocol.md): chain(seq) = H(chain(prev) || be64(seq) || event), H =
 * SHA-256, or HMAC-SHA256 with the agent's key; chain(0) = H(label NUL run_id). Written independently of the agent's
 * transport/chain.c so that tests cross-check the two. The digest states of the key pads
 * are computed once per connection: a frame costs two SHA-256 passes over its bytes plus
 * two context copies, no key schedule and no allocation. */
#ifndef BUILDWARDEN_COLLECTOR_VERIFY_H
#define BUILDWARDEN_COLLECTOR_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct verify {
	EVP_MD_CTX *inner;  /* SHA-256 state, with the HMAC ipad absorbed when keyed */
	EVP_MD_CTX *outer;  /* keyed only: state with the opad absorbed */
	EVP_MD_CTX *work;
	bool keyed;
};

/* key NULL / keylen 0: plain SHA-256. Returns 0 or -ENOMEM/-EIO. */
int verify__init(struct verify *v, const uint8_t *key, size_t keylen);
void verify__free(struct verify *v);
/* out = the chain value a run starts from (protocol v2): H("buildwarden chain v2" NUL
 * run_id), keyed like the frames. 0 or -EIO. */
int verify__start(struct verify *v, const char *run_id, uint8_t out[32]);
/* out = chain value of (prev, seq, event). out may alias prev. 0 or -EIO. */
int verify__chain(struct verify *v, const uint8_t prev[32], uint64_t seq,
		  const uint8_t *event, size_t len, uint8_t out[32]);

#endif /* BUILDWARDEN_COLLECTOR_VERIFY_H */
