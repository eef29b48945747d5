/* The agent's policy from a file or the built-in default, with its diagnostics on
 * stderr, and the file's hash that RunStart carries. */
#ifndef BUILDWARDEN_AGENT_POLICY_LOAD_H
#define BUILDWARDEN_AGENT_POLICY_LOAD_H

#include <stddef.h>

#include "policy/policy.h"

/* path NULL: the built-in empty policy. 0, or -errno after printing why to stderr.
 * sha256 (may be NULL): the lowercase hex SHA-256 of the very bytes parsed, read once
 * (never the file opened again: it may have been replaced since); "" for the built-in. */
int policy_load__file(const char *path, struct bw_policy **out, char sha256[65]);

/* Lowercase hex SHA-256 of buf[0..len). */
void policy_load__sha256_bytes(const void *buf, size_t len, char out[65]);

#endif /* BUILDWARDEN_AGENT_POLICY_LOAD_H */
