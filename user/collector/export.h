/* Export of committed events to a SIEM (docs/collector.md, "Export"): a thread per
 * `--export` that tails the store by row id, writes to its sink (rotated JSON-lines
 * files, or RFC 5424 syslog over TCP or TLS), makes the write durable, and only then
 * persists its cursor. At-least-once: a crash repeats at most the batch in flight (and,
 * for syslog, the settle window); nothing committed is skipped. A sink that is down is
 * retried with backoff, counted and logged; ingest never waits for an export. */
#ifndef BUILDWARDEN_COLLECTOR_EXPORT_H
#define BUILDWARDEN_COLLECTOR_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXPORT_MAX 8 /* --export at most this many times */

struct export_cfg {
	const char *spec;          /* "jsonl:DIR", "syslog:tcp://HOST:PORT", "syslog:tls://HOST:PORT" */
	const char *db;            /* the store (read through a handle of the export's own) */
	uint64_t rotate_bytes;     /* jsonl: start a new file past this size; 0: 64 MiB */
	const char *tls_ca;        /* syslog:tls: CA file for the receiver; NULL: system store */
	const char *tls_cert, *tls_key; /* syslog:tls: our client certificate, optional */
	double settle_s;           /* syslog: hold the cursor this long after the peer's ACK; <0: default 1 */
	FILE *log;
};

struct exporter;

/* Checks a spec's shape (no I/O): 0, or -EINVAL with the reason in err. */
int export__check_spec(const char *spec, char *err, size_t errlen);

/* Opens the store read-only, loads the cursor, checks the sink's target (the jsonl
 * directory; syslog: nothing, a receiver that is down is retried) and starts the
 * thread. 0, or -errno with err set. */
int export__start(const struct export_cfg *cfg, struct exporter **out, char *err, size_t errlen);
/* A commit happened: wake the thread (cheap; any thread). */
void export__kick(struct exporter *x);
/* Exports what is committed (at most drain_ms more, and not while the sink is down),
 * persists the cursor, stops the thread and frees. NULL-safe. */
void export__stop(struct exporter *x, unsigned drain_ms);

struct export_stats {
	uint64_t exported;   /* events written and made durable */
	uint64_t failures;   /* failed opens and writes (each retried) */
	int64_t cursor;      /* the persisted row id */
	bool down;           /* the last attempt failed */
};
void export__stats(struct exporter *x, struct export_stats *out);

#endif /* BUILDWARDEN_COLLECTOR_EXPORT_H */
