// SPDX-License-Identifier: MIT
/* Collector transport test harness: see collector_fixture.h. */
#include "base/version.h"
#include "lib/collector_fixture.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

/* ---- small utilities ----------------------------------------------------- */

long long cf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cf_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

long long cf_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (long long)st.st_size;
}

bool cf_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool cf_wait_file(const char *path, unsigned timeout_ms)
{
	long long end = cf_now_ms() + timeout_ms;

	while (!cf_exists(path)) {
		if (cf_now_ms() >= end)
			return false;
		cf_sleep_ms(20);
	}
	return true;
}

char *cf_read_from(const char *path, long long offset)
{
	size_t len = 0;
	char *all = bw_read_file(path, &len);
	char *out;

	if (!all)
		return strdup("");
	if (offset < 0 || (size_t)offset > len)
		offset = 0;
	out = strdup(all + offset);
	free(all);
	return out ? out : strdup("");
}

static bool cf__icontains(const char *hay, size_t hlen, const char *needle)
{
	size_t n = strlen(needle);

	if (n > hlen)
		return false;
	for (size_t i = 0; i + n <= hlen; i++)
		if (!strncasecmp(hay + i, needle, n))
			return true;
	return false;
}

bool cf_log_has_line(const char *path, long long offset, const char *const needles[],
		     const char *const any_of[], char *line, size_t linelen)
{
	char *text = cf_read_from(path, offset);
	bool found = false;

	for (char *p = text; p && *p && !found;) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		bool ok = true;

		for (size_t i = 0; needles && needles[i] && ok; i++)
			ok = cf__icontains(p, l, needles[i]);
		if (ok && any_of) {
			bool any = false;

			for (size_t i = 0; any_of[i] && !any; i++)
				any = cf__icontains(p, l, any_of[i]);
			ok = any;
		}
		if (ok) {
			found = true;
			if (line && linelen)
				snprintf(line, linelen, "%.*s", (int)l, p);
		}
		p = nl ? nl + 1 : NULL;
	}
	free(text);
	return found;
}

/* ---- background processes ------------------------------------------------ */

pid_t cf_spawn_bg(const char *const argv[], const char *log)
{
	pid_t pid = bw_fork();

	if (pid < 0)
		return pid;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		sigset_t set;

		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		setpgid(0, 0);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "cf_spawn_bg: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	bw_track_pid(pid);
	return pid;
}

static int cf__code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int cf_wait_exit(pid_t pid, unsigned timeout_ms, int *code)
{
	long long end = cf_now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			bw_untrack_pid(pid);
			if (code)
				*code = cf__code(status);
			return 1;
		}
		if (r < 0 && errno != EINTR) {
			bw_untrack_pid(pid);
			if (code)
				*code = -1;
			return 1;
		}
		if (cf_now_ms() >= end)
			return 0;
		cf_sleep_ms(10);
	}
}

void cf_kill9(pid_t pid)
{
	if (pid <= 1)
		return;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	bw_wait_bounded(pid, 5);
}

int cf_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) && !getsockname(fd, (struct sockaddr *)&a, &sl))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int cf__connect_lo(int port, unsigned timeout_ms, bool nonblock_after)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd pfd;
	int err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			return err;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)timeout_ms) != 1) {
			close(fd);
			return -ETIMEDOUT;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			close(fd);
			return -(err ? err : EIO);
		}
	}
	if (!nonblock_after)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

bool cf_port_accepts(int port, unsigned timeout_ms)
{
	int fd = cf__connect_lo(port, timeout_ms, false);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ---- certificates -------------------------------------------------------- */

static const char cf__openssl_cnf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = unused\n"
	"[ca_ext]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[srv_ext]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectAltName = IP:127.0.0.1,IP:::1\n"
	"[cli_ext]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,digitalSignature\n"
	"extendedKeyUsage = clientAuth\n";

static int cf__openssl(const char *const args[], char *err, size_t errlen)
{
	const char *argv[40];
	struct bw_result r;
	size_t n = 0;
	int rc;

	argv[n++] = "/usr/bin/openssl";
	for (size_t i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (access(argv[0], X_OK))
		argv[0] = "/usr/local/bin/openssl";
	rc = bw_spawn(argv, 20, 0, &r);
	if (rc || r.exit_code != 0) {
		snprintf(err, errlen, "openssl %s %s failed (exit %d%s): %.300s", args[0],
			 args[1] ? args[1] : "", r.exit_code, r.timed_out ? ", timed out" : "",
			 r.err ? r.err : "");
		bw_result_free(&r);
		return -1;
	}
	bw_result_free(&r);
	return 0;
}

/* A key and a certificate for subj signed by ca/ca_key with extensions ext. */
static int cf__issue(const char *dir, const char *cnf, const char *name, const char *subj,
		     const char *ext, const char *ca, const char *ca_key, int serial, char *cert,
		     char *key, char *err, size_t errlen)
{
	char csr[PATH_MAX], ser[32];

	snprintf(key, PATH_MAX, "%s/%s.key", dir, name);
	snprintf(cert, PATH_MAX, "%s/%s.pem", dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
	snprintf(ser, sizeof(ser), "%d", serial);
	if (cf__openssl((const char *const[]){ "req", "-new", "-newkey", "ec", "-pkeyopt",
					       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
					       key, "-out", csr, "-subj", subj, "-config", cnf, NULL },
			err, errlen))
		return -1;
	return cf__openssl((const char *const[]){ "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
						  ca_key, "-set_serial", ser, "-out", cert, "-days",
						  "2", "-extfile", cnf, "-extensions", ext, NULL },
			   err, errlen);
}

static int cf__make_ca(const char *cnf, const char *subj, const char *cert, const char *key,
		       char *err, size_t errlen)
{
	return cf__openssl((const char *const[]){ "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
						  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
						  key, "-out", cert, "-days", "2", "-subj", subj,
						  "-config", cnf, "-extensions", "ca_ext", NULL },
			   err, errlen);
}

/* The collector binds Hello.host to the agent certificate's DNS subjectAltNames (or its
 * CN). Each agent-<n> may say host-<n> (the host-binding test), the machine's host name
 * (what a real `buildwarden run` says) and the host names the hand-written clients of
 * the other tests use. */
static int cf__agent_cnf(char *out, size_t len)
{
	char host[256] = "localhost";
	size_t off = (size_t)snprintf(out, len, "%s", cf__openssl_cnf);

	if (gethostname(host, sizeof(host) - 1) || !host[0] || strpbrk(host, ",\n\"\\ "))
		snprintf(host, sizeof(host), "localhost");
	for (int i = 1; i <= CF_AGENTS && off < len; i++)
		off += (size_t)snprintf(out + off, len - off,
					"[cli_ext_%d]\n"
					"basicConstraints = critical,CA:FALSE\n"
					"keyUsage = critical,digitalSignature\n"
					"extendedKeyUsage = clientAuth\n"
					"subjectAltName = DNS:host-%d,DNS:%s,DNS:cf-good-host,"
					"DNS:cf-x-host,DNS:cf-host\n",
					i, i, host);
	return off < len ? 0 : -1;
}

int cf_pki_create(struct cf_pki *p, const char *dir, char *err, size_t errlen)
{
	char cnf[PATH_MAX], subj[64], name[32], ext[32], cnfbody[4096];

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(cnf, sizeof(cnf), "%s/openssl.cnf", dir);
	if (cf__agent_cnf(cnfbody, sizeof(cnfbody)) || bw_write_file(cnf, cnfbody, 0600)) {
		snprintf(err, errlen, "cannot write %s", cnf);
		return -1;
	}
	snprintf(p->ca, PATH_MAX, "%s/ca.pem", dir);
	snprintf(p->ca_key, PATH_MAX, "%s/ca.key", dir);
	snprintf(p->other_ca, PATH_MAX, "%s/other-ca.pem", dir);
	snprintf(p->other_ca_key, PATH_MAX, "%s/other-ca.key", dir);
	if (cf__make_ca(cnf, "/CN=buildwarden-test-ca", p->ca, p->ca_key, err, errlen) ||
	    cf__make_ca(cnf, "/CN=buildwarden-other-ca", p->other_ca, p->other_ca_key, err, errlen))
		return -1;
	if (cf__issue(dir, cnf, "server", "/CN=127.0.0.1", "srv_ext", p->ca, p->ca_key, 2,
		      p->srv_cert, p->srv_key, err, errlen))
		return -1;
	for (int i = 1; i <= CF_AGENTS; i++) {
		snprintf(subj, sizeof(subj), "/CN=agent-%d", i);
		snprintf(name, sizeof(name), "agent-%d", i);
		snprintf(ext, sizeof(ext), "cli_ext_%d", i);
		if (cf__issue(dir, cnf, name, subj, ext, p->ca, p->ca_key, 10 + i,
			      p->agent_cert[i], p->agent_key[i], err, errlen))
			return -1;
	}
	/* Another CA's certificate for a name the real CA also issued: only the chain
	 * tells them apart. */
	return cf__issue(dir, cnf, "other-agent", "/CN=agent-1", "cli_ext", p->other_ca,
			 p->other_ca_key, 99, p->other_cert, p->other_key, err, errlen);
}

/* ---- collector ----------------------------------------------------------- */

static void cf__tail(const char *path, long long from, char *out, size_t len)
{
	char *t = cf_read_from(path, from);
	size_t n = strlen(t);

	snprintf(out, len, "%s", n > len - 1 ? t + n - (len - 1) : t);
	free(t);
}

bool cf_collector_alive(struct cf_collector *c)
{
	int code;

	if (c->pid <= 0)
		return false;
	if (cf_wait_exit(c->pid, 0, &code)) {
		c->pid = 0;
		return false;
	}
	return true;
}

static int cf__collector_try(struct cf_collector *c, char *err, size_t errlen)
{
	const char *argv[32];
	char listen[64];
	size_t n = 0, off = 0;
	long long end;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
	argv[n++] = bw_bin();
	argv[n++] = "collector";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--db";
	argv[n++] = c->db;
	if (c->pki) {
		argv[n++] = "--tls-cert";
		argv[n++] = c->pki->srv_cert;
		argv[n++] = "--tls-key";
		argv[n++] = c->pki->srv_key;
		argv[n++] = "--tls-client-ca";
		argv[n++] = c->pki->ca;
	} else {
		argv[n++] = "--insecure";
	}
	for (size_t i = 0; i < 8 && c->extra[i] && n < 31; i++)
		argv[n++] = c->extra[i];
	argv[n] = NULL;
	c->cmdline[0] = '\0';
	for (size_t i = 0; argv[i] && off < sizeof(c->cmdline); i++)
		off += (size_t)snprintf(c->cmdline + off, sizeof(c->cmdline) - off, "%s%s", i ? " " : "",
					argv[i]);
	c->log_start = cf_file_size(c->log);
	c->pid = cf_spawn_bg(argv, c->log);
	if (c->pid < 0) {
		snprintf(err, errlen, "cannot start the collector: %s", strerror((int)-c->pid));
		c->pid = 0;
		return -1;
	}
	end = cf_now_ms() + 10000;
	while (cf_now_ms() < end) {
		char tail[600];

		if (!cf_collector_alive(c)) {
			cf__tail(c->log, c->log_start, tail, sizeof(tail));
			snprintf(err, errlen, "collector exited at start-up (%s): %s", c->cmdline, tail);
			return -2;
		}
		/* "listening" first, so our probe never reaches a previous instance */
		if (cf_log_has_line(c->log, c->log_start, (const char *const[]){ "listening", NULL },
				    NULL, NULL, 0) &&
		    cf_port_accepts(c->port, 500))
			return 0;
		cf_sleep_ms(20);
	}
	snprintf(err, errlen, "collector does not accept on 127.0.0.1:%d within 10 s (%s)", c->port,
		 c->cmdline);
	cf_kill9(c->pid);
	c->pid = 0;
	return -1;
}

int cf_collector_start(struct cf_collector *c, char *err, size_t errlen)
{
	bool pick = c->port == 0;
	int rc = -1;

	/* A port picked by us can be taken by someone else before the collector binds
	 * it: try a few. A port we were given is retried too (TIME_WAIT after a kill). */
	for (int attempt = 0; attempt < 5; attempt++) {
		if (pick)
			c->port = cf_free_port();
		rc = cf__collector_try(c, err, errlen);
		if (rc != -2)
			return rc;
		if (!cf_log_has_line(c->log, c->log_start,
				     (const char *const[]){ "in use", NULL }, NULL, NULL, 0))
			return -1;
		cf_sleep_ms(300);
	}
	return -1;
}

void cf_collector_kill9(struct cf_collector *c)
{
	if (c->pid > 0)
		cf_kill9(c->pid);
	c->pid = 0;
}

int cf_collector_stop(struct cf_collector *c)
{
	int code = -1;

	if (c->pid <= 0)
		return -1;
	kill(c->pid, SIGTERM);
	if (!cf_wait_exit(c->pid, 10000, &code)) {
		cf_kill9(c->pid);
		code = -1;
	}
	c->pid = 0;
	return code;
}

/* ---- TCP proxy ----------------------------------------------------------- */

#define CF_PROXY_CONNS 64
#define CF_PROXY_BUF 65536

struct cf__dir {
	uint8_t buf[CF_PROXY_BUF];
	size_t len, off;
	bool eof; /* the reading side closed */
};

struct cf__pair {
	int c, u;      /* client, upstream (-1: held, never forwarded) */
	struct cf__dir cu, uc; /* client->upstream, upstream->client */
	bool used;
};

struct cf_proxy {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int lfd, port, upstream;
	int ctl[2];
	int mode;         /* 0 pass, or enum cf_cut */
	unsigned gen, done_gen; /* commands given / carried out */
	bool stop;
	unsigned accepted;
	struct cf__pair pairs[CF_PROXY_CONNS];
};

#define CF_MAX_PROXIES 4
static struct cf_proxy *cf__proxies[CF_MAX_PROXIES];

static int cf__listen_lo(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void cf__pair_close(struct cf__pair *pr)
{
	if (pr->c >= 0)
		close(pr->c);
	if (pr->u >= 0)
		close(pr->u);
	memset(pr, 0, sizeof(*pr));
	pr->c = pr->u = -1;
}

/* Moves bytes one way; false when this pair is finished. */
static bool cf__pump(int from, int to, struct cf__dir *d, short rev_from, short rev_to)
{
	if (d->len == d->off && !d->eof && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(from, d->buf, sizeof(d->buf));

		if (n > 0) {
			d->len = (size_t)n;
			d->off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			d->eof = true;
		}
	}
	(void)rev_to; /* non-blocking: just try */
	if (d->len > d->off) {
		ssize_t n = write(to, d->buf + d->off, d->len - d->off);

		if (n > 0)
			d->off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (d->off == d->len)
			d->len = d->off = 0;
	}
	if (d->eof && d->len == d->off) {
		shutdown(to, SHUT_WR);
	}
	return true;
}

static void *cf__proxy_main(void *arg)
{
	struct cf_proxy *p = arg;

	for (;;) {
		struct pollfd pfd[2 + 2 * CF_PROXY_CONNS];
		int map[2 + 2 * CF_PROXY_CONNS];
		int nf = 0, mode;
		unsigned gen;
		bool stop;

		pthread_mutex_lock(&p->mu);
		mode = p->mode;
		gen = p->gen;
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (gen != p->done_gen) {
			/* carry out the command */
			for (int i = 0; i < CF_PROXY_CONNS; i++) {
				struct cf__pair *pr = &p->pairs[i];

				if (!pr->used)
					continue;
				if (mode == CF_CUT_CLOSE || mode == CF_CUT_REFUSE)
					cf__pair_close(pr);
				else if (mode == 0 && pr->u < 0)
					cf__pair_close(pr); /* held: never forwarded */
			}
			if (mode == CF_CUT_REFUSE && p->lfd >= 0) {
				close(p->lfd);
				p->lfd = -1;
			} else if (mode != CF_CUT_REFUSE && p->lfd < 0) {
				for (int t = 0; t < 50 && p->lfd < 0; t++) {
					p->lfd = cf__listen_lo(p->port);
					if (p->lfd < 0)
						cf_sleep_ms(20);
				}
			}
			pthread_mutex_lock(&p->mu);
			p->done_gen = gen;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
		}
		pfd[nf] = (struct pollfd){ .fd = p->ctl[0], .events = POLLIN };
		map[nf++] = -1;
		if (p->lfd >= 0) {
			pfd[nf] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
			map[nf++] = -2;
		}
		if (mode == 0) {
			for (int i = 0; i < CF_PROXY_CONNS; i++) {
				struct cf__pair *pr = &p->pairs[i];

				if (!pr->used || pr->u < 0)
					continue;
				pfd[nf] = (struct pollfd){ .fd = pr->c,
							   .events = (short)((pr->cu.len == pr->cu.off && !pr->cu.eof ? POLLIN : 0) |
									     (pr->uc.len > pr->uc.off ? POLLOUT : 0)) };
				map[nf++] = 2 * i;
				pfd[nf] = (struct pollfd){ .fd = pr->u,
							   .events = (short)((pr->uc.len == pr->uc.off && !pr->uc.eof ? POLLIN : 0) |
									     (pr->cu.len > pr->cu.off ? POLLOUT : 0)) };
				map[nf++] = 2 * i + 1;
			}
		}
		if (poll(pfd, (nfds_t)nf, 100) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < nf; k++) {
			if (map[k] == -1 && pfd[k].revents) {
				char b[64];

				while (read(p->ctl[0], b, sizeof(b)) > 0)
					;
			} else if (map[k] == -2 && pfd[k].revents & POLLIN) {
				int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				int slot = -1;

				if (fd < 0)
					continue;
				p->accepted++;
				for (int i = 0; i < CF_PROXY_CONNS; i++) {
					if (!p->pairs[i].used) {
						slot = i;
						break;
					}
				}
				if (slot < 0) {
					close(fd);
					continue;
				}
				memset(&p->pairs[slot], 0, sizeof(p->pairs[slot]));
				p->pairs[slot].used = true;
				p->pairs[slot].c = fd;
				p->pairs[slot].u = -1;
				if (mode == 0) {
					int u = cf__connect_lo(p->upstream, 1000, true);

					if (u < 0) {
						cf__pair_close(&p->pairs[slot]); /* upstream down */
						continue;
					}
					p->pairs[slot].u = u;
				}
				/* in a cut: held, nothing forwarded */
			}
		}
		if (mode != 0)
			continue;
		for (int i = 0; i < CF_PROXY_CONNS; i++) {
			struct cf__pair *pr = &p->pairs[i];
			short rc = 0, ru = 0;

			if (!pr->used || pr->u < 0)
				continue;
			for (int k = 0; k < nf; k++) {
				if (map[k] == 2 * i)
					rc = pfd[k].revents;
				else if (map[k] == 2 * i + 1)
					ru = pfd[k].revents;
			}
			if (!cf__pump(pr->c, pr->u, &pr->cu, rc, ru) ||
			    !cf__pump(pr->u, pr->c, &pr->uc, ru, rc) || (pr->cu.eof && pr->uc.eof))
				cf__pair_close(pr);
		}
	}
	for (int i = 0; i < CF_PROXY_CONNS; i++)
		if (p->pairs[i].used)
			cf__pair_close(&p->pairs[i]);
	return NULL;
}

struct cf_proxy *cf_proxy_start(int upstream_port)
{
	struct cf_proxy *p = calloc(1, sizeof(*p));
	int slot = -1;

	if (!p)
		return NULL;
	for (int i = 0; i < CF_MAX_PROXIES; i++) {
		if (!cf__proxies[i]) {
			slot = i;
			break;
		}
	}
	for (int i = 0; i < CF_PROXY_CONNS; i++)
		p->pairs[i].c = p->pairs[i].u = -1;
	p->upstream = upstream_port;
	for (int t = 0; t < 5 && (p->lfd = cf__listen_lo(p->port = cf_free_port())) < 0; t++)
		;
	if (slot < 0 || p->lfd < 0 || pipe2(p->ctl, O_CLOEXEC | O_NONBLOCK)) {
		if (p->lfd >= 0)
			close(p->lfd);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->th, NULL, cf__proxy_main, p)) {
		close(p->lfd);
		close(p->ctl[0]);
		close(p->ctl[1]);
		free(p);
		return NULL;
	}
	cf__proxies[slot] = p;
	return p;
}

int cf_proxy_port(const struct cf_proxy *p)
{
	return p ? p->port : -1;
}

static void cf__proxy_cmd(struct cf_proxy *p, int mode)
{
	unsigned gen;
	struct timespec ts;
	ssize_t w;

	pthread_mutex_lock(&p->mu);
	p->mode = mode;
	gen = ++p->gen;
	pthread_mutex_unlock(&p->mu);
	w = write(p->ctl[1], "x", 1);
	(void)w;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&p->mu);
	while (p->done_gen != gen && !p->stop)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts))
			break;
	pthread_mutex_unlock(&p->mu);
}

void cf_proxy_cut(struct cf_proxy *p, enum cf_cut how)
{
	if (p)
		cf__proxy_cmd(p, (int)how);
}

void cf_proxy_restore(struct cf_proxy *p)
{
	if (p)
		cf__proxy_cmd(p, 0);
}

unsigned cf_proxy_accepted(struct cf_proxy *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->accepted;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void cf_proxy_stop(struct cf_proxy *p)
{
	ssize_t w;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_mutex_unlock(&p->mu);
	w = write(p->ctl[1], "x", 1);
	(void)w;
	pthread_join(p->th, NULL);
	if (p->lfd >= 0)
		close(p->lfd);
	close(p->ctl[0]);
	close(p->ctl[1]);
	for (int i = 0; i < CF_MAX_PROXIES; i++)
		if (cf__proxies[i] == p)
			cf__proxies[i] = NULL;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* ---- tmpfs --------------------------------------------------------------- */

#define CF_MAX_MOUNTS 4
static char cf__mounts[CF_MAX_MOUNTS][PATH_MAX];

int cf_tmpfs_mount(const char *dir, unsigned long long bytes)
{
	char opts[64];
	int slot = -1;

	for (int i = 0; i < CF_MAX_MOUNTS; i++) {
		if (!cf__mounts[i][0]) {
			slot = i;
			break;
		}
	}
	if (slot < 0 || strlen(dir) >= PATH_MAX)
		return -ENOSPC;
	snprintf(opts, sizeof(opts), "size=%llu,mode=0700", bytes);
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts))
		return -errno;
	strcpy(cf__mounts[slot], dir);
	return 0;
}

int cf_tmpfs_umount(const char *dir)
{
	for (int i = 0; i < CF_MAX_MOUNTS; i++) {
		if (cf__mounts[i][0] && !strcmp(cf__mounts[i], dir)) {
			int rc = umount2(dir, 0);

			if (rc && errno == EBUSY)
				rc = umount2(dir, MNT_DETACH);
			if (rc)
				return -errno;
			cf__mounts[i][0] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

long long cf_fs_free(const char *path)
{
	struct statvfs v;

	if (statvfs(path, &v))
		return -1;
	return (long long)v.f_bavail * (long long)v.f_frsize;
}

void cf_cleanup(void)
{
	for (int i = 0; i < CF_MAX_PROXIES; i++)
		if (cf__proxies[i])
			cf_proxy_stop(cf__proxies[i]);
	bw_kill_tracked();
	bw_reap_tracked();
	for (int i = 0; i < CF_MAX_MOUNTS; i++) {
		char dir[PATH_MAX];

		if (!cf__mounts[i][0])
			continue;
		strcpy(dir, cf__mounts[i]);
		if (cf_tmpfs_umount(dir))
			printf("cf_cleanup: cannot unmount %s: %s\n", dir, strerror(errno));
	}
}

/* ---- query --------------------------------------------------------------- */

/* The value of "key":"..." (or a bare number) after p, into out. */
static bool cf__json_str(const char *line, const char *key, char *out, size_t len)
{
	char pat[80];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < len) {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p++;
		}
	} else {
		while (*p && *p != ',' && *p != '}' && n + 1 < len)
			out[n++] = *p++;
	}
	out[n] = '\0';
	return true;
}

static bool cf__json_u64(const char *line, const char *key, uint64_t *v)
{
	char buf[32], *end;

	if (!cf__json_str(line, key, buf, sizeof(buf)) || !buf[0])
		return false;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return !errno && !*end;
}

static int cf__query(const char *const args[], struct bw_result *r, char *err, size_t errlen)
{
	if (bw_run(args, 30, r)) {
		snprintf(err, errlen, "cannot start %s query", bw_bin());
		return -1;
	}
	if (r->exit_code != 0) {
		snprintf(err, errlen, "query exited %d%s: %.200s", r->exit_code,
			 r->timed_out ? " (timed out)" : "", r->err);
		return -1;
	}
	return 0;
}

int cf_query_run(const char *db, const char *run_id, struct cf_stored *out)
{
	struct bw_result r;
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (cf__query((const char *const[]){ "query", "--db", db, "--run", run_id, NULL }, &r,
		      out->err, sizeof(out->err))) {
		bw_result_free(&r);
		return -1;
	}
	for (char *p = r.out; p && *p;) {
		char *nl = strchr(p, '\n');
		char agent[128] = "", rid[128] = "";
		uint64_t seq;

		if (nl)
			*nl = '\0';
		if (*p) {
			if (!cf__json_u64(p, "seq", &seq)) {
				snprintf(out->err, sizeof(out->err), "a line with no seq: %.150s", p);
				rc = -1;
				break;
			}
			if (cf__json_str(p, "runId", rid, sizeof(rid)) && strcmp(rid, run_id)) {
				snprintf(out->err, sizeof(out->err), "--run %s listed runId %s", run_id, rid);
				rc = -1;
				break;
			}
			cf__json_str(p, "agent", agent, sizeof(agent));
			if (out->n == cap) {
				uint64_t *nv;

				cap = cap ? cap * 2 : 1024;
				nv = realloc(out->seq, cap * sizeof(*nv));
				if (!nv) {
					rc = -1;
					break;
				}
				out->seq = nv;
			}
			if (!out->n)
				snprintf(out->agent, sizeof(out->agent), "%s", agent);
			else if (strcmp(out->agent, agent))
				out->agent_mixed = true;
			out->seq[out->n++] = seq;
		}
		p = nl ? nl + 1 : NULL;
	}
	bw_result_free(&r);
	return rc;
}

void cf_stored_free(struct cf_stored *s)
{
	free(s->seq);
	s->seq = NULL;
	s->n = 0;
}

int cf_query_findings(const char *db, const char *run_id, struct cf_findings *out)
{
	struct bw_result r;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (cf__query((const char *const[]){ "query", "--db", db, "--findings", NULL }, &r, out->err,
		      sizeof(out->err))) {
		bw_result_free(&r);
		out->raw = strdup("");
		return -1;
	}
	out->raw = strdup(r.out);
	for (char *p = r.out; p && *p;) {
		char *nl = strchr(p, '\n');
		struct cf_finding f;

		if (nl)
			*nl = '\0';
		memset(&f, 0, sizeof(f));
		if (*p) {
			cf__json_str(p, "kind", f.kind, sizeof(f.kind));
			cf__json_str(p, "agent", f.agent, sizeof(f.agent));
			cf__json_str(p, "runId", f.run_id, sizeof(f.run_id));
			cf__json_u64(p, "firstSeq", &f.first);
			cf__json_u64(p, "lastSeq", &f.last);
			snprintf(f.line, sizeof(f.line), "%s", p);
			if (!run_id || !strcmp(f.run_id, run_id)) {
				if (out->n == cap) {
					struct cf_finding *nv;

					cap = cap ? cap * 2 : 16;
					nv = realloc(out->f, cap * sizeof(*nv));
					if (!nv)
						break;
					out->f = nv;
				}
				out->f[out->n++] = f;
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	bw_result_free(&r);
	return 0;
}

void cf_findings_free(struct cf_findings *f)
{
	free(f->f);
	free(f->raw);
	memset(f, 0, sizeof(*f));
}

size_t cf_findings_count(const struct cf_findings *f, const char *kind)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += !strncmp(f->f[i].kind, kind, strlen(kind));
	return n;
}

/* ---- SQLite cross-checks ------------------------------------------------- */

static sqlite3 *cf__db_open(const char *db)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 2000);
	return h;
}

long long cf_db_count(const char *db, const char *run_id)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (!cf_exists(db))
		return 0;
	h = cf__db_open(db);
	if (!h)
		return -1;
	if (sqlite3_prepare_v2(h, "SELECT count(*) FROM events e JOIN runs r ON r.id = e.run"
				  " WHERE r.run_id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	} else {
		n = 0; /* no schema yet */
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

long long cf_db_wait_count(const char *db, const char *run_id, long long n, unsigned timeout_ms)
{
	long long end = cf_now_ms() + timeout_ms, c;

	for (;;) {
		c = cf_db_count(db, run_id);
		if (c >= n || cf_now_ms() >= end)
			return c;
		cf_sleep_ms(50);
	}
}

/* ---- comparison ---------------------------------------------------------- */

const char *cf_run_id(const struct bw_events *evs)
{
	return evs->n && evs->ev[0]->run_id ? evs->ev[0]->run_id : "";
}

struct cf__out {
	char *buf;
	size_t len, off;
};

__attribute__((format(printf, 2, 3))) static void cf__say(struct cf__out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->off + 1 >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->off = o->off + (size_t)n < o->len ? o->off + (size_t)n : o->len - 1;
}

/* Prints a set of seqs (sorted) as ranges, at most a few. */
static void cf__ranges(struct cf__out *o, const uint64_t *v, size_t n)
{
	size_t shown = 0;

	for (size_t i = 0; i < n && shown < 12;) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (j == i)
			cf__say(o, "%s%llu", shown ? "," : "", (unsigned long long)v[i]);
		else
			cf__say(o, "%s%llu-%llu", shown ? "," : "", (unsigned long long)v[i],
				(unsigned long long)v[j]);
		shown++;
		i = j + 1;
	}
	if (shown >= 12)
		cf__say(o, ",...");
}

static int cf__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool cf__skipped(const struct cf_findings *skips, uint64_t seq)
{
	for (size_t i = 0; skips && i < skips->n; i++)
		if (!strcmp(skips->f[i].kind, "skip") && seq >= skips->f[i].first &&
		    seq <= skips->f[i].last)
			return true;
	return false;
}

/* Stored bytes of every event of run_id (agent) checked against the local events. */
static size_t cf__db_bytes_check(const char *db, const char *run_id, const struct bw_events *local,
				 struct cf__out *o)
{
	sqlite3 *h = cf__db_open(db);
	sqlite3_stmt *st = NULL;
	size_t bad = 0, rows = 0;

	if (!h) {
		cf__say(o, " cannot open %s read-only;", db);
		return 1;
	}
	if (sqlite3_prepare_v2(h, "SELECT e.seq, e.event FROM events e JOIN runs r ON r.id = e.run"
				  " WHERE r.run_id = ?1 ORDER BY e.seq", -1, &st, NULL) != SQLITE_OK) {
		cf__say(o, " SQLite: %s;", sqlite3_errmsg(h));
		sqlite3_close(h);
		return 1;
	}
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const uint8_t *b = sqlite3_column_blob(st, 1);
		size_t blen = (size_t)sqlite3_column_bytes(st, 1);
		Buildwarden__V1__Event *ev;
		uint8_t *x = NULL, *y = NULL;
		size_t xl, yl;
		bool same = false;

		rows++;
		if (!seq || seq > local->n)
			continue; /* reported by the seq comparison */
		ev = buildwarden__v1__event__unpack(NULL, blen, b ? b : (const uint8_t *)"");
		if (ev) {
			xl = buildwarden__v1__event__get_packed_size(ev);
			yl = buildwarden__v1__event__get_packed_size(local->ev[seq - 1]);
			x = malloc(xl + 1);
			y = malloc(yl + 1);
			if (x && y) {
				buildwarden__v1__event__pack(ev, x);
				buildwarden__v1__event__pack(local->ev[seq - 1], y);
				same = xl == yl && !memcmp(x, y, xl);
			}
			free(x);
			free(y);
			buildwarden__v1__event__free_unpacked(ev, NULL);
		}
		if (!same) {
			if (bad < 3) {
				char d[512];

				cf__say(o, " stored seq %llu differs from the local event (%s);",
					(unsigned long long)seq,
					bw_ev_describe(local->ev[seq - 1], d, sizeof(d)));
			}
			bad++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	if (bad)
		cf__say(o, " %zu of %zu stored events differ from the local ones;", bad, rows);
	return bad;
}

bool cf_compare(const struct bw_events *local, const char *db, const char *agent,
		const struct cf_findings *skips, char *report, size_t len)
{
	struct cf__out o = { .buf = report, .len = len };
	const char *run_id = cf_run_id(local);
	struct cf_stored s;
	uint64_t *sorted = NULL, *missing = NULL, *dups = NULL, *extra = NULL, *both = NULL;
	size_t nmiss = 0, ndup = 0, nextra = 0, nboth = 0, nskipped = 0;
	bool ok = true;

	report[0] = '\0';
	if (!local->n || !run_id[0]) {
		cf__say(&o, "the local events file holds no events");
		return false;
	}
	for (size_t i = 0; i < local->n; i++) {
		if (local->ev[i]->seq != i + 1) {
			cf__say(&o, "local events are not seq 1..N: index %zu has seq %llu; ", i,
				(unsigned long long)local->ev[i]->seq);
			ok = false;
			break;
		}
	}
	if (cf_query_run(db, run_id, &s)) {
		cf__say(&o, "query --run %s failed: %s", run_id, s.err);
		cf_stored_free(&s);
		return false;
	}
	cf__say(&o, "run %s: %zu local events, %zu stored rows", run_id, local->n, s.n);
	if (agent && s.n && (strcmp(s.agent, agent) || s.agent_mixed)) {
		cf__say(&o, "; stored under agent '%s'%s, expected '%s'", s.agent,
			s.agent_mixed ? " and others" : "", agent);
		ok = false;
	}
	sorted = malloc((s.n + 1) * sizeof(*sorted));
	missing = malloc((local->n + 1) * sizeof(*missing));
	dups = malloc((s.n + 1) * sizeof(*dups));
	extra = malloc((s.n + 1) * sizeof(*extra));
	both = malloc((s.n + 1) * sizeof(*both));
	if (!sorted || !missing || !dups || !extra || !both) {
		cf__say(&o, "; out of memory");
		ok = false;
		goto out;
	}
	if (s.n)
		memcpy(sorted, s.seq, s.n * sizeof(*sorted));
	qsort(sorted, s.n, sizeof(*sorted), cf__cmp_u64);
	for (size_t i = 0; i < s.n; i++) {
		if (i && sorted[i] == sorted[i - 1]) {
			if (!ndup || dups[ndup - 1] != sorted[i])
				dups[ndup++] = sorted[i];
			continue;
		}
		if (sorted[i] < 1 || sorted[i] > local->n)
			extra[nextra++] = sorted[i];
		else if (cf__skipped(skips, sorted[i]))
			both[nboth++] = sorted[i];
	}
	for (uint64_t q = 1, i = 0; q <= local->n; q++) {
		while (i < s.n && sorted[i] < q)
			i++;
		if (i < s.n && sorted[i] == q)
			continue;
		if (cf__skipped(skips, q))
			nskipped++;
		else
			missing[nmiss++] = q;
	}
	if (nskipped)
		cf__say(&o, ", %zu in skip findings", nskipped);
	if (nmiss) {
		cf__say(&o, "; MISSING %zu: ", nmiss);
		cf__ranges(&o, missing, nmiss);
		ok = false;
	}
	if (ndup) {
		cf__say(&o, "; DUPLICATED %zu: ", ndup);
		cf__ranges(&o, dups, ndup);
		ok = false;
	}
	if (nextra) {
		cf__say(&o, "; NOT RECORDED LOCALLY %zu: ", nextra);
		cf__ranges(&o, extra, nextra);
		ok = false;
	}
	if (nboth) {
		cf__say(&o, "; STORED AND ALSO IN A SKIP %zu: ", nboth);
		cf__ranges(&o, both, nboth);
		ok = false;
	}
	cf__say(&o, ";");
	if (cf__db_bytes_check(db, run_id, local, &o))
		ok = false;
out:
	free(sorted);
	free(missing);
	free(dups);
	free(extra);
	free(both);
	cf_stored_free(&s);
	return ok;
}

/* ---- hand-written protocol client ---------------------------------------- */

size_t cf_varint(uint64_t v, uint8_t *out)
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void cf__ssl_err(struct cf_peer *p, const char *what)
{
	unsigned long e = ERR_get_error();
	char b[200] = "";

	if (e)
		ERR_error_string_n(e, b, sizeof(b));
	snprintf(p->err, sizeof(p->err), "%s: %s", what, e ? b : strerror(errno));
	ERR_clear_error();
}

int cf_peer_connect(struct cf_peer *p, int port, const char *cert, const char *key, const char *ca)
{
	struct sockaddr_in a;
	socklen_t sl = sizeof(a);
	long long end = cf_now_ms() + 5000;
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->next_seq = 1;
	p->fd = cf__connect_lo(port, 3000, true);
	if (p->fd < 0) {
		snprintf(p->err, sizeof(p->err), "connect 127.0.0.1:%d: %s", port, strerror(-p->fd));
		p->fd = -1;
		return -1;
	}
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!getsockname(p->fd, (struct sockaddr *)&a, &sl))
		p->local_port = ntohs(a.sin_port);
	if (!ca)
		return 0;
	p->ctx = SSL_CTX_new(TLS_client_method());
	if (!p->ctx) {
		cf__ssl_err(p, "SSL_CTX_new");
		return -1;
	}
	SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(p->ctx, ca, NULL) != 1) {
		cf__ssl_err(p, "load CA");
		return -1;
	}
	if (cert && (SSL_CTX_use_certificate_chain_file(p->ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(p->ctx, key, SSL_FILETYPE_PEM) != 1)) {
		cf__ssl_err(p, "load client certificate");
		return -1;
	}
	p->ssl = SSL_new(p->ctx);
	if (!p->ssl) {
		cf__ssl_err(p, "SSL_new");
		return -1;
	}
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), "127.0.0.1");
	SSL_set_fd(p->ssl, p->fd);
	for (;;) {
		int r = SSL_connect(p->ssl), e;
		struct pollfd pfd = { .fd = p->fd };

		if (r == 1)
			return 0;
		e = SSL_get_error(p->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			pfd.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			pfd.events = POLLOUT;
		else {
			cf__ssl_err(p, "TLS handshake");
			p->closed = true;
			return -1;
		}
		if (cf_now_ms() >= end || poll(&pfd, 1, 200) < 0) {
			if (cf_now_ms() >= end) {
				snprintf(p->err, sizeof(p->err), "TLS handshake: no answer within 5 s");
				return -1;
			}
		}
	}
}

/* One non-blocking write: bytes written, 0 (would block), or -errno. */
static ssize_t cf__write1(struct cf_peer *p, const uint8_t *b, size_t n)
{
	if (p->ssl) {
		size_t w = 0;
		int r = SSL_write_ex(p->ssl, b, n, &w), e;

		if (r == 1)
			return (ssize_t)w;
		e = SSL_get_error(p->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		ERR_clear_error();
		return -EPIPE;
	}
	{
		ssize_t w = send(p->fd, b, n, MSG_NOSIGNAL);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		return w;
	}
}

/* One non-blocking read into rbuf: bytes, 0 (nothing now), -EPIPE at EOF/error. */
static ssize_t cf__read1(struct cf_peer *p)
{
	size_t room = sizeof(p->rbuf) - p->rlen;

	if (!room)
		return 0;
	if (p->ssl) {
		size_t got = 0;
		int r = SSL_read_ex(p->ssl, p->rbuf + p->rlen, room, &got), e;

		if (r == 1) {
			p->rlen += got;
			return (ssize_t)got;
		}
		e = SSL_get_error(p->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		ERR_clear_error();
		p->closed = true;
		return -EPIPE;
	}
	{
		ssize_t n = recv(p->fd, p->rbuf + p->rlen, room, 0);

		if (n > 0) {
			p->rlen += (size_t)n;
			return n;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		p->closed = true;
		return -EPIPE;
	}
}

int cf_peer_send(struct cf_peer *p, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t off = 0;
	long long end = cf_now_ms() + 5000;

	if (p->fd < 0)
		return -EBADF;
	while (off < len) {
		ssize_t w = cf__write1(p, b + off, len - off);

		if (w < 0)
			return (int)w;
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (cf_now_ms() >= end)
			return -ETIMEDOUT;
		{
			struct pollfd pfd = { .fd = p->fd, .events = POLLOUT | POLLIN };

			poll(&pfd, 1, 50);
			/* keep reading what the collector sends (Acks), so it never stalls on us */
			if (pfd.revents & POLLIN && p->rlen < sizeof(p->rbuf) / 2)
				cf__read1(p);
		}
	}
	return 0;
}

int cf_peer_send_msg(struct cf_peer *p, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), h;
	uint8_t *b = malloc(n + 10);
	int rc;

	if (!b)
		return -ENOMEM;
	h = cf_varint(n, b);
	protobuf_c_message_pack(m, b + h);
	rc = cf_peer_send(p, b, h + n);
	free(b);
	return rc;
}

/* A whole frame at the start of rbuf: 1 (and *out), 0 (need more), -EBADMSG. */
static int cf__take(struct cf_peer *p, Buildwarden__V1__CollectorMessage **out)
{
	uint64_t len = 0;
	size_t i;

	for (i = 0; i < p->rlen && i < 10; i++) {
		len |= (uint64_t)(p->rbuf[i] & 0x7f) << (7 * i);
		if (!(p->rbuf[i] & 0x80))
			break;
	}
	if (i >= p->rlen)
		return 0;
	if (i == 10 || len > sizeof(p->rbuf) - 11)
		return -EBADMSG;
	if (p->rlen < i + 1 + len)
		return 0;
	*out = buildwarden__v1__collector_message__unpack(NULL, (size_t)len, p->rbuf + i + 1);
	memmove(p->rbuf, p->rbuf + i + 1 + len, p->rlen - (i + 1 + len));
	p->rlen -= i + 1 + (size_t)len;
	if (!*out)
		return -EBADMSG;
	if ((*out)->msg_case == BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_REFUSAL && (*out)->refusal)
		snprintf(p->refusal, sizeof(p->refusal), "%s", (*out)->refusal->reason);
	return 1;
}

int cf_peer_recv(struct cf_peer *p, unsigned timeout_ms, Buildwarden__V1__CollectorMessage **out)
{
	long long end = cf_now_ms() + timeout_ms;

	*out = NULL;
	if (p->fd < 0)
		return -EBADF;
	for (;;) {
		int rc = cf__take(p, out);
		ssize_t n;

		if (rc)
			return rc;
		if (p->closed)
			return -EPIPE;
		n = cf__read1(p);
		if (n < 0)
			continue; /* closed: take what is buffered first */
		if (n > 0 || (p->ssl && SSL_pending(p->ssl)))
			continue;
		if (cf_now_ms() >= end)
			return 0;
		{
			struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

			poll(&pfd, 1, 50);
		}
	}
}

int cf_peer_hello(struct cf_peer *p, const char *agent_id, const char *host, const char *run_id,
		  uint64_t *max_frame)
{
	Buildwarden__V1__Hello h = BUILDWARDEN__V1__HELLO__INIT;
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	Buildwarden__V1__CollectorMessage *cm = NULL;
	int rc;

	h.agent_id = (char *)agent_id;
	h.host = (char *)host;
	h.run_id = (char *)run_id;
	h.schema_version = BW_SCHEMA_VERSION;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	snprintf(p->run_id, sizeof(p->run_id), "%s", run_id);
	rc = cf_peer_send_msg(p, &m.base);
	if (rc) {
		snprintf(p->err, sizeof(p->err), "sending Hello: %s", strerror(-rc));
		return -1;
	}
	rc = cf_peer_recv(p, 5000, &cm);
	if (rc != 1) {
		snprintf(p->err, sizeof(p->err), "no Welcome: %s%s%.200s",
			 rc == 0 ? "timed out" : rc == -EPIPE ? "connection closed" : "bad frame",
			 p->refusal[0] ? ", refusal: " : "", p->refusal);
		return -1;
	}
	if (cm->msg_case != BUILDWARDEN__V1__COLLECTOR_MESSAGE__MSG_WELCOME || !cm->welcome) {
		snprintf(p->err, sizeof(p->err), "answer to Hello is not a Welcome (case %d)%s%.200s",
			 (int)cm->msg_case, p->refusal[0] ? ": " : "", p->refusal);
		buildwarden__v1__collector_message__free_unpacked(cm, NULL);
		return -1;
	}
	p->next_seq = cm->welcome->last_seq + 1;
	memset(p->chain, 0, sizeof(p->chain));
	if (cm->welcome->last_chain.len == CF_CHAIN_LEN)
		memcpy(p->chain, cm->welcome->last_chain.data, CF_CHAIN_LEN);
	if (max_frame)
		*max_frame = cm->welcome->max_frame;
	buildwarden__v1__collector_message__free_unpacked(cm, NULL);
	return 0;
}

uint8_t *cf_event_bytes(uint64_t seq, const char *host, const char *run_id, const char *filename,
			size_t pad, size_t *len)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
	struct timespec ts;
	size_t fl = strlen(filename);
	char *name = malloc((fl > pad ? fl : pad) + 1);
	uint8_t *out;

	if (!name)
		return NULL;
	memcpy(name, filename, fl + 1);
	while (fl < pad)
		name[fl++] = 'p';
	name[fl] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	ev.seq = seq;
	ev.time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	ev.host = (char *)host;
	ev.run_id = (char *)run_id;
	ex.filename = name;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev.exec = &ex;
	*len = buildwarden__v1__event__get_packed_size(&ev);
	out = malloc(*len + 1);
	if (out)
		buildwarden__v1__event__pack(&ev, out);
	free(name);
	return out;
}

void cf_chain(const uint8_t prev[CF_CHAIN_LEN], uint64_t seq, const uint8_t *ev, size_t len,
	      uint8_t out[CF_CHAIN_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t be[8];
	unsigned int ol = 0;

	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(seq >> (56 - 8 * i));
	memset(out, 0, CF_CHAIN_LEN);
	if (!md)
		return;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, prev, CF_CHAIN_LEN);
	EVP_DigestUpdate(md, be, sizeof(be));
	EVP_DigestUpdate(md, ev, len);
	EVP_DigestFinal_ex(md, out, &ol);
	EVP_MD_CTX_free(md);
}

int cf_peer_send_event(struct cf_peer *p, uint64_t seq, const uint8_t *ev, size_t len, bool advance)
{
	Buildwarden__V1__EventFrame f = BUILDWARDEN__V1__EVENT_FRAME__INIT;
	Buildwarden__V1__AgentMessage m = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	uint8_t chain[CF_CHAIN_LEN];
	int rc;

	cf_chain(p->chain, seq, ev, len, chain);
	f.seq = seq;
	f.event.data = (uint8_t *)ev;
	f.event.len = len;
	f.chain.data = chain;
	f.chain.len = CF_CHAIN_LEN;
	m.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
	m.event = &f;
	rc = cf_peer_send_msg(p, &m.base);
	if (!rc && advance) {
		memcpy(p->chain, chain, CF_CHAIN_LEN);
		p->next_seq = seq + 1;
	}
	return rc;
}

long long cf_peer_wait_closed(struct cf_peer *p, unsigned timeout_ms)
{
	long long start = cf_now_ms(), end = start + timeout_ms;

	if (p->fd < 0)
		return 0;
	while (!p->closed) {
		Buildwarden__V1__CollectorMessage *m = NULL;
		int rc;

		p->rlen = p->rlen > sizeof(p->rbuf) / 2 ? 0 : p->rlen;
		rc = cf_peer_recv(p, 50, &m);
		if (m)
			buildwarden__v1__collector_message__free_unpacked(m, NULL);
		if (rc == -EBADMSG)
			p->rlen = 0;
		if (p->closed || rc == -EPIPE)
			break;
		if (cf_now_ms() >= end)
			return -1;
	}
	return cf_now_ms() - start;
}

void cf_peer_close(struct cf_peer *p)
{
	if (p->ssl) {
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
	if (p->ctx) {
		SSL_CTX_free(p->ctx);
		p->ctx = NULL;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}
