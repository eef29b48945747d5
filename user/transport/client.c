// SPDX-License-Identifier: GPL-2.0
/* Collector connection: see client.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/clock.h"
#include "base/grow.h"
#include "transport/client.h"
#include "transport/frame.h"

/* The output buffer holds at most this much beyond one frame: the spool is the queue,
 * the buffer only smooths the hand-over to the socket. */
#define CLIENT_OUT_MAX (1u << 20)
/* A collector that holds unacknowledged data this long without a sign of life is
 * treated as gone (TCP_USER_TIMEOUT): a dead peer is noticed even when the kernel's
 * retransmission would go on for many minutes. */
#define CLIENT_USER_TIMEOUT_MS 30000

struct client {
	char host[256];
	char port[8];
	bool host_is_ip;
	bool insecure;
	unsigned timeout_ms;
	SSL_CTX *ctx;

	int fd;
	SSL *ssl;
	bool want_pollout; /* the last SSL/TCP call needs the socket writable */

	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint8_t *in;
	size_t in_len, in_cap;
};

/* The first OpenSSL error, for a message; the queue is emptied. */
static const char *client__ssl_err(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return "no detail";
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static int client__parse_address(struct client *c, const char *addr, char *err, size_t errlen)
{
	const char *colon, *host = addr;
	size_t hlen;
	char *end;
	long port;

	if (!addr || !*addr)
		goto bad;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		host = addr + 1;
		hlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			goto bad; /* a bare IPv6 address needs brackets */
		hlen = (size_t)(colon - addr);
	}
	if (hlen == 0 || hlen >= sizeof(c->host))
		goto bad;
	memcpy(c->host, host, hlen);
	c->host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		goto bad;
	snprintf(c->port, sizeof(c->port), "%ld", port);
	{
		struct in6_addr a6;

		c->host_is_ip = inet_pton(AF_INET, c->host, &a6) == 1 ||
				inet_pton(AF_INET6, c->host, &a6) == 1;
	}
	return 0;
bad:
	snprintf(err, errlen, "collector address '%s': expected host:port or [ipv6]:port",
		 addr ? addr : "");
	return -EINVAL;
}

struct client *client__new(const struct client_opts *o, char *err, size_t errlen)
{
	struct client *c = calloc(1, sizeof(*c));
	char ebuf[256];

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->insecure = o->insecure;
	c->timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
	if (client__parse_address(c, o->address, err, errlen))
		goto fail;
	if (c->insecure)
		return c;

	if (!o->tls_ca || !o->tls_cert || !o->tls_key) {
		snprintf(err, errlen, "collector: TLS needs a CA, a client certificate and its key "
				      "(or --insecure for plaintext testing)");
		goto fail;
	}
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx) {
		snprintf(err, errlen, "collector: TLS context: %s", client__ssl_err(ebuf, sizeof(ebuf)));
		goto fail;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(c->ctx, o->tls_ca, NULL) != 1) {
		snprintf(err, errlen, "collector: cannot load CA '%s': %s", o->tls_ca,
			 client__ssl_err(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(c->ctx, o->tls_cert) != 1) {
		snprintf(err, errlen, "collector: cannot load certificate '%s': %s", o->tls_cert,
			 client__ssl_err(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c->ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c->ctx) != 1) {
		snprintf(err, errlen, "collector: cannot load key '%s' for '%s': %s", o->tls_key,
			 o->tls_cert, client__ssl_err(ebuf, sizeof(ebuf)));
		goto fail;
	}
	return c;
fail:
	client__free(c);
	return NULL;
}

/* Waits for events on fd, or stop_fd readable, until deadline (ms, monotonic).
 * 0 ready, -ECANCELED, -ETIMEDOUT. */
static int client__wait(int fd, short events, int stop_fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = events },
			{ .fd = stop_fd, .events = POLLIN },
		};
		uint64_t now = (uint64_t)clock__mono_ms();
		int n;

		if (now >= deadline)
			return -ETIMEDOUT;
		n = poll(p, stop_fd >= 0 ? 2 : 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (stop_fd >= 0 && p[1].revents)
			return -ECANCELED;
		if (p[0].revents)
			return 0;
	}
}

static int client__tcp(struct client *c, const struct addrinfo *ai, int stop_fd,
		       uint64_t deadline)
{
	int fd, one = 1, soerr = 0, err;
	unsigned ut = CLIENT_USER_TIMEOUT_MS;
	socklen_t sl = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	/* frames are small and acks are awaited: no Nagle delay */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			return err;
		}
		err = client__wait(fd, POLLOUT, stop_fd, deadline);
		if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			err = -errno;
		if (!err && soerr)
			err = -soerr;
		if (err) {
			close(fd);
			return err;
		}
	}
	return fd;
}

static int client__tls(struct client *c, int stop_fd, uint64_t deadline, char *err,
		       size_t errlen)
{
	char ebuf[256];
	int rc;

	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(err, errlen, "TLS: %s", client__ssl_err(ebuf, sizeof(ebuf)));
		return -ENOMEM;
	}
	/* The certificate must name what we dialled: an IP literal is checked against
	 * the certificate's IP SANs, a name against its DNS names (and sent as SNI). */
	if (c->host_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1) {
			snprintf(err, errlen, "TLS: cannot verify IP '%s'", c->host);
			return -EINVAL;
		}
	} else if (SSL_set1_host(c->ssl, c->host) != 1 ||
		   SSL_set_tlsext_host_name(c->ssl, c->host) != 1) {
		snprintf(err, errlen, "TLS: cannot verify host '%s'", c->host);
		return -EINVAL;
	}
	for (;;) {
		int w;

		ERR_clear_error();
		rc = SSL_connect(c->ssl);
		if (rc == 1)
			return 0;
		switch (SSL_get_error(c->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			w = client__wait(c->fd, POLLIN, stop_fd, deadline);
			break;
		case SSL_ERROR_WANT_WRITE:
			w = client__wait(c->fd, POLLOUT, stop_fd, deadline);
			break;
		default: {
			long v = SSL_get_verify_result(c->ssl);

			if (v != X509_V_OK)
				snprintf(err, errlen, "TLS handshake: certificate of %s: %s", c->host,
					 X509_verify_cert_error_string(v));
			else
				snprintf(err, errlen, "TLS handshake: %s",
					 client__ssl_err(ebuf, sizeof(ebuf)));
			return -EPROTO;
		}
		}
		if (w) {
			snprintf(err, errlen, "TLS handshake: %s",
				 w == -ETIMEDOUT ? "timed out" : strerror(-w));
			return w;
		}
	}
}

int client__connect(struct client *c, int stop_fd, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL, *ai;
	uint64_t deadline;
	int rc, last = -EHOSTUNREACH;

	client__disconnect(c);
	/* getaddrinfo blocks; a name that takes long to resolve delays only this thread */
	rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", c->host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	deadline = (uint64_t)clock__mono_ms() + c->timeout_ms;
	for (ai = res; ai; ai = ai->ai_next) {
		rc = client__tcp(c, ai, stop_fd, deadline);
		if (rc >= 0) {
			c->fd = rc;
			break;
		}
		last = rc;
		if (rc == -ECANCELED || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", c->host, c->port,
			 last == -ETIMEDOUT ? "timed out" : strerror(-last));
		return last;
	}
	if (!c->insecure) {
		/* the handshake gets a fresh budget: a slow connect must not starve it */
		rc = client__tls(c, stop_fd, (uint64_t)clock__mono_ms() + c->timeout_ms, err, errlen);
		if (rc) {
			client__disconnect(c);
			return rc;
		}
	}
	return 0;
}

int client__fd(const struct client *c)
{
	return c->fd;
}

bool client__want_pollout(const struct client *c)
{
	return c->want_pollout || c->out_len > c->out_off;
}

bool client__connected(const struct client *c)
{
	return c->fd >= 0;
}

size_t client__pending(const struct client *c)
{
	return c->out_len - c->out_off;
}

static int client__reserve(struct client *c, size_t n)
{
	size_t need;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len - c->out_off + n > CLIENT_OUT_MAX + BW_FRAME_MAX + FRAME_VARINT_MAX)
		return -ENOBUFS;
	if (c->out_off && c->out_len + n > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	need = c->out_len + n;
	return grow__reserve((void **)&c->out, &c->out_cap, need, 1, 65536, 0);
}

int client__queue(struct client *c, const uint8_t *frame, size_t n)
{
	int err = client__reserve(c, n);

	if (err)
		return err;
	memcpy(c->out + c->out_len, frame, n);
	c->out_len += n;
	return 0;
}

int client__queue_msg(struct client *c, const ProtobufCMessage *msg)
{
	size_t size = protobuf_c_message_get_packed_size(msg), k;
	int err = client__reserve(c, FRAME_VARINT_MAX + size);

	if (err)
		return err;
	k = frame__encode_len(size, c->out + c->out_len);
	protobuf_c_message_pack(msg, c->out + c->out_len + k);
	c->out_len += k + size;
	return 0;
}

/* A write to a socket the peer closed raises SIGPIPE, which would kill the agent.
 * Plaintext uses MSG_NOSIGNAL; OpenSSL's socket BIO writes with write(2), so around
 * it SIGPIPE is blocked in this thread and a pending one consumed. */
static ssize_t client__ssl_write(struct client *c, const uint8_t *p, size_t n, int *sslerr)
{
	sigset_t pipe, old;
	struct timespec zero = { 0, 0 };
	int rc;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	ERR_clear_error();
	rc = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	*sslerr = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
	if (*sslerr == SSL_ERROR_SYSCALL || *sslerr == SSL_ERROR_SSL)
		while (sigtimedwait(&pipe, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int client__flush(struct client *c)
{
	if (c->fd < 0)
		return -ENOTCONN;
	c->want_pollout = false;
	while (c->out_off < c->out_len) {
		size_t n = c->out_len - c->out_off;
		ssize_t w;

		if (c->ssl) {
			int e;

			w = client__ssl_write(c, c->out + c->out_off, n, &e);
			if (w <= 0) {
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					c->want_pollout = e == SSL_ERROR_WANT_WRITE;
					return 0;
				}
				return -EPIPE;
			}
		} else {
			w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				c->want_pollout = true;
				return 0;
			}
			if (w < 0)
				return -errno;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Reads what has arrived into the input buffer. 0, or -EAGAIN when nothing more is
 * there now, -EPIPE at end of stream, -errno. */
static int client__fill(struct client *c)
{
	ssize_t r;

	if (c->in_len == c->in_cap) {
		int e = grow__reserve((void **)&c->in, &c->in_cap, c->in_len + 1, 1, 4096,
				      CLIENT_MSG_MAX + FRAME_VARINT_MAX);

		if (e)
			return e == -EOVERFLOW ? -EMSGSIZE : e;
	}
	if (c->ssl) {
		int rc, e;

		ERR_clear_error();
		rc = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
		if (rc > 0) {
			c->in_len += (size_t)rc;
			return 0;
		}
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			return -EAGAIN;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->want_pollout = true;
			return -EAGAIN;
		}
		return e == SSL_ERROR_ZERO_RETURN ? -EPIPE : -ECONNRESET;
	}
	do
		r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (r == 0)
		return -EPIPE;
	c->in_len += (size_t)r;
	return 0;
}

int client__recv(struct client *c, Buildwarden__V1__CollectorMessage **out)
{
	if (c->fd < 0)
		return -ENOTCONN;
	for (;;) {
		const uint8_t *payload;
		size_t off = 0, plen;
		int rc = frame__next(c->in, c->in_len, &off, CLIENT_MSG_MAX, &payload, &plen);

		if (rc == 1) {
			*out = buildwarden__v1__collector_message__unpack(NULL, plen, payload);
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
			return *out ? 1 : -EBADMSG;
		}
		if (rc == FRAME_ETOOBIG)
			return -EMSGSIZE;
		if (rc == FRAME_EVARINT)
			return -EBADMSG;
		rc = client__fill(c);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
	}
}

int client__hello(struct client *c, const Buildwarden__V1__Hello *hello, int stop_fd,
		  unsigned timeout_ms, Buildwarden__V1__Welcome **welcome, char *err,
		  size_t errlen)
{
	Buildwarden__V1__AgentMessage am = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	uint64_t deadline = (uint64_t)clock__mono_ms() + timeout_ms;
	int rc;

	*welcome = NULL;
	am.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	am.hello = (Buildwarden__V1__Hello *)hello;
	rc = client__queue_msg(c, &am.base);
	if (rc)
		return rc;
	for (;;) {
		Buildwarden__V1__CollectorMessage *m = NULL;

		rc = client__flush(c);
		if (!rc)
			rc = client__recv(c, &m);
		if (rc < 0) {
			snprintf(err, errlen, "handshake: %s",
				 rc == -EPIPE ? "collector closed the connection" : strerror(-rc));
			return rc;
		}
		if (rc == 1) {
			switch (m->msg_case) {
			case BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME:
				*welcome = m->welcome;
				m->welcome = NULL; /* detach it from the envelope */
				m->msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG__NOT_SET;
				buildwarden__v1__collector_message__free_unpacked(m, NULL);
				return 0;
			case BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL:
				snprintf(err, errlen, "collector refused: %.200s",
					 m->refusal->reason ? m->refusal->reason : "");
				rc = -ECONNREFUSED;
				break;
			default:
				snprintf(err, errlen, "handshake: expected Welcome, got message %d",
					 (int)m->msg_case);
				rc = -EPROTO;
				break;
			}
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
			return rc;
		}
		rc = client__wait(c->fd, POLLIN | (client__want_pollout(c) ? POLLOUT : 0), stop_fd,
				  deadline);
		if (rc) {
			snprintf(err, errlen, "handshake: %s",
				 rc == -ETIMEDOUT ? "no Welcome in time" : strerror(-rc));
			return rc;
		}
	}
}

void client__disconnect(struct client *c)
{
	if (c->ssl) {
		/* no close_notify round trip: the peer learns from the TCP close */
		SSL_set_quiet_shutdown(c->ssl, 1);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->want_pollout = false;
	c->out_len = c->out_off = 0;
	c->in_len = 0;
}

void client__free(struct client *c)
{
	if (!c)
		return;
	client__disconnect(c);
	SSL_CTX_free(c->ctx);
	free(c->out);
	free(c->in);
	free(c);
}
