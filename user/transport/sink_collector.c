// SPDX-License-Identifier: GPL-2.0
/* Collector sink and its sender thread: see sink_collector.h. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/version.h"
#include "transport/chain.h"
#include "transport/client.h"
#include "transport/frame.h"
#include "transport/sink_collector.h"
#include "transport/spool.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define HELLO_TIMEOUT_MS 10000
/* Housekeeping period: fdatasync of what the agent wrote, compression of sealed
 * segments. One second bounds what a power loss can take from the spool. */
#define MAINTAIN_MS 1000
/* Sealed segments not acknowledged within this time get compressed. */
#define COMPRESS_AGE_MS 2000
/* With data outstanding and nothing heard for this long, the connection is dead. */
#define ACK_TIMEOUT_MS 60000
/* A refused old run is retried after this long; the others go first meanwhile. */
#define REFUSED_RETRY_MS 60000
/* The output buffer is refilled from the spool below this. */
#define FILL_LOW (256u * 1024)
/* The same failure is printed at most this often. */
#define LOG_REPEAT_MS 30000

struct sink_collector {
	struct spool *sp;
	struct client *cl;
	int wake_fd; /* the writer tells an idle sender that data arrived */
	int stop_fd; /* close() tells the sender to stop, wherever it waits */
	unsigned drain_timeout_ms;
	pthread_t thread;
	bool thread_started;

	/* Sender thread only. */
	uint64_t last_maintain_ms;
	struct sc_run {
		uint64_t refused_until; /* ms, monotonic; 0 = not refused */
		uint64_t acked;         /* the highest ack seen for the run */
	} *runs;                        /* by spool run index */
	struct log_limiter log;
	unsigned seed;
	bool attempted;

	pthread_mutex_t lock;
	pthread_cond_t acked_cond; /* cur_acked moved, or the sender stopped */
	/* under lock */
	uint64_t written;    /* appends so far: the sender's "anything new?" */
	bool sender_idle;    /* the sender sleeps until wake_fd: the writer must kick it */
	bool stopping;
	bool drained;        /* a drain ran to its end (acknowledged or timed out) */
	uint64_t cur_acked;  /* highest acked seq of the current run */
	uint64_t sent, acked, reconnects;
	bool connected;
	uint32_t pending_runs;
	char last_error[LOG_LINE_MAX];
};

static void sc__kick(int fd)
{
	uint64_t one = 1;

	/* a full counter still reads as readable: losing this write loses nothing */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static void sc__drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
}

/* One line per failure on stderr, the same line at most every LOG_REPEAT_MS: a
 * collector that is down for an hour must not fill the build log. */
static void sc__error(struct sink_collector *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sc__error(struct sink_collector *c, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	memcpy(c->last_error, buf, sizeof(buf));
	pthread_mutex_unlock(&c->lock);
	if (log_limiter__pass(&c->log, buf, clock__mono_ns(), LOG_REPEAT_MS * NSEC_PER_MSEC))
		log__line(stderr, "buildwarden: collector: ", "%s", buf);
}

static bool sc__stopping(struct sink_collector *c)
{
	bool s;

	pthread_mutex_lock(&c->lock);
	s = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return s;
}

static void sc__set_connected(struct sink_collector *c, bool on)
{
	pthread_mutex_lock(&c->lock);
	c->connected = on;
	pthread_mutex_unlock(&c->lock);
}

/* Housekeeping of the current run (always: the agent keeps writing it) and of the
 * run being uploaded, once per MAINTAIN_MS. */
static void sc__maintain(struct sink_collector *c, struct spool_run *run)
{
	size_t n = spool__n_runs(c->sp);
	struct spool_run *cur = spool__run(c->sp, n - 1);
	uint64_t now = (uint64_t)clock__mono_ms();
	int err;

	if (now - c->last_maintain_ms < MAINTAIN_MS)
		return;
	c->last_maintain_ms = now;
	/* A segment sealed after the ack that covered it (drain seals the live one)
	 * waits for no further ack: delete it here. */
	if (c->runs[n - 1].acked)
		spool__ack(c->sp, cur, c->runs[n - 1].acked);
	err = spool__maintain(c->sp, cur, COMPRESS_AGE_MS);
	if (!err && run && run != cur)
		err = spool__maintain(c->sp, run, COMPRESS_AGE_MS);
	if (err)
		sc__error(c, "spool housekeeping: %s", strerror(-err));
}

/* The oldest run with something to send and no recent refusal; the current run last.
 * -1 when there is nothing to do. */
static int sc__pick_run(struct sink_collector *c)
{
	size_t n = spool__n_runs(c->sp);
	uint64_t now = (uint64_t)clock__mono_ms(), cur_acked;
	struct spool_stats st;
	uint32_t pending = 0;
	int pick = -1;

	for (size_t i = 0; i + 1 < n; i++) {
		if (spool__run(c->sp, i)->dfd < 0)
			continue;
		pending++;
		if (pick < 0 && c->runs[i].refused_until <= now)
			pick = (int)i;
	}
	pthread_mutex_lock(&c->lock);
	c->pending_runs = pending;
	cur_acked = c->cur_acked;
	pthread_mutex_unlock(&c->lock);
	if (pick >= 0)
		return pick;
	spool__stats(c->sp, &st);
	return st.last_seq > cur_acked ? (int)n - 1 : -1;
}

/* Waits for data, stop, or the next housekeeping tick. */
static void sc__idle_wait(struct sink_collector *c, int sock, bool pollout, int timeout_ms)
{
	struct pollfd p[3] = {
		{ .fd = c->wake_fd, .events = POLLIN },
		{ .fd = c->stop_fd, .events = POLLIN },
		{ .fd = sock, .events = POLLIN | (pollout ? POLLOUT : 0) },
	};

	if (poll(p, sock >= 0 ? 3 : 2, timeout_ms) > 0 && p[0].revents)
		sc__drain_fd(c->wake_fd);
}

/* Sleeps for the backoff, or until stop. */
static void sc__sleep(struct sink_collector *c, unsigned ms)
{
	struct pollfd p = { .fd = c->stop_fd, .events = POLLIN };

	poll(&p, 1, (int)ms);
}

enum session_end {
	SESSION_FAILED,  /* back off and retry */
	SESSION_REFUSED, /* the collector said no: back off, try other runs first */
	SESSION_DONE,    /* an old run is fully acknowledged and removed */
	SESSION_STOP,
};

struct session {
	struct spool_run *run;
	int run_idx;
	uint64_t next;      /* the next seq to send */
	uint64_t acked;     /* the collector's acknowledged seq for this run */
	uint64_t max_frame; /* 0: no limit stated */
	uint64_t last_rx_ms;
	bool progressed;    /* an ack arrived: the backoff starts over */
};

static void sc__on_ack(struct sink_collector *c, struct session *s, uint64_t seq)
{
	int err;

	if (seq <= s->acked)
		return;
	c->runs[s->run_idx].acked = seq;
	pthread_mutex_lock(&c->lock);
	c->acked += seq - s->acked;
	if (s->run->current) {
		c->cur_acked = seq;
		pthread_cond_broadcast(&c->acked_cond);
	}
	pthread_mutex_unlock(&c->lock);
	s->acked = seq;
	err = spool__ack(c->sp, s->run, seq);
	if (err < 0)
		sc__error(c, "run %s: cannot delete acknowledged segments: %s",
			  s->run->meta.run_id, strerror(-err));
}

/* The AgentMessage length, which is what the collector's max_frame bounds. */
static uint64_t sc__payload_len(const struct spool_rec *r)
{
	uint64_t len = 0;

	return frame__decode_len(r->frame, r->frame_len, &len) > 0 ? len : r->frame_len;
}

/* Queues one spool record, with a Skip first for seqs the spool no longer has. */
static int sc__send_record(struct sink_collector *c, struct session *s, const struct spool_rec *r)
{
	uint8_t skip[320];
	size_t n;
	int err;

	if (r->last < s->next)
		return 0; /* the collector has it */
	if (r->first > s->next) {
		/* seqs the spool does not hold (a damaged segment, or acknowledged and
		 * deleted before the collector lost them): said, never silent */
		n = spool__encode_skip(s->next, r->first - 1, "missing from the agent's spool",
				       skip, sizeof(skip));
		err = client__queue(c->cl, skip, n);
		if (err)
			return err;
		s->next = r->first;
	}
	if (r->kind == SPOOL_REC_SKIP && r->first < s->next) {
		char reason[200];
		size_t rl = r->reason_len < sizeof(reason) - 1 ? r->reason_len : sizeof(reason) - 1;

		memcpy(reason, r->reason, rl);
		reason[rl] = '\0';
		n = spool__encode_skip(s->next, r->last, reason, skip, sizeof(skip));
		err = client__queue(c->cl, skip, n);
	} else if (s->max_frame && sc__payload_len(r) > s->max_frame) {
		/* the collector would refuse it and drop the connection, forever */
		n = spool__encode_skip(r->first, r->last, "frame over the collector's max_frame",
				       skip, sizeof(skip));
		err = client__queue(c->cl, skip, n);
	} else {
		err = client__queue(c->cl, r->frame, r->frame_len);
		if (!err && r->kind == SPOOL_REC_EVENT) {
			pthread_mutex_lock(&c->lock);
			c->sent++;
			pthread_mutex_unlock(&c->lock);
		}
	}
	if (!err)
		s->next = r->last + 1;
	return err;
}

static enum session_end sc__session(struct sink_collector *c, int run_idx)
{
	Buildwarden__V1__Hello hello = BUILDWARDEN__V1__HELLO__INIT;
	Buildwarden__V1__Welcome *w = NULL;
	struct session s = {
		.run = spool__run(c->sp, (size_t)run_idx),
		.run_idx = run_idx,
		.acked = c->runs[run_idx].acked,
	};
	struct spool_reader *r = NULL;
	enum session_end end = SESSION_FAILED;
	uint64_t welcome_seq, held;
	char err[200] = "";
	int rc;

	pthread_mutex_lock(&c->lock);
	if (c->attempted)
		c->reconnects++;
	pthread_mutex_unlock(&c->lock);
	c->attempted = true;
	rc = client__connect(c->cl, c->stop_fd, err, sizeof(err));
	if (rc) {
		if (rc == -ECANCELED)
			return SESSION_STOP;
		sc__error(c, "%s", err);
		return SESSION_FAILED;
	}
	hello.agent_id = s.run->meta.agent_id;
	hello.host = s.run->meta.host;
	hello.run_id = s.run->meta.run_id;
	hello.schema_version = BW_SCHEMA_VERSION;
	hello.keyed_chain = s.run->meta.keyed;
	rc = client__hello(c->cl, &hello, c->stop_fd, HELLO_TIMEOUT_MS, &w, err, sizeof(err));
	if (rc) {
		client__disconnect(c->cl);
		if (rc == -ECANCELED)
			return SESSION_STOP;
		sc__error(c, "run %s: %s", s.run->meta.run_id, err);
		return rc == -ECONNREFUSED ? SESSION_REFUSED : SESSION_FAILED;
	}
	if (w->last_chain.len != 0 && w->last_chain.len != CHAIN_LEN) {
		sc__error(c, "run %s: Welcome with a %zu-byte chain", s.run->meta.run_id,
			  w->last_chain.len);
		goto out;
	}
	sc__set_connected(c, true);
	s.max_frame = w->max_frame;
	welcome_seq = w->last_seq;
	/* The collector cannot hold seqs this run never wrote: believing it would mark
	 * events not yet written as delivered (never sent, the drain satisfied at once). */
	held = spool__run_last_seq(c->sp, s.run);
	if (welcome_seq > held) {
		sc__error(c, "run %s: the collector says it has seq %llu, the spool holds up to %llu: using %llu",
			  s.run->meta.run_id, (unsigned long long)welcome_seq,
			  (unsigned long long)held, (unsigned long long)held);
		welcome_seq = held;
	}
	s.next = welcome_seq + 1;
	s.last_rx_ms = (uint64_t)clock__mono_ms();
	sc__on_ack(c, &s, welcome_seq);
	r = spool_reader__new(c->sp, s.run, s.next);
	if (!r)
		goto out;

	for (;;) {
		Buildwarden__V1__CollectorMessage *m;
		uint64_t written, now;
		bool caught_up = false;

		pthread_mutex_lock(&c->lock);
		written = c->written;
		pthread_mutex_unlock(&c->lock);
		while (client__pending(c->cl) < FILL_LOW) {
			struct spool_rec rec;

			rc = spool_reader__next(r, &rec);
			if (rc == 0) {
				caught_up = true;
				break;
			}
			if (rc < 0) {
				sc__error(c, "run %s: reading the spool: %s", s.run->meta.run_id,
					  strerror(-rc));
				goto out;
			}
			rc = sc__send_record(c, &s, &rec);
			if (rc) {
				sc__error(c, "run %s: queueing: %s", s.run->meta.run_id, strerror(-rc));
				goto out;
			}
		}
		if (client__pending(c->cl)) {
			rc = client__flush(c->cl);
			if (rc) {
				sc__error(c, "run %s: sending: %s", s.run->meta.run_id,
					  rc == -EPIPE ? "connection closed" : strerror(-rc));
				goto out;
			}
		}
		while ((rc = client__recv(c->cl, &m)) == 1) {
			s.last_rx_ms = (uint64_t)clock__mono_ms();
			if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_ACK) {
				if (m->ack->seq >= s.next)
					sc__error(c, "run %s: ack of seq %llu, never sent; ignored",
						  s.run->meta.run_id, (unsigned long long)m->ack->seq);
				else
					sc__on_ack(c, &s, m->ack->seq);
				s.progressed = true;
			} else if (m->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL) {
				sc__error(c, "run %s: collector refused: %.100s", s.run->meta.run_id,
					  m->refusal->reason ? m->refusal->reason : "");
				end = SESSION_REFUSED;
			} else {
				sc__error(c, "run %s: unexpected message %d from the collector",
					  s.run->meta.run_id, (int)m->msg_case);
				rc = -EPROTO;
			}
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
			if (end == SESSION_REFUSED || rc == -EPROTO)
				goto out;
		}
		if (rc < 0) {
			sc__error(c, "run %s: %s", s.run->meta.run_id,
				  rc == -EPIPE ? "collector closed the connection" :
				  rc == -EMSGSIZE ? "collector message too large" :
				  rc == -EBADMSG ? "collector sent a malformed message" : strerror(-rc));
			goto out;
		}
		if (!s.run->current && spool_reader__eof(r) && s.acked >= s.next - 1 &&
		    !client__pending(c->cl)) {
			rc = spool__remove_run(c->sp, s.run);
			if (rc)
				sc__error(c, "run %s: uploaded, but cannot remove it: %s",
					  s.run->meta.run_id, strerror(-rc));
			end = SESSION_DONE;
			goto out;
		}
		now = (uint64_t)clock__mono_ms();
		if (s.acked + 1 < s.next && now - s.last_rx_ms > ACK_TIMEOUT_MS) {
			sc__error(c, "run %s: no ack for %u s", s.run->meta.run_id,
				  ACK_TIMEOUT_MS / 1000);
			goto out;
		}
		sc__maintain(c, s.run);
		if (sc__stopping(c)) {
			end = SESSION_STOP;
			goto out;
		}
		/* Sleep only when the spool has nothing new: "written" is read under the
		 * lock that the writer takes to see sender_idle, so no append is missed. */
		if (caught_up && !client__pending(c->cl)) {
			pthread_mutex_lock(&c->lock);
			c->sender_idle = c->written == written;
			pthread_mutex_unlock(&c->lock);
		}
		sc__idle_wait(c, client__fd(c->cl), client__want_pollout(c->cl),
			      caught_up || client__pending(c->cl) ? MAINTAIN_MS : 0);
		pthread_mutex_lock(&c->lock);
		c->sender_idle = false;
		pthread_mutex_unlock(&c->lock);
	}
out:
	spool_reader__free(r);
	if (w)
		buildwarden__v1__welcome__free_unpacked(w, NULL);
	client__disconnect(c->cl);
	sc__set_connected(c, false);
	if (end == SESSION_FAILED && s.progressed)
		return SESSION_DONE; /* reconnect at once: it was working */
	return end;
}

static void *sc__sender(void *arg)
{
	struct sink_collector *c = arg;
	unsigned backoff = 0;

	while (!sc__stopping(c)) {
		int idx = sc__pick_run(c);
		enum session_end end;

		if (idx < 0) {
			pthread_mutex_lock(&c->lock);
			c->sender_idle = true;
			pthread_mutex_unlock(&c->lock);
			sc__maintain(c, NULL);
			/* recheck after publishing idle: an append in between kicked us */
			if (sc__pick_run(c) < 0)
				sc__idle_wait(c, -1, false, MAINTAIN_MS);
			pthread_mutex_lock(&c->lock);
			c->sender_idle = false;
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		end = sc__session(c, idx);
		if (end == SESSION_STOP)
			break;
		if (end == SESSION_DONE) {
			backoff = 0;
			continue;
		}
		if (end == SESSION_REFUSED && idx + 1 < (int)spool__n_runs(c->sp))
			c->runs[idx].refused_until = (uint64_t)clock__mono_ms() + REFUSED_RETRY_MS;
		/* capped exponential backoff with "equal jitter": never below half the
		 * step, so a fleet that lost its collector does not return in lockstep */
		backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
		if (backoff > BACKOFF_MAX_MS)
			backoff = BACKOFF_MAX_MS;
		sc__maintain(c, NULL);
		sc__sleep(c, backoff / 2 + (unsigned)rand_r(&c->seed) % (backoff / 2 + 1));
	}
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->acked_cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the agent thread's side ---- */

static void sc__free(struct sink_collector *c)
{
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	client__free(c->cl);
	spool__close(c->sp);
	free(c->runs);
	pthread_cond_destroy(&c->acked_cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct sink_collector *sink_collector__open(const struct collector_client_opts *o, char *err,
					    size_t errlen)
{
	struct client_opts co = {
		.address = o->address,
		.tls_cert = o->tls_cert,
		.tls_key = o->tls_key,
		.tls_ca = o->tls_ca,
		.insecure = o->insecure,
		.connect_timeout_ms = o->connect_timeout_ms,
	};
	struct spool_opts so = {
		.dir = o->spool_dir,
		.run_id = o->run_id,
		.host = o->host ? o->host : "",
		.max_bytes = o->spool_max_bytes,
	};
	uint8_t key[CHAIN_KEY_MAX];
	struct sink_collector *c;
	sigset_t all, old;
	char e2[200];
	int rc;

	if (!o->spool_dir || !*o->spool_dir) {
		snprintf(err, errlen, "collector: a spool directory is required");
		return NULL;
	}
	so.agent_id = o->agent_id && *o->agent_id ? o->agent_id : so.host;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "collector: out of memory");
		return NULL;
	}
	c->wake_fd = c->stop_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->acked_cond, NULL);
	c->drain_timeout_ms = o->drain_timeout_ms;
	c->seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	c->cl = client__new(&co, err, errlen);
	if (!c->cl)
		goto fail;
	if (o->chain_key_path) {
		rc = chain__read_key(o->chain_key_path, key);
		if (rc < 0) {
			snprintf(err, errlen, "collector: chain key '%s': %s", o->chain_key_path,
				 chain__key_error(rc));
			goto fail;
		}
		so.key = key;
		so.keylen = (size_t)rc;
	}
	c->sp = spool__open(&so, e2, sizeof(e2));
	memset(key, 0, sizeof(key));
	if (!c->sp) {
		snprintf(err, errlen, "collector: %s", e2);
		goto fail;
	}
	c->runs = calloc(spool__n_runs(c->sp), sizeof(*c->runs));
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!c->runs || c->wake_fd < 0 || c->stop_fd < 0) {
		snprintf(err, errlen, "collector: %s", strerror(errno ?: ENOMEM));
		goto fail;
	}
	/* The sender takes no signals: the agent handles them in its loop (signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&c->thread, NULL, sc__sender, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "collector: cannot start the sender thread: %s", strerror(rc));
		goto fail;
	}
	c->thread_started = true;
	return c;
fail:
	sc__free(c);
	return NULL;
}

int sink_collector__write(struct sink_collector *c, const Buildwarden__V1__Event *ev)
{
	int rc = spool__append(c->sp, ev);
	bool kick;

	pthread_mutex_lock(&c->lock);
	c->written++;
	c->drained = false;
	kick = c->sender_idle;
	c->sender_idle = false;
	pthread_mutex_unlock(&c->lock);
	if (kick)
		sc__kick(c->wake_fd);
	return rc;
}

/* Under c->lock. */
static void sc__progress(struct sink_collector *c, const struct spool_stats *st, uint64_t t0,
			 bool done, sink_collector_progress_fn fn, void *arg)
{
	struct sink_collector_progress p = {
		.acked_seq = c->cur_acked,
		.last_seq = st->last_seq,
		.connected = c->connected,
		.done = done,
		.waited_ms = (unsigned)((uint64_t)clock__mono_ms() - t0),
		.pending_runs = c->pending_runs, /* the sender's count: it owns the spool */
	};

	pthread_mutex_unlock(&c->lock);
	fn(&p, arg);
	pthread_mutex_lock(&c->lock);
}

int sink_collector__drain_progress(struct sink_collector *c, unsigned timeout_ms,
				   sink_collector_progress_fn fn, void *arg)
{
	struct spool_stats st;
	struct timespec dl;
	uint64_t t0 = (uint64_t)clock__mono_ms();
	int rc = 0;

	spool__seal(c->sp, true);
	spool__stats(c->sp, &st);
	dl = clock__real_deadline(timeout_ms);
	pthread_mutex_lock(&c->lock);
	c->written++; /* the seal may have written a Skip */
	c->sender_idle = false;
	pthread_mutex_unlock(&c->lock);
	sc__kick(c->wake_fd);

	pthread_mutex_lock(&c->lock);
	while (c->cur_acked < st.last_seq && !c->stopping && rc == 0) {
		/* wake at least once a second to tell a waiting person where delivery is */
		struct timespec slice = clock__real_deadline(1000);

		if (!fn || slice.tv_sec > dl.tv_sec ||
		    (slice.tv_sec == dl.tv_sec && slice.tv_nsec > dl.tv_nsec))
			slice = dl;
		rc = pthread_cond_timedwait(&c->acked_cond, &c->lock, &slice);
		if (rc == ETIMEDOUT && fn && (slice.tv_sec != dl.tv_sec || slice.tv_nsec != dl.tv_nsec)) {
			sc__progress(c, &st, t0, false, fn, arg);
			rc = 0;
		}
	}
	rc = c->cur_acked >= st.last_seq ? 0 : -ETIMEDOUT;
	if (fn && (uint64_t)clock__mono_ms() - t0 >= 1000)
		sc__progress(c, &st, t0, true, fn, arg);
	/* Success or not, the caller has given delivery its time: close must not make
	 * the build wait a second timeout. */
	c->drained = true;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int sink_collector__drain(struct sink_collector *c, unsigned timeout_ms)
{
	return sink_collector__drain_progress(c, timeout_ms, NULL, NULL);
}

int sink_collector__close(struct sink_collector *c)
{
	bool drained;
	int rc = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	drained = c->drained;
	pthread_mutex_unlock(&c->lock);
	if (!drained)
		rc = sink_collector__drain(c, c->drain_timeout_ms);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_mutex_unlock(&c->lock);
	sc__kick(c->stop_fd);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	/* The sender is gone, so this thread may do its housekeeping: segments sealed
	 * by the drain after their ack arrived. */
	if (c->sp && c->runs) {
		size_t n = spool__n_runs(c->sp);

		if (c->runs[n - 1].acked)
			spool__ack(c->sp, spool__run(c->sp, n - 1), c->runs[n - 1].acked);
	}
	sc__free(c);
	return rc;
}

void sink_collector__stats(struct sink_collector *c, struct sink_collector_stats *out)
{
	struct spool_stats st;

	spool__stats(c->sp, &st);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	out->sent = c->sent;
	out->acked = c->acked;
	out->reconnects = c->reconnects;
	out->connected = c->connected;
	out->acked_seq = c->cur_acked;
	out->pending_runs = c->pending_runs;
	memcpy(out->last_error, c->last_error, sizeof(out->last_error));
	pthread_mutex_unlock(&c->lock);
	out->spooled = st.spooled;
	out->spool_full_drops = st.full_drops;
	out->other_drops = st.other_drops;
	out->corrupt_segments = st.corrupt;
	out->foreign_runs = st.foreign_runs;
	out->spool_bytes = st.usage;
	out->last_seq = st.last_seq;
	out->unacked = st.last_seq > out->acked_seq ? st.last_seq - out->acked_seq : 0;
}

static int sc__op_write(void *ctx, const Buildwarden__V1__Event *ev)
{
	return sink_collector__write(ctx, ev);
}

static int sc__op_flush(void *ctx)
{
	return 0;
}

static void sc__op_close(void *ctx)
{
	sink_collector__close(ctx);
}

static const struct sink_ops sc__ops = {
	.write = sc__op_write,
	.flush = sc__op_flush,
	.close = sc__op_close,
};

struct sink sink_collector__sink(struct sink_collector *c)
{
	return (struct sink){ .ops = &sc__ops, .ctx = c };
}
