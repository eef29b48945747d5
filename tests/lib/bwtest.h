/* Helpers for tests that drive build/buildwarden as a user would: temporary
 * workspaces, bounded child processes, and an events-file reader of our own
 * (independent of the product's decoder on purpose). */
#ifndef BUILDWARDEN_BWTEST_H
#define BUILDWARDEN_BWTEST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buildwarden.pb-c.h"

/* ---- workspaces ---------------------------------------------------------- */

struct bw_ws {
	char path[256]; /* resolved (realpath) absolute path, no trailing "/" */
	int slot;            /* registry slot of the directory we made */
};

/* mkdtemp under /tmp; the directory is registered and removed by bw_ws_destroy()
 * or bw_cleanup_all(). Returns 0 or -errno. */
int bw_ws_create(struct bw_ws *ws);
/* Removes the workspace tree (only a path bw_ws_create made); with
 * BW_TEST_KEEP set in the environment it is kept and its path printed. */
void bw_ws_destroy(struct bw_ws *ws);
/* "<ws>/<rel>" into a static-per-call-site buffer owned by the caller. */
const char *bw_ws_path(const struct bw_ws *ws, const char *rel, char *buf, size_t len);
/* "<ws>/<rel>" in the next of 16 static buffers, used in turn: the last 16 results
 * stay valid, enough for the paths of one call. Not for threads. */
const char *bw_ws_tmp(const struct bw_ws *ws, const char *rel);
/* mkdir -p of "<ws>/<rel>". */
int bw_ws_mkdir(const struct bw_ws *ws, const char *rel);
/* Writes "<ws>/<rel>" (creating parents), mode 0644 (0755 when exec). */
int bw_ws_write(const struct bw_ws *ws, const char *rel, const char *content, bool exec);
/* mkfifo "<ws>/<rel>" */
int bw_ws_mkfifo(const struct bw_ws *ws, const char *rel);

int bw_write_file(const char *path, const char *content, mode_t mode);
/* Reads a whole (small, <= 16 MiB) file; NUL-terminated; caller frees. NULL on error. */
char *bw_read_file(const char *path, size_t *len);

/* Writes a policy file at "<ws>/<name>" (name NULL: "policy.yaml"). printf-style body. */
int bw_write_policy(const struct bw_ws *ws, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- processes ----------------------------------------------------------- */

/* The product binary: $BW_BIN, else "build/buildwarden" relative to cwd. */
const char *bw_bin(void);
/* Absolute path of the running test binary (for helper re-execs). */
const char *bw_self_exe(void);

struct bw_result {
	int status;     /* raw wait status */
	int exit_code;  /* WEXITSTATUS, or 128+signal, or -1 if not reaped */
	bool timed_out; /* killed by us after the hard timeout */
	char *out;      /* captured stdout, NUL-terminated (never NULL after bw_spawn) */
	size_t out_len;
	char *err;      /* captured stderr */
	size_t err_len;
};

#define BW_SPAWN_AS_NOBODY (1u << 0) /* setresgid/setresuid 65534 before exec */

/* fork + exec argv[0] (path) with stdout/stderr captured and stdin = /dev/null,
 * SUDO_UID/SUDO_GID removed from the environment (run's default user),
 * in its own process group; after timeout_s seconds the group and the pid are
 * SIGKILLed and reaped. Returns 0 when the child ran to completion or timed out
 * (see r), -errno when it could not be started. */
int bw_spawn(const char *const argv[], unsigned timeout_s, unsigned flags, struct bw_result *r);
/* bw_spawn of { bw_bin(), args... } */
int bw_run(const char *const args[], unsigned timeout_s, struct bw_result *r);
/* bw_spawn of { bw_bin(), args... } with flags into r (its last result freed first),
 * the command line joined into line (cut to fit) for diagnostics. 0 when it ran (r
 * set), -errno when it could not start (-E2BIG: more than 126 args). */
int bw_run_logged(const char *const args[], unsigned timeout_s, unsigned flags, struct bw_result *r,
		  char *line, size_t len);
void bw_result_free(struct bw_result *r);

/* Registry of pids to kill (SIGKILL to pid and to its process group when
 * it leads one) and reap on cleanup or timeout. */
void bw_track_pid(pid_t pid);
void bw_untrack_pid(pid_t pid);
/* Kills and reaps every tracked pid. Async-signal-safe part: bw_kill_tracked(). */
void bw_kill_tracked(void);
void bw_reap_tracked(void);
/* waitpid with a bound; returns the wait status or -1 (then the pid was killed). */
int bw_wait_bounded(pid_t pid, unsigned timeout_s);

/* Forks a process in its own session (setsid) that runs fn(arg) and _exits with
 * its return value. Tracked. Returns the pid or -errno. */
pid_t bw_fork_outsider(int (*fn)(void *), void *arg);

/* bw_fork_outsider, then waits up to 10 s for the outsider to say it is ready: fn gets
 * the write end of a pipe in *ready_fd (set before the fork, closed here after it) and
 * writes one byte to it once set up (e.g. its descriptor opened before the run).
 * Returns the pid, or -errno (-ETIMEDOUT: it did not get ready; it stays tracked). */
pid_t bw_start_outsider_ready(int (*fn)(void *), void *arg, int *ready_fd);

/* Installs a SIGALRM handler: the first alarm kills every tracked process (so
 * blocked waits return and the test fails on its assertions), a second alarm 10 s
 * later ends the binary. Call from a setup function; then alarm(N) in the test. */
void bw_install_alarm(void);
bool bw_alarm_fired(void);

/* Kill/reap every tracked process and remove every registered workspace. */
void bw_cleanup_all(void);

/* fork() after flushing stdio (or the child repeats what is buffered), with SIGALRM
 * back to default in the child: the alarm handler is the test's. Returns the pid, 0 in
 * the child, -errno. Not tracked. */
pid_t bw_fork(void);

/* ---- test cases ---------------------------------------------------------- */

/* cmocka's fail_msg(...) unless cond, after diag_fn() has printed what the test knows
 * (each test file has its own; it includes cmocka.h). */
#define BW_CHECK(diag_fn, cond, ...)           \
	do {                                   \
		if (!(cond)) {                 \
			diag_fn();             \
			fail_msg(__VA_ARGS__); \
		}                              \
	} while (0)

/* A case's setup: what an earlier case left is killed and removed, the alarm armed,
 * ws created. 0 or -1. */
int bw_case_setup(struct bw_ws *ws);
/* A case's teardown: the alarm off, every tracked process and workspace gone. */
void bw_case_teardown(void);

/* Prints the command and, when it ran (r not NULL), its exit code, stderr and stdout. */
void bw_result_print(const char *cmdline, const struct bw_result *r);

/* ---- events -------------------------------------------------------------- */

struct bw_events {
	Buildwarden__V1__Event **ev;
	size_t n;
	size_t bytes;      /* file size */
	long err_offset;   /* -1 when the whole file parsed */
	char err[160];
};

/* Reads a varint length-delimited stream of Event. Returns 0 if every frame
 * parsed; -1 with err/err_offset set otherwise (events before the bad frame are
 * kept in out). */
int bw_events_read(const char *path, struct bw_events *out);
/* Same over a buffer. */
int bw_events_parse(const uint8_t *buf, size_t len, struct bw_events *out);
void bw_events_free(struct bw_events *evs);

enum bw_tri { BW_ANY = 0, BW_YES = 1, BW_NO = 2 };

/* Zero fields match anything. */
struct bw_filter {
	Buildwarden__V1__Event__BodyCase body;
	Buildwarden__V1__FileOp op;      /* FILE_OP_UNSPECIFIED: any */
	const Buildwarden__V1__FileOp *ops; /* any of these, terminated by 0 */
	const char *path;                /* file.path exactly */
	const char *path_prefix;         /* file.path or file.new_path starts with "<prefix>/" or equals */
	const char *any_path;            /* file.path or file.new_path exactly */
	const char *new_path;
	const char *filename;            /* exec.filename exactly */
	const char *address;             /* connect.address exactly */
	uint32_t port;
	uint32_t pid;
	enum bw_tri violation;
	enum bw_tri in_build;
};

bool bw_ev_match(const Buildwarden__V1__Event *ev, const struct bw_filter *f);
size_t bw_ev_count(const struct bw_events *evs, const struct bw_filter *f);
/* First matching index >= start, or -1. */
long bw_ev_find(const struct bw_events *evs, const struct bw_filter *f, size_t start);
/* One line describing ev. */
const char *bw_ev_describe(const Buildwarden__V1__Event *ev, char *buf, size_t len);
/* Prints up to max events (max 0: all) to stdout, prefixed. */
void bw_ev_dump(const struct bw_events *evs, size_t max);
const char *bw_body_name(Buildwarden__V1__Event__BodyCase body);
const char *bw_op_name(Buildwarden__V1__FileOp op);

/* A suite's --bw-helper spawn TAG PATH ARGS..., in the build: fork, exec argv, wait;
 * then "RESULT TAG signal N", "RESULT TAG exit N" or "RESULT TAG exec <errno name>" on
 * stdout. 0, or 3 when it could not fork or wait. */
int bw_helper_spawn(const char *tag, char **argv);

#endif
