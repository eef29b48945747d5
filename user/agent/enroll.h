/* `buildwarden enroll`: a root-only unix socket through which a runner's hook makes a
 * live process a build root (it and its future descendants are the build). The caller
 * passes a pidfd, not a pid number: the process it names cannot be swapped for another
 * that got the same pid. Root only, twice over: the socket is 0600 in a 0700 root
 * directory, and the agent checks the peer's uid (SO_PEERCRED) on every connection. */
#ifndef BUILDWARDEN_AGENT_ENROLL_H
#define BUILDWARDEN_AGENT_ENROLL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ENROLL_DEFAULT_SOCKET "/run/buildwarden/enroll.sock"
#define ENROLL_VERSION 1
#define ENROLL_OP_PIDFD 1 /* make the process of the passed pidfd a build root */

/* One SOCK_SEQPACKET message each way; the request carries the pidfd (SCM_RIGHTS). */
struct enroll_request {
	uint32_t version;
	uint32_t op;
};

struct enroll_reply {
	int32_t err; /* 0, or -errno: -EPERM refused, -ESRCH the process is gone */
	uint32_t pid; /* as the agent saw it */
	char msg[200]; /* NUL-terminated: what was done or why not */
};

struct enroll_server;

/* The agent's side: creates the socket at path (and its directory, 0700, when missing;
 * an existing directory must be root's and 0700). Refuses a path another agent serves.
 * 0 or -errno with a message in err. */
int enroll_server__open(const char *path, struct enroll_server **out, char *err, size_t errlen);
int enroll_server__fd(const struct enroll_server *s);
/* What became of one request, done or refused: reported for every connection served, so
 * the run's stream says who designated a build root and who tried. */
struct enroll_outcome {
	pid_t pid;        /* the process named; 0 when refused before one was */
	pid_t caller_pid; /* SO_PEERCRED; 0 when unreadable */
	uid_t caller_uid;
	const char *caller_exe; /* read while it waited for the answer; "" if unreadable */
	int err;          /* 0: pid is a build root; -errno: refused */
	const char *msg;  /* the answer the caller got */
};

/* Serves the connections waiting: each request is checked, then enroll(ctx, pid, peer)
 * makes pid a build root (0 or -errno), the caller gets the answer, and report(ctx, o)
 * hears what became of it (also of a request refused before enroll was asked). */
typedef int (*enroll_fn)(void *ctx, pid_t pid, pid_t peer);
typedef void (*enroll_report_fn)(void *ctx, const struct enroll_outcome *o);
void enroll_server__serve(struct enroll_server *s, enroll_fn enroll, enroll_report_fn report,
			  void *ctx);
/* Closes, and removes the socket if it is still the one this server made. */
void enroll_server__close(struct enroll_server *s);

/* The client's side: asks the agent at path to enroll pid. 0 with *reply filled (whose
 * err says the agent's answer), or -errno when the agent cannot be asked (msg says why). */
int enroll__request(const char *path, pid_t pid, struct enroll_reply *reply);

#endif
