// SPDX-License-Identifier: GPL-2.0
/* The collector sink end to end against a small fake collector (a thread on
 * 127.0.0.1, port 0): handshake, resume from Welcome.last_seq, acks deleting spool
 * segments, reconnects after the collector drops the connection (with and without
 * losing unacknowledged frames), a collector that is down at first, a refusal, a full
 * spool told as Skips (over its cap, and on a full disk), runs left by an earlier
 * agent process, and TLS with mutual authentication. The fake collector verifies the chain of every frame and records
 * every seq it stores exactly once: the tests compare that with what was written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/version.h"
#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "transport/chain.h"
#include "transport/frame.h"
#include "transport/sink_collector.h"

#define S(lit) ((char *)(lit))
#define MAXS 8192

static char tmp[64];

/* ---- the fake collector ---- */

struct fake_run {
	char run_id[65], host[64], agent_id[64];
	bool keyed;
	uint64_t contig; /* highest contiguous seq stored */
	uint8_t chain[CHAIN_LEN];
	uint64_t acked;  /* what the last Ack said */
	uint8_t acked_chain[CHAIN_LEN];
	size_t acked_n;
	uint64_t stored[MAXS];
	size_t n_stored;
	uint64_t dups, breaks, gaps;
	uint64_t skip_first[8], skip_last[8];
	size_t n_skips;
	uint64_t resent_below_welcome;
};

struct fake {
	int lfd, port;
	pthread_t th;
	volatile bool stop;
	SSL_CTX *ctx;
	const uint8_t *key;
	size_t keylen;

	pthread_mutex_t lock;
	struct fake_run runs[4];
	size_t n_runs;
	size_t connections, tls_failures;
	/* knobs, read under lock */
	uint64_t drop_after; /* frames in one connection; 0 = never. Used once. */
	bool rollback;       /* on that drop, forget what was not acknowledged */
	const char *refuse;  /* Refusal reason for every Hello */
	unsigned ack_every;  /* ack after this many stored frames (and at each read) */
	uint64_t welcome_lie; /* next Hello: Welcome claims this seq, then the fake hangs up */
	size_t lies_told;
};

static struct fake_run *fake__run(struct fake *f, const char *run_id)
{
	for (size_t i = 0; i < f->n_runs; i++)
		if (strcmp(f->runs[i].run_id, run_id) == 0)
			return &f->runs[i];
	assert_true(f->n_runs < 4);
	memset(&f->runs[f->n_runs], 0, sizeof(f->runs[0]));
	snprintf(f->runs[f->n_runs].run_id, 65, "%s", run_id);
	/* a new run chains from its bound start value, like the real collector's */
	assert_int_equal(chain__init(run_id, f->key, f->keylen, f->runs[f->n_runs].chain), 0);
	memcpy(f->runs[f->n_runs].acked_chain, f->runs[f->n_runs].chain, CHAIN_LEN);
	return &f->runs[f->n_runs++];
}

struct conn {
	int fd;
	SSL *ssl;
	uint8_t buf[1 << 21];
	size_t len;
};

static ssize_t conn__read(struct conn *c)
{
	ssize_t r;

	if (c->ssl)
		r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
	else
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (r > 0)
		c->len += (size_t)r;
	return r;
}

static void conn__send(struct conn *c, const Buildwarden__V1__CollectorMessage *m)
{
	uint8_t out[512];
	size_t n = buildwarden__v1__collector_message__get_packed_size(m), k;

	k = frame__encode_len(n, out);
	buildwarden__v1__collector_message__pack(m, out + k);
	if (c->ssl)
		SSL_write(c->ssl, out, (int)(n + k));
	else
		send(c->fd, out, n + k, MSG_NOSIGNAL);
}

static void conn__ack(struct conn *c, struct fake_run *run)
{
	Buildwarden__V1__CollectorMessage m = BUILDWARDEN__V1__COLLECTOR_MESSAGE__INIT;
	Buildwarden__V1__Ack ack = BUILDWARDEN__V1__ACK__INIT;

	if (run->contig == run->acked)
		return;
	ack.seq = run->contig;
	m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK;
	m.ack = &ack;
	run->acked = run->contig;
	memcpy(run->acked_chain, run->chain, CHAIN_LEN);
	run->acked_n = run->n_stored;
	conn__send(c, &m);
}

/* Stores one frame like the real collector: dedup on seq, verify the chain. */
static void fake__frame(struct fake *f, struct fake_run *run, const Buildwarden__V1__AgentMessage *am,
			uint64_t welcome_seq)
{
	if (am->msg_case == BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT) {
		const Buildwarden__V1__EventFrame *ef = am->event;
		uint8_t want[CHAIN_LEN];

		if (ef->seq <= welcome_seq)
			run->resent_below_welcome++;
		if (ef->seq <= run->contig) {
			run->dups++;
			return;
		}
		if (ef->seq != run->contig + 1) {
			run->gaps++;
			return;
		}
		chain__next(run->chain, ef->seq, ef->event.data, ef->event.len, f->key, f->keylen, want);
		if (ef->chain.len != CHAIN_LEN || memcmp(want, ef->chain.data, CHAIN_LEN) != 0)
			run->breaks++;
		memcpy(run->chain, ef->chain.data, CHAIN_LEN);
		run->contig = ef->seq;
		if (run->n_stored < MAXS)
			run->stored[run->n_stored++] = ef->seq;
	} else if (am->msg_case == BUILDWARDEN__V1__AGENT_MESSAGE__MSG_SKIP) {
		if (am->skip->first_seq != run->contig + 1) {
			run->gaps++;
			return;
		}
		if (run->n_skips < 8) {
			run->skip_first[run->n_skips] = am->skip->first_seq;
			run->skip_last[run->n_skips++] = am->skip->last_seq;
		}
		run->contig = am->skip->last_seq;
	}
}

static void fake__serve(struct fake *f, struct conn *c)
{
	Buildwarden__V1__AgentMessage *am;
	struct fake_run *run = NULL;
	uint64_t frames = 0, welcome_seq = 0, since_ack = 0;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		size_t off = 0;
		const uint8_t *pl;
		size_t plen;
		int rc;

		if (f->stop)
			return;
		if (!(c->ssl && SSL_pending(c->ssl)) && poll(&p, 1, 100) <= 0)
			continue;
		if (conn__read(c) <= 0)
			return;
		pthread_mutex_lock(&f->lock);
		while ((rc = frame__next(c->buf, c->len, &off, 0, &pl, &plen)) == 1) {
			am = buildwarden__v1__agent_message__unpack(NULL, plen, pl);
			assert_non_null(am);
			if (am->msg_case == BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO) {
				Buildwarden__V1__CollectorMessage m = BUILDWARDEN__V1__COLLECTOR_MESSAGE__INIT;
				Buildwarden__V1__Welcome w = BUILDWARDEN__V1__WELCOME__INIT;
				Buildwarden__V1__Refusal rf = BUILDWARDEN__V1__REFUSAL__INIT;

				run = fake__run(f, am->hello->run_id);
				snprintf(run->host, sizeof(run->host), "%s", am->hello->host);
				snprintf(run->agent_id, sizeof(run->agent_id), "%s", am->hello->agent_id);
				run->keyed = am->hello->keyed_chain;
				assert_int_equal(am->hello->schema_version, BW_SCHEMA_VERSION);
				if (f->refuse) {
					rf.reason = (char *)f->refuse;
					m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL;
					m.refusal = &rf;
					conn__send(c, &m);
					buildwarden__v1__agent_message__free_unpacked(am, NULL);
					pthread_mutex_unlock(&f->lock);
					return;
				}
				w.last_seq = welcome_seq = run->contig;
				w.last_chain.data = run->chain;
				w.last_chain.len = CHAIN_LEN;
				w.max_frame = BW_FRAME_MAX;
				m.msg_case = BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME;
				m.welcome = &w;
				if (f->welcome_lie) {
					w.last_seq = f->welcome_lie;
					f->welcome_lie = 0;
					f->lies_told++;
					conn__send(c, &m);
					buildwarden__v1__agent_message__free_unpacked(am, NULL);
					pthread_mutex_unlock(&f->lock);
					return;
				}
				conn__send(c, &m);
			} else {
				assert_non_null(run); /* Hello comes first */
				fake__frame(f, run, am, welcome_seq);
				frames++;
				if (f->ack_every && ++since_ack >= f->ack_every) {
					conn__ack(c, run);
					since_ack = 0;
				}
			}
			buildwarden__v1__agent_message__free_unpacked(am, NULL);
			if (f->drop_after && frames >= f->drop_after) {
				/* a crash before the commit loses what was not acknowledged */
				if (f->rollback) {
					run->contig = run->acked;
					memcpy(run->chain, run->acked_chain, CHAIN_LEN);
					run->n_stored = run->acked_n;
				}
				f->drop_after = 0;
				pthread_mutex_unlock(&f->lock);
				return;
			}
		}
		assert_true(rc == 0 || rc == FRAME_ETRUNC);
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
		if (run && !f->ack_every)
			conn__ack(c, run);
		pthread_mutex_unlock(&f->lock);
	}
}

static void *fake__main(void *arg)
{
	struct fake *f = arg;
	struct conn *c = malloc(sizeof(*c));

	while (!f->stop) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };

		if (poll(&p, 1, 50) <= 0)
			continue;
		c->fd = accept(f->lfd, NULL, NULL);
		if (c->fd < 0)
			continue;
		c->len = 0;
		c->ssl = NULL;
		pthread_mutex_lock(&f->lock);
		f->connections++;
		pthread_mutex_unlock(&f->lock);
		if (f->ctx) {
			struct timeval tv = { .tv_sec = 5 };

			setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			c->ssl = SSL_new(f->ctx);
			SSL_set_fd(c->ssl, c->fd);
			if (SSL_accept(c->ssl) != 1) {
				pthread_mutex_lock(&f->lock);
				f->tls_failures++;
				pthread_mutex_unlock(&f->lock);
				ERR_clear_error();
				SSL_free(c->ssl);
				close(c->fd);
				continue;
			}
		}
		fake__serve(f, c);
		if (c->ssl)
			SSL_free(c->ssl);
		close(c->fd);
	}
	free(c);
	return NULL;
}

static int fake__listen(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fake__start(struct fake *f, int port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	f->lfd = fake__listen(port);
	assert_true(f->lfd >= 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &al);
	f->port = ntohs(a.sin_port);
	f->stop = false;
	assert_int_equal(pthread_create(&f->th, NULL, fake__main, f), 0);
}

static void fake__stop(struct fake *f)
{
	f->stop = true;
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static struct fake *fake__new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&f->lock, NULL);
	return f;
}

/* ---- the agent side ---- */

static int setup(void **state)
{
	strcpy(tmp, "/tmp/bw_test_client.XXXXXX");
	alarm(120); /* every test is loopback-only and bounded */
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	alarm(0);
	snprintf(cmd, sizeof(cmd), "%s/spool", tmp);
	umount2(cmd, MNT_DETACH); /* a small tmpfs some tests put there; fails if none */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static struct sink_collector *open_sink(int port, const char *run_id, uint64_t max,
					 const char *key_path)
{
	char addr[64], spool[128], err[256] = "";
	struct collector_client_opts o = {
		.address = addr,
		.spool_dir = spool,
		.insecure = true,
		.agent_id = "agent-1",
		.host = "runner-7",
		.run_id = run_id,
		.chain_key_path = key_path,
		.spool_max_bytes = max,
		.drain_timeout_ms = 300,
	};
	struct sink_collector *c;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	c = sink_collector__open(&o, err, sizeof(err));
	if (!c)
		fail_msg("sink_collector__open: %s", err);
	return c;
}

static int write_event(struct sink *s, uint64_t seq, size_t pad)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
	char *name = malloc(pad + 1);
	int rc;

	memset(name, 'x', pad);
	name[pad] = '\0';
	ex.filename = name;
	ev.seq = seq;
	ev.host = S("runner-7");
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev.exec = &ex;
	rc = sink__write(s, &ev);
	free(name);
	return rc;
}

/* every seq 1..n stored exactly once, in order, chain intact */
static void check_run(struct fake *f, const char *run_id, uint64_t n)
{
	struct fake_run *run;

	pthread_mutex_lock(&f->lock);
	run = fake__run(f, run_id);
	assert_int_equal(run->contig, n);
	assert_int_equal(run->breaks, 0);
	assert_int_equal(run->gaps, 0);
	for (size_t i = 0; i < run->n_stored; i++)
		assert_int_equal(run->stored[i], i + 1);
	pthread_mutex_unlock(&f->lock);
}

static size_t count_segments(const char *run_id)
{
	char path[256];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/spool/%s", tmp, run_id);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".seg"))
			n++;
	closedir(d);
	return n;
}

static bool run_dir_exists(const char *run_id)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/spool/%s", tmp, run_id);
	return stat(path, &st) == 0;
}

static void test_client__handshake_stream_ack(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;

	fake__start(f, 0);
	c = open_sink(f->port, "run-a", 0, NULL);
	s = sink_collector__sink(c);
	/* ~3 MB: several sealed segments, which acks must delete */
	for (uint64_t i = 1; i <= 300; i++)
		assert_int_equal(write_event(&s, i, 10000), 0);
	assert_int_equal(sink_collector__drain(c, 20000), 0);
	sink_collector__stats(c, &st);
	assert_int_equal(st.spooled, 300);
	assert_int_equal(st.acked_seq, 300);
	assert_int_equal(st.unacked, 0);
	assert_true(st.sent >= 300);
	assert_true(st.connected);
	/* the segment sealed by the drain goes at the next housekeeping tick */
	for (int k = 0; k < 40 && (count_segments("run-a") || st.spool_bytes >= 1000); k++) {
		usleep(100000);
		sink_collector__stats(c, &st);
	}
	assert_int_equal(count_segments("run-a"), 0);
	assert_true(st.spool_bytes < 1000);
	check_run(f, "run-a", 300);
	pthread_mutex_lock(&f->lock);
	assert_string_equal(fake__run(f, "run-a")->host, "runner-7");
	assert_string_equal(fake__run(f, "run-a")->agent_id, "agent-1");
	assert_false(fake__run(f, "run-a")->keyed);
	assert_int_equal(fake__run(f, "run-a")->dups, 0);
	pthread_mutex_unlock(&f->lock);

	/* more after a drain: the live segment is new, the stream goes on */
	for (uint64_t i = 301; i <= 310; i++)
		assert_int_equal(write_event(&s, i, 10), 0);
	sink__close(&s);
	check_run(f, "run-a", 310);
	assert_false(run_dir_exists("run-a")); /* all acknowledged: nothing left */
	fake__stop(f);
	free(f);
}

/* The collector drops the connection mid-stream twice: once after storing (Welcome
 * says how far; nothing is resent below it) and once "crashing" before its commit
 * (what was not acknowledged is lost there and resent by the agent). */
static void test_client__reconnect_exactly_once(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	uint64_t n = 2000;

	f->drop_after = 700;
	f->ack_every = 50;
	fake__start(f, 0);
	c = open_sink(f->port, "run-b", 0, NULL);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= n; i++) {
		assert_int_equal(write_event(&s, i, 500), 0);
		if (i == 1000) {
			/* wait for the first drop and reconnect, then arm a crash */
			for (int k = 0; k < 200; k++) {
				size_t conns;

				pthread_mutex_lock(&f->lock);
				conns = f->connections;
				pthread_mutex_unlock(&f->lock);
				if (conns >= 2)
					break;
				usleep(20000);
			}
			pthread_mutex_lock(&f->lock);
			f->drop_after = 300;
			f->rollback = true;
			pthread_mutex_unlock(&f->lock);
		}
	}
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	sink_collector__stats(c, &st);
	assert_true(st.reconnects >= 2);
	check_run(f, "run-b", n);
	pthread_mutex_lock(&f->lock);
	assert_true(f->connections >= 3);
	/* resends happen only for frames the collector never acknowledged */
	assert_int_equal(fake__run(f, "run-b")->resent_below_welcome, 0);
	assert_int_equal(fake__run(f, "run-b")->n_stored, n);
	pthread_mutex_unlock(&f->lock);
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* Collector down at first: events spool, the sender backs off, then delivers. A
 * keyed chain is verified by the collector with the same key file bytes. */
static void test_client__collector_down_then_up(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	char keypath[128];
	FILE *kf;
	int port;

	snprintf(keypath, sizeof(keypath), "%s/agent.key", tmp);
	kf = fopen(keypath, "w");
	fputs("s3cret-key\n", kf);
	fclose(kf);
	assert_int_equal(chmod(keypath, 0600), 0); /* a key others may read is refused */
	f->key = (const uint8_t *)"s3cret-key\n";
	f->keylen = 11;

	fake__start(f, 0);
	port = f->port;
	fake__stop(f); /* nobody listens there now */
	c = open_sink(port, "run-c", 0, keypath);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(write_event(&s, i, 200), 0);
	assert_int_equal(sink_collector__drain(c, 500), -ETIMEDOUT);
	sink_collector__stats(c, &st);
	assert_false(st.connected);
	assert_int_equal(st.unacked, 100);
	assert_true(st.last_error[0] != '\0');

	fake__start(f, port);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	sink_collector__stats(c, &st);
	assert_true(st.reconnects >= 1);
	check_run(f, "run-c", 100);
	pthread_mutex_lock(&f->lock);
	assert_true(fake__run(f, "run-c")->keyed);
	pthread_mutex_unlock(&f->lock);
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* An agent stops with the collector away; the next agent process uploads that run
 * (oldest first) and then its own, and removes the old run's directory. */
static void test_client__restart_with_spool(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	int port;

	fake__start(f, 0);
	port = f->port;
	fake__stop(f);

	c = open_sink(port, "run-old", 0, NULL);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 50; i++)
		assert_int_equal(write_event(&s, i, 5000), 0);
	sink_collector__stats(c, &st);
	assert_int_equal(st.unacked, 50);
	assert_int_equal(sink_collector__close(c), -ETIMEDOUT); /* left in the spool */
	assert_true(run_dir_exists("run-old"));

	fake__start(f, port);
	c = open_sink(port, "run-new", 0, NULL);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 10; i++)
		assert_int_equal(write_event(&s, i, 100), 0);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	check_run(f, "run-old", 50);
	check_run(f, "run-new", 10);
	sink_collector__stats(c, &st);
	assert_int_equal(st.pending_runs, 0);
	assert_false(run_dir_exists("run-old"));
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* A collector whose Welcome claims seqs the run never wrote (confused, or hostile) must
 * not make the agent take later events as delivered: they would never be sent, the
 * drain would be satisfied at once and the spool would delete them. The claim is
 * clamped to what the spool holds, said in the log, and everything arrives once the
 * collector tells the truth. */
static void test_client__welcome_beyond_spool_clamped(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	size_t told = 0;

	f->welcome_lie = 1000000;
	fake__start(f, 0);
	c = open_sink(f->port, "run-lie", 0, NULL);
	s = sink_collector__sink(c);
	assert_int_equal(write_event(&s, 1, 10), 0);
	for (int k = 0; k < 300 && !told; k++) { /* the lie is told before seq 2 exists */
		usleep(10000);
		pthread_mutex_lock(&f->lock);
		told = f->lies_told;
		pthread_mutex_unlock(&f->lock);
	}
	assert_int_equal(told, 1);
	for (uint64_t i = 2; i <= 50; i++)
		assert_int_equal(write_event(&s, i, 5000), 0);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	check_run(f, "run-lie", 50);
	sink_collector__stats(c, &st);
	assert_int_equal(st.acked_seq, 50);
	assert_int_equal(st.unacked, 0);
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* A refusal is logged and backed off from; once the collector accepts, all arrives. */
static void test_client__refusal(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;

	f->refuse = "agent not enrolled";
	fake__start(f, 0);
	c = open_sink(f->port, "run-d", 0, NULL);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(write_event(&s, i, 10), 0);
	assert_int_equal(sink_collector__drain(c, 400), -ETIMEDOUT);
	sink_collector__stats(c, &st);
	assert_non_null(strstr(st.last_error, "agent not enrolled"));
	pthread_mutex_lock(&f->lock);
	f->refuse = NULL;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	check_run(f, "run-d", 5);
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* A full spool drops events, counts them, and the collector hears a Skip in order. */
static void test_client__spool_full_skip(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	uint64_t dropped = 0;
	int port;

	fake__start(f, 0);
	port = f->port;
	fake__stop(f);
	c = open_sink(port, "run-e", 20000, NULL);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 40; i++) {
		int rc = write_event(&s, i, 1000);

		if (rc == -ENOSPC)
			dropped++;
		else
			assert_int_equal(rc, 0);
	}
	sink_collector__stats(c, &st);
	assert_true(dropped > 10);
	assert_int_equal(st.spool_full_drops, dropped);
	fake__start(f, port);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	assert_int_equal(write_event(&s, 41, 10), 0); /* space again */
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	pthread_mutex_lock(&f->lock);
	{
		struct fake_run *run = fake__run(f, "run-e");

		assert_int_equal(run->contig, 41);
		assert_int_equal(run->n_skips, 1);
		assert_int_equal(run->skip_first[0], 41 - 1 - dropped + 1);
		assert_int_equal(run->skip_last[0], 40);
		assert_int_equal(run->n_stored, 41 - dropped);
		assert_int_equal(run->breaks, 0); /* the chain skips dropped events */
		assert_int_equal(run->gaps, 0);
	}
	pthread_mutex_unlock(&f->lock);
	sink__close(&s);
	fake__stop(f);
	free(f);
}

/* A file system of `bytes` on dir, in a mount namespace of this thread's own (the
 * sender thread, started later, inherits it): root, or an unprivileged user namespace.
 * false if neither is allowed here. */
static bool mount_small_fs(const char *dir, unsigned long bytes)
{
	char opts[64];

	if (unshare(CLONE_NEWNS) < 0) {
		uid_t uid = getuid();
		gid_t gid = getgid();
		char map[64];
		FILE *fp;

		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return false;
		fp = fopen("/proc/self/setgroups", "w");
		if (fp) {
			fputs("deny", fp);
			fclose(fp);
		}
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		fp = fopen("/proc/self/uid_map", "w");
		if (!fp || fputs(map, fp) < 0 || fclose(fp) != 0)
			return false;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		fp = fopen("/proc/self/gid_map", "w");
		if (!fp || fputs(map, fp) < 0 || fclose(fp) != 0)
			return false;
	}
	/* nothing mounted here may propagate back to the host's namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return false;
	snprintf(opts, sizeof(opts), "size=%lu,mode=0700", bytes);
	return mkdir(dir, 0700) == 0 && mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0;
}

/* The disk under the spool fills up while the collector is away (not the cap: the
 * writes fail with ENOSPC). The first failed write seals the live segment and the
 * next one creates a new, empty one, which the agent thread keeps for the Skip and
 * the events to come. Once the collector is back and has acknowledged the sealed
 * segment, there is room again: the Skip and every later event must arrive in the
 * same connection, not wait for the next agent start. */
static void test_client__disk_full_then_recovers(void **state)
{
	struct fake *f = fake__new();
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	char spool[128];
	uint64_t seq = 0, first_drop = 0, last_drop = 0, dropped = 0, more = 40;
	int port;

	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	if (!mount_small_fs(spool, 128 * 1024)) {
		print_message("cannot mount a tmpfs (needs root or user namespaces): skipped\n");
		free(f);
		skip();
	}
	fake__start(f, 0);
	port = f->port;
	fake__stop(f); /* the collector is down while the spool fills */
	c = open_sink(port, "run-f", 0, NULL);
	s = sink_collector__sink(c);
	while (dropped < 20) {
		int rc = write_event(&s, ++seq, 1000);

		assert_true(seq < 1000); /* 128 KiB hold about 120 of them */
		if (rc == 0) {
			assert_int_equal(dropped, 0); /* nothing fits once the disk is full */
			continue;
		}
		assert_int_equal(rc, -ENOSPC);
		if (!first_drop)
			first_drop = seq;
		last_drop = seq;
		dropped++;
	}
	sink_collector__stats(c, &st);
	assert_int_equal(st.spool_full_drops, dropped);
	assert_true(first_drop > 10);

	/* the collector comes back: the sender uploads the sealed segment, and the ack
	 * deletes it */
	fake__start(f, port);
	for (int k = 0; k < 300; k++) {
		sink_collector__stats(c, &st);
		if (st.acked_seq >= first_drop - 1 && st.spool_bytes == 0)
			break;
		usleep(100000);
	}
	assert_int_equal(st.acked_seq, first_drop - 1);
	assert_int_equal(st.spool_bytes, 0);
	usleep(1500000); /* a housekeeping tick of the idle sender: it looks at the spool */

	/* room again: the build goes on, and the collector hears all of it */
	for (uint64_t i = 0; i < more; i++)
		assert_int_equal(write_event(&s, ++seq, 100), 0);
	assert_int_equal(sink_collector__drain(c, 10000), 0);
	sink_collector__stats(c, &st);
	assert_int_equal(st.acked_seq, seq);
	assert_int_equal(st.unacked, 0);
	assert_int_equal(st.spooled, seq - dropped);
	pthread_mutex_lock(&f->lock);
	{
		struct fake_run *run = fake__run(f, "run-f");

		assert_int_equal(run->contig, seq);
		assert_int_equal(run->n_skips, 1);
		assert_int_equal(run->skip_first[0], first_drop);
		assert_int_equal(run->skip_last[0], last_drop);
		assert_int_equal(run->n_stored, seq - dropped);
		for (size_t i = 0; i < run->n_stored; i++)
			assert_int_equal(run->stored[i], i < first_drop - 1 ? i + 1 : i + 1 + dropped);
		assert_int_equal(run->breaks, 0);
		assert_int_equal(run->gaps, 0);
		assert_int_equal(run->dups, 0);
		assert_int_equal(f->connections, 1); /* no reconnect was needed */
	}
	pthread_mutex_unlock(&f->lock);
	sink__close(&s);
	assert_false(run_dir_exists("run-f")); /* all acknowledged: nothing left */
	fake__stop(f);
	free(f);
	assert_int_equal(umount2(spool, 0), 0);
}

/* ---- TLS ---- */

static bool make_certs(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && exec >openssl.log 2>&1 && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other-ca && "
		 "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=collector && "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:collector.example\\n' > srv.ext && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile srv.ext && "
		 "openssl req -newkey rsa:2048 -nodes -keyout agent.key -out agent.csr -subj /CN=agent-1 && "
		 "openssl x509 -req -in agent.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out agent.pem -days 1",
		 tmp);
	return system(cmd) == 0;
}

static SSL_CTX *server_ctx(void)
{
	char p[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	snprintf(p, sizeof(p), "%s/srv.pem", tmp);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, p), 1);
	snprintf(p, sizeof(p), "%s/srv.key", tmp);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, p, SSL_FILETYPE_PEM), 1);
	snprintf(p, sizeof(p), "%s/ca.pem", tmp);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, p, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

static struct sink_collector *open_tls(int port, const char *host, const char *run_id,
				       const char *ca, char *err, size_t errlen)
{
	char addr[64], spool[128], cert[128], key[128], cap[128];
	struct collector_client_opts o = {
		.address = addr,
		.spool_dir = spool,
		.tls_cert = cert,
		.tls_key = key,
		.tls_ca = cap,
		.host = "runner-7",
		.run_id = run_id,
		.drain_timeout_ms = 300,
		.connect_timeout_ms = 3000,
	};

	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	snprintf(cert, sizeof(cert), "%s/agent.pem", tmp);
	snprintf(key, sizeof(key), "%s/agent.key", tmp);
	snprintf(cap, sizeof(cap), "%s/%s", tmp, ca);
	return sink_collector__open(&o, err, errlen);
}

static void test_client__tls(void **state)
{
	struct fake *f;
	struct sink_collector *c;
	struct sink_collector_stats st;
	struct sink s;
	char err[256];

	if (!make_certs()) {
		print_message("openssl CLI failed (see %s/openssl.log)\n", tmp);
		skip();
	}
	f = fake__new();
	f->ctx = server_ctx();
	fake__start(f, 0);

	/* verified by IP SAN, with a client certificate */
	c = open_tls(f->port, "127.0.0.1", "run-tls", "ca.pem", err, sizeof(err));
	if (!c)
		fail_msg("open: %s", err);
	s = sink_collector__sink(c);
	for (uint64_t i = 1; i <= 200; i++)
		assert_int_equal(write_event(&s, i, 3000), 0);
	assert_int_equal(sink_collector__drain(c, 30000), 0);
	check_run(f, "run-tls", 200);
	sink__close(&s);

	/* a collector certificate from another CA is refused, nothing is sent */
	c = open_tls(f->port, "127.0.0.1", "run-tls2", "other.pem", err, sizeof(err));
	assert_non_null(c);
	s = sink_collector__sink(c);
	assert_int_equal(write_event(&s, 1, 10), 0);
	assert_int_equal(sink_collector__drain(c, 1500), -ETIMEDOUT);
	sink_collector__stats(c, &st);
	assert_non_null(strstr(st.last_error, "certificate"));
	sink__close(&s);

	/* a name the certificate does not carry is refused too */
	c = open_tls(f->port, "localhost", "run-tls3", "ca.pem", err, sizeof(err));
	assert_non_null(c);
	s = sink_collector__sink(c);
	assert_int_equal(write_event(&s, 1, 10), 0);
	assert_int_equal(sink_collector__drain(c, 1500), -ETIMEDOUT);
	sink_collector__stats(c, &st);
	assert_non_null(strstr(st.last_error, "certificate"));
	sink__close(&s);

	pthread_mutex_lock(&f->lock);
	assert_true(fake__run(f, "run-tls2")->n_stored == 0);
	pthread_mutex_unlock(&f->lock);
	fake__stop(f);
	SSL_CTX_free(f->ctx);
	free(f);
}

static void test_client__bad_opts(void **state)
{
	char err[256], spool[128];
	struct collector_client_opts o = { .address = "localhost", .insecure = true };

	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	assert_null(sink_collector__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "spool"));
	o.spool_dir = spool;
	o.run_id = "r";
	assert_null(sink_collector__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "host:port"));
	o.address = "::1:80";
	assert_null(sink_collector__open(&o, err, sizeof(err)));
	o.address = "[::1]:80";
	o.insecure = false;
	assert_null(sink_collector__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "TLS"));
	o.insecure = true;
	o.chain_key_path = "/nonexistent/key";
	assert_null(sink_collector__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "chain key"));
	o.chain_key_path = NULL;
	sink_collector__close(sink_collector__open(&o, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client__handshake_stream_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__reconnect_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__collector_down_then_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__restart_with_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__welcome_beyond_spool_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__spool_full_skip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__disk_full_then_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client__bad_opts, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* the fake collector writes to agents that left */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
