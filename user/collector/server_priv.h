/* What the files of the collector server share (server.c: set-up and the loop; conn.c:
 * connections; writer.c: the writer thread; tls.c: TLS). Not for use outside them.
 *
 * Two threads. The loop thread (server__run) owns everything here except what is
 * marked "writer thread" or "under w.mu"; the writer thread touches only struct writer,
 * and server__stop() (any thread, signal handlers) writes stop_fd and nothing else. */
#ifndef BUILDWARDEN_COLLECTOR_SERVER_PRIV_H
#define BUILDWARDEN_COLLECTOR_SERVER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sys/socket.h>

#include <openssl/ssl.h>

#include "collector/export.h"
#include "collector/ingest.h"
#include "collector/netaddr.h"
#include "collector/server.h"
#include "collector/store.h"

#define SERVER_LOG "collector: " /* every log line starts so: tests and operators grep it */

#define CONN_READ_BUDGET (256u * 1024)
#define CONN_RBUF_MIN (64u * 1024)
#define CLOSE_LINGER_NS (1000000000ll)
#define SWEEP_NS (500000000ll)
/* at a stop, how long the exports may take to deliver what was committed */
#define SERVER_EXPORT_DRAIN_MS 10000u

enum conn_state { CS_TLS, CS_OPEN, CS_CLOSING };

/* One agent connection: loop thread only. */
struct conn {
	int fd;
	SSL *ssl;
	enum conn_state st;
	char peer[NETADDR_TEXT_MAX];
	int64_t deadline;          /* handshake end (CS_TLS, Hello) or linger end (CS_CLOSING) */
	int64_t accepted_ns;       /* monotonic: the oldest handshake is evicted first */
	int64_t last_rx_ns;        /* monotonic: the last bytes read (idle timeout) */
	struct sockaddr_storage addr; /* the source, for the per-address cap */
	bool unauth;               /* counted in s->nhandshakes: TLS + Hello not done yet */
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct ingest_conn ic;
	bool dead;                 /* close at the end of this loop pass */
	bool stalled;              /* whole frames wait: batch full or Welcome pending */
	bool shut;                 /* CS_CLOSING: our side is shut down */
	bool logged;
	bool throttle_logged;      /* said once that its identity is over --max-agent-bytes */
	size_t charged;            /* bytes charged to its identity (ingest__charge) */
	struct conn *next, *prev;  /* s->conns */
	struct conn *rq_next, *rq_prev;
	bool in_rq;
};

/* The hand-over between the loop and the writer thread: one batch at a time. */
struct writer {
	pthread_t th;              /* set once by the loop before the thread runs */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *job;         /* under mu: loop sets it, the writer takes it */
	struct batch *done;        /* under mu: the writer sets it, the loop takes it */
	bool ok;                   /* under mu: how done went */
	char err[256];             /* under mu: why it failed */
	bool quit;                 /* under mu: set by the loop at teardown */
	bool busy;                 /* loop only (written under mu): a job is out */
	bool started;              /* loop only */
	int efd;                   /* eventfd: the writer signals done, the loop reads */
	struct store *st;          /* writer thread only, once started */
	int64_t retention_ns;      /* set before start: --retention, 0 for none */
	int64_t retain_next;       /* writer thread only: monotonic ns of the next step */
	FILE *log;                 /* set before start: retention errors */
};

struct server {
	struct server_cfg cfg;
	FILE *log;
	SSL_CTX *tls;
	int lfd, ep;
	int stop_fd;               /* any thread: server__stop() writes it */
	int port;
	bool accept_paused;
	int64_t accept_resume;
	struct store *wstore;      /* the writer's handle (w.st); the loop reads stats at the end */
	struct store *rstore;      /* the loop's handle: ingest looks runs up through it */
	struct ingest *ig;
	struct redact redact;      /* read by ingest (ingest_cfg.redact) */
	bool redact_init;
	struct writer w;
	struct exporter *exp[EXPORT_MAX]; /* --export: each tails the store on a thread of its own */
	size_t n_exp;
	struct conn *conns;
	unsigned nconns;
	struct conn *rq_head, *rq_tail; /* the ready queue: may have more to read */
	int64_t hs_ns, idle_ns, commit_ns, last_sweep;
	unsigned nhandshakes;      /* connections not past TLS + Hello (c->unauth) */
	bool stopping;
	/* epoll tags for the non-connection fds */
	char tag_listen, tag_stop, tag_writer;
};

/* ---- conn.c: connections and the ready queue ---------------------------- */

void rq__push(struct server *s, struct conn *c);
/* Accepts what is pending on the listener (a bounded number per call). */
void conn__accept(struct server *s);
/* Serves one ready connection: handshake, then feed buffered frames and read more,
 * within the per-pass budget. */
void conn__service(struct server *s, struct conn *c);
/* Sends what ingest queued. Returns false when the connection broke. */
bool conn__flush(struct server *s, struct conn *c);
/* Marks c for closing and logs why, once. */
void conn__kill(struct server *s, struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void conn__free(struct server *s, struct conn *c);
/* After a commit, a seal, or a refusal of another connection: flush Acks and
 * Welcomes, start closing refused connections, and wake the stalled. */
void conn__scan(struct server *s);
/* Deadlines: handshakes, Hellos, lingering closes, a paused listener. */
void conn__sweep(struct server *s, int64_t now);
/* Frees the connections marked dead in this pass. */
void conn__reap(struct server *s);

/* ---- writer.c: the writer thread and commit scheduling ------------------ */

int writer__start(struct writer *w, struct store *st);
/* Joins the thread; a batch it finished and nobody collected is handed back to ingest. */
void writer__stop(struct server *s);
/* The writer is idle and the batch is due (or force): hand it over. */
void writer__maybe_commit(struct server *s, bool force);
/* The writer's eventfd fired: collect its batch, start the next, wake connections. */
void writer__collect(struct server *s);

/* ---- tls.c -------------------------------------------------------------- */

/* The server context from cfg's files. 0, or an enum server_error with the reason in err. */
int tls__ctx_new(const struct server_cfg *cfg, SSL_CTX **out, char *err, size_t errlen);
/* One step of a non-blocking handshake. 1: done, with the client certificate's CN (the
 * agent's identity) in cn and its DNS subjectAltNames (NUL-separated, *dns_used bytes)
 * in dns; 0: wants more I/O; -1: failed, the reason in why. */
int tls__accept(SSL *ssl, char *cn, size_t cnlen, char *dns, size_t dnslen, size_t *dns_used,
		char *why, size_t whylen);
/* The reason of the last OpenSSL (or socket) failure, for a log line. */
void tls__reason(char *buf, size_t len);

#endif /* BUILDWARDEN_COLLECTOR_SERVER_PRIV_H */
