/* Inside the agent part: the resolver's network side (resolver_net.c), apart from its
 * serving and allow-map bookkeeping (resolver.c). */
#ifndef BUILDWARDEN_AGENT_RESOLVER_INT_H
#define BUILDWARDEN_AGENT_RESOLVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The first usable nameserver of /etc/resolv.conf: 0, or -errno with err set. */
int resolver_net__system_upstream(struct sockaddr_storage *out, char *err, size_t errlen);
socklen_t resolver_net__sa_len(const struct sockaddr_storage *ss);
/* 127/8, ::1 or ::ffff:127/104 */
bool resolver_net__is_loopback(const struct sockaddr_storage *ss);

/* One query to upstream and its reply (the same id; up to DNS_MSG_MAX bytes) into reply:
 * the reply's length, or -errno (-ETIMEDOUT after RESOLVER_TIMEOUT_MS). */
ssize_t resolver_net__ask_udp(const struct sockaddr_storage *upstream, const uint8_t *q,
			      size_t len, uint16_t id, uint8_t *reply);
/* The same over TCP, on *up (connected first when -1; the caller closes it). */
ssize_t resolver_net__ask_tcp(const struct sockaddr_storage *upstream, int *up, const uint8_t *q,
			      size_t len, uint8_t *reply);

/* One TCP DNS message (a 16-bit length, then the message) before deadline (ms, CLOCK_MONOTONIC):
 * 0 or -errno; the received one's length (12..DNS_MSG_MAX) in buf, or -errno. */
int resolver_net__send_tcp(int fd, const uint8_t *msg, size_t len, int64_t deadline);
ssize_t resolver_net__recv_tcp(int fd, uint8_t *buf, int64_t deadline);

#endif
