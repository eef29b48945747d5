// SPDX-License-Identifier: GPL-2.0
/* Event loop, TLS and the writer thread: see server.h.
 *
 * Connections are edge-triggered. A connection that may have more to read sits on the
 * ready queue; each pass of the loop serves every ready connection once, up to
 * CONN_READ_BUDGET bytes, so one agent flooding at line rate cannot starve the others.
 * When the batch being filled is full and the writer is still committing the previous
 * one, the loop stops reading altogether: TCP flow control then slows the agents down,
 * and their spools absorb the difference. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "collector/ingest.h"
#include "collector/server.h"
#include "collector/store.h"
#include "transport/frame.h"

#define CONN_READ_BUDGET (256u * 1024)
#define CONN_RBUF_MIN (64u * 1024)
#define CLOSE_LINGER_NS (1000000000ll)
#define SWEEP_NS (500000000ll)
#define EX_USAGE 64
#define EX_NOINPUT 66
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73

enum conn_state { CS_TLS, CS_OPEN, CS_CLOSING };

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state st;
	char peer[INET6_ADDRSTRLEN + 8];
	int64_t deadline;          /* handshake end (CS_TLS, Hello) or linger end (CS_CLOSING) */
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct ingest_conn ic;
	bool dead;                 /* close at the end of this loop pass */
	bool stalled;              /* whole frames wait: batch full or Welcome pending */
	bool shut;                 /* CS_CLOSING: our side is shut down */
	bool logged;
	struct conn *next, *prev;  /* s->conns */
	struct conn *rq_next, *rq_prev;
	bool in_rq;
};

struct writer {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *job, *done;
	bool busy, quit, ok, started;
	char err[256];
	int efd;
	struct store *st;
};

struct server {
	struct server_cfg cfg;
	FILE *log;
	SSL_CTX *tls;
	int lfd, ep, stop_fd;
	int port;
	bool accept_paused;
	int64_t accept_resume;
	struct store *wstore, *rstore;
	struct ingest *ig;
	struct writer w;
	struct conn *conns;
	unsigned nconns;
	struct conn *rq_head, *rq_tail;
	int64_t hs_ns, commit_ns, last_sweep;
	bool stopping;
	/* epoll tags for the non-connection fds */
	char tag_listen, tag_stop, tag_writer;
};

static int64_t server__mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((format(printf, 2, 3))) static void server__log(struct server *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	flockfile(s->log);
	fputs("collector: ", s->log);
	vfprintf(s->log, fmt, ap);
	fputc('\n', s->log);
	funlockfile(s->log);
	fflush(s->log);
	va_end(ap);
}

/* "peer agent/run" for log lines. */
static const char *server__who(const struct conn *c, char *buf, size_t len)
{
	const char *run = ingest__run_name(&c->ic);

	if (c->ic.identity[0] && run)
		snprintf(buf, len, "%s %s/%s", c->peer, c->ic.identity, run);
	else if (c->ic.identity[0])
		snprintf(buf, len, "%s %s", c->peer, c->ic.identity);
	else
		snprintf(buf, len, "%s", c->peer);
	return buf;
}

static void server__tls_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e) {
		snprintf(buf, len, "%s", errno ? strerror(errno) : "the peer closed the connection");
		return;
	}
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* ---- the writer thread -------------------------------------------------- */

static void *writer__main(void *arg)
{
	struct writer *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch *b;
		char err[256] = "";
		int rc;

		while (!w->job && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->job)
			break;
		b = w->job;
		w->job = NULL;
		pthread_mutex_unlock(&w->mu);
		rc = store__apply(w->st, b, err, sizeof(err));
		pthread_mutex_lock(&w->mu);
		w->done = b;
		w->ok = !rc;
		snprintf(w->err, sizeof(w->err), "%s", err);
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* an eventfd write only fails on counter overflow: cannot happen */
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void writer__submit(struct writer *w, struct batch *b)
{
	pthread_mutex_lock(&w->mu);
	w->job = b;
	w->busy = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* ---- ready queue -------------------------------------------------------- */

static void rq__push(struct server *s, struct conn *c)
{
	if (c->in_rq || c->dead)
		return;
	c->in_rq = true;
	c->rq_next = NULL;
	c->rq_prev = s->rq_tail;
	if (s->rq_tail)
		s->rq_tail->rq_next = c;
	else
		s->rq_head = c;
	s->rq_tail = c;
}

static void rq__remove(struct server *s, struct conn *c)
{
	if (!c->in_rq)
		return;
	if (c->rq_prev)
		c->rq_prev->rq_next = c->rq_next;
	else
		s->rq_head = c->rq_next;
	if (c->rq_next)
		c->rq_next->rq_prev = c->rq_prev;
	else
		s->rq_tail = c->rq_prev;
	c->in_rq = false;
	c->rq_next = c->rq_prev = NULL;
}

/* ---- connections -------------------------------------------------------- */

static void conn__free(struct server *s, struct conn *c)
{
	rq__remove(s, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ingest__conn_close(s->ig, &c->ic);
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	free(c->rbuf);
	free(c);
	s->nconns--;
}

/* Marks c for closing and logs why, once. */
static void conn__kill(struct server *s, struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn__kill(struct server *s, struct conn *c, const char *fmt, ...)
{
	char why[512], who[256];
	va_list ap;

	if (c->dead)
		return;
	c->dead = true;
	rq__remove(s, c);
	if (c->logged)
		return;
	c->logged = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	server__log(s, "%s: %s (%llu frames)", server__who(c, who, sizeof(who)), why,
		    (unsigned long long)c->ic.frames);
}

/* Sends what ingest queued. Returns false when the connection broke. */
static bool conn__flush(struct server *s, struct conn *c)
{
	while (c->ic.out_len > c->ic.out_off) {
		const uint8_t *p = c->ic.out + c->ic.out_off;
		size_t n = c->ic.out_len - c->ic.out_off;
		ssize_t w;

		if (c->ssl) {
			int rc = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));

			if (rc > 0) {
				w = rc;
			} else {
				int e = SSL_get_error(c->ssl, rc);
				char r[256];

				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					return true; /* EPOLLOUT (or the next read) brings us back */
				server__tls_reason(r, sizeof(r));
				conn__kill(s, c, "disconnected: TLS write failed: %s", r);
				return false;
			}
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return true;
				conn__kill(s, c, "disconnected: write failed: %s", strerror(errno));
				return false;
			}
		}
		ingest__out_consume(&c->ic, (size_t)w);
	}
	return true;
}

/* Refused (or timed out): log, send the Refusal, shut our side, and keep reading
 * (discarding) for a moment so the peer gets the Refusal instead of a reset. */
static void conn__start_close(struct server *s, struct conn *c, const char *what)
{
	char who[256];

	if (c->st == CS_CLOSING || c->dead)
		return;
	if (!c->logged) {
		c->logged = true;
		server__log(s, "%s: %s: %s (%llu frames)", server__who(c, who, sizeof(who)), what,
			    c->ic.reason, (unsigned long long)c->ic.frames);
	}
	c->st = CS_CLOSING;
	c->deadline = server__mono() + CLOSE_LINGER_NS;
	rq__push(s, c);
}

static void conn__closing(struct server *s, struct conn *c)
{
	uint8_t junk[16384];
	ssize_t n;

	if (!c->shut) {
		if (!conn__flush(s, c))
			return;
		if (c->ic.out_len > c->ic.out_off)
			return; /* wait for EPOLLOUT, or the linger deadline */
		if (c->ssl)
			SSL_shutdown(c->ssl);
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
	for (;;) {
		n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->logged = true; /* already said why */
		conn__kill(s, c, "closed");
		return;
	}
}

/* What a connection that ends leaves in its read buffer: ingest has consumed every
 * whole frame before we read again, so anything left is the start of a frame that will
 * never complete. An agent that is killed or loses its link mid-write looks like this,
 * and so does a peer that sends a torn frame on purpose: say how much of it came. */
static const char *conn__torn(const struct conn *c, char *buf, size_t len)
{
	uint64_t plen;
	int k;

	if (!c->rlen || c->st != CS_OPEN)
		return "";
	k = frame__decode_len(c->rbuf, c->rlen, &plen);
	if (k > 0)
		snprintf(buf, len, " mid-frame: truncated frame, %zu of %llu bytes arrived",
			 c->rlen - (size_t)k, (unsigned long long)plen);
	else
		snprintf(buf, len, " mid-frame: truncated frame, %zu bytes of its length prefix arrived",
			 c->rlen);
	return buf;
}

/* Reads into c->rbuf. Returns >0 bytes, 0 for would-block, -1 when the connection is
 * over (killed, with the reason logged). */
static ssize_t conn__read(struct server *s, struct conn *c, size_t room)
{
	char torn[128];

	if (c->ssl) {
		int rc = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(room > INT32_MAX ? INT32_MAX : room));
		int e;
		char r[256];

		if (rc > 0)
			return rc;
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN) {
			conn__kill(s, c, "disconnected by the agent%s", conn__torn(c, torn, sizeof(torn)));
			return -1;
		}
		server__tls_reason(r, sizeof(r));
		conn__kill(s, c, "disconnected: %s%s", r, conn__torn(c, torn, sizeof(torn)));
		return -1;
	} else {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, MSG_DONTWAIT);
		int e = errno;

		if (n > 0)
			return n;
		if (n < 0 && (e == EAGAIN || e == EINTR))
			return 0;
		if (n == 0)
			conn__kill(s, c, "disconnected by the agent%s", conn__torn(c, torn, sizeof(torn)));
		else
			conn__kill(s, c, "disconnected: %s%s", strerror(e), conn__torn(c, torn, sizeof(torn)));
		return -1;
	}
}

static bool conn__reserve(struct conn *c, size_t need)
{
	size_t cap = c->rcap ? c->rcap : CONN_RBUF_MIN;
	uint8_t *p;

	if (need <= c->rcap)
		return true;
	while (cap < need)
		cap *= 2;
	p = realloc(c->rbuf, cap);
	if (!p)
		return false;
	c->rbuf = p;
	c->rcap = cap;
	return true;
}

/* The subject CN of the verified client certificate: the agent's identity. A
 * certificate with no CN or with more than one is refused: either would make the
 * identity ambiguous. */
static bool conn__peer_cn(SSL *ssl, char *out, size_t len)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	const X509_NAME *nm;
	unsigned char *utf8 = NULL;
	int idx, n;

	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	nm = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, idx) >= 0)
		return false;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx)));
	if (n <= 0 || (size_t)n >= len || memchr(utf8, 0, (size_t)n)) {
		OPENSSL_free(utf8);
		return false;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = 0;
	OPENSSL_free(utf8);
	return true;
}

static void conn__handshake(struct server *s, struct conn *c)
{
	char cn[BW_ID_MAX + 1], r[256];
	int rc = SSL_accept(c->ssl), e;

	if (rc == 1) {
		if (!conn__peer_cn(c->ssl, cn, sizeof(cn))) {
			conn__kill(s, c, "refused: client certificate has no single usable CN");
			return;
		}
		ingest__conn_init(&c->ic, cn);
		c->st = CS_OPEN;
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	server__tls_reason(r, sizeof(r));
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		conn__kill(s, c, "refused: TLS handshake failed: client certificate: %s",
			   X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	else
		conn__kill(s, c, "refused: TLS handshake failed: %s", r);
}

/* A writer is idle and the batch is due: hand it over. */
static void server__maybe_commit(struct server *s, bool force)
{
	struct batch *b;

	if (s->w.busy)
		return;
	if (!force && !ingest__due(s->ig, server__mono(), s->commit_ns))
		return;
	b = ingest__seal(s->ig);
	if (b)
		writer__submit(&s->w, b);
}

static void conn__log_hello(struct server *s, struct conn *c, enum ic_state before)
{
	char who[256];

	if (before == IC_HELLO && c->ic.state != IC_HELLO && c->ic.state != IC_DEAD)
		server__log(s, "%s: hello%s", server__who(c, who, sizeof(who)),
			    c->ic.state == IC_WELCOME_WAIT ? " (welcome after the pending commit)" : "");
}

/* Serves one ready connection: handshake, then feed buffered frames and read more,
 * within the per-pass budget. */
static void conn__service(struct server *s, struct conn *c)
{
	size_t budget = CONN_READ_BUDGET;

	if (c->st == CS_TLS) {
		conn__handshake(s, c);
		if (c->dead || c->st == CS_TLS) {
			rq__remove(s, c);
			return;
		}
	}
	if (c->st == CS_CLOSING) {
		rq__remove(s, c);
		conn__closing(s, c);
		return;
	}
	if (!conn__flush(s, c))
		return;
	for (;;) {
		enum feed_status fst = FEED_MORE;
		enum ic_state before = c->ic.state;
		size_t used, need;
		ssize_t n;

		if (c->rlen) {
			used = ingest__feed(s->ig, &c->ic, c->rbuf, c->rlen, &fst);
			if (used) {
				memmove(c->rbuf, c->rbuf + used, c->rlen - used);
				c->rlen -= used;
			}
			conn__log_hello(s, c, before);
			if (fst == FEED_DEAD) {
				conn__start_close(s, c, "refused");
				return;
			}
			if (!conn__flush(s, c))
				return;
			if (fst == FEED_STALL) {
				if (ingest__full(s->ig) && !s->w.busy) {
					server__maybe_commit(s, true);
					if (s->w.busy)
						continue; /* a fresh batch: feed on */
				}
				c->stalled = true;
				rq__remove(s, c);
				return;
			}
		}
		if (!budget) {
			/* more may be waiting: stay queued, behind everyone else */
			rq__remove(s, c);
			rq__push(s, c);
			return;
		}
		need = c->ic.need > c->rlen ? c->ic.need : c->rlen + 1;
		if (need < c->rlen + 16384)
			need = c->rlen + 16384;
		if (!conn__reserve(c, need)) {
			ingest__refuse(&c->ic, "collector out of memory");
			conn__start_close(s, c, "refused");
			return;
		}
		n = conn__read(s, c, c->rcap - c->rlen);
		if (n < 0)
			return;
		if (!n) {
			rq__remove(s, c);
			/* give back the memory one large frame needed */
			if (!c->rlen && c->rcap > 4 * CONN_RBUF_MIN) {
				free(c->rbuf);
				c->rbuf = NULL;
				c->rcap = 0;
			}
			return;
		}
		c->rlen += (size_t)n;
		budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
	}
}

static void server__accept(struct server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { 0 };
		char host[INET6_ADDRSTRLEN];
		struct conn *c;
		int fd, one = 1, port;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment instead of
				 * spinning on a listener that stays readable. */
				server__log(s, "cannot accept: %s; pausing for 100 ms", strerror(errno));
				ev.events = 0;
				ev.data.ptr = &s->tag_listen;
				epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &ev);
				s->accept_paused = true;
				s->accept_resume = server__mono() + 100000000;
			}
			return;
		}
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		}
		if (s->nconns >= s->cfg.max_conns || s->stopping) {
			server__log(s, "%s%s%s:%d: refused: %s", ss.ss_family == AF_INET6 ? "[" : "", host,
				    ss.ss_family == AF_INET6 ? "]" : "", port,
				    s->stopping ? "collector is stopping" : "too many connections");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		snprintf(c->peer, sizeof(c->peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
			 port);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		c->deadline = server__mono() + s->hs_ns;
		ingest__conn_init(&c->ic, NULL);
		if (s->tls) {
			c->ssl = SSL_new(s->tls);
			if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
				if (c->ssl)
					SSL_free(c->ssl);
				close(fd);
				free(c);
				continue;
			}
			SSL_set_accept_state(c->ssl);
			c->st = CS_TLS;
		} else {
			c->st = CS_OPEN;
		}
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			if (c->ssl)
				SSL_free(c->ssl);
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (c->next)
			c->next->prev = c;
		s->conns = c;
		s->nconns++;
		rq__push(s, c);
	}
}

/* After a commit, a seal, or a refusal of another connection: flush Acks and
 * Welcomes, start closing refused connections, and wake the stalled. */
static void server__scan(struct server *s)
{
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->st == CS_OPEN && c->ic.state == IC_DEAD) {
			conn__start_close(s, c, "refused");
			continue;
		}
		if (c->st == CS_OPEN && !conn__flush(s, c))
			continue;
		if (c->stalled) {
			c->stalled = false;
			rq__push(s, c);
		}
	}
}

static void server__writer_done(struct server *s)
{
	struct batch *b;
	uint64_t v;
	bool ok;
	char err[256];

	if (read(s->w.efd, &v, sizeof(v)) < 0 && errno == EAGAIN)
		return;
	pthread_mutex_lock(&s->w.mu);
	b = s->w.done;
	s->w.done = NULL;
	ok = s->w.ok;
	snprintf(err, sizeof(err), "%s", s->w.err);
	pthread_mutex_unlock(&s->w.mu);
	if (!b)
		return;
	if (!ok)
		server__log(s, "storage error: %s: refusing every agent so that they re-send from the last commit",
			    err);
	ingest__done(s->ig, b, ok);
	pthread_mutex_lock(&s->w.mu);
	s->w.busy = false;
	pthread_mutex_unlock(&s->w.mu);
	/* the next batch may be full already: start it before waking readers */
	server__maybe_commit(s, ingest__full(s->ig));
	ingest__take_others(s->ig);
	server__scan(s);
}

static void server__sweep(struct server *s, int64_t now)
{
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->st == CS_CLOSING) {
			if (now > c->deadline) {
				c->logged = true;
				conn__kill(s, c, "closed");
			}
			continue;
		}
		if (now <= c->deadline)
			continue;
		if (c->st == CS_TLS) {
			conn__kill(s, c, "refused: TLS handshake not finished within %.1f s",
				   (double)s->hs_ns / 1e9);
		} else if (c->ic.state == IC_HELLO) {
			ingest__refuse(&c->ic, "no Hello within %.1f s", (double)s->hs_ns / 1e9);
			conn__start_close(s, c, "refused");
		}
	}
	if (s->accept_paused && now >= s->accept_resume) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->tag_listen };

		epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &ev);
		s->accept_paused = false;
	}
}

static void server__reap(struct server *s)
{
	struct conn *c, *n;

	for (c = s->conns; c; c = n) {
		n = c->next;
		if (c->dead)
			conn__free(s, c);
	}
}

/* How long the loop may sleep: until the filling batch is due (a quiet agent's frame
 * would otherwise wait for the 50 ms tick on top of the commit interval), at most 50 ms
 * for the sweeps. While the writer is busy its completion wakes the loop anyway. */
static int server__sleep_ms(struct server *s)
{
	int64_t first = ingest__first_ns(s->ig), left;

	if (!first || s->w.busy)
		return 50;
	left = first + s->commit_ns - server__mono();
	if (left <= 0)
		return 0;
	return left >= 50000000 ? 50 : (int)((left + 999999) / 1000000);
}

int server__run(struct server *s)
{
	struct epoll_event evs[256];

	s->last_sweep = server__mono();
	while (!s->stopping) {
		bool blocked = ingest__full(s->ig) && s->w.busy;
		int timeout = s->rq_head && !blocked ? 0 : server__sleep_ms(s);
		int n = epoll_wait(s->ep, evs, 256, timeout);
		bool dirty = false;
		int64_t now;

		if (n < 0 && errno != EINTR) {
			server__log(s, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->tag_listen) {
				server__accept(s);
			} else if (p == &s->tag_stop) {
				s->stopping = true;
			} else if (p == &s->tag_writer) {
				server__writer_done(s);
			} else {
				struct conn *c = p;

				if (c->dead)
					continue;
				if (evs[i].events & EPOLLOUT && c->st == CS_OPEN &&
				    c->ic.out_len > c->ic.out_off)
					conn__flush(s, c);
				if (!c->stalled)
					rq__push(s, c);
			}
		}
		/* one pass over who was ready when the pass started */
		for (struct conn *c = s->rq_head, *last = s->rq_tail, *next; c; c = next) {
			bool end = c == last;

			next = c->rq_next;
			if (ingest__full(s->ig) && s->w.busy)
				break;
			conn__service(s, c);
			if (end)
				break;
		}
		if (ingest__take_others(s->ig))
			dirty = true;
		now = server__mono();
		server__maybe_commit(s, false);
		if (now - s->last_sweep >= SWEEP_NS) {
			server__sweep(s, now);
			s->last_sweep = now;
		}
		if (dirty)
			server__scan(s);
		server__reap(s);
	}

	/* Stopping: commit what is pending, Ack it if the agents still listen, close. */
	for (int rounds = 0; rounds < 2; rounds++) {
		while (s->w.busy) {
			struct epoll_event ev;

			if (epoll_wait(s->ep, &ev, 1, 100) > 0 && ev.data.ptr == &s->tag_writer)
				server__writer_done(s);
		}
		server__maybe_commit(s, true);
	}
	for (struct conn *c = s->conns; c; c = c->next) {
		c->logged = true;
		conn__kill(s, c, "collector stopping");
	}
	server__reap(s);
	{
		struct store_stats st;

		store__stats(s->wstore, &st);
		server__log(s, "stopped: %llu events stored, %llu findings, %llu identical re-sends ignored, %llu commits",
			    (unsigned long long)st.events, (unsigned long long)st.findings,
			    (unsigned long long)st.dups_identical, (unsigned long long)st.commits);
	}
	return 0;
}

void server__stop(struct server *s)
{
	uint64_t one = 1;

	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* eventfd: cannot fail short of overflow */
	}
}

/* ---- set-up ------------------------------------------------------------- */

static int server__tls_setup(struct server *s, char *err, size_t errlen)
{
	const struct server_cfg *cfg = &s->cfg;
	STACK_OF(X509_NAME) *names;
	char r[256];
	SSL_CTX *ctx;

	for (const char *const *f = (const char *const[]){ cfg->tls_cert, cfg->tls_key,
							   cfg->tls_client_ca, NULL };
	     *f; f++) {
		if (access(*f, R_OK) < 0) {
			snprintf(err, errlen, "cannot read '%s': %s", *f, strerror(errno));
			return EX_NOINPUT;
		}
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		return EX_SOFTWARE;
	}
	s->tls = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				      SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
				      /* frames delimit themselves: a missing close_notify
				       * truncates nothing, it is an agent that went away */
				      SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read every TLS record that has arrived in one read(2), not a 5-byte header and
	 * then a body per 16 KiB record: half the syscalls on a busy connection. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 256 * 1024);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		server__tls_reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': not a usable certificate: %s", cfg->tls_cert, r);
		return EX_NOINPUT;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		server__tls_reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': not the key of '%s': %s", cfg->tls_key, cfg->tls_cert, r);
		return EX_NOINPUT;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
		server__tls_reason(r, sizeof(r));
		snprintf(err, errlen, "'%s': no usable CA certificate: %s", cfg->tls_client_ca, r);
		return EX_NOINPUT;
	}
	names = SSL_load_client_CA_file(cfg->tls_client_ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	/* Agents must present a certificate from --tls-client-ca, meant for client use. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	return 0;
}

/* "1.2.3.4:PORT" or "[v6]:PORT": literals only, so no resolver runs at start-up. */
static int server__parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = spec;
	size_t hl;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (*spec == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = spec + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - spec);
	}
	if (!hl || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		return -EINVAL;
	if (*spec == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		*sl = sizeof(*a);
	}
	return 0;
}

static int server__listen(struct server *s, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	if (server__parse_listen(s->cfg.listen, &ss, &sl)) {
		snprintf(err, errlen, "--listen '%s': expected IPv4:PORT or [IPv6]:PORT", s->cfg.listen);
		return EX_USAGE;
	}
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return EX_UNAVAILABLE;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(s->lfd, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", s->cfg.listen, strerror(errno));
		return EX_UNAVAILABLE;
	}
	sl = sizeof(ss);
	getsockname(s->lfd, (struct sockaddr *)&ss, &sl);
	s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static bool server__ep_add(struct server *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

int server__new(const struct server_cfg *cfg, struct server **out, char *err, size_t errlen)
{
	struct ingest_cfg icfg = { 0 };
	struct server *s;
	struct rlimit rl;
	int rc;

	*out = NULL;
	if (!cfg->insecure && (!cfg->tls_cert || !cfg->tls_key || !cfg->tls_client_ca)) {
		snprintf(err, errlen,
			 "TLS needs --tls-cert, --tls-key and --tls-client-ca (or --insecure for plaintext testing)");
		return EX_USAGE;
	}
	if (!cfg->db || !strcmp(cfg->db, ":memory:")) {
		/* the event loop reads run state through a second handle */
		snprintf(err, errlen, "--db needs a file");
		return EX_USAGE;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return EX_SOFTWARE;
	}
	s->cfg = *cfg;
	s->lfd = s->ep = s->stop_fd = s->w.efd = -1;
	s->log = cfg->log ? cfg->log : stderr;
	if (!s->cfg.max_frame)
		s->cfg.max_frame = BW_FRAME_MAX;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = 1024;
	if (!s->cfg.batch)
		s->cfg.batch = 16384;
	s->hs_ns = (int64_t)((cfg->handshake_timeout > 0 ? cfg->handshake_timeout : 10.0) * 1e9);
	s->commit_ns = (int64_t)(cfg->commit_ms ? cfg->commit_ms : 50) * 1000000;
	pthread_mutex_init(&s->w.mu, NULL);
	pthread_cond_init(&s->w.cv, NULL);

	/* SQLite's page cache and the batches allocate and free large blocks at a steady
	 * rate; glibc's default trimming gave them back to the kernel after every commit
	 * and page faults on the next (visible in profiles on this VM). Keep them. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);

	/* A descriptor per agent: take what the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!cfg->insecure) {
		rc = server__tls_setup(s, err, errlen);
		if (rc)
			goto fail;
	}
	rc = store__open(cfg->db, STORE_WRITE, &s->wstore, err, errlen);
	if (rc) {
		rc = EX_CANTCREAT;
		goto fail;
	}
	if (cfg->sync_normal && store__set_sync(s->wstore, STORE_SYNC_NORMAL)) {
		snprintf(err, errlen, "cannot set synchronous=NORMAL");
		rc = EX_CANTCREAT;
		goto fail;
	}
	if (store__open(cfg->db, STORE_READ, &s->rstore, err, errlen)) {
		rc = EX_CANTCREAT;
		goto fail;
	}
	icfg.max_frame = s->cfg.max_frame;
	icfg.agent_keys = cfg->agent_keys;
	icfg.insecure = cfg->insecure;
	icfg.batch_frames = s->cfg.batch;
	if (ingest__new(&icfg, s->rstore, &s->ig)) {
		snprintf(err, errlen, "cannot read the database");
		rc = EX_CANTCREAT;
		goto fail;
	}
	rc = server__listen(s, err, errlen);
	if (rc)
		goto fail;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->w.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->ep < 0 || s->stop_fd < 0 || s->w.efd < 0 || !server__ep_add(s, s->lfd, &s->tag_listen) ||
	    !server__ep_add(s, s->stop_fd, &s->tag_stop) || !server__ep_add(s, s->w.efd, &s->tag_writer)) {
		snprintf(err, errlen, "epoll set-up: %s", strerror(errno));
		rc = EX_SOFTWARE;
		goto fail;
	}
	s->w.st = s->wstore;
	if (pthread_create(&s->w.th, NULL, writer__main, &s->w)) {
		snprintf(err, errlen, "cannot start the writer thread");
		rc = EX_SOFTWARE;
		goto fail;
	}
	s->w.started = true;
	*out = s;
	return 0;
fail:
	server__free(s);
	return rc;
}

int server__port(const struct server *s)
{
	return s->port;
}

void server__free(struct server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn__free(s, s->conns);
	if (s->w.started) {
		pthread_mutex_lock(&s->w.mu);
		s->w.quit = true;
		pthread_cond_signal(&s->w.cv);
		pthread_mutex_unlock(&s->w.mu);
		pthread_join(s->w.th, NULL);
	}
	if (s->w.done) {
		ingest__done(s->ig, s->w.done, s->w.ok);
		s->w.done = NULL;
	}
	ingest__free(s->ig);
	store__close(s->rstore);
	store__close(s->wstore);
	if (s->tls)
		SSL_CTX_free(s->tls);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->ep >= 0)
		close(s->ep);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->w.efd >= 0)
		close(s->w.efd);
	pthread_mutex_destroy(&s->w.mu);
	pthread_cond_destroy(&s->w.cv);
	free(s);
}
