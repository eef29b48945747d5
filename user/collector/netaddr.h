/* Socket addresses as text, both ways: the --listen flag in, peers in log lines out.
 * Pure: no resolver, no sockets, so the unit test can table every case. */
#ifndef BUILDWARDEN_COLLECTOR_NETADDR_H
#define BUILDWARDEN_COLLECTOR_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* "[" INET6_ADDRSTRLEN "]:" 5 digits and the NUL, rounded up */
#define NETADDR_TEXT_MAX 56

/* "1.2.3.4:PORT" or "[v6]:PORT", PORT 0..65535 (0: the kernel picks). Literals only, so
 * no resolver runs at start-up. Returns 0 with *ss and *sl filled, or -EINVAL. */
int netaddr__parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl);
/* The port of an AF_INET or AF_INET6 address, in host order; -1 for others. */
int netaddr__port(const struct sockaddr_storage *ss);
/* "1.2.3.4:PORT" or "[v6]:PORT" for an AF_INET or AF_INET6 address; "?" for others.
 * Returns buf. */
const char *netaddr__format(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif /* BUILDWARDEN_COLLECTOR_NETADDR_H */
