/* See resolver.h. The wire format is ldns's (pipeline/dnsanswer.c), the sockets to the
 * upstream are resolver_net.c's; this file serves the build and keeps what answers let
 * through in the kernel's allow map. */
#include "agent/resolver.h"
#include "agent/resolver_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "pipeline/dnsanswer.h"
#include "sensor/loader.h"
#include "sensor_abi.h"

#define RESOLVER_NAMES 1024 /* addresses remembered with their name, for events */
#define RESOLVER_ALLOWS 16384 /* as the kernel's dns_allow map (bpf/lib/maps.bpf.h) */
#define RESOLVER_TCP_MSGS 16 /* messages served on one TCP connection */
#define RESOLVER_SWEEP_MS 200 /* how often expired allows are taken back */

struct resolver_name {
	uint8_t addr[16];
	int64_t at_ns; /* CLOCK_MONOTONIC, when the answer was let through to the build */
	char name[DNS_NAME_TEXT_MAX];
};

struct resolver_allow {
	uint8_t addr[16];
	uint16_t port;
	int64_t expires_ns;
};

struct resolver_stats {
	uint64_t queries;
	uint64_t upstream_failures;
	uint64_t allows_dropped;
};

struct resolver_rule {
	char *name;
	bool wildcard;
	uint16_t port;
};

struct resolver {
	struct sensor *sensor;
	struct sockaddr_storage upstream;
	socklen_t upstream_len;
	int fds[4]; /* enum bw_dns_port; -1: not bound (no IPv6 on this host) */
	int stop_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* names, rules, allows and stats: the loop reads names */
	struct resolver_name names[RESOLVER_NAMES];
	size_t names_next, names_used;
	struct resolver_rule *rules;
	size_t n_rules;
	struct resolver_allow *allows; /* RESOLVER_ALLOWS */
	size_t n_allows;
	struct resolver_stats stats;
	uint8_t buf[DNS_MSG_MAX + 2]; /* one message at a time, with TCP's length */
	uint8_t reply[DNS_MSG_MAX + 2];
};

/* ---- what answers let through ---- */

static void resolver__remember(struct resolver *r, const uint8_t addr[16], const char *name,
			       int64_t now)
{
	struct resolver_name *n = &r->names[r->names_next];

	memcpy(n->addr, addr, 16);
	n->at_ns = now;
	snprintf(n->name, sizeof(n->name), "%s", name);
	r->names_next = (r->names_next + 1) % RESOLVER_NAMES;
	if (r->names_used < RESOLVER_NAMES)
		r->names_used++;
}

bool resolver__name_of(struct resolver *r, const uint8_t addr[16], int64_t before_ns, char *out,
		       size_t outlen)
{
	bool found = false;

	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	/* newest first: of two names answered with one address, the one the build had
	 * been told last before its connect */
	for (size_t k = 1; k <= r->names_used && !found; k++) {
		const struct resolver_name *n =
			&r->names[(r->names_next + RESOLVER_NAMES - k) % RESOLVER_NAMES];

		if (n->at_ns <= before_ns && memcmp(n->addr, addr, 16) == 0) {
			snprintf(out, outlen, "%s", n->name);
			found = true;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

/* Called with the lock held. */
static void resolver__allow(struct resolver *r, const uint8_t addr[16], uint16_t port,
			    uint32_t rule, int64_t expires_ns)
{
	struct resolver_allow *a = NULL;
	int e;

	for (size_t i = 0; i < r->n_allows; i++)
		if (r->allows[i].port == port && memcmp(r->allows[i].addr, addr, 16) == 0)
			a = &r->allows[i];
	if (a && a->expires_ns > expires_ns)
		expires_ns = a->expires_ns; /* an earlier, longer answer still holds */
	if (!a && r->n_allows == RESOLVER_ALLOWS) {
		r->stats.allows_dropped++;
		return;
	}
	e = sensor__dns_allow(r->sensor, addr, port, rule, expires_ns);
	if (e) {
		r->stats.allows_dropped++;
		log__line(stderr, "buildwarden: ", "warning: cannot let an answered address through: %s",
			  strerror(-e));
		return;
	}
	if (!a) {
		a = &r->allows[r->n_allows++];
		memcpy(a->addr, addr, 16);
		a->port = port;
	}
	a->expires_ns = expires_ns;
}

/* Called with the lock held; now 0: every allow, whatever its expiry. */
static void resolver__sweep(struct resolver *r, int64_t now)
{
	for (size_t i = 0; i < r->n_allows;) {
		struct resolver_allow *a = &r->allows[i];

		if (now && a->expires_ns > now) {
			i++;
			continue;
		}
		sensor__dns_forget(r->sensor, a->addr, a->port);
		*a = r->allows[--r->n_allows];
	}
}

/* The reply is in; before the build gets it, what it lets through is in the kernel. */
static void resolver__on_reply(struct resolver *r, const uint8_t *msg, size_t len)
{
	struct dns_answer *ans = malloc(sizeof(*ans));
	int64_t now = clock__mono_ns();

	if (!ans)
		return;
	if (dns_answer__parse(msg, len, ans) == 0) {
		pthread_mutex_lock(&r->lock);
		for (size_t i = 0; i < ans->n_addrs; i++)
			resolver__remember(r, ans->addrs[i].addr, ans->qname, now);
		for (size_t k = 0; k < r->n_rules; k++) {
			const struct resolver_rule *rr = &r->rules[k];
			const struct bw_host_rule hr = { .name = rr->name, .wildcard = rr->wildcard };

			if (!policy__host_match(&hr, ans->qname))
				continue;
			for (size_t i = 0; i < ans->n_addrs; i++) {
				uint32_t ttl = ans->addrs[i].ttl;

				if (ttl < RESOLVER_MIN_TTL_S)
					ttl = RESOLVER_MIN_TTL_S;
				if (ttl > RESOLVER_MAX_TTL_S)
					ttl = RESOLVER_MAX_TTL_S;
				resolver__allow(r, ans->addrs[i].addr, rr->port, (uint32_t)k,
						now + (int64_t)ttl * NSEC_PER_SEC);
			}
		}
		pthread_mutex_unlock(&r->lock);
	}
	free(ans);
}

/* The reply for the build: the upstream's, or SERVFAIL when there is none (*failed).
 * Its length in r->reply, or 0 when the query itself cannot be read (nothing is sent). */
static size_t resolver__answer(struct resolver *r, const uint8_t *q, size_t len, bool tcp,
			       int *up, bool *failed)
{
	uint16_t id;
	ssize_t n;
	uint8_t *fail;
	size_t fail_len;

	*failed = false;
	if (dns_answer__query(q, len, &id))
		return 0;
	n = tcp ? resolver_net__ask_tcp(&r->upstream, up, q, len, r->reply)
	    : resolver_net__ask_udp(&r->upstream, q, len, id, r->reply);
	pthread_mutex_lock(&r->lock);
	r->stats.queries++;
	if (n < 0)
		r->stats.upstream_failures++;
	pthread_mutex_unlock(&r->lock);
	if (n > 0) {
		resolver__on_reply(r, r->reply, (size_t)n);
		return (size_t)n;
	}
	*failed = true;
	if (dns_answer__servfail(q, len, &fail, &fail_len))
		return 0;
	if (fail_len > DNS_MSG_MAX) {
		free(fail);
		return 0;
	}
	memcpy(r->reply, fail, fail_len);
	free(fail);
	return fail_len;
}

static void resolver__serve_udp(struct resolver *r, int fd)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(fd, r->buf, DNS_MSG_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	size_t out;
	bool failed;

	if (n <= 0)
		return;
	out = resolver__answer(r, r->buf, (size_t)n, false, NULL, &failed);
	if (out)
		sendto(fd, r->reply, out, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
}

static void resolver__serve_tcp(struct resolver *r, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), up = -1;

	if (fd < 0)
		return;
	for (int i = 0; i < RESOLVER_TCP_MSGS; i++) {
		int64_t deadline = clock__mono_ms() + RESOLVER_TIMEOUT_MS;
		ssize_t n = resolver_net__recv_tcp(fd, r->buf, deadline);
		size_t out;
		bool failed;

		if (n <= 0)
			break;
		out = resolver__answer(r, r->buf, (size_t)n, true, &up, &failed);
		if (failed && up >= 0) { /* the upstream connection is in an unknown state */
			close(up);
			up = -1;
		}
		if (!out || resolver_net__send_tcp(fd, r->reply, out, clock__mono_ms() + RESOLVER_TIMEOUT_MS))
			break;
	}
	if (up >= 0)
		close(up);
	close(fd);
}

static void *resolver__main(void *arg)
{
	struct resolver *r = arg;

	for (;;) {
		struct pollfd p[5];
		int n;

		for (int i = 0; i < 4; i++)
			p[i] = (struct pollfd){ .fd = r->fds[i], .events = POLLIN };
		p[4] = (struct pollfd){ .fd = r->stop_fd, .events = POLLIN };
		n = poll(p, 5, RESOLVER_SWEEP_MS);
		if (n < 0 && errno != EINTR)
			break;
		if (p[4].revents)
			break;
		for (int i = 0; i < 4; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			if (i == BW_DNS_UDP4 || i == BW_DNS_UDP6)
				resolver__serve_udp(r, r->fds[i]);
			else
				resolver__serve_tcp(r, r->fds[i]);
		}
		pthread_mutex_lock(&r->lock);
		resolver__sweep(r, clock__mono_ns());
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/* ---- start and stop ---- */

static int resolver__bind(int family, int type, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	len = resolver_net__sa_len(&ss);
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(fd, 64)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int e = -errno;

		close(fd);
		return e;
	}
	*port = family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				  : ((struct sockaddr_in6 *)&ss)->sin6_port;
	return fd;
}

static void resolver__free_rules(struct resolver_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rules[i].name);
	free(rules);
}

int resolver__set_policy(struct resolver *r, const struct bw_policy *p)
{
	struct resolver_rule *rules = calloc(p->n_net_allow_names + 1, sizeof(*rules));
	struct resolver_rule *old;
	size_t n_old;

	if (!rules)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_net_allow_names; i++) {
		rules[i].name = strdup(p->net_allow_names[i].name);
		rules[i].wildcard = p->net_allow_names[i].wildcard;
		rules[i].port = p->net_allow_names[i].port;
		if (!rules[i].name) {
			resolver__free_rules(rules, i);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&r->lock);
	old = r->rules;
	n_old = r->n_rules;
	r->rules = rules;
	r->n_rules = p->n_net_allow_names;
	/* the kernel's entries name rules of the old list by index */
	resolver__sweep(r, 0);
	pthread_mutex_unlock(&r->lock);
	resolver__free_rules(old, n_old);
	return 0;
}

void resolver__stop(struct resolver *r)
{
	struct bw_dns_redirect off;

	if (!r)
		return;
	memset(&off, 0, sizeof(off));
	sensor__dns_redirect(r->sensor, &off);
	if (r->started) {
		uint64_t one = 1;

		if (write(r->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(r->thread, NULL);
		else
			pthread_detach(r->thread); /* cannot happen: an eventfd takes one write */
	}
	pthread_mutex_lock(&r->lock);
	resolver__sweep(r, 0);
	pthread_mutex_unlock(&r->lock);
	if (r->stats.upstream_failures || r->stats.allows_dropped)
		log__line(stderr, "buildwarden: ",
			  "resolver: %llu of %llu queries not answered by the upstream (SERVFAIL), %llu answered addresses not let through (no room)",
			  (unsigned long long)r->stats.upstream_failures,
			  (unsigned long long)r->stats.queries,
			  (unsigned long long)r->stats.allows_dropped);
	for (int i = 0; i < 4; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	resolver__free_rules(r->rules, r->n_rules);
	free(r->allows);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int resolver__start(struct sensor *s, const struct bw_policy *p, const char *upstream,
		    struct resolver **out, char *err, size_t errlen)
{
	static const int family[4] = { AF_INET, AF_INET, AF_INET6, AF_INET6 };
	static const int type[4] = { SOCK_DGRAM, SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM };
	struct bw_dns_redirect redir;
	struct resolver *r;
	int e;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->sensor = s;
	r->stop_fd = -1;
	for (int i = 0; i < 4; i++)
		r->fds[i] = -1;
	pthread_mutex_init(&r->lock, NULL);
	r->allows = calloc(RESOLVER_ALLOWS, sizeof(*r->allows));
	if (!r->allows) {
		e = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	e = upstream ? resolver__parse_upstream(upstream, &r->upstream, err, errlen)
		     : resolver_net__system_upstream(&r->upstream, err, errlen);
	if (e)
		goto fail;
	/* With scope host every process's DNS comes to the agent: a relay on this host
	 * (systemd-resolved on 127.0.0.53, dnsmasq) would have its own upstream queries sent
	 * back to the agent, which would ask the relay, and so on. */
	if (p->net_scope == BW_SCOPE_HOST && resolver_net__is_loopback(&r->upstream)) {
		e = -EINVAL;
		snprintf(err, errlen,
			 "with network.scope: host the upstream DNS server cannot be on this host (its own queries would come back to the agent): give the relay's upstream with --dns-upstream");
		goto fail;
	}
	r->upstream_len = resolver_net__sa_len(&r->upstream);
	e = resolver__set_policy(r, p);
	if (e) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(&redir, 0, sizeof(redir));
	for (int i = 0; i < 4; i++) {
		uint16_t port = 0;
		int fd = resolver__bind(family[i], type[i], &port);

		if (fd < 0) {
			/* a host without IPv6 has no ::1: its build's IPv6 DNS is not redirected,
			 * and reaches no name (the connects it would make are decided as before) */
			if (family[i] == AF_INET6 && (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL))
				continue;
			e = fd;
			snprintf(err, errlen, "cannot bind the resolver on %s: %s",
				 family[i] == AF_INET ? "127.0.0.1" : "::1", strerror(-e));
			goto fail;
		}
		r->fds[i] = fd;
		redir.port_be[i] = port;
	}
	r->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (r->stop_fd < 0) {
		e = -errno;
		snprintf(err, errlen, "cannot make an eventfd: %s", strerror(-e));
		goto fail;
	}
	e = thread__start_quiet(&r->thread, resolver__main, r);
	if (e) {
		snprintf(err, errlen, "cannot start the resolver's thread: %s", strerror(-e));
		goto fail;
	}
	r->started = true;
	redir.enabled = 1;
	redir.agent_tgid = (uint32_t)getpid();
	e = sensor__dns_redirect(s, &redir);
	if (e) {
		snprintf(err, errlen, "cannot point the build's DNS at the resolver: %s",
			 strerror(-e));
		goto fail;
	}
	*out = r;
	return 0;
fail:
	resolver__stop(r);
	return e;
}
