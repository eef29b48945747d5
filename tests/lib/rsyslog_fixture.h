/* A real rsyslog receiver for export tests (issue 12): Debian's rsyslogd, started with a
 * config of our own (imtcp on a free loopback port, optionally with its OpenSSL driver;
 * omfile of each message as received into DIR/rs-out.log; no imuxsock, no imklog, so
 * nothing of the host's logging; its own pid file and work dir), stopped by pid. And
 * the exportIds that arrived, in arrival order. Everything here is prefixed rsf_. */
#ifndef BUILDWARDEN_TEST_RSYSLOG_FIXTURE_H
#define BUILDWARDEN_TEST_RSYSLOG_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RSF_RSYSLOGD "/usr/sbin/rsyslogd"

struct rsf {
	char dir[PATH_MAX - 64]; /* given: where its files go (created if missing) */
	const char *tls_ca, *tls_cert, *tls_key; /* given: listen with TLS (anon auth) */
	char conf[PATH_MAX], pid_file[PATH_MAX], out[PATH_MAX], log[PATH_MAX];
	int port;                /* chosen at the first start, kept across restarts */
	pid_t pid;
};

/* True when rsyslogd is installed (else tests skip). */
bool rsf_available(void);
/* Starts rsyslogd (the first time: picks the port and writes the config) and waits
 * until it holds the listening socket itself (a probe connect could reach another
 * process that took the port); a port picked here and taken meanwhile is picked
 * again. 0, or -1 with err set (with the config on a failure to listen). */
int rsf_start(struct rsf *r, char *err, size_t errlen);
/* SIGTERM, SIGKILL after 20 s. No-op when not running. */
void rsf_stop(struct rsf *r);

/* Numbers in arrival order. */
struct rsf_ids {
	long long *v;
	size_t n, cap;
};

/* Appends the number after each occurrence of key in text (exportId=" in rsyslog's
 * file, "exportId":" in a JSON line). */
void rsf_ids_add_text(struct rsf_ids *ids, const char *text, const char *key);
/* The exportIds in the receiver's file, line by line (the file outgrows what a
 * whole-file read takes). Caller frees .v. */
struct rsf_ids rsf_ids(const struct rsf *r);
/* How many distinct ids of 1..max there are; seen has max + 1 bytes. */
size_t rsf_ids_distinct_upto(const struct rsf_ids *ids, long long max, unsigned char *seen);
/* Waits until the receiver's file holds every id 1..n (or timeout_ms passed); the ids
 * of the last look. */
struct rsf_ids rsf_wait_all(const struct rsf *r, long long n, unsigned timeout_ms);

#endif /* BUILDWARDEN_TEST_RSYSLOG_FIXTURE_H */
