/* The per-frame hash chain of the collector protocol (docs/collector-protocol.md):
 * chain(seq) = H(chain(prev) || be64(seq) || event_bytes), H = SHA-256, or HMAC-SHA256
 * keyed with the agent's key; chain(0) = chain__init(run_id). Pure functions, safe to call from any thread. */
#ifndef BUILDWARDEN_TRANSPORT_CHAIN_H
#define BUILDWARDEN_TRANSPORT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define CHAIN_LEN 32
/* A key file larger than this is refused: keys are secrets of a few dozen bytes, and
 * the bound keeps a mistaken path (a log file, /dev/zero) from being read whole. */
#define CHAIN_KEY_MAX 1024

/* What the first frame's chain starts from (protocol v2): H(CHAIN_INIT_LABEL || NUL ||
 * run_id), H as in chain__next (so keyed with the agent's key when there is one). It
 * binds a chain to its run, and a keyed chain to its agent as well: frames of one run,
 * replayed under another run id or by another agent, break at their first frame.
 * Returns 0 or -ENOMEM / -EIO (out zeroed). */
#define CHAIN_INIT_LABEL "buildwarden chain v2"
int chain__init(const char *run_id, const uint8_t *key, size_t keylen, uint8_t out[CHAIN_LEN]);

/* Computes the chain value of the event with this seq into out. keylen 0 = plain
 * SHA-256 (key ignored); otherwise HMAC-SHA256 with key[0..keylen). out may alias
 * prev. Returns 0, or -ENOMEM / -EIO when OpenSSL fails (out is zeroed then). */
int chain__next(const uint8_t prev[CHAIN_LEN], uint64_t seq, const uint8_t *event, size_t len,
		const uint8_t *key, size_t keylen, uint8_t out[CHAIN_LEN]);

/* Reads a chain key file: its bytes exactly as stored, nothing stripped, so that the
 * agent (--chain-key) and the collector (--agent-keys DIR/<agent>.key) can never
 * disagree on a trailing newline. Returns the key length (1..CHAIN_KEY_MAX) or -errno:
 * -EINVAL for an empty file, -EFBIG above CHAIN_KEY_MAX. This is the agent's reader:
 * the key is a secret (whoever reads it can forge the chain), so it also refuses a
 * symbolic link (-ELOOP), anything but a regular file (-ENXIO), a file another user
 * than the caller's effective one owns (-EPERM) and one that group or others may read
 * or write (-EACCES). */
int chain__read_key(const char *path, uint8_t key[CHAIN_KEY_MAX]);
/* What a negative return of the readers means, for an error message. */
const char *chain__key_error(int rc);
/* The same, opened O_NONBLOCK: a FIFO or device where a key file should be fails
 * (-EAGAIN, or -EINVAL as empty) instead of blocking. For callers that must not stall,
 * like the collector, which reads DIR/<agent>.key on its event loop. */
int chain__read_key_nowait(const char *path, uint8_t key[CHAIN_KEY_MAX]);

#endif /* BUILDWARDEN_TRANSPORT_CHAIN_H */
