/* Test harness for the collector transport (issue 3): certificates made at test time
 * with the openssl CLI, a collector child on a loopback port, a TCP proxy we control
 * (network cuts), a small tmpfs (disk full), the query command parsed into seqs, a
 * hand-written protocol client (plain or TLS) for hostile peers, and the comparison of
 * what an agent recorded with what the collector stored.
 *
 * Everything here is prefixed cf_ (every tests/lib source is linked into every test binary).
 * Processes are tracked with bw_track_pid() so the bwtest alarm kills them; proxies and
 * mounts are registered so cf_cleanup() stops and unmounts them. Loopback only. */
#ifndef BUILDWARDEN_COLLECTOR_FIXTURE_H
#define BUILDWARDEN_COLLECTOR_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "lib/bwtest.h"

#define CF_AGENTS 4  /* agent-1 .. agent-4 from the test CA */
#define CF_CHAIN_LEN 32

/* ---- small utilities ---- */

long long cf_now_ms(void);
void cf_sleep_ms(unsigned ms);
/* Size of a file, 0 if missing. */
long long cf_file_size(const char *path);
bool cf_exists(const char *path);
/* Waits (polling) until path exists; false after timeout_ms. */
bool cf_wait_file(const char *path, unsigned timeout_ms);
/* Text of path from byte offset on (NUL-terminated, caller frees; "" if none). */
char *cf_read_from(const char *path, long long offset);
/* True when some line of the text of path after offset contains every one of the
 * NULL-terminated needles (case-insensitive), and, if any_of is not NULL, at least
 * one of any_of. The matching line is copied to line (if not NULL). */
bool cf_log_has_line(const char *path, long long offset, const char *const needles[],
		     const char *const any_of[], char *line, size_t linelen);

/* ---- certificates ---- */

struct cf_pki {
	char dir[PATH_MAX];
	char ca[PATH_MAX], ca_key[PATH_MAX];
	char srv_cert[PATH_MAX], srv_key[PATH_MAX];       /* SAN IP:127.0.0.1, IP:::1 */
	char agent_cert[CF_AGENTS + 1][PATH_MAX];         /* [n]: CN=agent-<n>, n >= 1 */
	char agent_key[CF_AGENTS + 1][PATH_MAX];
	char other_ca[PATH_MAX], other_ca_key[PATH_MAX];  /* an unrelated CA */
	char other_cert[PATH_MAX], other_key[PATH_MAX];   /* CN=agent-1, signed by other_ca */
};

/* Makes all of the above under dir (created). 0, or -1 with a message in err. */
int cf_pki_create(struct cf_pki *p, const char *dir, char *err, size_t errlen);

/* ---- background processes ---- */

/* fork + exec argv[0] in its own process group, stdin /dev/null, stdout and stderr
 * appended to log. Tracked (bwtest). Returns the pid or -errno. */
pid_t cf_spawn_bg(const char *const argv[], const char *log);
/* Waits up to timeout_ms for pid. 1 when it exited (*code: exit code, or 128+signal),
 * 0 when it is still running (left running). */
int cf_wait_exit(pid_t pid, unsigned timeout_ms, int *code);
/* SIGKILL to pid (and its group) and reap. */
void cf_kill9(pid_t pid);

/* A free loopback TCP port (bound to 0 and released), or -1. */
int cf_free_port(void);
/* True when a TCP connect to 127.0.0.1:port succeeds (within timeout_ms). */
bool cf_port_accepts(int port, unsigned timeout_ms);

/* ---- collector ---- */

struct cf_collector {
	/* set by the caller */
	char db[PATH_MAX];
	char log[PATH_MAX];
	int port;                  /* 0: cf_collector_start picks one */
	const struct cf_pki *pki;  /* NULL: --insecure */
	const char *extra[8];      /* more flags, NULL-terminated */
	/* state */
	pid_t pid;
	long long log_start;       /* size of log when this instance started */
	char cmdline[2048];
};

/* Starts `buildwarden collector --listen 127.0.0.1:PORT --db DB (TLS|--insecure) EXTRA`
 * and waits until it accepts (10 s). 0, or -1 with a message in err (the log tail). */
int cf_collector_start(struct cf_collector *c, char *err, size_t errlen);
/* kill -9 by pid and reap. */
void cf_collector_kill9(struct cf_collector *c);
/* SIGTERM, wait up to 10 s (then SIGKILL). Returns the exit code or -1. */
int cf_collector_stop(struct cf_collector *c);
bool cf_collector_alive(struct cf_collector *c);

/* ---- TCP proxy (a thread of the test process) ---- */

enum cf_cut {
	CF_CUT_CLOSE = 1, /* close every connection; accept new ones and forward nothing */
	CF_CUT_STALL,     /* keep connections, forward nothing either way; new ones as above */
	CF_CUT_REFUSE,    /* close every connection and the listener: connects are refused */
};

struct cf_proxy;

/* Listens on 127.0.0.1:<free port>, forwards to 127.0.0.1:upstream_port. */
struct cf_proxy *cf_proxy_start(int upstream_port);
int cf_proxy_port(const struct cf_proxy *p);
/* Returns once the cut is in effect (existing connections closed or stalled). */
void cf_proxy_cut(struct cf_proxy *p, enum cf_cut how);
/* Forwards again: stalled connections resume, held (never forwarded) ones are closed. */
void cf_proxy_restore(struct cf_proxy *p);
unsigned cf_proxy_accepted(struct cf_proxy *p);
void cf_proxy_stop(struct cf_proxy *p);

/* ---- tmpfs ---- */

/* mount -t tmpfs -o size=<bytes> on dir (must exist). Registered for cf_cleanup. */
int cf_tmpfs_mount(const char *dir, unsigned long long bytes);
int cf_tmpfs_umount(const char *dir);
/* Free bytes on the filesystem of path, or -1. */
long long cf_fs_free(const char *path);

/* Stops every proxy, kills and reaps tracked processes, unmounts every tmpfs. Call
 * before bw_cleanup_all() in teardown. */
void cf_cleanup(void);

/* ---- what the collector stored ---- */

struct cf_stored {
	uint64_t *seq;  /* in query order */
	size_t n;
	char agent[128]; /* agent of the first row ("" if none) */
	bool agent_mixed; /* rows of more than one agent */
	char err[256];
};

/* `buildwarden query --db DB --run RUN_ID`, seqs parsed from the JSON lines. 0, or -1
 * with err set (the command failed or a line had no seq). */
int cf_query_run(const char *db, const char *run_id, struct cf_stored *out);
void cf_stored_free(struct cf_stored *s);

struct cf_finding {
	char kind[64];
	char agent[128];
	char run_id[128];
	uint64_t first, last; /* 0 when absent */
	char line[1024];
};

struct cf_findings {
	struct cf_finding *f;
	size_t n;
	char err[256];
	char *raw; /* the whole output */
};

/* `buildwarden query --db DB --findings`, only those of run_id (all when NULL). */
int cf_query_findings(const char *db, const char *run_id, struct cf_findings *out);
void cf_findings_free(struct cf_findings *f);
/* Number of findings of kind (prefix match) */
size_t cf_findings_count(const struct cf_findings *f, const char *kind);

/* Direct SQLite cross-checks (read-only): rows stored for run_id (any agent), -1 on
 * error. */
long long cf_db_count(const char *db, const char *run_id);
/* Waits until cf_db_count(run_id) >= n (polling), up to timeout_ms; returns the last count. */
long long cf_db_wait_count(const char *db, const char *run_id, long long n, unsigned timeout_ms);

/* Compares the agent's local events with what the collector stored for their run:
 * local seqs must be 1..N without gaps; stored seqs must be exactly the local ones,
 * minus those in the skipped ranges (from findings of kind "skip"), each once, stored
 * bytes decoding to the same event as the local one (checked in SQLite), under the
 * expected agent identity (NULL: not checked). Returns true when all holds; report
 * says what did not (and counts in any case). */
bool cf_compare(const struct bw_events *local, const char *db, const char *agent,
		const struct cf_findings *skips, char *report, size_t len);

/* The run id of a local events file (the first event's), "" if none. */
const char *cf_run_id(const struct bw_events *evs);

/* ---- a hand-written protocol client ---- */

struct cf_peer {
	int fd;
	void *ctx;  /* SSL_CTX * */
	void *ssl;  /* SSL * (NULL: plaintext) */
	int local_port;
	uint8_t rbuf[65536];
	size_t rlen;
	bool closed;     /* EOF or error seen */
	char refusal[256];
	uint8_t chain[CF_CHAIN_LEN];
	uint64_t next_seq;
	char run_id[80];
	char err[256];
};

/* Connects to 127.0.0.1:port. cert/key NULL and ca NULL: plain TCP. ca set: TLS,
 * verifying the server against ca for IP 127.0.0.1, presenting cert/key if given.
 * 0, or -1 with p->err set (TLS refusals land here). */
int cf_peer_connect(struct cf_peer *p, int port, const char *cert, const char *key,
		    const char *ca);
/* Writes all of buf (5 s bound). 0 or -errno. */
int cf_peer_send(struct cf_peer *p, const void *buf, size_t len);
/* varint length + packed message. */
int cf_peer_send_msg(struct cf_peer *p, const ProtobufCMessage *m);
/* Next CollectorMessage within timeout_ms: 1 with *out (free with
 * buildwarden__v1__collector_message__free_unpacked), 0 on timeout, -EPIPE when the
 * collector closed, -EBADMSG when what came is not one. A Refusal is also copied to
 * p->refusal. */
int cf_peer_recv(struct cf_peer *p, unsigned timeout_ms, Buildwarden__V1__CollectorMessage **out);
/* Sends Hello{host, run_id, 1} and waits for Welcome (5 s). 0 with p->next_seq =
 * last_seq + 1 and p->chain = last_chain; -1 with p->err set. max_frame (if not NULL)
 * gets Welcome.max_frame. */
int cf_peer_hello(struct cf_peer *p, const char *agent_id, const char *host, const char *run_id,
		  uint64_t *max_frame);
/* A packed Event{seq, time, host, run_id, exec{filename}} with a filename padded to at
 * least pad bytes. Caller frees. */
uint8_t *cf_event_bytes(uint64_t seq, const char *host, const char *run_id, const char *filename,
			size_t pad, size_t *len);
/* chain = SHA-256(prev || be64(seq) || event) */
void cf_chain(const uint8_t prev[CF_CHAIN_LEN], uint64_t seq, const uint8_t *ev, size_t len,
	      uint8_t out[CF_CHAIN_LEN]);
/* Sends EventFrame{seq, event, chain(p->chain)}; advances p->chain and p->next_seq to
 * seq + 1 when advance is true. */
int cf_peer_send_event(struct cf_peer *p, uint64_t seq, const uint8_t *ev, size_t len, bool advance);
/* Reads (discarding, noting a Refusal) until the collector closes: ms it took, or -1 if
 * it was still open after timeout_ms. */
long long cf_peer_wait_closed(struct cf_peer *p, unsigned timeout_ms);
void cf_peer_close(struct cf_peer *p);

/* Encodes a varint into out (10 bytes room); returns its length. */
size_t cf_varint(uint64_t v, uint8_t *out);

#endif /* BUILDWARDEN_COLLECTOR_FIXTURE_H */
