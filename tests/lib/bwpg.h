/* A real PostgreSQL cluster for tests (issue 12): Debian's initdb and pg_ctl
 * (/usr/lib/postgresql/15/bin) in a temporary directory owned by the unprivileged
 * `postgres` user (initdb and postgres refuse to run as root), listening only on a Unix
 * socket in that directory, trust authentication, fsync off (a test cluster survives a
 * stop or kill of its server, not a power loss). Stopped by pid and removed by
 * bwpg_destroy(); the bwtest alarm's cleanup does not know it, so call that in
 * teardown. Everything here is prefixed bwpg_. */
#ifndef BUILDWARDEN_TEST_BWPG_H
#define BUILDWARDEN_TEST_BWPG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define BWPG_BIN "/usr/lib/postgresql/15/bin"

struct bwpg {
	char dir[64];            /* the temp dir: data/ and the socket */
	char data[PATH_MAX];
	char log[PATH_MAX];
	int port;                /* names the socket file (.s.PGSQL.<port>) */
	bool up;
};

/* True when the PostgreSQL server binaries are installed (else tests skip). */
bool bwpg_available(void);
/* initdb (retried once if it dies of a signal) and start. 0, or -1 with err set. */
int bwpg_start(struct bwpg *pg, char *err, size_t errlen);
/* pg_ctl stop -m fast / start again on the same data. 0 or -1. */
int bwpg_stop(struct bwpg *pg);
int bwpg_restart_server(struct bwpg *pg, char *err, size_t errlen);
/* Stops the server and removes the directory. */
void bwpg_destroy(struct bwpg *pg);
/* CREATE DATABASE name; its conninfo into out ("host=DIR port=P user=bw dbname=name"). */
int bwpg_createdb(struct bwpg *pg, const char *name, char *out, size_t outlen, char *err,
		  size_t errlen);
/* The conninfo of database name (without creating it). */
void bwpg_conninfo(const struct bwpg *pg, const char *name, char *out, size_t outlen);
/* First column of the first row of sql as a number; -1 on error (err set if given). */
long long bwpg_scalar(const char *conninfo, const char *sql, char *err, size_t errlen);
/* Runs sql (several statements allowed). 0, or -1 with err set. */
int bwpg_exec(const char *conninfo, const char *sql, char *err, size_t errlen);

/* A session of our own that stays open between statements (a transaction held open
 * while collectors commit around it). */
struct bwpg_session;
struct bwpg_session *bwpg_session_open(const char *conninfo, char *err, size_t errlen);
/* Runs sql on it; 0, or -1 with err set. */
int bwpg_session_exec(struct bwpg_session *s, const char *sql, char *err, size_t errlen);
void bwpg_session_close(struct bwpg_session *s);

#endif /* BUILDWARDEN_TEST_BWPG_H */
