// SPDX-License-Identifier: GPL-2.0
/* The real collector server on loopback, in a thread of this process, with tiny
 * hand-written clients: plaintext and TLS round trips, IPv6, refusals (oversized frame,
 * garbage, slowloris, a certificate from another CA, plaintext against TLS, no client
 * certificate), a flooding agent next to a quiet one, and a stop that commits. Ports are
 * picked by the kernel (port 0); certificates are made with the openssl CLI at run time.
 * Every test is bounded by alarm(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "collector/server.h"
#include "collector/store.h"
#include "transport/chain.h"
#include "transport/frame.h"

static char tmpdir[64];

/* ---- server in a thread ------------------------------------------------- */

struct srv {
	struct server *s;
	pthread_t th;
	char db[128];
	char log[128];
	FILE *logf;
	int port;
};

static void *srv_main(void *arg)
{
	struct srv *v = arg;

	server__run(v->s);
	return NULL;
}

static void srv_start(struct srv *v, struct server_cfg *cfg, const char *name)
{
	char err[512];

	memset(v, 0, sizeof(*v));
	snprintf(v->db, sizeof(v->db), "%s/%s.db", tmpdir, name);
	snprintf(v->log, sizeof(v->log), "%s/%s.log", tmpdir, name);
	v->logf = fopen(v->log, "w+");
	assert_non_null(v->logf);
	cfg->db = v->db;
	cfg->log = v->logf;
	if (!cfg->listen)
		cfg->listen = "127.0.0.1:0";
	assert_int_equal(server__new(cfg, &v->s, err, sizeof(err)), 0);
	v->port = server__port(v->s);
	assert_true(v->port > 0);
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
}

static void srv_stop(struct srv *v)
{
	server__stop(v->s);
	pthread_join(v->th, NULL);
	server__free(v->s);
	fclose(v->logf);
}

/* true when the server's log has a line containing s (waits up to 3 s: the log line may
 * come a moment after the client saw the effect) */
static bool srv_logged(struct srv *v, const char *s)
{
	for (int i = 0; i < 60; i++) {
		char line[1024];
		FILE *f = fopen(v->log, "r");
		bool found = false;

		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (strstr(line, s))
				found = true;
		fclose(f);
		if (found)
			return true;
		usleep(50000);
	}
	return false;
}

static long long db_count(struct srv *v, const char *sql)
{
	struct store *st;
	sqlite3_stmt *q;
	char err[256];
	long long n = -1;

	assert_int_equal(store__open(v->db, STORE_READ, &st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_prepare_v2(store__db(st), sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	store__close(st);
	return n;
}

/* ---- clients ------------------------------------------------------------ */

struct cli {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint8_t buf[1 << 16];
	size_t len;
	uint8_t chain[32];
};

static int cli_connect_fd(int port, bool v6)
{
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	if (v6) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };

		a.sin6_addr = in6addr_loopback;
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static struct cli *cli_new(int port, bool v6)
{
	struct cli *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->fd = cli_connect_fd(port, v6);
	return c;
}

/* TLS client: cert/key name files in tmpdir (NULL: no client certificate). Returns
 * false when the handshake fails (TLS 1.3 may only fail on the first read). */
static bool cli_tls(struct cli *c, const char *cert, const char *key)
{
	char p[256];

	c->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(c->ctx);
	snprintf(p, sizeof(p), "%s/ca.pem", tmpdir);
	assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, p, NULL), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (cert) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, cert);
		assert_int_equal(SSL_CTX_use_certificate_chain_file(c->ctx, p), 1);
		snprintf(p, sizeof(p), "%s/%s", tmpdir, key);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(c->ctx, p, SSL_FILETYPE_PEM), 1);
	}
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set1_host(c->ssl, "127.0.0.1");
	return SSL_connect(c->ssl) == 1;
}

static void cli_free(struct cli *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c);
	ERR_clear_error();
}

static bool cli_write(struct cli *c, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = c->ssl ? SSL_write(c->ssl, p, (int)len) : send(c->fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool cli_send(struct cli *c, const Buildwarden__V1__AgentMessage *m)
{
	size_t len = buildwarden__v1__agent_message__get_packed_size(m);
	uint8_t *b = malloc(len + 10);
	size_t hl = frame__encode_len(len, b);
	bool ok;

	buildwarden__v1__agent_message__pack(m, b + hl);
	ok = cli_write(c, b, hl + len);
	free(b);
	return ok;
}

/* Next CollectorMessage, or NULL on EOF, error or the 5 s timeout. */
static Buildwarden__V1__CollectorMessage *cli_recv(struct cli *c)
{
	for (;;) {
		const uint8_t *p;
		size_t off = 0, plen;
		ssize_t n;

		if (frame__next(c->buf, c->len, &off, 0, &p, &plen) == 1) {
			Buildwarden__V1__CollectorMessage *m =
				buildwarden__v1__collector_message__unpack(NULL, plen, p);

			memmove(c->buf, c->buf + off, c->len - off);
			c->len -= off;
			return m;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len))
			   : recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static bool cli_hello(struct cli *c, const char *agent, const char *run)
{
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__Hello h = BUILDWARDEN__V1__HELLO__INIT;

	h.agent_id = (char *)agent;
	h.host = (char *)"runner-1";
	h.run_id = (char *)run;
	h.schema_version = BW_SCHEMA_VERSION;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	return cli_send(c, &m);
}

/* Expects a Welcome; returns its last_seq (or -1). */
static long long cli_welcome(struct cli *c)
{
	Buildwarden__V1__CollectorMessage *m = cli_recv(c);
	long long v = -1;

	if (m && m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME) {
		v = (long long)m->welcome->last_seq;
		/* a new run: chain from the start value the collector bound to it */
		if (!v && m->welcome->last_chain.len == 32)
			memcpy(c->chain, m->welcome->last_chain.data, 32);
	}
	if (m)
		buildwarden__v1__collector_message__free_unpacked(m, NULL);
	return v;
}

/* Packs frames first..last into buf (chained in c->chain); returns the length. */
static size_t cli_frames(struct cli *c, const char *run, uint64_t first, uint64_t last,
			 uint8_t *buf, size_t cap)
{
	size_t len = 0;

	for (uint64_t s = first; s <= last; s++) {
		Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
		Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
		Buildwarden__V1__RunStart rs = BUILDWARDEN__V1__RUN_START__INIT;
		uint8_t evb[256];
		size_t el, ml;

		ev.seq = s;
		ev.time_ns = 1700000000000000000ull + s;
		ev.run_id = (char *)run;
		if (s == 1) {
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
			ev.run_start = &rs;
		} else {
			ex.filename = (char *)"/usr/bin/cc";
			ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
			ev.exec = &ex;
		}
		el = buildwarden__v1__event__pack(&ev, evb);
		chain__next(c->chain, s, evb, el, NULL, 0, c->chain);
		f.seq = s;
		f.event.data = evb;
		f.event.len = el;
		f.chain.data = c->chain;
		f.chain.len = 32;
		m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
		m.event = &f;
		ml = buildwarden__v1__agent_message__get_packed_size(&m);
		assert_true(len + ml + 10 <= cap);
		len += frame__encode_len(ml, buf + len);
		len += buildwarden__v1__agent_message__pack(&m, buf + len);
	}
	return len;
}

/* Reads Acks until one reaches seq; false on anything else. */
static bool cli_wait_ack(struct cli *c, uint64_t seq)
{
	for (;;) {
		Buildwarden__V1__CollectorMessage *m = cli_recv(c);
		bool ack;
		uint64_t got;

		if (!m)
			return false;
		ack = m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK;
		got = ack ? m->ack->seq : 0;
		buildwarden__v1__collector_message__free_unpacked(m, NULL);
		if (!ack)
			return false;
		if (got >= seq)
			return got == seq;
	}
}

/* Expects a Refusal containing text (NULL: any), then the end of the stream. */
static void cli_expect_refusal(struct cli *c, const char *text)
{
	Buildwarden__V1__CollectorMessage *m = cli_recv(c);

	assert_non_null(m);
	assert_int_equal(m->msg_case, BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL);
	if (text && !strstr(m->refusal->reason, text))
		fail_msg("refusal '%s' does not say '%s'", m->refusal->reason, text);
	buildwarden__v1__collector_message__free_unpacked(m, NULL);
	assert_null(cli_recv(c));
}

static void cli_run(struct cli *c, const char *agent, const char *run, uint64_t n)
{
	uint8_t *buf = malloc(1 << 20);
	size_t len;

	assert_true(cli_hello(c, agent, run));
	assert_int_equal(cli_welcome(c), 0);
	len = cli_frames(c, run, 1, n, buf, 1 << 20);
	assert_true(cli_write(c, buf, len));
	assert_true(cli_wait_ack(c, n));
	free(buf);
}

/* ---- tests -------------------------------------------------------------- */

static void test_collector_server__insecure_round_trip(void **state)
{
	struct server_cfg cfg = { .insecure = true };
	struct srv v;
	struct cli *c;

	alarm(30);
	srv_start(&v, &cfg, "plain");
	c = cli_new(v.port, false);
	cli_run(c, "agent-1", "run-1", 1000);
	cli_free(c);
	/* a reconnect resumes where the store is */
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-1", "run-1"));
	assert_int_equal(cli_welcome(c), 1000);
	cli_free(c);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM events"), 1000);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM findings"), 0);
	srv_stop(&v);
	assert_true(srv_logged(&v, "stopped: 1000 events stored"));
	alarm(0);
}

static void test_collector_server__ipv6(void **state)
{
	struct server_cfg cfg = { .insecure = true, .listen = "[::1]:0" };
	struct srv v;
	struct cli *c;

	alarm(30);
	srv_start(&v, &cfg, "v6");
	c = cli_new(v.port, true);
	cli_run(c, "agent-6", "run-6", 10);
	cli_free(c);
	srv_stop(&v);
	assert_true(srv_logged(&v, "[::1]:"));
	alarm(0);
}

static void test_collector_server__refusals_leave_others_served(void **state)
{
	struct server_cfg cfg = { .insecure = true, .max_frame = 4096, .handshake_timeout = 0.5 };
	struct cli *good, *bad;
	uint8_t buf[512];
	struct srv v;
	size_t n;

	alarm(30);
	srv_start(&v, &cfg, "refuse");
	good = cli_new(v.port, false);
	assert_true(cli_hello(good, "agent-g", "run-g"));
	assert_int_equal(cli_welcome(good), 0);

	/* oversized frame: refused on its length alone */
	bad = cli_new(v.port, false);
	n = frame__encode_len(1u << 20, buf);
	assert_true(cli_write(bad, buf, n));
	cli_expect_refusal(bad, "above the limit");
	cli_free(bad);
	assert_true(srv_logged(&v, "frame of 1048576 bytes above the limit of 4096"));

	/* not protobuf */
	bad = cli_new(v.port, false);
	memcpy(buf, "\x05\xff\xff\xff\xff\xff", 6);
	assert_true(cli_write(bad, buf, 6));
	cli_expect_refusal(bad, "not an AgentMessage");
	cli_free(bad);

	/* an EventFrame before Hello */
	bad = cli_new(v.port, false);
	n = cli_frames(bad, "run-b", 1, 1, buf, sizeof(buf));
	assert_true(cli_write(bad, buf, n));
	cli_expect_refusal(bad, "Hello");
	cli_free(bad);

	/* slowloris: half a Hello, then nothing */
	bad = cli_new(v.port, false);
	assert_true(cli_write(bad, (const uint8_t *)"\x20\x0a", 2));
	cli_expect_refusal(bad, "no Hello within");
	cli_free(bad);
	assert_true(srv_logged(&v, "no Hello within 0.5 s"));

	/* the good agent never noticed */
	{
		uint8_t *fb = malloc(1 << 20);

		n = cli_frames(good, "run-g", 1, 50, fb, 1 << 20);
		assert_true(cli_write(good, fb, n));
		assert_true(cli_wait_ack(good, 50));
		free(fb);
	}
	cli_free(good);
	srv_stop(&v);
	alarm(0);
}

/* A seq that goes backwards on one connection: refused with a log line that names the
 * peer, agent and run, and an integrity finding for the other content. */
static void test_collector_server__seq_backwards_refused(void **state)
{
	struct server_cfg cfg = { .insecure = true };
	uint8_t *buf = malloc(1 << 16), chain2[32];
	struct srv v;
	struct cli *c;
	size_t n;

	alarm(30);
	srv_start(&v, &cfg, "backwards");
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-b", "run-b"));
	assert_int_equal(cli_welcome(c), 0);
	n = cli_frames(c, "run-b", 1, 2, buf, 1 << 16);
	memcpy(chain2, c->chain, 32);
	n += cli_frames(c, "run-b", 3, 5, buf + n, (1 << 16) - n);
	assert_true(cli_write(c, buf, n));
	assert_true(cli_wait_ack(c, 5));
	/* seq 3 again, chained as a forger would, with other content (a runStart) */
	memcpy(c->chain, chain2, 32);
	n = cli_frames(c, "run-b", 1, 1, buf, 1 << 16);
	{
		/* re-label the packed seq-1 frame as seq 3: frame seq is field 1 of the
		 * EventFrame, so repack by hand instead */
		Buildwarden__V1__AgentMessage *m;

		assert_true(buf[0] < 0x80); /* a one-byte length */
		m = buildwarden__v1__agent_message__unpack(NULL, n - 1, buf + 1);

		assert_non_null(m);
		m->event->seq = 3;
		n = buildwarden__v1__agent_message__get_packed_size(m);
		n = frame__encode_len(n, buf);
		n += buildwarden__v1__agent_message__pack(m, buf + n);
		buildwarden__v1__agent_message__free_unpacked(m, NULL);
	}
	assert_true(cli_write(c, buf, n));
	cli_expect_refusal(c, "seq 3 goes backwards");
	cli_free(c);
	assert_true(srv_logged(&v, "agent-b/run-b: refused: seq 3 goes backwards"));
	srv_stop(&v);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM events"), 5);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM findings WHERE first_seq = 3"), 1);
	free(buf);
	alarm(0);
}

/* A peer that closes inside a frame: the whole frames before it are stored, and the
 * log says how much of the torn one came. */
static void test_collector_server__torn_frame_logged(void **state)
{
	struct server_cfg cfg = { .insecure = true };
	uint8_t *buf = malloc(1 << 16);
	struct srv v;
	struct cli *c;
	size_t n;

	alarm(30);
	srv_start(&v, &cfg, "torn");
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-t", "run-t"));
	assert_int_equal(cli_welcome(c), 0);
	n = cli_frames(c, "run-t", 1, 3, buf, 1 << 16);
	assert_true(cli_write(c, buf, n));
	assert_true(cli_wait_ack(c, 3));
	n = frame__encode_len(500, buf);
	memset(buf + n, 0x12, 100);
	assert_true(cli_write(c, buf, n + 100));
	cli_free(c);
	assert_true(srv_logged(&v, "agent-t/run-t: disconnected by the agent mid-frame: "
				   "truncated frame, 100 of 500 bytes arrived (3 frames)"));
	/* a peer gone inside the length prefix */
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-t", "run-t"));
	assert_int_equal(cli_welcome(c), 3);
	assert_true(cli_write(c, (const uint8_t *)"\xff", 1));
	cli_free(c);
	assert_true(srv_logged(&v, "1 bytes of its length prefix arrived"));
	srv_stop(&v);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM events"), 3);
	free(buf);
	alarm(0);
}

struct flood_arg {
	int port;
	volatile bool stop;
	uint64_t sent;
};

/* Sends frames as fast as the socket takes them and never reads. */
static void *flood_main(void *arg)
{
	struct flood_arg *a = arg;
	struct cli *c = cli_new(a->port, false);
	uint8_t *buf = malloc(1 << 20);
	uint64_t seq = 1;

	cli_hello(c, "agent-flood", "run-flood");
	while (!a->stop) {
		size_t len = cli_frames(c, "run-flood", seq, seq + 999, buf, 1 << 20);

		if (!cli_write(c, buf, len))
			break;
		seq += 1000;
	}
	a->sent = seq - 1;
	free(buf);
	cli_free(c);
	return NULL;
}

static void test_collector_server__flood_does_not_starve(void **state)
{
	struct server_cfg cfg = { .insecure = true };
	struct flood_arg fa = { 0 };
	struct timespec t0, t1;
	pthread_t th;
	struct srv v;
	struct cli *c;
	double ms;

	alarm(60);
	srv_start(&v, &cfg, "flood");
	fa.port = v.port;
	pthread_create(&th, NULL, flood_main, &fa);
	usleep(300000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-quiet", "run-quiet"));
	assert_int_equal(cli_welcome(c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("welcome after %.0f ms\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	{
		uint8_t *qb = malloc(1 << 16);
		size_t ql = cli_frames(c, "run-quiet", 1, 20, qb, 1 << 16);

		assert_true(cli_write(c, qb, ql));
		assert_true(cli_wait_ack(c, 20));
		free(qb);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cli_free(c);
	fa.stop = true;
	pthread_join(th, NULL);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("quiet agent served in %.0f ms while a flood sent %llu frames\n", ms,
		      (unsigned long long)fa.sent);
	assert_true(ms < 5000);
	srv_stop(&v);
	assert_true(db_count(&v, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
				 " WHERE r.agent = 'agent-quiet'") == 20);
	alarm(0);
}

static void test_collector_server__stop_commits_pending(void **state)
{
	struct server_cfg cfg = { .insecure = true, .batch = 1000000 };
	uint8_t *buf = malloc(1 << 20);
	struct srv v;
	struct cli *c;
	size_t len;

	alarm(30);
	srv_start(&v, &cfg, "stop");
	c = cli_new(v.port, false);
	assert_true(cli_hello(c, "agent-s", "run-s"));
	assert_int_equal(cli_welcome(c), 0);
	len = cli_frames(c, "run-s", 1, 300, buf, 1 << 20);
	assert_true(cli_write(c, buf, len));
	usleep(20000); /* read, not necessarily committed */
	srv_stop(&v);
	cli_free(c);
	free(buf);
	/* everything the server read before the stop is durable */
	assert_true(db_count(&v, "SELECT count(*) FROM events") == 300);
	alarm(0);
}

/* ---- TLS ---------------------------------------------------------------- */

static int make_certs(void **state)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; "
		 "gen() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		 "  -keyout $1.key -out $1.csr -subj /CN=$2 2>/dev/null; }; "
		 "sign() { printf '%%s\\n' \"$4\" > $1.ext; openssl x509 -req -in $1.csr -CA $2.pem"
		 "  -CAkey $2.key -CAcreateserial -out $1.pem -days 1 -extfile $1.ext 2>/dev/null; }; "
		 "for ca in ca otherca; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		 "  -nodes -keyout $ca.key -out $ca.pem -days 1 -subj /CN=test-$ca 2>/dev/null; done; "
		 "gen srv 127.0.0.1; sign srv ca x 'subjectAltName=IP:127.0.0.1'; "
		 "gen agent agent-tls; sign agent ca x 'extendedKeyUsage=clientAuth'; "
		 "gen rogue agent-tls; sign rogue otherca x 'extendedKeyUsage=clientAuth'",
		 tmpdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make certificates with the openssl CLI (make deps)\n");
		return -1;
	}
	return 0;
}

static void tls_cfg(struct server_cfg *cfg, char paths[3][128])
{
	snprintf(paths[0], 128, "%s/srv.pem", tmpdir);
	snprintf(paths[1], 128, "%s/srv.key", tmpdir);
	snprintf(paths[2], 128, "%s/ca.pem", tmpdir);
	cfg->tls_cert = paths[0];
	cfg->tls_key = paths[1];
	cfg->tls_client_ca = paths[2];
}

static void test_collector_server__tls(void **state)
{
	struct server_cfg cfg = { .handshake_timeout = 1 };
	char paths[3][128];
	struct srv v;
	struct cli *c, *good;

	alarm(60);
	tls_cfg(&cfg, paths);
	srv_start(&v, &cfg, "tls");

	good = cli_new(v.port, false);
	assert_true(cli_tls(good, "agent.pem", "agent.key"));
	/* the certificate names the agent, whatever Hello says */
	cli_run(good, "someone-else", "run-t", 500);

	/* a client certificate from another CA */
	c = cli_new(v.port, false);
	if (cli_tls(c, "rogue.pem", "rogue.key")) {
		cli_hello(c, "agent-tls", "run-r");
		assert_int_equal(cli_welcome(c), -1);
	}
	cli_free(c);
	assert_true(srv_logged(&v, "client certificate"));

	/* no client certificate */
	c = cli_new(v.port, false);
	if (cli_tls(c, NULL, NULL)) {
		cli_hello(c, "agent-tls", "run-r");
		assert_int_equal(cli_welcome(c), -1);
	}
	cli_free(c);

	/* plaintext against the TLS listener */
	c = cli_new(v.port, false);
	cli_hello(c, "agent-tls", "run-p");
	assert_null(cli_recv(c));
	cli_free(c);
	assert_true(srv_logged(&v, "TLS handshake failed"));

	/* a TCP connection that never starts TLS */
	c = cli_new(v.port, false);
	assert_null(cli_recv(c));
	cli_free(c);
	assert_true(srv_logged(&v, "TLS handshake not finished within 1.0 s"));

	/* the good agent is still served */
	{
		uint8_t *buf = malloc(1 << 20);
		size_t len = cli_frames(good, "run-t", 501, 600, buf, 1 << 20);

		assert_true(cli_write(good, buf, len));
		assert_true(cli_wait_ack(good, 600));
		free(buf);
	}
	cli_free(good);
	srv_stop(&v);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
				      " WHERE r.agent = 'agent-tls' AND r.run_id = 'run-t'"), 600);
	assert_int_equal(db_count(&v, "SELECT count(*) FROM runs"), 1);
	alarm(0);
}

static void test_collector_server__config_errors(void **state)
{
	struct server_cfg cfg = { 0 };
	struct server *s;
	char err[512], db[128], paths[3][128];

	snprintf(db, sizeof(db), "%s/cfg.db", tmpdir);
	cfg.db = db;
	cfg.listen = "127.0.0.1:0";
	/* neither TLS nor --insecure */
	assert_int_equal(server__new(&cfg, &s, err, sizeof(err)), SERVER_ERR_CONFIG);
	assert_non_null(strstr(err, "--insecure"));
	/* unreadable certificate */
	tls_cfg(&cfg, paths);
	cfg.tls_cert = "/nonexistent/cert.pem";
	assert_int_equal(server__new(&cfg, &s, err, sizeof(err)), SERVER_ERR_TLS_FILE);
	/* a host name is not a literal */
	cfg.insecure = true;
	cfg.tls_cert = cfg.tls_key = cfg.tls_client_ca = NULL;
	cfg.listen = "localhost:7400";
	assert_int_equal(server__new(&cfg, &s, err, sizeof(err)), SERVER_ERR_CONFIG);
	/* a second collector on the same database */
	{
		struct server *s1;

		cfg.listen = "127.0.0.1:0";
		assert_int_equal(server__new(&cfg, &s1, err, sizeof(err)), 0);
		assert_int_equal(server__new(&cfg, &s, err, sizeof(err)), SERVER_ERR_STORE);
		assert_non_null(strstr(err, "another collector"));
		/* another database, but s1's port */
		{
			char listen[64], db2[128];

			snprintf(listen, sizeof(listen), "127.0.0.1:%d", server__port(s1));
			snprintf(db2, sizeof(db2), "%s/cfg2.db", tmpdir);
			cfg.listen = listen;
			cfg.db = db2;
			assert_int_equal(server__new(&cfg, &s, err, sizeof(err)), SERVER_ERR_LISTEN);
			assert_non_null(strstr(err, "cannot listen"));
		}
		server__free(s1);
	}
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bw-coll-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return make_certs(state);
}

static int teardown(void **state)
{
	char cmd[128];

	if (!getenv("BW_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			return -1;
	} else {
		fprintf(stderr, "kept %s\n", tmpdir);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collector_server__insecure_round_trip),
		cmocka_unit_test(test_collector_server__ipv6),
		cmocka_unit_test(test_collector_server__refusals_leave_others_served),
		cmocka_unit_test(test_collector_server__seq_backwards_refused),
		cmocka_unit_test(test_collector_server__torn_frame_logged),
		cmocka_unit_test(test_collector_server__flood_does_not_starve),
		cmocka_unit_test(test_collector_server__stop_commits_pending),
		cmocka_unit_test(test_collector_server__tls),
		cmocka_unit_test(test_collector_server__config_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
