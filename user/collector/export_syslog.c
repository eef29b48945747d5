// SPDX-License-Identifier: GPL-2.0
/* The syslog export sink: RFC 5424 messages over TCP (or TLS) with octet-counting
 * framing (RFC 6587 3.4.1: "LEN SP MSG"), one message per event: the key fields as
 * structured data, the whole event as JSON in MSG (see docs/collector.md, "Export").
 *
 * When is a message delivered? Plain syslog over TCP has no acknowledgement: the
 * sender knows only that the receiver's kernel took the bytes. So write() waits until
 * the socket's send queue is empty (SIOCOUTQ: every byte ACKed by the peer's TCP), and
 * settled() holds the cursor back another settle time (default 1 s) while the
 * connection stays up: a receiver that was stopped with our bytes still unread in its
 * socket resets the connection, and that is seen within the window, so the exporter
 * rewinds to the cursor and sends them again. What this cannot see is a receiver that
 * read the bytes and lost them itself (its own queue): use its disk queue. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio_ext.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/clock.h"
#include "base/fdio.h"
#include "collector/batch.h"
#include "collector/export_priv.h"

#define SYSLOG_FACILITY 13       /* log audit */
#define SYSLOG_SD_ID "buildwarden@32473"
#define SYSLOG_CONNECT_MS 5000
#define SYSLOG_ACK_MS 30000      /* the peer's TCP must ACK a batch within this */
#define SYSLOG_PENDING 64

struct syslog_sink {
	struct export_sink k;
	char host[256], port[8];
	bool tls;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	int64_t settle_ns;
	struct {
		int64_t id, acked_ns;
	} pend[SYSLOG_PENDING];      /* written batches not settled yet, oldest first */
	size_t n_pend;
	int64_t settled;             /* the highest settled row id */
};

static void syslog__ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "%s", errno ? strerror(errno) : "the peer closed the connection");
	ERR_clear_error();
}

static void syslog__close(struct export_sink *k)
{
	struct syslog_sink *y = (struct syslog_sink *)k;

	if (y->ssl) {
		SSL_free(y->ssl);
		y->ssl = NULL;
	}
	if (y->fd >= 0)
		close(y->fd);
	y->fd = -1;
	y->n_pend = 0;
	y->settled = 0;
}

static int syslog__connect(struct syslog_sink *y, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	int rc, last = ECONNREFUSED;

	rc = getaddrinfo(y->host, y->port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", y->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof(last);
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);

		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, SYSLOG_CONNECT_MS) != 1) {
			last = ETIMEDOUT;
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) < 0 || last) {
			close(fd);
			continue;
		}
		/* blocking from here on, every call bounded by these timeouts */
		{
			struct timeval tv = { .tv_sec = 10 };

			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		y->fd = fd;
		break;
	}
	freeaddrinfo(res);
	if (y->fd < 0) {
		snprintf(err, errlen, "cannot connect to %s port %s: %s", y->host, y->port,
			 strerror(last));
		return -last;
	}
	return 0;
}

static int syslog__open(struct export_sink *k, char *err, size_t errlen)
{
	struct syslog_sink *y = (struct syslog_sink *)k;
	char r[256];
	int rc;

	syslog__close(k);
	rc = syslog__connect(y, err, errlen);
	if (rc || !y->tls)
		return rc;
	y->ssl = SSL_new(y->ctx);
	if (!y->ssl || !SSL_set_fd(y->ssl, y->fd)) {
		snprintf(err, errlen, "TLS set-up failed");
		syslog__close(k);
		return -ENOMEM;
	}
	/* the receiver's certificate must name what we connected to */
	{
		X509_VERIFY_PARAM *vp = SSL_get0_param(y->ssl);
		unsigned char bin[16];

		if (inet_pton(AF_INET, y->host, bin) == 1 || inet_pton(AF_INET6, y->host, bin) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(vp, y->host);
		} else {
			SSL_set_tlsext_host_name(y->ssl, y->host);
			X509_VERIFY_PARAM_set1_host(vp, y->host, 0);
		}
	}
	errno = 0;
	if (SSL_connect(y->ssl) != 1) {
		long v = SSL_get_verify_result(y->ssl);

		syslog__ssl_reason(r, sizeof(r));
		snprintf(err, errlen, "TLS handshake with %s port %s failed: %s%s%s", y->host, y->port,
			 r, v != X509_V_OK ? ": " : "",
			 v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
		syslog__close(k);
		return -ECONNREFUSED;
	}
	return 0;
}

/* SD-PARAM values escape '"', '\' and ']' (RFC 5424 6.3.3); control bytes become '?'
 * so that a value cannot end the message early for a receiver that splits on them. */
static void syslog__param(FILE *out, const char *name, const char *v)
{
	if (!v || !*v)
		return;
	fprintf(out, " %s=\"", name);
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '"' || c == '\\' || c == ']')
			fputc('\\', out);
		fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
	}
	fputc('"', out);
}

static void syslog__param_u(FILE *out, const char *name, unsigned long long v)
{
	fprintf(out, " %s=\"%llu\"", name, v);
}

/* HOSTNAME and MSGID: PRINTUSASCII (33..126) at most max bytes, "-" when empty. */
static void syslog__token(FILE *out, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max; s++, n++)
		fputc((unsigned char)*s > 32 && (unsigned char)*s < 127 ? *s : '_', out);
	if (!n)
		fputc('-', out);
}

/* One RFC 5424 message (no framing). */
static void syslog__message(FILE *out, const struct export_item *it)
{
	const struct store_row *r = &it->row;
	const Buildwarden__V1__Event *ev = it->ev;
	const Buildwarden__V1__Verdict *vd = ev ? ev->verdict : NULL;
	const Buildwarden__V1__Process *pr = ev ? ev->process : NULL;
	const char *path = NULL, *address = NULL;
	unsigned port = 0;
	bool warn = (vd && vd->violation) || (r->flags & (EVF_CHAIN_BREAK | EVF_BAD_EVENT));
	char t[40], flags[96];

	export__rfc3339(t, sizeof(t), ev && ev->time_ns ? (int64_t)ev->time_ns : r->received_ns);
	fprintf(out, "<%d>1 %s ", SYSLOG_FACILITY * 8 + (warn ? 4 : 6), t);
	syslog__token(out, r->host, 255);
	fputs(" buildwarden - ", out);
	syslog__token(out, r->kind, 32);
	fputs(" [" SYSLOG_SD_ID, out);
	syslog__param(out, "agent", r->agent);
	syslog__param(out, "host", r->host);
	syslog__param(out, "runId", r->run_id);
	syslog__param_u(out, "seq", r->seq);
	syslog__param(out, "kind", r->kind);
	syslog__param_u(out, "exportId", (unsigned long long)r->id);
	if (r->received_ns) {
		export__rfc3339(t, sizeof(t), r->received_ns);
		syslog__param(out, "receivedTime", t);
	}
	export__flag_names(flags, sizeof(flags), r->flags);
	syslog__param(out, "integrity", flags);
	if (vd && vd->violation) {
		const ProtobufCEnumValue *a =
			protobuf_c_enum_descriptor_get_value(&buildwarden__v1__action__descriptor,
							     (int)vd->action);

		syslog__param(out, "violation", "true");
		syslog__param(out, "rule", vd->rule);
		syslog__param(out, "action", a ? a->name : NULL);
	}
	if (pr) {
		syslog__param(out, "exe", pr->exe);
		if (pr->pid)
			syslog__param_u(out, "pid", pr->pid);
		syslog__param(out, "inBuild", pr->in_build ? "true" : "false");
	}
	if (ev && ev->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE && ev->file)
		path = ev->file->path;
	else if (ev && ev->body_case == BUILDWARDEN__V1__EVENT__BODY_EXEC && ev->exec)
		path = ev->exec->filename;
	else if (ev && ev->body_case == BUILDWARDEN__V1__EVENT__BODY_CONNECT && ev->connect)
		address = ev->connect->address, port = ev->connect->port;
	syslog__param(out, "path", path);
	syslog__param(out, "address", address);
	if (port)
		syslog__param_u(out, "port", port);
	fputs("] ", out);
	export__json(out, it);
}

static int syslog__send(struct syslog_sink *y, const char *buf, size_t len)
{
	if (!y->ssl)
		return fdio__write_all(y->fd, buf, len);
	while (len) {
		int n = SSL_write(y->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

		if (n <= 0)
			return -EPIPE;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits until the peer's TCP has acknowledged every byte sent. */
static int syslog__acked(struct syslog_sink *y, char *err, size_t errlen)
{
	int64_t end = clock__mono_ns() + SYSLOG_ACK_MS * NSEC_PER_MSEC;

	for (;;) {
		struct pollfd p = { .fd = y->fd, .events = POLLRDHUP };
		int q = 0;

		if (ioctl(y->fd, SIOCOUTQ, &q) < 0) {
			snprintf(err, errlen, "SIOCOUTQ: %s", strerror(errno));
			return -errno;
		}
		if (!q)
			return 0;
		if (poll(&p, 1, 0) == 1 && p.revents & (POLLERR | POLLHUP | POLLRDHUP)) {
			snprintf(err, errlen, "%s port %s closed the connection with %d bytes unacknowledged",
				 y->host, y->port, q);
			return -ECONNRESET;
		}
		if (clock__mono_ns() > end) {
			snprintf(err, errlen, "%s port %s acknowledged nothing of the last %d bytes for %d s",
				 y->host, y->port, q, SYSLOG_ACK_MS / 1000);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
}

static int syslog__write(struct export_sink *k, const struct export_item *it, size_t n, char *err,
			 size_t errlen)
{
	struct syslog_sink *y = (struct syslog_sink *)k;
	char *buf = NULL, *msg = NULL;
	size_t len = 0, mlen = 0;
	FILE *out = open_memstream(&buf, &len), *m;
	int rc = 0;

	if (!out)
		return -ENOMEM;
	/* one thread writes them: stdio's lock per byte was most of the export's time */
	__fsetlocking(out, FSETLOCKING_BYCALLER);
	for (size_t i = 0; i < n; i++) {
		m = open_memstream(&msg, &mlen);
		if (!m) {
			rc = -ENOMEM;
			break;
		}
		__fsetlocking(m, FSETLOCKING_BYCALLER);
		syslog__message(m, &it[i]);
		if (fclose(m)) {
			rc = -ENOMEM;
			break;
		}
		fprintf(out, "%zu ", mlen);
		fwrite(msg, 1, mlen, out);
		free(msg);
		msg = NULL;
	}
	free(msg);
	if (fclose(out) || rc) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = syslog__send(y, buf, len);
	free(buf);
	if (rc) {
		char r[200];

		syslog__ssl_reason(r, sizeof(r));
		snprintf(err, errlen, "cannot send to %s port %s: %s", y->host, y->port, r);
		return rc;
	}
	rc = syslog__acked(y, err, errlen);
	if (rc)
		return rc;
	if (y->n_pend == SYSLOG_PENDING) {
		/* fold into the newest: it settles later, which only holds the cursor back */
		y->pend[SYSLOG_PENDING - 1].id = it[n - 1].row.id;
		y->pend[SYSLOG_PENDING - 1].acked_ns = clock__mono_ns();
	} else {
		y->pend[y->n_pend].id = it[n - 1].row.id;
		y->pend[y->n_pend].acked_ns = clock__mono_ns();
		y->n_pend++;
	}
	return 0;
}

/* Is the connection still up? The receiver never sends: readable means it closed
 * (or, with TLS, sent a record such as a session ticket, which is read and dropped). */
static bool syslog__alive(struct syslog_sink *y)
{
	struct pollfd p = { .fd = y->fd, .events = POLLIN | POLLRDHUP };
	char scratch[4096];

	if (y->fd < 0)
		return false;
	if (poll(&p, 1, 0) != 1)
		return true;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP))
		return false;
	if (!y->ssl) {
		ssize_t n = recv(y->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	}
	fcntl(y->fd, F_SETFL, fcntl(y->fd, F_GETFL) | O_NONBLOCK);
	{
		int n = SSL_read(y->ssl, scratch, sizeof(scratch));
		int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(y->ssl, n);

		fcntl(y->fd, F_SETFL, fcntl(y->fd, F_GETFL) & ~O_NONBLOCK);
		ERR_clear_error();
		return e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
	}
}

static int64_t syslog__settled(struct export_sink *k, int64_t written)
{
	struct syslog_sink *y = (struct syslog_sink *)k;
	int64_t now = clock__mono_ns();
	size_t i = 0;

	if (!y->n_pend)
		return y->settled ? y->settled : -1;
	if (!syslog__alive(y))
		return EXPORT_BROKEN;
	while (i < y->n_pend && now - y->pend[i].acked_ns >= y->settle_ns)
		y->settled = y->pend[i++].id;
	memmove(y->pend, y->pend + i, (y->n_pend - i) * sizeof(y->pend[0]));
	y->n_pend -= i;
	return y->settled ? y->settled : 0;
}

static void syslog__free(struct export_sink *k)
{
	struct syslog_sink *y = (struct syslog_sink *)k;

	syslog__close(k);
	if (y->ctx)
		SSL_CTX_free(y->ctx);
	free(y);
}

/* "tcp://HOST:PORT", "tls://HOST:PORT", HOST a name, an IPv4 literal or [IPv6]. */
static int syslog__parse(struct syslog_sink *y, const char *url, char *err, size_t errlen)
{
	const char *h, *colon, *end;
	char *pe;
	unsigned long port;

	y->tls = !strncmp(url, "tls://", 6);
	h = url + 6;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			goto bad;
		colon = end + 1;
		h++;
	} else {
		colon = strrchr(h, ':');
		end = colon;
	}
	if (!colon || end == h || (size_t)(end - h) >= sizeof(y->host))
		goto bad;
	memcpy(y->host, h, (size_t)(end - h));
	y->host[end - h] = 0;
	errno = 0;
	port = strtoul(colon + 1, &pe, 10);
	if (errno || pe == colon + 1 || *pe || !port || port > 65535)
		goto bad;
	snprintf(y->port, sizeof(y->port), "%lu", port);
	return 0;
bad:
	snprintf(err, errlen, "--export syslog:%s: expected tcp://HOST:PORT or tls://HOST:PORT", url);
	return -EINVAL;
}

int export_syslog__new(const struct export_cfg *cfg, const char *url, struct export_sink **out,
		       char *err, size_t errlen)
{
	struct syslog_sink *y = calloc(1, sizeof(*y));
	char r[256];
	int rc;

	if (!y)
		return -ENOMEM;
	y->fd = -1;
	y->k.name = "syslog";
	y->k.open = syslog__open;
	y->k.write = syslog__write;
	y->k.settled = syslog__settled;
	y->k.close = syslog__close;
	y->k.free = syslog__free;
	y->settle_ns = (int64_t)((cfg->settle_s >= 0 ? cfg->settle_s : 1.0) * 1e9);
	rc = syslog__parse(y, url, err, errlen);
	if (rc)
		goto fail;
	if (y->tls) {
		y->ctx = SSL_CTX_new(TLS_client_method());
		if (!y->ctx) {
			rc = -ENOMEM;
			snprintf(err, errlen, "TLS set-up failed");
			goto fail;
		}
		SSL_CTX_set_min_proto_version(y->ctx, TLS1_2_VERSION);
		SSL_CTX_set_verify(y->ctx, SSL_VERIFY_PEER, NULL);
		if ((cfg->tls_ca ? SSL_CTX_load_verify_locations(y->ctx, cfg->tls_ca, NULL)
				 : SSL_CTX_set_default_verify_paths(y->ctx)) != 1) {
			syslog__ssl_reason(r, sizeof(r));
			snprintf(err, errlen, "'%s': no usable CA certificate: %s",
				 cfg->tls_ca ? cfg->tls_ca : "the system's CA store", r);
			rc = -ENOENT;
			goto fail;
		}
		if (cfg->tls_cert &&
		    (SSL_CTX_use_certificate_chain_file(y->ctx, cfg->tls_cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(y->ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
		     SSL_CTX_check_private_key(y->ctx) != 1)) {
			syslog__ssl_reason(r, sizeof(r));
			snprintf(err, errlen, "'%s'/'%s': not a usable certificate and key: %s",
				 cfg->tls_cert, cfg->tls_key ? cfg->tls_key : "", r);
			rc = -ENOENT;
			goto fail;
		}
	}
	*out = &y->k;
	return 0;
fail:
	syslog__free(&y->k);
	return rc;
}
