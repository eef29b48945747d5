/* The agent's policy from a file or the built-in default, with its diagnostics on
 * stderr, and the file's hash that RunStart carries. */
#ifndef BUILDWARDEN_AGENT_POLICY_LOAD_H
#define BUILDWARDEN_AGENT_POLICY_LOAD_H

#include "policy/policy.h"

/* path NULL: the built-in empty policy. 0, or -errno after printing why to stderr. */
int policy_load__file(const char *path, struct bw_policy **out);

/* Lowercase hex SHA-256 of the file's bytes; "" for NULL or an unreadable file. */
void policy_load__sha256(const char *path, char out[65]);

#endif /* BUILDWARDEN_AGENT_POLICY_LOAD_H */
