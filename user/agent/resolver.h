/* Network rules by name (docs/policy.md): the build's DNS, redirected by the kernel
 * (bpf/net.bpf.c) to this resolver on loopback, is sent on to the upstream server; for
 * an answer to a name an allow rule matches, the answered addresses go into the kernel's
 * allow map (dns_allow) for the answer's TTL BEFORE the build gets the answer. Every
 * answered address is remembered with its name, so a connect event names the host the
 * build looked up (ConnectBody.name), allowed or not. One thread of its own: a slow
 * upstream holds back the build's lookups, never the agent's loop. */
#ifndef BUILDWARDEN_AGENT_RESOLVER_H
#define BUILDWARDEN_AGENT_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/policy.h"

struct sensor;
struct resolver;

/* An answer's addresses stay allowed at least this long (a TTL of 0 would let no connect
 * through) and at most this long (a day: a long TTL must not mean a run-long allow). */
#define RESOLVER_MIN_TTL_S 1
#define RESOLVER_MAX_TTL_S 86400
/* How long one query may wait for the upstream, and a TCP client for its next message. */
#define RESOLVER_TIMEOUT_MS 3000

/* "ADDR[:PORT]": an IPv4 address, a bare IPv6 one, or "[IPv6]:PORT"; PORT 53 if none.
 * 0 and *out (if not NULL), or -EINVAL with the reason in err. */
int resolver__parse_upstream(const char *text, struct sockaddr_storage *out, char *err,
			     size_t errlen);

/* Binds the resolver on 127.0.0.1 and ::1 (UDP and TCP, ports the kernel picks), starts
 * its thread and points the kernel's redirect at it. upstream NULL: the first nameserver
 * of /etc/resolv.conf. 0, or -errno with the reason in err (nothing left running). */
int resolver__start(struct sensor *s, const struct bw_policy *p, const char *upstream,
		    struct resolver **out, char *err, size_t errlen);

/* A reload: p's name rules replace the old ones, and every address let through under
 * the old ones is taken back (the build looks its names up again). 0 or -ENOMEM (then the
 * old rules stay). */
int resolver__set_policy(struct resolver *r, const struct bw_policy *p);

/* The name the resolver last answered addr (v4-mapped for IPv4) for, before before_ns
 * (CLOCK_MONOTONIC: a record's ktime), into out: true if there is one. r NULL: false.
 * Safe from any thread. */
bool resolver__name_of(struct resolver *r, const uint8_t addr[16], int64_t before_ns, char *out,
		       size_t outlen);

/* Stops the thread, takes back every address it let through, turns the redirect off
 * and frees r; says on stderr what went wrong while it ran (queries the upstream did not
 * answer, answers whose addresses found no room in the kernel's map: their connects were
 * refused, the safe side). NULL: no-op. */
void resolver__stop(struct resolver *r);

#endif
