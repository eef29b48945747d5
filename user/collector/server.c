// SPDX-License-Identifier: GPL-2.0
/* Set-up, the event loop and teardown: see server.h. The loop dispatches to conn.c
 * (connections), writer.c (the writer thread) and tls.c; what they share, and which
 * thread owns what, is in server_priv.h. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "collector/netaddr.h"
#include "collector/server_priv.h"
#include "transport/frame.h"

/* How long the loop may sleep: until the filling batch is due (a quiet agent's frame
 * would otherwise wait for the 50 ms tick on top of the commit interval), at most 50 ms
 * for the sweeps. While the writer is busy its completion wakes the loop anyway. */
static int server__sleep_ms(struct server *s)
{
	int64_t first = ingest__first_ns(s->ig), left;

	if (!first || s->w.busy)
		return 50;
	left = first + s->commit_ns - clock__mono_ns();
	if (left <= 0)
		return 0;
	return left >= 50000000 ? 50 : (int)((left + 999999) / 1000000);
}

int server__run(struct server *s)
{
	struct epoll_event evs[256];

	s->last_sweep = clock__mono_ns();
	while (!s->stopping) {
		bool blocked = ingest__full(s->ig) && s->w.busy;
		int timeout = s->rq_head && !blocked ? 0 : server__sleep_ms(s);
		int n = epoll_wait(s->ep, evs, 256, timeout);
		bool dirty = false;
		int64_t now;

		if (n < 0 && errno != EINTR) {
			log__line(s->log, SERVER_LOG, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->tag_listen) {
				conn__accept(s);
			} else if (p == &s->tag_stop) {
				s->stopping = true;
			} else if (p == &s->tag_writer) {
				writer__collect(s);
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
		now = clock__mono_ns();
		writer__maybe_commit(s, false);
		if (now - s->last_sweep >= SWEEP_NS) {
			conn__sweep(s, now);
			s->last_sweep = now;
		}
		if (dirty)
			conn__scan(s);
		conn__reap(s);
	}

	/* Stopping: commit what is pending, Ack it if the agents still listen, close. */
	for (int rounds = 0; rounds < 2; rounds++) {
		while (s->w.busy) {
			struct epoll_event ev;

			if (epoll_wait(s->ep, &ev, 1, 100) > 0 && ev.data.ptr == &s->tag_writer)
				writer__collect(s);
		}
		writer__maybe_commit(s, true);
	}
	for (struct conn *c = s->conns; c; c = c->next) {
		c->logged = true;
		conn__kill(s, c, "collector stopping");
	}
	conn__reap(s);
	/* everything is committed: let the exports catch up (a sink that is down keeps
	 * the rest for the next start, through its cursor) */
	for (size_t i = 0; i < s->n_exp; i++) {
		export__stop(s->exp[i], SERVER_EXPORT_DRAIN_MS);
		s->exp[i] = NULL;
	}
	{
		struct store_stats st;

		store__stats(s->wstore, &st);
		log__line(s->log, SERVER_LOG,
			  "stopped: %llu events stored, %llu findings, %llu identical re-sends ignored, %llu commits",
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

static int server__listen(struct server *s, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	if (netaddr__parse_listen(s->cfg.listen, &ss, &sl)) {
		snprintf(err, errlen, "--listen '%s': expected IPv4:PORT or [IPv6]:PORT", s->cfg.listen);
		return SERVER_ERR_CONFIG;
	}
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return SERVER_ERR_LISTEN;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(s->lfd, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", s->cfg.listen, strerror(errno));
		return SERVER_ERR_LISTEN;
	}
	sl = sizeof(ss);
	getsockname(s->lfd, (struct sockaddr *)&ss, &sl);
	s->port = netaddr__port(&ss);
	return 0;
}

static bool server__ep_add(struct server *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

/* The --export threads, each on a read handle of its own: started before the listener,
 * so that a bad export directory fails the start-up, not the first commit. */
static int server__exports(struct server *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->cfg.n_exports && i < EXPORT_MAX; i++) {
		struct export_cfg ec = {
			.spec = s->cfg.exports[i],
			.db = s->cfg.db,
			.rotate_bytes = s->cfg.export_rotate,
			.tls_ca = s->cfg.export_tls_ca,
			.tls_cert = s->cfg.export_tls_cert,
			.tls_key = s->cfg.export_tls_key,
			.settle_s = s->cfg.export_settle,
			.log = s->log,
		};
		int rc = export__start(&ec, &s->exp[i], err, errlen);

		if (rc)
			return rc == -EINVAL ? SERVER_ERR_CONFIG :
			       rc == -ENOENT && strstr(s->cfg.exports[i], "syslog:tls") ? SERVER_ERR_TLS_FILE :
										SERVER_ERR_STORE;
		s->n_exp = i + 1;
	}
	return 0;
}

int server__new(const struct server_cfg *cfg, struct server **out, char *err, size_t errlen)
{
	struct ingest_cfg icfg = { 0 };
	struct server *s;
	struct rlimit rl;
	int rc;

	*out = NULL;
	if (cfg->require_keys && !cfg->agent_keys) {
		snprintf(err, errlen, "--require-keys needs --agent-keys DIR");
		return SERVER_ERR_CONFIG;
	}
	if (!cfg->insecure && (!cfg->tls_cert || !cfg->tls_key || !cfg->tls_client_ca)) {
		snprintf(err, errlen,
			 "TLS needs --tls-cert, --tls-key and --tls-client-ca (or --insecure for plaintext testing)");
		return SERVER_ERR_CONFIG;
	}
	if (!cfg->db || !strcmp(cfg->db, ":memory:")) {
		/* the event loop reads run state through a second handle */
		snprintf(err, errlen, "--db needs a file");
		return SERVER_ERR_CONFIG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return SERVER_ERR_INTERNAL;
	}
	s->cfg = *cfg;
	s->lfd = s->ep = s->stop_fd = s->w.efd = -1;
	s->log = cfg->log ? cfg->log : stderr;
	if (!s->cfg.max_frame)
		s->cfg.max_frame = BW_FRAME_MAX;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = 1024;
	if (!s->cfg.max_handshakes)
		s->cfg.max_handshakes = 64;
	if (!s->cfg.max_per_addr)
		s->cfg.max_per_addr = 8;
	if (!s->cfg.max_agent_conns)
		s->cfg.max_agent_conns = 64;
	if (!s->cfg.max_agent_runs)
		s->cfg.max_agent_runs = 600;
	s->idle_ns = (int64_t)((cfg->idle_timeout > 0 ? cfg->idle_timeout : 600.0) * 1e9);
	if (!s->cfg.batch)
		s->cfg.batch = 16384;
	s->hs_ns = (int64_t)((cfg->handshake_timeout > 0 ? cfg->handshake_timeout : 10.0) * 1e9);
	s->commit_ns = (int64_t)(cfg->commit_ms ? cfg->commit_ms : 50) * NSEC_PER_MSEC;
	pthread_mutex_init(&s->w.mu, NULL);
	pthread_cond_init(&s->w.cv, NULL);
	/* Room for a frame being read and the frames of a batch being committed, and a
	 * large frame size never left without room. */
	if (!s->cfg.max_agent_bytes)
		s->cfg.max_agent_bytes = s->cfg.max_frame * 4 > (16u << 20) ? s->cfg.max_frame * 4
									       : (16u << 20);
	if (s->cfg.max_agent_bytes < 2 * s->cfg.max_frame) {
		snprintf(err, errlen, "--max-agent-bytes %zu is below twice --max-frame (%zu): an agent could not send one frame",
			 s->cfg.max_agent_bytes, s->cfg.max_frame);
		rc = SERVER_ERR_CONFIG;
		goto fail;
	}

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
		rc = tls__ctx_new(cfg, &s->tls, err, errlen);
		if (rc)
			goto fail;
	}
	rc = store__open(cfg->db, STORE_WRITE, &s->wstore, err, errlen);
	if (rc) {
		rc = SERVER_ERR_STORE;
		goto fail;
	}
	if (cfg->sync_normal && store__set_sync(s->wstore, STORE_SYNC_NORMAL)) {
		snprintf(err, errlen, "cannot set synchronous=NORMAL");
		rc = SERVER_ERR_STORE;
		goto fail;
	}
	if (store__open(cfg->db, STORE_READ, &s->rstore, err, errlen)) {
		rc = SERVER_ERR_STORE;
		goto fail;
	}
	if (redact__init(&s->redact, !cfg->no_default_redact, cfg->redact, cfg->n_redact, err,
			 errlen)) {
		rc = SERVER_ERR_CONFIG;
		goto fail;
	}
	s->redact_init = true;
	icfg.redact = &s->redact;
	icfg.max_frame = s->cfg.max_frame;
	icfg.agent_keys = cfg->agent_keys;
	icfg.insecure = cfg->insecure;
	icfg.require_keys = cfg->require_keys;
	icfg.max_agent_conns = s->cfg.max_agent_conns;
	icfg.max_agent_bytes = s->cfg.max_agent_bytes;
	icfg.max_agent_runs = s->cfg.max_agent_runs;
	icfg.batch_frames = s->cfg.batch;
	if (ingest__new(&icfg, s->rstore, &s->ig)) {
		snprintf(err, errlen, "cannot read the database");
		rc = SERVER_ERR_STORE;
		goto fail;
	}
	rc = server__exports(s, err, errlen);
	if (rc)
		goto fail;
	rc = server__listen(s, err, errlen);
	if (rc)
		goto fail;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->w.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->ep < 0 || s->stop_fd < 0 || s->w.efd < 0 || !server__ep_add(s, s->lfd, &s->tag_listen) ||
	    !server__ep_add(s, s->stop_fd, &s->tag_stop) || !server__ep_add(s, s->w.efd, &s->tag_writer)) {
		snprintf(err, errlen, "epoll set-up: %s", strerror(errno));
		rc = SERVER_ERR_INTERNAL;
		goto fail;
	}
	s->w.retention_ns = cfg->retention_ns;
	s->w.log = s->log;
	if (writer__start(&s->w, s->wstore)) {
		snprintf(err, errlen, "cannot start the writer thread");
		rc = SERVER_ERR_INTERNAL;
		goto fail;
	}
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
	writer__stop(s);
	for (size_t i = 0; i < s->n_exp; i++)
		export__stop(s->exp[i], 0);
	ingest__free(s->ig);
	if (s->redact_init)
		redact__free(&s->redact);
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
