/* The collector's network side: one epoll loop on one thread serves every connection
 * (non-blocking sockets, OpenSSL in non-blocking mode), and one writer thread commits
 * batches to SQLite so that disk syncs never stall the loop. See docs/collector.md. */
#ifndef BUILDWARDEN_COLLECTOR_SERVER_H
#define BUILDWARDEN_COLLECTOR_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct server_cfg {
	const char *listen;        /* "IPv4:PORT" or "[IPv6]:PORT"; port 0 picks one */
	const char *db;            /* SQLite file, or PostgreSQL URI / conninfo (store.h) */
	const char *tls_cert, *tls_key, *tls_client_ca;
	bool insecure;             /* plaintext; identity from Hello.agent_id */
	size_t max_frame;          /* 0: 1 MiB */
	const char *agent_keys;    /* DIR of <agent>.key files, or NULL */
	bool require_keys;         /* refuse agents without DIR/<agent>.key */
	double handshake_timeout;  /* seconds for TLS + Hello; 0: 10 */
	double idle_timeout;       /* seconds without a byte after Hello; 0: 600 */
	unsigned max_conns;        /* 0: 1024 */
	unsigned max_handshakes;   /* connections before TLS + Hello at once; 0: 64 */
	unsigned max_per_addr;     /* of those, from one source address; 0: 8 */
	unsigned max_agent_conns;  /* connections of one agent identity; 0: 64 */
	size_t max_agent_bytes;    /* memory held for one identity; 0: max(16 MiB, 4 x max_frame) */
	unsigned max_agent_runs;   /* new runs per identity per minute; 0: 600 */
	size_t batch;              /* frames per commit; 0: 16384 */
	unsigned commit_ms;        /* longest wait before a commit; 0: 50 */
	bool sync_normal;          /* PRAGMA synchronous=NORMAL instead of FULL */
	const char *const *redact; /* --redact patterns (POSIX ERE) */
	size_t n_redact;
	bool no_default_redact;    /* the built-in secret rules off */
	const char *const *exports; /* --export specs (export.h), at most EXPORT_MAX */
	size_t n_exports;
	uint64_t export_rotate;    /* jsonl: bytes per file; 0: 64 MiB */
	const char *export_tls_ca, *export_tls_cert, *export_tls_key;
	double export_settle;      /* syslog: seconds; <0: 1 */
	int64_t retention_ns;      /* keep this much history (store__retain); 0: all */
	FILE *log;                 /* NULL: stderr */
};

struct server;

/* Why server__new failed; the CLI owns the exit code each one becomes. */
enum server_error {
	SERVER_ERR_CONFIG = 1, /* bad configuration: listen address, no TLS, no database file */
	SERVER_ERR_TLS_FILE,   /* a TLS certificate, key or CA file is unreadable or unusable */
	SERVER_ERR_LISTEN,     /* cannot create, bind or listen on the socket */
	SERVER_ERR_INTERNAL,   /* out of memory, epoll, the writer thread */
	SERVER_ERR_STORE,      /* cannot create, open or lock the database */
};

/* Opens the store, sets up TLS and listens. Returns 0, or an enum server_error with a
 * message in err. */
int server__new(const struct server_cfg *cfg, struct server **out, char *err, size_t errlen);
/* The port actually bound (for listen ports of 0). */
int server__port(const struct server *s);
/* Runs until server__stop(); commits what is pending before it returns 0. */
int server__run(struct server *s);
/* Async-signal-safe: may be called from a signal handler or another thread. */
void server__stop(struct server *s);
void server__free(struct server *s);

#endif /* BUILDWARDEN_COLLECTOR_SERVER_H */
