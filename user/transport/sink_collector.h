/* The collector sink: each event is spooled on disk (spool.h) by the caller's thread,
 * and a sender thread streams the spool to the collector (client.h), resuming where
 * the collector's Welcome says, deleting what it acknowledges, reconnecting with
 * backoff. The caller never waits on the network.
 *
 * Threads. The agent thread calls write/flush/drain/close; the sender thread is
 * internal. They share: the spool (its own mutex, see spool.h), and under
 * sink_collector's mutex the counters, the acknowledged seq of the current run, the
 * "sender is idle" flag (the writer kicks an eventfd only then, so a busy stream costs
 * no syscall per event) and the closing flag; a condition variable tells drain() that
 * an ack arrived. sink_collector__stats() may be called from any thread. */
#ifndef BUILDWARDEN_TRANSPORT_SINK_COLLECTOR_H
#define BUILDWARDEN_TRANSPORT_SINK_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/log.h"
#include "buildwarden.pb-c.h"
#include "transport/sink.h"

struct collector_client_opts {
	const char *address;   /* "host:port", "[v6]:port" */
	const char *spool_dir; /* required; this run goes to spool_dir/<run_id>/ */
	const char *tls_cert, *tls_key, *tls_ca; /* client cert/key, CA for the collector */
	bool insecure;         /* plaintext TCP (testing only) */
	const char *agent_id;  /* sent in Hello (identity comes from the cert unless
				* insecure); NULL or "" = host */
	const char *host, *run_id;
	const char *chain_key_path; /* optional HMAC key file: its bytes exactly */
	uint64_t spool_max_bytes;   /* 0 = default 256 MiB */
	unsigned drain_timeout_ms;  /* close(): how long to wait for the final ack */
	unsigned connect_timeout_ms; /* TCP connect, then TLS handshake; 0 = 10 s */
};

struct sink_collector_stats {
	uint64_t spooled;          /* events written to the spool by this process */
	uint64_t sent;             /* event frames written to a collector connection
				    * (resends after a reconnect count again) */
	uint64_t acked;            /* seqs acknowledged, all runs (skipped ones included) */
	uint64_t spool_full_drops; /* events dropped: spool over its cap or disk full */
	uint64_t other_drops;      /* events dropped: too large, or a spool I/O error */
	uint64_t corrupt_segments; /* damaged spool segments, read up to the damage */
	uint64_t foreign_runs;     /* spool run directories refused: not this agent's */
	uint64_t reconnects;       /* connection attempts after the first */
	uint64_t spool_bytes;      /* spool usage, all runs */
	uint64_t last_seq;         /* highest seq of this run spooled or dropped */
	uint64_t acked_seq;        /* highest seq of this run the collector acknowledged */
	uint64_t unacked;          /* last_seq - acked_seq: left in the spool if we stop now */
	uint32_t pending_runs;     /* runs of earlier processes still to upload */
	bool connected;
	char last_error[LOG_LINE_MAX]; /* the last connection/protocol error, "" if none */
};

struct sink_collector;

/* Validates the options, loads the TLS material and the chain key, opens the spool
 * (adopting runs left by earlier processes) and starts the sender thread. NULL with a
 * message in err. Nothing is sent until the first write. */
struct sink_collector *sink_collector__open(const struct collector_client_opts *o, char *err,
					    size_t errlen);

/* The generic sink: write = spool + wake the sender (0, or -ENOSPC/-EMSGSIZE/-errno
 * when the event was dropped: counted, and told to the collector as a Skip); flush =
 * 0 (events are in the OS once written); close = sink_collector__close. */
struct sink sink_collector__sink(struct sink_collector *c);

int sink_collector__write(struct sink_collector *c, const Buildwarden__V1__Event *ev);

/* Seals the spool and waits up to timeout_ms until the collector acknowledged every
 * seq written so far. 0 when it did, -ETIMEDOUT otherwise (the rest stays spooled and
 * the next agent start uploads it). Call before printing the run summary. */
int sink_collector__drain(struct sink_collector *c, unsigned timeout_ms);

/* What a drain has delivered so far, for a person waiting on it. */
struct sink_collector_progress {
	uint64_t acked_seq;    /* this run's events the collector acknowledged */
	uint64_t last_seq;     /* this run's events to deliver */
	uint32_t pending_runs; /* runs of earlier processes still to upload */
	bool connected;
	bool done; /* the drain's last call: delivered, or out of time */
	unsigned waited_ms;
};
typedef void (*sink_collector_progress_fn)(const struct sink_collector_progress *p, void *arg);

/* sink_collector__drain that calls fn (when not NULL) about once a second while it waits,
 * and once at the end. */
int sink_collector__drain_progress(struct sink_collector *c, unsigned timeout_ms,
				   sink_collector_progress_fn fn, void *arg);

/* Drains (drain_timeout_ms, unless a drain already covered everything), stops the
 * sender and frees c. Returns what the drain returned. NULL is a no-op. */
int sink_collector__close(struct sink_collector *c);

void sink_collector__stats(struct sink_collector *c, struct sink_collector_stats *out);

#endif /* BUILDWARDEN_TRANSPORT_SINK_COLLECTOR_H */
