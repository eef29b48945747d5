/* See loopnet.h. */
#include "lib/loopnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "lib/bwtest.h"

int loopnet_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof(*ss));
	if (!strchr(addr, ':')) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1 || (ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			return -1;
		*sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
		/* ::ffff:127.x.y.z is loopback too: the enforce suites check that spelling */
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) &&
		    !(IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127))
			return -1;
		*sl = sizeof(*s6);
	}
	return 0;
}

/* reuse: SO_REUSEADDR, for a port asked for by number; backlog: listen()'s */
static int loopnet__bind(const char *addr, int type, uint16_t *port, bool reuse, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	if (loopnet_addr(addr, *port, &ss, &sl))
		return -1;
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || (type == SOCK_STREAM && listen(fd, backlog)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return -1;
	}
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int loopnet_bind(const char *addr, int type, uint16_t *port)
{
	return loopnet__bind(addr, type, port, true, 64);
}

int loopnet_bind_any(const char *addr, int type, uint16_t *port)
{
	*port = 0;
	return loopnet__bind(addr, type, port, false, 16);
}

unsigned loopnet_accepted(int lfd)
{
	unsigned n = 0;
	int c;

	while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

unsigned loopnet_received(int fd)
{
	char buf[64];
	unsigned n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

int loopnet_helper_net(bool udp, const char *tag, const char *addr, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, rc;

	if (loopnet_addr(addr, (uint16_t)atoi(port), &ss, &sl))
		return 2;
	fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 3;
	rc = udp ? (sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, sl) == 1 ? 0 : -1)
		 : connect(fd, (struct sockaddr *)&ss, sl);
	printf("RESULT %s %s\n", tag, rc ? (errno == EPERM ? "EPERM" : strerror(errno)) : "ok");
	fflush(stdout);
	close(fd);
	return 0;
}

/* ---- DNS ------------------------------------------------------------------ */

/* Does zone say never to answer want ("!NAME.")? */
static bool dns_silent(const char *const *zone, const ldns_rdf *want)
{
	bool drop = false;

	for (size_t i = 0; zone[i] && !drop; i++) {
		ldns_rdf *silent;

		if (zone[i][0] != '!' || !(silent = ldns_dname_new_frm_str(zone[i] + 1)))
			continue;
		drop = ldns_dname_compare(want, silent) == 0;
		ldns_rdf_deep_free(silent);
	}
	return drop;
}

static int dns_reply(const char *const *zone, const uint8_t *q, size_t len, uint8_t **out,
		     size_t *outlen)
{
	ldns_pkt *pkt = NULL;
	ldns_rdf *want, *owner;
	ldns_rr_type qtype;
	bool known = false;
	int rc = -1;

	if (ldns_wire2pkt(&pkt, q, len) != LDNS_STATUS_OK)
		return -1;
	if (ldns_rr_list_rr_count(ldns_pkt_question(pkt)) != 1)
		goto out;
	want = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt), 0));
	if (dns_silent(zone, want)) /* never answered: the asker times out */
		goto out;
	qtype = ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(pkt), 0));
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_aa(pkt, true);
	ldns_pkt_set_ra(pkt, true);
	owner = ldns_rdf_clone(want);
	/* the CNAME, then its target's records, as a server gives them */
	for (int pass = 0; pass < 2 && owner; pass++) {
		ldns_rdf *next = NULL;

		for (size_t i = 0; zone[i]; i++) {
			ldns_rr *rr = NULL;

			if (zone[i][0] == '!' ||
			    ldns_rr_new_frm_str(&rr, zone[i], 0, NULL, NULL) != LDNS_STATUS_OK)
				continue;
			if (ldns_dname_compare(ldns_rr_owner(rr), owner) != 0) {
				ldns_rr_free(rr);
				continue;
			}
			known = true;
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME) {
				if (next)
					ldns_rdf_deep_free(next);
				next = ldns_rdf_clone(ldns_rr_rdf(rr, 0));
				ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
			} else if (ldns_rr_get_type(rr) == qtype) {
				ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
			} else {
				ldns_rr_free(rr);
			}
		}
		ldns_rdf_deep_free(owner);
		owner = next;
	}
	if (owner)
		ldns_rdf_deep_free(owner);
	if (!known)
		ldns_pkt_set_rcode(pkt, LDNS_RCODE_NXDOMAIN);
	rc = ldns_pkt2wire(out, pkt, outlen) == LDNS_STATUS_OK ? 0 : -1;
out:
	ldns_pkt_free(pkt);
	return rc;
}

int loopnet_read_full(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void dns_serve_tcp(const char *const *zone, int lfd)
{
	struct timeval tv = { .tv_sec = 5 };
	uint8_t buf[65536], hdr[2];
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (loopnet_read_full(fd, hdr, 2) == 0) {
		size_t len = (size_t)hdr[0] << 8 | hdr[1];
		uint8_t *out;
		size_t outlen;

		if (loopnet_read_full(fd, buf, len) || dns_reply(zone, buf, len, &out, &outlen))
			break;
		hdr[0] = (uint8_t)(outlen >> 8);
		hdr[1] = (uint8_t)outlen;
		if (write(fd, hdr, 2) != 2 || write(fd, out, outlen) != (ssize_t)outlen) {
			free(out);
			break;
		}
		free(out);
	}
	close(fd);
}

pid_t loopnet_dns_start(const char *const *zone, const char *count_path, uint16_t *port)
{
	uint16_t p = 0;
	int udp = loopnet_bind("127.0.0.1", SOCK_DGRAM, &p), tcp;
	pid_t pid;

	if (udp < 0)
		return -errno;
	tcp = loopnet_bind("127.0.0.1", SOCK_STREAM, &p);
	if (tcp < 0) {
		close(udp);
		return -errno;
	}
	pid = bw_fork();
	if (pid < 0) {
		close(udp);
		close(tcp);
		return pid;
	}
	if (pid == 0) {
		unsigned queries = 0;

		for (;;) {
			struct pollfd pf[2] = { { .fd = udp, .events = POLLIN },
						{ .fd = tcp, .events = POLLIN } };

			if (poll(pf, 2, -1) < 0)
				continue;
			queries += !!(pf[0].revents & POLLIN) + !!(pf[1].revents & POLLIN);
			if (pf[0].revents & POLLIN) {
				uint8_t buf[4096], *out;
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				size_t outlen;
				ssize_t n = recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

				if (n > 0 && dns_reply(zone, buf, (size_t)n, &out, &outlen) == 0) {
					sendto(udp, out, outlen, 0, (struct sockaddr *)&from, fl);
					free(out);
				}
			}
			if (pf[1].revents & POLLIN)
				dns_serve_tcp(zone, tcp);
			if (count_path) {
				FILE *f = fopen(count_path, "we");

				if (f) {
					fprintf(f, "%u\n", queries);
					fclose(f);
				}
			}
		}
	}
	bw_track_pid(pid);
	close(udp);
	close(tcp);
	*port = p;
	return pid;
}

/* ---- the registry ------------------------------------------------------------ */

static void http_serve(int lfd, const char *body)
{
	char req[2048], resp[4096];
	struct timeval tv = { .tv_sec = 5 };
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	size_t got = 0;
	int n;

	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* the request up to its blank line, then the answer */
	while (got + 1 < sizeof(req)) {
		ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	n = snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
		     strlen(body), body);
	if (n > 0 && write(fd, resp, (size_t)n) < 0)
		perror("registry: write");
	close(fd);
}

pid_t loopnet_http_start(const int *lfds, size_t n, const char *body)
{
	pid_t pid = bw_fork();

	if (pid < 0 || n > 8)
		return pid < 0 ? pid : -EINVAL;
	if (pid == 0) {
		struct pollfd pf[8];

		for (size_t i = 0; i < n; i++)
			pf[i] = (struct pollfd){ .fd = lfds[i], .events = POLLIN };
		for (;;) {
			if (poll(pf, (nfds_t)n, -1) < 0)
				continue;
			for (size_t i = 0; i < n; i++)
				if (pf[i].revents & POLLIN)
					http_serve(lfds[i], body);
		}
	}
	bw_track_pid(pid);
	return pid;
}

void loopnet_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	bw_wait_bounded(pid, 10);
	bw_untrack_pid(pid);
}

/* ---- the build's side ------------------------------------------------------------ */

const char *loopnet_resolve(const char *name, char *addr, size_t addrlen)
{
	struct sockaddr_storage ss, from;
	socklen_t sl, fl = sizeof(from);
	struct timeval tv = { .tv_sec = 15 };
	ldns_pkt *q = NULL, *r = NULL;
	uint8_t *wire = NULL, buf[4096];
	const char *res = "noanswer";
	size_t wlen;
	ssize_t got;
	int fd;

	if (loopnet_addr("127.0.0.1", 53, &ss, &sl))
		return "notloopback";
	if (ldns_pkt_query_new_frm_str(&q, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD) !=
	    LDNS_STATUS_OK)
		return "query";
	ldns_pkt_set_random_id(q);
	if (ldns_pkt2wire(&wire, q, &wlen) != LDNS_STATUS_OK) {
		ldns_pkt_free(q);
		return "query";
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		res = "socket";
		goto out_nofd;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, wire, wlen, 0, (struct sockaddr *)&ss, sl) != (ssize_t)wlen) {
		res = errno == EPERM ? "sendEPERM" : "send";
		goto out;
	}
	got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	if (got <= 0) {
		res = "timeout";
		goto out;
	}
	if (ldns_wire2pkt(&r, buf, (size_t)got) != LDNS_STATUS_OK || ldns_pkt_id(r) != ldns_pkt_id(q)) {
		res = "badreply";
		goto out;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(r)); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(r), i);

		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A) {
			inet_ntop(AF_INET, ldns_rdf_data(ldns_rr_rdf(rr, 0)), addr, (socklen_t)addrlen);
			res = NULL;
			break;
		}
	}
out:
	close(fd);
out_nofd:
	free(wire);
	ldns_pkt_free(q);
	ldns_pkt_free(r);
	return res;
}

const char *loopnet_connect(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, rc;

	if (loopnet_addr(addr, port, &ss, &sl))
		return "notloopback";
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket";
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	close(fd);
	return rc == 0 ? "ok" : errno == EPERM ? "EPERM" : "error";
}

const char *loopnet_fetch(const char *name, uint16_t port, const char *path, const char *out)
{
	char addr[64], req[512], resp[8192];
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = 10 };
	const char *e = loopnet_resolve(name, addr, sizeof(addr)), *body;
	size_t got = 0;
	socklen_t sl;
	FILE *f;
	int fd, n;

	if (e)
		return e;
	if (loopnet_addr(addr, port, &ss, &sl))
		return "notloopback";
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket";
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		e = errno == EPERM ? "EPERM" : "connect";
		close(fd);
		return e;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, name);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return "write";
	}
	for (;;) {
		ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	resp[got] = '\0';
	body = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.0 200", 12) || !body)
		return "badresponse";
	f = fopen(out, "we");
	if (!f || fputs(body + 4, f) < 0 || fclose(f))
		return "write";
	return "ok";
}
