// SPDX-License-Identifier: MIT
/* A real rsyslog receiver: see rsyslog_fixture.h. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/collector_fixture.h"
#include "lib/rsyslog_fixture.h"

bool rsf_available(void)
{
	return access(RSF_RSYSLOGD, X_OK) == 0;
}

static int rsf_config(struct rsf *r, char *err, size_t errlen)
{
	char conf[6 * PATH_MAX], work[PATH_MAX + 16];
	char tls_global[3 * PATH_MAX + 200] = "", tls_mod[200] = "";
	FILE *f;

	r->port = cf_free_port();
	snprintf(work, sizeof(work), "%s/rs-work", r->dir);
	if ((mkdir(r->dir, 0700) && errno != EEXIST) || (mkdir(work, 0700) && errno != EEXIST)) {
		snprintf(err, errlen, "mkdir %s: %s", work, strerror(errno));
		return -1;
	}
	snprintf(r->out, sizeof(r->out), "%s/rs-out.log", r->dir);
	snprintf(r->pid_file, sizeof(r->pid_file), "%s/rsyslogd.pid", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/rsyslogd.stderr", r->dir);
	snprintf(r->conf, sizeof(r->conf), "%s/rsyslog.conf", r->dir);
	if (r->tls_ca) {
		snprintf(tls_global, sizeof(tls_global),
			 " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"%s\""
			 " DefaultNetstreamDriverCertFile=\"%s\" DefaultNetstreamDriverKeyFile=\"%s\"",
			 r->tls_ca, r->tls_cert, r->tls_key);
		snprintf(tls_mod, sizeof(tls_mod),
			 " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"");
	}
	/* %rawmsg% is the message as received, minus the octet-count framing */
	snprintf(conf, sizeof(conf),
		 "global(workDirectory=\"%s\" maxMessageSize=\"256k\"%s)\n"
		 "module(load=\"imtcp\"%s)\n"
		 "template(name=\"raw\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
		 "ruleset(name=\"bw\") {\n"
		 "  action(type=\"omfile\" file=\"%s\" template=\"raw\")\n"
		 "}\n"
		 "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"bw\")\n",
		 work, tls_global, tls_mod, r->out, r->port);
	f = fopen(r->conf, "w");
	if (!f || fputs(conf, f) < 0 || fclose(f)) {
		snprintf(err, errlen, "cannot write %s", r->conf);
		return -1;
	}
	return 0;
}

/* Whether process pid holds a listening TCP socket on 127.0.0.1:port: another process
 * may have taken a port picked for us before rsyslogd bound it, and a probe connect
 * would then reach that one (rsyslogd only logs the bind error and runs on). */
static bool rsf__owns_listener(pid_t pid, int port)
{
	unsigned long inodes[16];
	size_t n = 0;
	char line[512], path[64];
	bool owns = false;
	FILE *f = fopen("/proc/net/tcp", "r");
	DIR *d;
	struct dirent *de;

	while (f && fgets(line, sizeof(line), f) && n < 16) {
		unsigned addr, lport, st;
		unsigned long inode;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*u: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
			   &lport, &st, &inode) == 4 &&
		    (int)lport == port && st == 0x0A /* LISTEN */)
			inodes[n++] = inode;
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (n && d && !owns && (de = readdir(d))) {
		char fd_path[sizeof(path) + 300], target[64];
		unsigned long inode;
		ssize_t len;

		snprintf(fd_path, sizeof(fd_path), "%s/%s", path, de->d_name);
		len = readlink(fd_path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (sscanf(target, "socket:[%lu]", &inode) != 1)
			continue;
		for (size_t i = 0; i < n && !owns; i++)
			owns = inodes[i] == inode;
	}
	if (d)
		closedir(d);
	return owns;
}

/* One start on r->port: 0 listening, -2 the port was taken (stopped again), -1. */
static int rsf__try(struct rsf *r, char *err, size_t errlen)
{
	const char *argv[] = { RSF_RSYSLOGD, "-n", "-f", r->conf, "-i", r->pid_file, NULL };
	const char *const taken[] = { "Address already in use", NULL };
	long long log_start = cf_file_size(r->log);
	int code;

	unlink(r->pid_file);
	r->pid = cf_spawn_bg(argv, r->log);
	if (r->pid <= 0) {
		snprintf(err, errlen, "cannot start rsyslogd: %s", strerror(-r->pid));
		r->pid = 0;
		return -1;
	}
	for (long long end = cf_now_ms() + 20000; cf_now_ms() < end; cf_sleep_ms(50)) {
		if (rsf__owns_listener(r->pid, r->port))
			return 0;
		if (cf_log_has_line(r->log, log_start, taken, NULL, NULL, 0)) {
			rsf_stop(r);
			return -2;
		}
		if (cf_wait_exit(r->pid, 0, &code)) {
			r->pid = 0;
			break;
		}
	}
	{
		char *c = cf_read_from(r->conf, 0), *l = cf_read_from(r->log, log_start);

		snprintf(err, errlen, "rsyslogd does not listen on 127.0.0.1:%d; %s:\n%s\nits output:\n%.1000s",
			 r->port, r->conf, c, l);
		free(c);
		free(l);
	}
	rsf_stop(r);
	return -1;
}

int rsf_start(struct rsf *r, char *err, size_t errlen)
{
	bool pick = !r->port;
	int rc = -1;

	/* a port we picked can be taken by another process before rsyslogd binds it:
	 * pick again. A port kept from a first start (a restart) is not changed. */
	for (int attempt = 0; attempt < 5; attempt++) {
		if (pick && rsf_config(r, err, errlen))
			return -1;
		rc = rsf__try(r, err, errlen);
		if (rc != -2)
			return rc;
		snprintf(err, errlen, "rsyslogd: 127.0.0.1:%d is in use", r->port);
		if (!pick)
			return -1;
	}
	return -1;
}

void rsf_stop(struct rsf *r)
{
	int code;

	if (r->pid <= 0)
		return;
	kill(r->pid, SIGTERM);
	if (!cf_wait_exit(r->pid, 20000, &code))
		cf_kill9(r->pid);
	r->pid = 0;
}

void rsf_ids_add_text(struct rsf_ids *ids, const char *text, const char *key)
{
	for (const char *p = text; (p = strstr(p, key)); p += strlen(key)) {
		if (ids->n == ids->cap) {
			ids->cap = ids->cap ? ids->cap * 2 : 1024;
			ids->v = realloc(ids->v, ids->cap * sizeof(*ids->v));
			if (!ids->v)
				abort();
		}
		ids->v[ids->n++] = atoll(p + strlen(key));
	}
}

struct rsf_ids rsf_ids(const struct rsf *r)
{
	struct rsf_ids ids = { 0 };
	FILE *f = fopen(r->out, "r");
	char *line = NULL;
	size_t cap = 0;

	while (f && getline(&line, &cap, f) > 0)
		rsf_ids_add_text(&ids, line, "exportId=\"");
	free(line);
	if (f)
		fclose(f);
	return ids;
}

size_t rsf_ids_distinct_upto(const struct rsf_ids *ids, long long max, unsigned char *seen)
{
	size_t d = 0;

	memset(seen, 0, (size_t)max + 1);
	for (size_t i = 0; i < ids->n; i++)
		if (ids->v[i] >= 1 && ids->v[i] <= max && !seen[ids->v[i]]++)
			d++;
	return d;
}

struct rsf_ids rsf_wait_all(const struct rsf *r, long long n, unsigned timeout_ms)
{
	unsigned char *seen = calloc((size_t)n + 1, 1);
	long long end = cf_now_ms() + timeout_ms;
	struct rsf_ids ids = { 0 };

	for (;;) {
		free(ids.v);
		ids = rsf_ids(r);
		if (!seen || rsf_ids_distinct_upto(&ids, n, seen) == (size_t)n || cf_now_ms() > end)
			break;
		cf_sleep_ms(100);
	}
	free(seen);
	return ids;
}
