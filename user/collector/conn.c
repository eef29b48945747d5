// SPDX-License-Identifier: GPL-2.0
/* Connections: accepting, reading and feeding frames to ingest, sending what it
 * queued, closing, and the ready queue that shares the loop fairly. See server_priv.h.
 *
 * Connections are edge-triggered. A connection that may have more to read sits on the
 * ready queue; each pass of the loop serves every ready connection once, up to
 * CONN_READ_BUDGET bytes, so one agent flooding at line rate cannot starve the others.
 * When the batch being filled is full and the writer is still committing the previous
 * one, the loop stops reading altogether: TCP flow control then slows the agents down,
 * and their spools absorb the difference. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/grow.h"
#include "base/log.h"
#include "collector/netaddr.h"
#include "collector/server_priv.h"
#include "transport/frame.h"

/* ---- ready queue -------------------------------------------------------- */

void rq__push(struct server *s, struct conn *c)
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

/* ---- one connection ----------------------------------------------------- */

/* "peer agent/run" for log lines. */
static const char *conn__who(const struct conn *c, char *buf, size_t len)
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

/* c has said a valid Hello: it no longer counts against the handshake budget. */
static void conn__authed(struct server *s, struct conn *c)
{
	if (!c->unauth)
		return;
	c->unauth = false;
	s->nhandshakes--;
}

/* Brings what c's identity is charged for c (its state and read buffer) up to date.
 * Before Hello there is no identity: that memory is the handshake budget's. */
static void conn__charge(struct conn *c)
{
	size_t now = c->ic.agent ? sizeof(*c) + c->rcap : 0;

	ingest__charge(&c->ic, now, c->charged);
	c->charged = now;
}

void conn__free(struct server *s, struct conn *c)
{
	conn__authed(s, c);
	ingest__charge(&c->ic, 0, c->charged);
	c->charged = 0;
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

void conn__kill(struct server *s, struct conn *c, const char *fmt, ...)
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
	log__line(s->log, SERVER_LOG, "%s: %s (%llu frames)", conn__who(c, who, sizeof(who)), why,
		  (unsigned long long)c->ic.frames);
}

bool conn__flush(struct server *s, struct conn *c)
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
				tls__reason(r, sizeof(r));
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
		log__line(s->log, SERVER_LOG, "%s: %s: %s (%llu frames)",
			  conn__who(c, who, sizeof(who)), what, c->ic.reason,
			  (unsigned long long)c->ic.frames);
	}
	c->st = CS_CLOSING;
	c->deadline = clock__mono_ns() + CLOSE_LINGER_NS;
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
		tls__reason(r, sizeof(r));
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

static void conn__handshake(struct server *s, struct conn *c)
{
	char cn[BW_ID_MAX + 1], why[512], dns[INGEST_HOSTS_MAX];
	size_t dns_used = 0;
	int rc = tls__accept(c->ssl, cn, sizeof(cn), dns, sizeof(dns), &dns_used, why, sizeof(why));

	if (rc < 0) {
		conn__kill(s, c, "%s", why);
	} else if (rc > 0) {
		ingest__conn_init(&c->ic, cn);
		ingest__conn_bind_hosts(&c->ic, dns, dns_used);
		c->st = CS_OPEN;
	}
}

static void conn__log_hello(struct server *s, struct conn *c, enum ic_state before)
{
	char who[256];

	if (before != IC_HELLO || c->ic.state == IC_HELLO || c->ic.state == IC_DEAD)
		return;
	conn__authed(s, c);
	conn__charge(c);
	log__line(s->log, SERVER_LOG, "%s: hello%s", conn__who(c, who, sizeof(who)),
		  c->ic.state == IC_WELCOME_WAIT ? " (welcome after the pending commit)" : "");
}

/* c's identity is over --max-agent-bytes, and a commit will free some of it: stop
 * reading c (TCP slows that agent down) until the commit wakes it (conn__scan). */
static void conn__throttle(struct server *s, struct conn *c)
{
	char who[256];

	c->ic.throttled++;
	if (!c->throttle_logged) {
		c->throttle_logged = true;
		log__line(s->log, SERVER_LOG,
			  "%s: throttled: agent '%s' holds %zu bytes in the collector, over --max-agent-bytes %zu: not reading it until its frames are committed",
			  conn__who(c, who, sizeof(who)), c->ic.identity, ingest__held(&c->ic),
			  s->cfg.max_agent_bytes);
	}
	c->stalled = true;
	rq__remove(s, c);
}

void conn__service(struct server *s, struct conn *c)
{
	size_t budget = CONN_READ_BUDGET, more;

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
					writer__maybe_commit(s, true);
					if (s->w.busy)
						continue; /* a fresh batch: feed on */
				}
				if (c->ic.state == IC_STREAM &&
				    ingest__budget(s->ig, &c->ic, 0) == BUDGET_WAIT) {
					conn__throttle(s, c);
					return;
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
		/* The identity's memory budget: reading into room c already has costs
		 * nothing, growing its buffer does. Over it, wait for a commit when one will
		 * free some; with nothing to free (all in its connections' buffers), refuse. */
		more = 0;
		if (need > c->rcap) {
			size_t ncap = c->rcap < CONN_RBUF_MIN ? CONN_RBUF_MIN : c->rcap;

			while (ncap < need) /* as grow__reserve will */
				ncap *= 2;
			more = ncap - c->rcap;
		}
		switch (ingest__budget(s->ig, &c->ic, more)) {
		case BUDGET_WAIT:
			conn__throttle(s, c);
			return;
		case BUDGET_REFUSE:
			if (!more)
				break;
			ingest__refuse(&c->ic,
				       "agent '%s' would hold %zu bytes in the collector, above --max-agent-bytes %zu",
				       c->ic.identity, ingest__held(&c->ic) + more, s->cfg.max_agent_bytes);
			conn__start_close(s, c, "refused");
			return;
		case BUDGET_OK:
			break;
		}
		if (grow__reserve((void **)&c->rbuf, &c->rcap, need, 1, CONN_RBUF_MIN, 0)) {
			ingest__refuse(&c->ic, "collector out of memory");
			conn__start_close(s, c, "refused");
			return;
		}
		conn__charge(c);
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
				conn__charge(c);
			}
			return;
		}
		c->rlen += (size_t)n;
		c->last_rx_ns = clock__mono_ns();
		budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
	}
}

/* ---- all connections ---------------------------------------------------- */

/* A new connection on fd, or NULL (and fd closed) when it cannot be set up. */
static struct conn *conn__new(struct server *s, int fd, const struct sockaddr_storage *ss)
{
	struct epoll_event ev = { 0 };
	struct conn *c;
	int one = 1;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->addr = *ss;
	netaddr__format(ss, c->peer, sizeof(c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	c->accepted_ns = c->last_rx_ns = clock__mono_ns();
	c->deadline = c->accepted_ns + s->hs_ns;
	ingest__conn_init(&c->ic, NULL);
	if (s->tls) {
		c->ssl = SSL_new(s->tls);
		if (!c->ssl || !SSL_set_fd(c->ssl, fd))
			goto fail;
		SSL_set_accept_state(c->ssl);
		c->st = CS_TLS;
	} else {
		c->st = CS_OPEN;
	}
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	return c;
fail:
	if (c->ssl)
		SSL_free(c->ssl);
	close(fd);
	free(c);
	return NULL;
}

/* Same source address (the port aside)? */
static bool conn__same_source(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return false;
}

/* Connections that have not said a valid Hello yet are anyone's: they get their own,
 * small budget, so a crowd of idle sockets (no TLS byte ever) cannot take the slots of
 * enrolled agents. One source may hold max_per_addr of them; past the budget, the
 * oldest is closed for the new one (an agent's handshake takes milliseconds, an idle
 * socket holds on until its timeout, so the oldest is the likeliest squatter).
 * Returns false when the new connection from ss is refused. */
static bool conn__admit(struct server *s, const struct sockaddr_storage *ss, const char *peer)
{
	struct conn *oldest = NULL;
	unsigned same = 0;

	for (struct conn *c = s->conns; c; c = c->next) {
		if (!c->unauth || c->dead)
			continue;
		if (conn__same_source(&c->addr, ss))
			same++;
		if (!oldest || c->accepted_ns < oldest->accepted_ns)
			oldest = c;
	}
	if (same >= s->cfg.max_per_addr) {
		log__line(s->log, SERVER_LOG,
			  "%s: refused: %u connections from this address are still in their handshake (--max-per-addr)",
			  peer, same);
		return false;
	}
	if (s->nhandshakes >= s->cfg.max_handshakes && oldest) {
		conn__kill(s, oldest,
			   "closed: the oldest of %u connections still in their handshake, for a new one (--max-handshakes)",
			   s->nhandshakes);
		conn__authed(s, oldest); /* its slot is free now, it is reaped this pass */
	}
	return true;
}

void conn__accept(struct server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[NETADDR_TEXT_MAX];
		struct conn *c;
		int fd;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment instead of
				 * spinning on a listener that stays readable. */
				struct epoll_event ev = { .events = 0, .data.ptr = &s->tag_listen };

				log__line(s->log, SERVER_LOG, "cannot accept: %s; pausing for 100 ms",
					  strerror(errno));
				epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &ev);
				s->accept_paused = true;
				s->accept_resume = clock__mono_ns() + 100000000;
			}
			return;
		}
		if (s->nconns >= s->cfg.max_conns || s->stopping) {
			log__line(s->log, SERVER_LOG, "%s: refused: %s",
				  netaddr__format(&ss, peer, sizeof(peer)),
				  s->stopping ? "collector is stopping" : "too many connections");
			close(fd);
			continue;
		}
		if (!conn__admit(s, &ss, netaddr__format(&ss, peer, sizeof(peer)))) {
			close(fd);
			continue;
		}
		c = conn__new(s, fd, &ss);
		if (!c)
			continue;
		c->unauth = true;
		s->nhandshakes++;
		c->next = s->conns;
		if (c->next)
			c->next->prev = c;
		s->conns = c;
		s->nconns++;
		rq__push(s, c);
	}
}

void conn__scan(struct server *s)
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

void conn__sweep(struct server *s, int64_t now)
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
		if (c->st == CS_OPEN && c->ic.state == IC_STREAM) {
			/* past its Hello the handshake deadline no longer applies; a silent
			 * peer holds a slot of its agent's budget for nothing, and an agent
			 * with events to send simply reconnects */
			if (!c->stalled && now - c->last_rx_ns > s->idle_ns) {
				ingest__refuse(&c->ic, "idle for %.0f s (--idle-timeout)",
					       (double)s->idle_ns / 1e9);
				conn__start_close(s, c, "closed");
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

void conn__reap(struct server *s)
{
	struct conn *c, *n;

	for (c = s->conns; c; c = n) {
		n = c->next;
		if (c->dead)
			conn__free(s, c);
	}
}
