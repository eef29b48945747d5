// SPDX-License-Identifier: MIT
/* A real PostgreSQL cluster for tests: see bwpg.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "lib/bwpg.h"

bool bwpg_available(void)
{
	return access(BWPG_BIN "/initdb", X_OK) == 0 && access(BWPG_BIN "/pg_ctl", X_OK) == 0 &&
	       getpwnam("postgres") != NULL;
}

/* Runs argv as the postgres user (root drops to it), output appended to log, within
 * timeout_s. Returns the exit code, 128+signal, or -1. */
static int bwpg__run(const char *const argv[], const char *log, unsigned timeout_s)
{
	struct passwd *pw = getpwnam("postgres");
	pid_t pid;
	int status;

	if (!pw)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd, null;

		/* its own group: a test's kill of its process group never reaches it */
		setpgid(0, 0);
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)))
			_exit(126);
		/* opened as postgres: pg_ctl -l appends to the same file */
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		null = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (null >= 0)
			dup2(null, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (unsigned i = 0; i < timeout_s * 20; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static int bwpg__free_port(void)
{
	/* the port only names the socket file in our own directory: any number works,
	 * a varied one keeps stale sockets of other clusters out of the way */
	return 20000 + (int)((getpid() * 7919 + time(NULL)) % 30000);
}

static void bwpg__tail(const char *path, char *err, size_t errlen, const char *what)
{
	char buf[1024] = "";
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		fseek(f, -(long)(sizeof(buf) - 1), SEEK_END);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		if (!n) {
			rewind(f);
			n = fread(buf, 1, sizeof(buf) - 1, f);
		}
		fclose(f);
	}
	buf[n] = 0;
	snprintf(err, errlen, "%s; log: %s", what, buf);
}

static int bwpg__pg_ctl_start(struct bwpg *pg, char *err, size_t errlen)
{
	char opts[PATH_MAX + 256];
	int rc;

	snprintf(opts, sizeof(opts),
		 "-k %s -p %d -c listen_addresses='' -c fsync=off -c full_page_writes=off"
		 " -c max_connections=100 -c shared_buffers=32MB",
		 pg->dir, pg->port);
	rc = bwpg__run((const char *const[]){ BWPG_BIN "/pg_ctl", "-D", pg->data, "-l", pg->log,
					      "-o", opts, "-w", "-t", "30", "start", NULL },
		       pg->log, 40);
	if (rc) {
		bwpg__tail(pg->log, err, errlen, "pg_ctl start failed");
		return -1;
	}
	pg->up = true;
	return 0;
}

int bwpg_start(struct bwpg *pg, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam("postgres");
	char init_log[PATH_MAX + 16];
	int rc = -1;

	memset(pg, 0, sizeof(*pg));
	if (!pw) {
		snprintf(err, errlen, "no postgres user");
		return -1;
	}
	/* not under a test workspace: postgres must reach it, and /tmp/bwtest.* is 0700 */
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/bwpg.XXXXXX");
	if (!mkdtemp(pg->dir)) {
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	if (chown(pg->dir, pw->pw_uid, pw->pw_gid) || chmod(pg->dir, 0700)) {
		snprintf(err, errlen, "chown %s: %s", pg->dir, strerror(errno));
		rmdir(pg->dir);
		return -1;
	}
	snprintf(pg->data, sizeof(pg->data), "%s/data", pg->dir);
	snprintf(pg->log, sizeof(pg->log), "%s/server.log", pg->dir);
	snprintf(init_log, sizeof(init_log), "%s/initdb.log", pg->dir);
	pg->port = bwpg__free_port();
	/* initdb is sometimes killed on a loaded machine (OOM, a test's alarm): once more */
	for (int attempt = 0; attempt < 2 && rc; attempt++) {
		if (attempt) {
			char rm[PATH_MAX + 16];

			snprintf(rm, sizeof(rm), "rm -rf '%s'", pg->data);
			if (system(rm)) {
				/* initdb below says what is wrong */
			}
		}
		rc = bwpg__run((const char *const[]){ BWPG_BIN "/initdb", "-D", pg->data, "-A",
						      "trust", "-U", "bw", "-E", "UTF8",
						      "--no-sync", "--no-instructions", NULL },
			       init_log, 120);
		if (rc >= 0 && rc < 128)
			break;
	}
	if (rc) {
		bwpg__tail(init_log, err, errlen, "initdb failed");
		bwpg_destroy(pg);
		return -1;
	}
	if (bwpg__pg_ctl_start(pg, err, errlen)) {
		bwpg_destroy(pg);
		return -1;
	}
	return 0;
}

int bwpg_stop(struct bwpg *pg)
{
	int rc;

	if (!pg->up)
		return 0;
	rc = bwpg__run((const char *const[]){ BWPG_BIN "/pg_ctl", "-D", pg->data, "-m", "fast",
					      "-w", "-t", "30", "stop", NULL },
		       pg->log, 40);
	if (rc == 0)
		pg->up = false;
	return rc ? -1 : 0;
}

int bwpg_restart_server(struct bwpg *pg, char *err, size_t errlen)
{
	if (bwpg_stop(pg)) {
		snprintf(err, errlen, "pg_ctl stop failed");
		return -1;
	}
	return bwpg__pg_ctl_start(pg, err, errlen);
}

void bwpg_destroy(struct bwpg *pg)
{
	char rm[PATH_MAX + 16];

	if (!pg->dir[0])
		return;
	if (pg->up && bwpg_stop(pg)) {
		/* pg_ctl failed: kill the postmaster by the pid it wrote */
		char pidf[PATH_MAX + 32];
		FILE *f;
		long pid = 0;

		snprintf(pidf, sizeof(pidf), "%s/postmaster.pid", pg->data);
		f = fopen(pidf, "r");
		if (f) {
			if (fscanf(f, "%ld", &pid) == 1 && pid > 1)
				kill((pid_t)pid, SIGKILL);
			fclose(f);
		}
	}
	if (getenv("BW_TEST_KEEP")) {
		printf("kept PostgreSQL cluster %s\n", pg->dir);
	} else if (strncmp(pg->dir, "/tmp/bwpg.", 10) == 0) {
		snprintf(rm, sizeof(rm), "rm -rf '%s'", pg->dir);
		if (system(rm)) {
			/* nothing more to do in a teardown */
		}
	}
	pg->dir[0] = 0;
}

void bwpg_conninfo(const struct bwpg *pg, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "host=%s port=%d user=bw dbname=%s", pg->dir, pg->port, name);
}

int bwpg_exec(const char *conninfo, const char *sql, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;
	int rc = 0;

	if (PQstatus(c) != CONNECTION_OK) {
		if (err)
			snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		if (err)
			snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		rc = -1;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

long long bwpg_scalar(const char *conninfo, const char *sql, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;
	long long v = -1;

	if (PQstatus(c) != CONNECTION_OK) {
		if (err)
			snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		v = 0;
	else if (err)
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return v;
}

int bwpg_createdb(struct bwpg *pg, const char *name, char *out, size_t outlen, char *err,
		  size_t errlen)
{
	char admin[PATH_MAX + 64], sql[256];

	bwpg_conninfo(pg, "postgres", admin, sizeof(admin));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (bwpg_exec(admin, sql, err, errlen))
		return -1;
	bwpg_conninfo(pg, name, out, outlen);
	return 0;
}

struct bwpg_session {
	PGconn *c;
};

struct bwpg_session *bwpg_session_open(const char *conninfo, char *err, size_t errlen)
{
	struct bwpg_session *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->c = PQconnectdb(conninfo);
	if (PQstatus(s->c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(s->c));
		PQfinish(s->c);
		free(s);
		return NULL;
	}
	return s;
}

int bwpg_session_exec(struct bwpg_session *s, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(s->c, sql);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

void bwpg_session_close(struct bwpg_session *s)
{
	if (!s)
		return;
	PQfinish(s->c);
	free(s);
}
