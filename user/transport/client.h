/* One connection from the agent to the collector: TCP (non-blocking, with timeouts),
 * TLS with mutual authentication, and varint-delimited framing in both directions
 * (docs/collector-protocol.md). No protocol state beyond the handshake: the sender
 * thread in sink_collector.c decides what to send.
 *
 * Not thread-safe: one thread (the sender) owns a struct client. Every wait polls a
 * stop descriptor too, so the owner can be told to give up at any point. */
#ifndef BUILDWARDEN_TRANSPORT_CLIENT_H
#define BUILDWARDEN_TRANSPORT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.pb-c.h"

/* Collector messages are tiny (Welcome, Ack, Refusal): anything bigger is refused. */
#define CLIENT_MSG_MAX (64u * 1024)

struct client_opts {
	const char *address; /* "host:port", "[v6addr]:port" */
	const char *tls_cert, *tls_key; /* client certificate chain and key (PEM) */
	const char *tls_ca;  /* CA bundle the collector's certificate must chain to */
	bool insecure;       /* plaintext TCP: testing only */
	unsigned connect_timeout_ms; /* TCP connect, and then the TLS handshake; 0 = 10 s */
};

struct client;

/* Checks the address and loads the TLS material, so a bad flag fails at start-up and
 * not at the first connect. NULL with a message in err. */
struct client *client__new(const struct client_opts *o, char *err, size_t errlen);

/* Connects (every address the name resolves to, in turn) and completes the TLS
 * handshake, verifying the collector's certificate and name. 0, -ECANCELED when
 * stop_fd became readable, or -errno with a message in err. */
int client__connect(struct client *c, int stop_fd, char *err, size_t errlen);

/* The socket, for poll(): POLLIN always, POLLOUT when client__want_pollout(). */
int client__fd(const struct client *c);
bool client__want_pollout(const struct client *c);

/* Appends bytes that are already framed (a spool record) / a message to be framed to
 * the output buffer. -ENOBUFS past the buffer's bound (the caller sends first). */
int client__queue(struct client *c, const uint8_t *frame, size_t n);
int client__queue_msg(struct client *c, const ProtobufCMessage *msg);
size_t client__pending(const struct client *c);

/* Writes what the socket takes without blocking. 0 (more may be pending) or -errno. */
int client__flush(struct client *c);

/* The next CollectorMessage: 1 with *out set (free with
 * buildwarden__v1__collector_message__free_unpacked), 0 if none has fully arrived yet,
 * -EPIPE when the collector closed, -EMSGSIZE / -EBADMSG for a bad frame, -errno. */
int client__recv(struct client *c, Buildwarden__V1__CollectorMessage **out);

/* Sends Hello and waits up to timeout_ms for the answer. 0 with *welcome set (free it),
 * -ECONNREFUSED for a Refusal (its reason in err), -ETIMEDOUT, -ECANCELED (stop_fd),
 * -EPROTO for any other message, -errno. */
int client__hello(struct client *c, const Buildwarden__V1__Hello *hello, int stop_fd,
		  unsigned timeout_ms, Buildwarden__V1__Welcome **welcome, char *err,
		  size_t errlen);

/* Closes the connection (the TLS context stays for the next one). */
void client__disconnect(struct client *c);
bool client__connected(const struct client *c);

void client__free(struct client *c);

#endif /* BUILDWARDEN_TRANSPORT_CLIENT_H */
