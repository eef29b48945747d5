/* The resolver's network side (resolver.h): which upstream server, and one message to it
 * and back over UDP or TCP, every length bounded by DNS_MSG_MAX and every wait by
 * RESOLVER_TIMEOUT_MS. No DNS parsing here: ldns reads the messages (dnsanswer.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/resolver.h"
#include "agent/resolver_int.h"
#include "base/clock.h"
#include "pipeline/dnsanswer.h"

int resolver__parse_upstream(const char *text, struct sockaddr_storage *out, char *err,
			     size_t errlen)
{
	struct sockaddr_storage ss;
	char host[64];
	const char *port = NULL, *colon = strchr(text, ':');
	unsigned long pn = 53;
	size_t hn;

	memset(&ss, 0, sizeof(ss));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || (close[1] && close[1] != ':')) {
			snprintf(err, errlen, "'%s' is not ADDR[:PORT] ('[IPv6]:PORT')", text);
			return -EINVAL;
		}
		hn = (size_t)(close - text - 1);
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, hn);
		host[hn] = '\0';
		if (close[1] == ':')
			port = close + 2;
	} else if (colon && strchr(colon + 1, ':')) {
		hn = strlen(text); /* a bare IPv6 address, no port */
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, text, hn + 1);
	} else {
		hn = colon ? (size_t)(colon - text) : strlen(text);
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, text, hn);
		host[hn] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (port) {
		char *end;

		if (!*port || *port < '0' || *port > '9' || strlen(port) > 5)
			goto bad_port;
		pn = strtoul(port, &end, 10);
		if (*end || pn == 0 || pn > 65535)
			goto bad_port;
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)pn);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)pn);
	} else {
		goto bad;
	}
	if (out)
		*out = ss;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not an IP address with an optional port", text);
	return -EINVAL;
bad_port:
	snprintf(err, errlen, "bad port in '%s': must be 1..65535", text);
	return -EINVAL;
}

/* The first nameserver line of /etc/resolv.conf. */
int resolver_net__system_upstream(struct sockaddr_storage *out, char *err, size_t errlen)
{
	char line[256], addr[64];
	FILE *f = fopen("/etc/resolv.conf", "re");
	int e = -ENOENT;

	if (!f) {
		e = -errno;
		snprintf(err, errlen, "cannot read /etc/resolv.conf: %s (use --dns-upstream)",
			 strerror(-e));
		return e;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " nameserver %63s", addr) != 1)
			continue;
		/* "fe80::1%eth0": a scope is not an address this resolver can use */
		if (strchr(addr, '%'))
			continue;
		e = resolver__parse_upstream(addr, out, err, errlen);
		break;
	}
	fclose(f);
	if (e == -ENOENT)
		snprintf(err, errlen, "no nameserver in /etc/resolv.conf (use --dns-upstream)");
	return e;
}

socklen_t resolver_net__sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

bool resolver_net__is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	{
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
}

static int resolver_net__wait(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left = deadline_ms - clock__mono_ms();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	n = poll(&p, 1, (int)left);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/* One query over UDP: the reply's length in reply, or -errno. */
ssize_t resolver_net__ask_udp(const struct sockaddr_storage *upstream, const uint8_t *q,
			      size_t len, uint16_t id, uint8_t *reply)
{
	int64_t deadline = clock__mono_ms() + RESOLVER_TIMEOUT_MS;
	int fd = socket(upstream->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n = -ETIMEDOUT;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)upstream,
		    resolver_net__sa_len(upstream)) ||
	    send(fd, q, len, 0) != (ssize_t)len) {
		n = -errno;
		goto out;
	}
	/* a datagram with another id is not the reply: wait on for the right one */
	while ((n = resolver_net__wait(fd, POLLIN, deadline)) == 0) {
		uint16_t got;

		n = recv(fd, reply, DNS_MSG_MAX, 0);
		if (n < 0) {
			n = -errno;
			break;
		}
		if (n >= 2) {
			got = (uint16_t)(reply[0] << 8 | reply[1]);
			if (got == id)
				break;
		}
	}
out:
	close(fd);
	return n;
}

static int resolver_net__io(int fd, uint8_t *buf, size_t len, bool write_side, int64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;
		int e = resolver_net__wait(fd, write_side ? POLLOUT : POLLIN, deadline);

		if (e)
			return e;
		n = write_side ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
			       : recv(fd, buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

/* One message over TCP: 2 bytes of length, then the message (RFC 1035 4.2.2). */
int resolver_net__send_tcp(int fd, const uint8_t *msg, size_t len, int64_t deadline)
{
	uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)(len & 0xff) };
	int e = resolver_net__io(fd, hdr, 2, true, deadline);

	return e ? e : resolver_net__io(fd, (uint8_t *)msg, len, true, deadline);
}

/* The message's length (at most DNS_MSG_MAX: the length field is 16 bits), or -errno. */
ssize_t resolver_net__recv_tcp(int fd, uint8_t *buf, int64_t deadline)
{
	uint8_t hdr[2];
	size_t len;
	int e = resolver_net__io(fd, hdr, 2, false, deadline);

	if (e)
		return e;
	len = (size_t)hdr[0] << 8 | hdr[1];
	if (len < 12)
		return -EBADMSG;
	e = resolver_net__io(fd, buf, len, false, deadline);
	return e ? e : (ssize_t)len;
}

ssize_t resolver_net__ask_tcp(const struct sockaddr_storage *upstream, int *up, const uint8_t *q,
			      size_t len, uint8_t *reply)
{
	int64_t deadline = clock__mono_ms() + RESOLVER_TIMEOUT_MS;
	int e;

	if (*up < 0) {
		*up = socket(upstream->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (*up < 0)
			return -errno;
		if (connect(*up, (const struct sockaddr *)upstream,
		    resolver_net__sa_len(upstream)) &&
		    errno != EINPROGRESS)
			return -errno;
	}
	e = resolver_net__send_tcp(*up, q, len, deadline);
	return e ? e : resolver_net__recv_tcp(*up, reply, deadline);
}
