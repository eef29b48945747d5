/* Loopback network fixtures for suites that drive builds by name: a DNS server (ldns,
 * a child process, one zone of loopback addresses), a small HTTP "registry" (a child
 * process serving GET on listeners the caller bound), and the build-side client steps
 * (look a name up at 127.0.0.1:53, which the agent redirects to its resolver; connect;
 * fetch). Nothing is ever sent to a non-loopback address: every address is checked. */
#ifndef BUILDWARDEN_LOOPNET_H
#define BUILDWARDEN_LOOPNET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Fills ss from a loopback address only (127/8, ::1, ::ffff:127/104); -1 for anything
 * else. */
int loopnet_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl);
/* A bound (and, for SOCK_STREAM, listening) non-blocking socket on addr; *port in/out:
 * 0 asks the kernel for one. The fd or -1. */
int loopnet_bind(const char *addr, int type, uint16_t *port);
/* The same on a port the kernel picks (*port out only), without SO_REUSEADDR: a
 * counting listener never shares its port with another test's socket. */
int loopnet_bind_any(const char *addr, int type, uint16_t *port);
/* How many connections reached a listener (the handshake completes in the kernel);
 * each is accepted and closed. */
unsigned loopnet_accepted(int lfd);
/* How many datagrams reached a UDP socket (each read). */
unsigned loopnet_received(int fd);

/* A suite's --bw-helper tcp|udp TAG ADDR PORT, in the build: one connect or one
 * datagram (an AF_INET6 socket for ::ffff: addresses), then "RESULT TAG ok" or "RESULT
 * TAG <errno name>" on stdout. 0, or 2 (not a loopback address) or 3 (no socket). */
int loopnet_helper_net(bool udp, const char *tag, const char *addr, const char *port);

/* The DNS server on 127.0.0.1 (UDP and TCP, one port into *port) answering from zone,
 * lines "NAME. TTL IN A|AAAA|CNAME DATA" (a CNAME followed one step, as a server gives
 * it), or "!NAME." for a name never answered; NULL-terminated, kept by reference
 * (static). Other names: NXDOMAIN. count_path (may be NULL): a file that holds the
 * number of queries so far. Its pid (tracked by bwtest), or -errno. */
pid_t loopnet_dns_start(const char *const *zone, const char *count_path, uint16_t *port);

/* The registry: serves "HTTP/1.0 200 OK" with body on every listener of lfds (n of
 * them) until killed. Its pid (tracked), or -errno. */
pid_t loopnet_http_start(const int *lfds, size_t n, const char *body);

/* Reads exactly len bytes (a DNS-over-TCP length prefix, then the message): 0, or -1 on
 * EOF or error. */
int loopnet_read_full(int fd, uint8_t *buf, size_t len);

/* Kills and reaps a fixture child. */
void loopnet_stop(pid_t pid);

/* Build side: looks name up (A) at 127.0.0.1:53 over UDP; the first address into addr.
 * NULL, or a short word saying what failed. */
const char *loopnet_resolve(const char *name, char *addr, size_t addrlen);
/* connect() to addr:port: "ok", "EPERM" or "error". */
const char *loopnet_connect(const char *addr, uint16_t port);
/* GET path from name:port (name looked up as above) into the file out: "ok", "EPERM",
 * or what failed. */
const char *loopnet_fetch(const char *name, uint16_t port, const char *path, const char *out);

#endif
