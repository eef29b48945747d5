// SPDX-License-Identifier: MIT
/* End-to-end scenarios for `buildwarden run` against the real kernel (issue 2,
 * "What must be true" 1-7). Every test starts the product binary as a user would,
 * reads the events file with our own reader (tests/lib/bwtest.c) and checks it.
 * Outside "attackers" are forks of this binary in their own session, started
 * before the run; build steps that need a program of ours re-exec this binary
 * with --bw-helper. Coordination is by FIFOs, not by sleeping. The errors of 7
 * (bad flags, bad policies, corrupt events files, no privileges) need no root and
 * live in tests/cli/test_cli.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

#define EXIT_VIOLATION 77

static const char trojan_main[] =
	"#include \"util.h\"\n"
	"int main(void) { return util() + 0; /* trojaned */ }\n";

static struct bw_case S;

static unsigned run_timeout(void)
{
	return bw_run_timeout();
}

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&S.ws, rel);
}

static int setup(void **state)
{
	*state = &S;
	return bw_case_begin(&S);
}

static int teardown(void **state)
{
	bw_case_end(&S);
	return 0;
}

/* Runs `buildwarden ARGS...` and keeps the result in S. */
static void run_bw(const char *const args[])
{
	S.ran = bw_run_logged(args, run_timeout(), 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish within %u s", run_timeout());
}

/* `buildwarden run --policy <ws>/policy.yaml --events <ws>/events.pb -- CMD...`
 * (policy omitted when with_policy is false), then reads the events file. */
static void run_scenario(bool with_policy, const char *const cmd[])
{
	const char *args[64];
	char policy[PATH_MAX];
	size_t n = 0;

	/* a fresh events file per run: what the product does with an existing
	 * one is not part of the contract */
	snprintf(S.events, sizeof(S.events), "%s/events-%u.pb", S.ws.path, ++S.runs);
	args[n++] = "run";
	if (with_policy) {
		args[n++] = "--policy";
		args[n++] = bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy));
	}
	args[n++] = "--events";
	args[n++] = S.events;
	args[n++] = "--";
	for (size_t i = 0; cmd[i] && n < 63; i++)
		args[n++] = cmd[i];
	args[n] = NULL;
	run_bw(args);
	if (S.have_evs)
		bw_events_free(&S.evs);
	S.have_evs = true;
	bw_events_read(S.events, &S.evs);
}

/* The stream must parse completely and carry the run's start and end. */
static void check_stream(void)
{
	CHECK(S.evs.err_offset < 0, "events file %s does not parse at byte %ld: %s", S.events,
	      S.evs.err_offset, S.evs.err);
	CHECK(S.evs.n >= 2, "events file has %zu events", S.evs.n);
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_START }) == 1,
	      "expected exactly one runStart event");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_END }) == 1,
	      "expected exactly one runEnd event");
}

static const Buildwarden__V1__Event *run_end(void)
{
	long i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_RUN_END }, 0);

	return i < 0 ? NULL : S.evs.ev[i];
}

static size_t n_violations(void)
{
	return bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES });
}

/* Every violation must come from pid (when nonzero), carry a rule and, in audit
 * mode, the action AUDITED. */
static void check_violations_audited(void)
{
	for (size_t i = 0; i < S.evs.n; i++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[i];
		char line[PATH_MAX * 3];

		if (!ev->verdict || !ev->verdict->violation)
			continue;
		CHECK(ev->verdict->action == BUILDWARDEN__V1__ACTION__AUDITED,
		      "violation not marked AUDITED in audit mode: %s",
		      bw_ev_describe(ev, line, sizeof(line)));
		CHECK(ev->verdict->rule && ev->verdict->rule[0], "violation without a rule: %s",
		      bw_ev_describe(ev, line, sizeof(line)));
	}
}

/* ---- outsiders ----------------------------------------------------------- */

struct outsider {
	const char *ws;
	int (*act)(const char *ws);
};

static int write_all(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Rewrites path with content through open(flags)/write/close. 0 on success. */
static int rewrite(const char *path, int flags, const char *content)
{
	int fd = open(path, flags | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = content ? write_all(fd, content) : 0;
	if (close(fd))
		rc = -1;
	return rc;
}

/* Runs in its own session, started before the run: waits until the build says
 * "go" on <ws>/ctl/go, acts, then tells the build "done" on <ws>/ctl/done. */
static int outsider_main(void *arg)
{
	const struct outsider *o = arg;
	char p[PATH_MAX], buf[16];
	int fd, rc;

	snprintf(p, sizeof(p), "%s/ctl/go", o->ws);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return 100;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	rc = o->act(o->ws);
	snprintf(p, sizeof(p), "%s/ctl/done", o->ws);
	fd = open(p, O_WRONLY);
	if (fd < 0)
		return 101;
	write_all(fd, "done\n");
	close(fd);
	return rc;
}

static pid_t start_outsider(struct outsider *o)
{
	pid_t pid;

	CHECK(bw_ws_mkfifo(&S.ws, "ctl/go") == 0, "mkfifo ctl/go");
	CHECK(bw_ws_mkfifo(&S.ws, "ctl/done") == 0, "mkfifo ctl/done");
	pid = bw_fork_outsider(outsider_main, o);
	CHECK(pid > 0, "fork outsider: %s", strerror((int)-pid));
	return pid;
}

static int outsider_status(pid_t pid)
{
	int st = bw_wait_bounded(pid, 5);

	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The build side of the handshake, for sh scripts. */
#define SH_HANDSHAKE "printf 'go\\n' > ctl/go\nread ack < ctl/done\n"

static void write_sources(void)
{
	CHECK(bw_ws_write(&S.ws, "src/util.h", "int util(void);\n", false) == 0, "write util.h");
	CHECK(bw_ws_write(&S.ws, "src/util.c",
			  "#include \"util.h\"\nint util(void) { return 0; }\n", false) == 0, "write util.c");
	CHECK(bw_ws_write(&S.ws, "src/extra.c", "int extra(void) { return 1; }\n", false) == 0,
	      "write extra.c");
	CHECK(bw_ws_write(&S.ws, "src/main.c",
			  "#include \"util.h\"\nint main(void) { return util(); }\n", false) == 0,
	      "write main.c");
	CHECK(bw_ws_mkdir(&S.ws, "out") == 0, "mkdir out");
}

static const char protect_src_out[] =
	"version: 1\n"
	"mode: audit\n"
	"protect:\n"
	"  - path: src\n"
	"  - path: out\n";

/* A violation from pid on path, op among ops (or any when ops is NULL). */
static void check_outsider_violations(pid_t pid, const char *path, const Buildwarden__V1__FileOp *ops)
{
	size_t all = n_violations();
	size_t mine = bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .pid = (uint32_t)pid });
	size_t on_path = bw_ev_count(&S.evs, &(struct bw_filter){
		.violation = BW_YES, .pid = (uint32_t)pid, .path = path, .ops = ops });
	long i;

	printf("  violations: %zu, by the outsider on %s: %zu\n", all, path, on_path);
	CHECK(on_path >= 1, "no violation by the outsider (pid %d) on %s with the expected op", pid, path);
	CHECK(mine == all, "%zu violations, only %zu of them by the outsider pid %d", all, mine, pid);
	CHECK(on_path == mine, "the outsider's violations name other paths than %s", path);
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .violation = BW_YES, .pid = (uint32_t)pid }, 0);
	CHECK(S.evs.ev[i]->process, "violation without a process");
	CHECK(!S.evs.ev[i]->process->in_build, "outsider's violation says inBuild true");
	CHECK(S.evs.ev[i]->process->ppid == (uint32_t)getpid(), "outsider's ppid %u, expected %d",
	      S.evs.ev[i]->process->ppid, (int)getpid());
	CHECK(!strcmp(S.evs.ev[i]->process->exe, bw_self_exe()), "outsider's exe '%s', expected '%s'",
	      S.evs.ev[i]->process->exe, bw_self_exe());
	check_violations_audited();
}

/* ---- 1. SUNSPOT ---------------------------------------------------------- */

static int sunspot_act(const char *ws)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/src/main.c", ws);
	return rewrite(p, O_WRONLY | O_TRUNC, trojan_main) ? 1 : 0;
}

/*
 * The SUNSPOT and 3CX scenarios build real C programs. `make vmtest` guests
 * carry no compiler: there the case says so and skips, here it always runs.
 */
static void require_cc(void)
{
	if (access("/usr/bin/cc", X_OK) != 0 && access("/bin/cc", X_OK) != 0) {
		print_message("SKIP: no C compiler (cc) on this system: the scenario builds a C program\n");
		skip();
	}
}

static void test_sunspot(void **state)
{
	static const Buildwarden__V1__FileOp ops[] = {
		BUILDWARDEN__V1__FILE_OP__WRITE, BUILDWARDEN__V1__FILE_OP__OPEN_WRITE,
		BUILDWARDEN__V1__FILE_OP__TRUNCATE, 0,
	};
	struct outsider o = { .ws = S.ws.path, .act = sunspot_act };
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[4096];
	char *content;
	pid_t pid;

	require_cc();

	(void)state;
	alarm(run_timeout() + 20);
	write_sources();
	snprintf(script, sizeof(script),
		 "set -e\ncd '%s'\n"
		 "cc -c -o out/util.o src/util.c\n"
		 "cc -c -o out/extra.o src/extra.c\n"
		 SH_HANDSHAKE
		 "cc -c -o out/main.o src/main.c\n"
		 "cc -o out/app out/main.o out/util.o out/extra.o\n",
		 S.ws.path);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	pid = start_outsider(&o);

	run_scenario(true, cmd);
	CHECK(outsider_status(pid) == 0, "the outsider did not complete its rewrite");
	content = bw_read_file(wsp("src/main.c"), NULL);
	CHECK(content && !strcmp(content, trojan_main), "src/main.c was not rewritten (audit must not block)");
	free(content);
	CHECK(access(wsp("out/app"), F_OK) == 0, "the build did not produce out/app");

	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	check_outsider_violations(pid, wsp("src/main.c"), ops);
	/* issue 2: one rewrite, "one violation event" */
	CHECK(n_violations() == 1, "%zu violation events for one open+write+close, expected 1", n_violations());
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .path_prefix = wsp("out") }) == 0,
	      "the build's own writes to out/ were flagged");
	/* The build's own changes to the protected trees are recorded, not flagged. */
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .any_path = wsp("out/app"), .violation = BW_NO,
						       .in_build = BW_YES }) >= 1,
	      "no event records the build's own write of out/app");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						       .in_build = BW_YES, .violation = BW_NO }) >= 5,
	      "the build's execs (sh, cc x4) are not recorded");
}

/* ---- 2. 3CX -------------------------------------------------------------- */

static int tcx_act(const char *ws)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/out/app", ws);
	return rewrite(p, O_WRONLY | O_TRUNC, "TROJANED ARTIFACT\n") ? 1 : 0;
}

static void test_3cx(void **state)
{
	static const Buildwarden__V1__FileOp ops[] = {
		BUILDWARDEN__V1__FILE_OP__WRITE, BUILDWARDEN__V1__FILE_OP__OPEN_WRITE,
		BUILDWARDEN__V1__FILE_OP__TRUNCATE, 0,
	};
	struct outsider o = { .ws = S.ws.path, .act = tcx_act };
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[4096];
	char *content;
	pid_t pid;

	require_cc();

	(void)state;
	alarm(run_timeout() + 20);
	write_sources();
	snprintf(script, sizeof(script),
		 "set -e\ncd '%s'\n"
		 "cc -o out/app src/main.c src/util.c src/extra.c\n"
		 SH_HANDSHAKE,
		 S.ws.path);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	pid = start_outsider(&o);

	run_scenario(true, cmd);
	CHECK(outsider_status(pid) == 0, "the outsider did not complete its overwrite");
	content = bw_read_file(wsp("out/app"), NULL);
	CHECK(content && !strcmp(content, "TROJANED ARTIFACT\n"), "out/app was not overwritten");
	free(content);

	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	check_outsider_violations(pid, wsp("out/app"), ops);
	CHECK(n_violations() == 1, "%zu violation events for one open+write+close, expected 1", n_violations());
}

/* ---- 3. frp -------------------------------------------------------------- */

static int listen_on(const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET, one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -1;
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
		sl = sizeof(*s6);
	}
	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (fam == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return -1;
	}
	*port = ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* Did a connection reach the listener? (the handshake completes in the kernel) */
static bool was_reached(int lfd)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return false;
	close(c);
	return true;
}

/* --bw-helper connect ADDR PORT: one TCP connect, loopback only. */
static int helper_connect(const char *addr, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET, fd, rc;

	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(port));
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1 ||
		    (ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			return 2;
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(port));
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1 || !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 2;
		sl = sizeof(*s6);
	}
	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 3;
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	printf("bw-helper: connect %s %s: %s\n", addr, port, rc ? strerror(errno) : "connected");
	close(fd);
	return rc ? 1 : 0;
}

static void test_frp_ipv4(void **state)
{
	char script[2048], p1s[16], p2s[16];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };
	uint16_t p1, p2;
	int l1, l2;
	long i;

	(void)state;
	alarm(run_timeout() + 20);
	l1 = listen_on("127.0.0.1", &p1);
	l2 = listen_on("127.0.0.2", &p2);
	CHECK(l1 >= 0 && l2 >= 0, "cannot listen on 127.0.0.1 / 127.0.0.2: %s", strerror(errno));
	snprintf(p1s, sizeof(p1s), "%u", p1);
	snprintf(p2s, sizeof(p2s), "%u", p2);
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nnetwork:\n  scope: build\n  default: deny\n"
			      "  allow: [\"127.0.0.1/32\"]\n") == 0, "write policy");
	snprintf(script, sizeof(script), "'%s' --bw-helper connect 127.0.0.1 %s && '%s' --bw-helper connect 127.0.0.2 %s",
		 bw_self_exe(), p1s, bw_self_exe(), p2s);

	run_scenario(true, cmd);
	/* audit mode: both connects went through */
	CHECK(was_reached(l1), "the allowed connect did not reach 127.0.0.1:%u", p1);
	CHECK(was_reached(l2), "the refused connect did not reach 127.0.0.2:%u (audit must not block)", p2);
	close(l1);
	close(l2);

	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	CHECK(n_violations() == 1, "%zu violations, expected exactly 1 (the connect to 127.0.0.2)", n_violations());
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						    .address = "127.0.0.2", .port = p2, .violation = BW_YES }, 0);
	CHECK(i >= 0, "no connect violation with address \"127.0.0.2\" port %u", p2);
	CHECK(S.evs.ev[i]->process && S.evs.ev[i]->process->in_build, "connect violation not inBuild");
	CHECK(!strcmp(S.evs.ev[i]->process->exe, bw_self_exe()), "connect violation exe '%s', expected '%s'",
	      S.evs.ev[i]->process->exe, bw_self_exe());
	CHECK(S.evs.ev[i]->connect->protocol == BUILDWARDEN__V1__PROTOCOL__TCP, "connect protocol is not TCP");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						       .address = "127.0.0.1", .port = p1, .violation = BW_NO }) == 1,
	      "expected one connect event to 127.0.0.1:%u without a violation", p1);
	check_violations_audited();
}

static void test_frp_ipv6(void **state)
{
	char script[2048], p1s[16], p3s[16];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };
	uint16_t p1, p3;
	int l1, l3;
	long i;

	(void)state;
	alarm(run_timeout() + 20);
	l3 = listen_on("::1", &p3);
	if (l3 < 0) {
		printf("no IPv6 loopback here (%s): skipping\n", strerror(errno));
		skip();
	}
	l1 = listen_on("127.0.0.1", &p1);
	CHECK(l1 >= 0, "cannot listen on 127.0.0.1");
	snprintf(p1s, sizeof(p1s), "%u", p1);
	snprintf(p3s, sizeof(p3s), "%u", p3);
	CHECK(bw_write_policy(&S.ws, NULL,
			      "version: 1\nmode: audit\nnetwork:\n  scope: build\n  default: allow\n"
			      "  deny: [\"::1/128\"]\n") == 0, "write policy");
	snprintf(script, sizeof(script), "'%s' --bw-helper connect 127.0.0.1 %s && '%s' --bw-helper connect ::1 %s",
		 bw_self_exe(), p1s, bw_self_exe(), p3s);

	run_scenario(true, cmd);
	CHECK(was_reached(l1), "the allowed connect did not reach 127.0.0.1:%u", p1);
	CHECK(was_reached(l3), "the refused connect did not reach [::1]:%u (audit must not block)", p3);
	close(l1);
	close(l3);

	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	CHECK(n_violations() == 1, "%zu violations, expected exactly 1 (the connect to ::1)", n_violations());
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						    .address = "::1", .port = p3, .violation = BW_YES }, 0);
	CHECK(i >= 0, "no connect violation with address \"::1\" port %u", p3);
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_CONNECT,
						       .address = "127.0.0.1", .port = p1, .violation = BW_NO }) == 1,
	      "expected one connect event to 127.0.0.1:%u without a violation", p1);
	check_violations_audited();
}

/* ---- 4. dropper ---------------------------------------------------------- */

static void test_dropper(void **state)
{
	char script[4096];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };
	long i;

	(void)state;
	alarm(run_timeout() + 20);
	CHECK(bw_ws_mkdir(&S.ws, "drop") == 0, "mkdir drop");
	CHECK(bw_ws_write(&S.ws, "drop/evil.sh", "#!/bin/sh\nexit 0\n", true) == 0, "write evil.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nexec:\n  scope: build\n  deny: [\"%s\"]\n",
			      wsp("drop")) == 0, "write policy");
	snprintf(script, sizeof(script), "set -e\ncp /bin/true '%s'\n'%s'\n'%s'\n/usr/bin/true\n",
		 wsp("drop/true"), wsp("drop/true"), wsp("drop/evil.sh"));

	run_scenario(true, cmd);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						    .filename = wsp("drop/true"), .violation = BW_YES }, 0);
	CHECK(i >= 0, "no exec violation with filename %s", wsp("drop/true"));
	CHECK(S.evs.ev[i]->process && S.evs.ev[i]->process->in_build, "dropper exec not inBuild");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						       .filename = "/usr/bin/true", .violation = BW_NO,
						       .in_build = BW_YES }) == 1,
	      "expected one exec event of /usr/bin/true without a violation");
	check_violations_audited();
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						       .filename = wsp("drop/evil.sh"), .violation = BW_YES }) == 1,
	      "no exec violation for the script %s (#! from a denied tree)", wsp("drop/evil.sh"));
	CHECK(n_violations() == 2, "%zu violations, expected exactly 2 (drop/true, drop/evil.sh)", n_violations());
}

/* ---- 5. path spellings --------------------------------------------------- */

enum { P_REL = 1, P_SYMLINK = 2, P_HARDLINK = 4, P_RENAME = 8, P_TRUNC = 16, P_PROCROOT = 32 };

static int paths_act(const char *ws)
{
	char p[PATH_MAX];
	int failed = 0;

	/* relative path from inside the tree */
	snprintf(p, sizeof(p), "%s/src", ws);
	if (chdir(p) || rewrite("a.c", O_WRONLY, "/* X */"))
		failed |= P_REL;
	if (chdir("/"))
		failed |= P_REL;
	/* a symlink outside the tree that points in */
	snprintf(p, sizeof(p), "%s/outside/link_b", ws);
	if (rewrite(p, O_WRONLY, "/* X */"))
		failed |= P_SYMLINK;
	/* a hard link outside the tree (made before the run) */
	snprintf(p, sizeof(p), "%s/outside/hard_c", ws);
	if (rewrite(p, O_WRONLY, "/* X */"))
		failed |= P_HARDLINK;
	/* rename an outside file over a protected one */
	{
		char from[PATH_MAX], to[PATH_MAX];

		snprintf(from, sizeof(from), "%s/outside/evil_d", ws);
		snprintf(to, sizeof(to), "%s/src/d.c", ws);
		if (rename(from, to))
			failed |= P_RENAME;
	}
	/* O_TRUNC alone, nothing written */
	snprintf(p, sizeof(p), "%s/src/e.c", ws);
	if (rewrite(p, O_WRONLY | O_TRUNC, NULL))
		failed |= P_TRUNC;
	/* /proc/self/root and a ".." through an unprotected dir */
	snprintf(p, sizeof(p), "/proc/self/root%s/outside/../src/f.c", ws);
	if (rewrite(p, O_WRONLY, "/* X */"))
		failed |= P_PROCROOT;
	return failed;
}

static void test_paths(void **state)
{
	static const char *const files[] = { "a.c", "b.c", "c.c", "d.c", "e.c", "f.c" };
	static const char *const what[] = {
		"relative path (cwd in src)", "symlink outside -> src/b.c", "hard link outside = src/c.c",
		"rename outside file over src/d.c", "O_TRUNC of src/e.c", "/proc/self/root/.../outside/../src/f.c",
	};
	/* docs/events.md: the detection layer reports a truncation as WRITE */
	static const Buildwarden__V1__FileOp trunc_ops[] = {
		BUILDWARDEN__V1__FILE_OP__TRUNCATE, BUILDWARDEN__V1__FILE_OP__OPEN_WRITE,
		BUILDWARDEN__V1__FILE_OP__WRITE, 0,
	};
	static const Buildwarden__V1__FileOp rename_ops[] = { BUILDWARDEN__V1__FILE_OP__RENAME, 0 };
	struct outsider o = { .ws = S.ws.path, .act = paths_act };
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[1024], rel[64];
	unsigned missing = 0;
	int st;
	pid_t pid;

	(void)state;
	alarm(run_timeout() + 20);
	for (size_t k = 0; k < 6; k++) {
		snprintf(rel, sizeof(rel), "src/%s", files[k]);
		CHECK(bw_ws_write(&S.ws, rel, "int x;\n", false) == 0, "write %s", rel);
	}
	CHECK(bw_ws_mkdir(&S.ws, "out") == 0, "mkdir out");
	CHECK(bw_ws_write(&S.ws, "outside/evil_d", "int evil;\n", false) == 0, "write evil_d");
	CHECK(symlink(wsp("src/b.c"), wsp("outside/link_b")) == 0, "symlink");
	CHECK(link(wsp("src/c.c"), wsp("outside/hard_c")) == 0, "link");
	snprintf(script, sizeof(script), "set -e\ncd '%s'\n" SH_HANDSHAKE, S.ws.path);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	pid = start_outsider(&o);

	run_scenario(true, cmd);
	st = outsider_status(pid);
	CHECK(st == 0, "the outsider's changes failed (mask %d)", st);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	for (size_t k = 0; k < 6; k++) {
		char want[PATH_MAX];
		struct bw_filter f = { .violation = BW_YES, .pid = (uint32_t)pid, .any_path = want };
		size_t n;

		snprintf(want, sizeof(want), "%s/src/%s", S.ws.path, files[k]);
		if (k == 3)
			f.ops = rename_ops;
		if (k == 4)
			f.ops = trunc_ops;
		n = bw_ev_count(&S.evs, &f);
		if (!n) {
			/* say what there is instead, if anything */
			struct bw_filter g = f;
			long i;

			g.ops = NULL;
			i = bw_ev_find(&S.evs, &g, 0);
			printf("  %-45s -> MISSING%s%s\n", what[k], i >= 0 ? "; found only op " : "",
			       i >= 0 ? bw_op_name(S.evs.ev[i]->file->op) : "");
			missing |= 1u << k;
		} else {
			printf("  %-45s -> violation on the resolved path\n", what[k]);
		}
	}
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[k];
		char line[PATH_MAX * 3];

		if (!bw_ev_match(ev, &(struct bw_filter){ .violation = BW_YES }))
			continue;
		CHECK(ev->process && !strcmp(ev->process->exe, bw_self_exe()) && !ev->process->in_build,
		      "violation does not name the outsider's exe %s: %s", bw_self_exe(),
		      bw_ev_describe(ev, line, sizeof(line)));
	}
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .pid = (uint32_t)pid }) ==
	      n_violations(), "violations by processes other than the outsider");
	/* the path field carries the resolved in-tree name, never the spelling used */
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .path = wsp("outside/link_b") }) == 0,
	      "a violation names the symlink instead of the resolved path");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .path = wsp("outside/hard_c") }) == 0,
	      "a violation names the outside hard link instead of the protected path");
	check_violations_audited();
	CHECK(!missing, "changes through some spellings were not reported on the resolved in-tree path "
	      "with the right op (mask 0x%x)", missing);
}

/* ---- 5b. kinds of change ------------------------------------------------- */

#define N_KINDS 12
static const char *const kind_what[N_KINDS] = {
	"write through an fd opened before the run", "unlink", "rename out of the tree",
	"rename within the tree", "chmod", "create", "mkdir", "link to outside", "truncate(2)",
	"write through a shared mmap", "setxattr", "utimensat",
};
static int preopened_fd = -1;

static int kinds_act(const char *ws)
{
	char p[PATH_MAX], q[PATH_MAX];
	int failed = 0, fd;
	char *map;

#define K(i, expr)                            \
	do {                                  \
		if (expr)                     \
			failed |= 1 << (i);   \
	} while (0)
#define P(rel) (snprintf(p, sizeof(p), "%s/%s", ws, rel), p)
#define Q(rel) (snprintf(q, sizeof(q), "%s/%s", ws, rel), q)
	K(0, pwrite(preopened_fd, "X", 1, 0) != 1);
	K(1, unlink(P("src/u.c")));
	K(2, rename(P("src/r.c"), Q("outside/r.c")));
	K(3, rename(P("src/w1.c"), Q("src/w2.c")));
	K(4, chmod(P("src/m.c"), 0600));
	fd = open(P("src/new.c"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	K(5, fd < 0);
	if (fd >= 0)
		close(fd);
	K(6, mkdir(P("src/newdir"), 0755));
	K(7, link(P("src/l.c"), Q("outside/l2")));
	K(8, truncate(P("src/t.c"), 0));
	fd = open(P("src/mm.c"), O_RDWR | O_CLOEXEC);
	map = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	K(9, map == MAP_FAILED);
	if (map != MAP_FAILED) {
		memcpy(map, "XX", 2);
		K(9, msync(map, 4096, MS_SYNC));
		munmap(map, 4096);
	}
	if (fd >= 0)
		close(fd);
	K(10, setxattr(P("src/x.c"), "user.bwtest", "1", 1, 0));
	K(11, utimensat(AT_FDCWD, P("src/ut.c"), NULL, 0));
#undef K
#undef P
#undef Q
	return failed;
}

/* Every kind of change by an outsider is a violation on the in-tree path. */
static void test_change_kinds(void **state)
{
	static const char *const files[] = { "p.c", "u.c", "r.c", "w1.c", "m.c", "l.c", "t.c", "mm.c", "x.c", "ut.c" };
	static const Buildwarden__V1__FileOp write_ops[] = { BUILDWARDEN__V1__FILE_OP__WRITE, 0 };
	static const Buildwarden__V1__FileOp unlink_ops[] = { BUILDWARDEN__V1__FILE_OP__UNLINK, 0 };
	static const Buildwarden__V1__FileOp rename_ops[] = { BUILDWARDEN__V1__FILE_OP__RENAME, 0 };
	static const Buildwarden__V1__FileOp attrib_ops[] = { BUILDWARDEN__V1__FILE_OP__ATTRIB, 0 };
	static const Buildwarden__V1__FileOp create_ops[] = { BUILDWARDEN__V1__FILE_OP__CREATE, 0 };
	static const Buildwarden__V1__FileOp mkdir_ops[] = { BUILDWARDEN__V1__FILE_OP__MKDIR, 0 };
	static const Buildwarden__V1__FileOp link_ops[] = { BUILDWARDEN__V1__FILE_OP__LINK, 0 };
	/* docs/events.md: the detection layer reports a truncation as WRITE */
	static const Buildwarden__V1__FileOp trunc_ops[] = {
		BUILDWARDEN__V1__FILE_OP__TRUNCATE, BUILDWARDEN__V1__FILE_OP__WRITE, 0,
	};
	static const Buildwarden__V1__FileOp mmap_ops[] = {
		BUILDWARDEN__V1__FILE_OP__MMAP_WRITE, BUILDWARDEN__V1__FILE_OP__OPEN_WRITE,
		BUILDWARDEN__V1__FILE_OP__WRITE, 0,
	};
	const struct {
		const char *path, *alt; /* the in-tree path; for a rename within, either name */
		const Buildwarden__V1__FileOp *ops;
	} want[N_KINDS] = {
		{ "src/p.c", NULL, write_ops },   { "src/u.c", NULL, unlink_ops },
		{ "src/r.c", NULL, rename_ops },  { "src/w1.c", "src/w2.c", rename_ops },
		{ "src/m.c", NULL, attrib_ops },  { "src/new.c", NULL, create_ops },
		{ "src/newdir", NULL, mkdir_ops }, { "src/l.c", NULL, link_ops },
		{ "src/t.c", NULL, trunc_ops },   { "src/mm.c", NULL, mmap_ops },
		{ "src/x.c", NULL, attrib_ops },  { "src/ut.c", NULL, attrib_ops },
	};
	struct outsider o = { .ws = S.ws.path, .act = kinds_act };
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[1024], rel[64];
	unsigned missing = 0;
	int st;
	pid_t pid;

	(void)state;
	alarm(run_timeout() + 20);
	for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
		snprintf(rel, sizeof(rel), "src/%s", files[k]);
		CHECK(bw_ws_write(&S.ws, rel, "int x; /* padding to one page is not needed */\n", false) == 0,
		      "write %s", rel);
	}
	CHECK(bw_ws_mkdir(&S.ws, "out") == 0 && bw_ws_mkdir(&S.ws, "outside") == 0, "mkdir");
	snprintf(script, sizeof(script), "set -e\ncd '%s'\n" SH_HANDSHAKE, S.ws.path);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	/* opened before the sensor exists; the outsider inherits it */
	preopened_fd = open(wsp("src/p.c"), O_WRONLY | O_CLOEXEC);
	CHECK(preopened_fd >= 0, "open src/p.c");
	pid = start_outsider(&o);
	close(preopened_fd);
	preopened_fd = -1;

	run_scenario(true, cmd);
	st = outsider_status(pid);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	for (size_t k = 0; k < N_KINDS; k++) {
		struct bw_filter f = { .violation = BW_YES, .pid = (uint32_t)pid, .any_path = wsp(want[k].path),
				       .ops = want[k].ops };
		size_t n = bw_ev_count(&S.evs, &f);
		long i;

		if (st >= 0 && (st & (1 << k))) {
			printf("  %-45s -> the outsider could not do it here: not checked\n", kind_what[k]);
			continue;
		}
		if (!n && want[k].alt) {
			f.any_path = wsp(want[k].alt);
			n = bw_ev_count(&S.evs, &f);
		}
		if (n) {
			printf("  %-45s -> violation\n", kind_what[k]);
			continue;
		}
		f.ops = NULL;
		i = bw_ev_find(&S.evs, &f, 0);
		printf("  %-45s -> MISSING%s%s\n", kind_what[k], i >= 0 ? "; found only op " : "",
		       i >= 0 ? bw_op_name(S.evs.ev[i]->file->op) : "");
		missing |= 1u << k;
	}
	CHECK(st >= 0 && (st & ~((1 << 10))) == 0, "the outsider failed changes other than setxattr (mask %d)", st);
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .violation = BW_YES, .pid = (uint32_t)pid }) ==
	      n_violations(), "violations by processes other than the outsider");
	check_violations_audited();
	/* the details of the ops that were reported; issue 2: "newPath for rename/link" */
	if (!bw_ev_count(&S.evs, &(struct bw_filter){ .op = BUILDWARDEN__V1__FILE_OP__LINK, .path = wsp("src/l.c"),
						      .new_path = wsp("outside/l2") })) {
		printf("  link(src/l.c, outside/l2): no LINK event with newPath %s\n", wsp("outside/l2"));
		missing |= 1u << 16;
	}
	if (!bw_ev_count(&S.evs, &(struct bw_filter){ .op = BUILDWARDEN__V1__FILE_OP__RENAME, .path = wsp("src/r.c"),
						      .new_path = wsp("outside/r.c") })) {
		printf("  rename(src/r.c, outside/r.c): no RENAME event with path and newPath\n");
		missing |= 1u << 17;
	}
	if (bw_ev_count(&S.evs, &(struct bw_filter){ .op = BUILDWARDEN__V1__FILE_OP__LINK, .path = wsp("src/u.c") })) {
		printf("  unlink(src/u.c) is also reported as a LINK\n");
		missing |= 1u << 18;
	}
	CHECK(!missing, "some kinds of change were not reported as a violation with their op and paths "
	      "(mask 0x%x; bits 0-11 the kinds above, 16-18 the details)", missing);
}

/* ---- timeline ----------------------------------------------------------- */

static int timeline_act(const char *ws)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/src/a.c", ws);
	return rewrite(p, O_WRONLY, "/* X */") ? 1 : 0;
}

/* timeNs is when things happened: exec A, then (by a FIFO handshake) the
 * outsider's write, then exec B must be in that order. */
static void test_timeline_order(void **state)
{
	struct outsider o = { .ws = S.ws.path, .act = timeline_act };
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[1024];
	long a, w, b;
	pid_t pid;

	(void)state;
	alarm(run_timeout() + 20);
	CHECK(bw_ws_write(&S.ws, "src/a.c", "int a;\n", false) == 0, "write a.c");
	CHECK(bw_ws_mkdir(&S.ws, "out") == 0, "mkdir out");
	snprintf(script, sizeof(script), "set -e\ncd '%s'\n/bin/true\n" SH_HANDSHAKE "/usr/bin/true\n", S.ws.path);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	pid = start_outsider(&o);
	run_scenario(true, cmd);
	CHECK(outsider_status(pid) == 0, "the outsider's write failed");
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	a = bw_ev_find(&S.evs, &(struct bw_filter){ .filename = "/bin/true" }, 0);
	b = bw_ev_find(&S.evs, &(struct bw_filter){ .filename = "/usr/bin/true" }, 0);
	w = bw_ev_find(&S.evs, &(struct bw_filter){ .violation = BW_YES, .pid = (uint32_t)pid,
						    .path = wsp("src/a.c") }, 0);
	CHECK(a >= 0 && b >= 0 && w >= 0, "missing events (exec /bin/true %ld, write %ld, exec /usr/bin/true %ld)",
	      a, w, b);
	printf("  timeNs: exec A %llu, outsider write %+lld ns, exec B %+lld ns\n",
	       (unsigned long long)S.evs.ev[a]->time_ns,
	       (long long)(S.evs.ev[w]->time_ns - S.evs.ev[a]->time_ns),
	       (long long)(S.evs.ev[b]->time_ns - S.evs.ev[a]->time_ns));
	CHECK(S.evs.ev[a]->time_ns < S.evs.ev[w]->time_ns, "timeNs: the write is stamped before the exec that preceded it");
	/* A file change has no kernel timestamp (fanotify carries none): it is stamped when
	 * the agent reads it, an upper bound (docs/events.md). So only what that promises is
	 * checked: the write is not stamped before the exec that preceded it (above), the
	 * kernel-stamped execs are in order, and seq puts the write after exec A. */
	CHECK(S.evs.ev[a]->time_ns < S.evs.ev[b]->time_ns, "timeNs: exec B is stamped before exec A");
	CHECK(S.evs.ev[a]->seq < S.evs.ev[w]->seq, "seq: the write comes before the exec that preceded it");
}

/* ---- 6. busy build ------------------------------------------------------- */

#define BUSY_TRUES 300
#define BUSY_HEADERS 2000

static void test_busy_build(void **state)
{
	const char *cmd[] = { "/bin/sh", wsp("ctl/build.sh"), NULL };
	char script[2048], rel[64];
	size_t execs, trues, n_true_bin, n_true_usr;
	const Buildwarden__V1__Event *end;

	(void)state;
	alarm(run_timeout() + 30);
	for (int k = 0; k < BUSY_HEADERS; k++) {
		snprintf(rel, sizeof(rel), "inc/h%04d.h", k);
		CHECK(bw_ws_write(&S.ws, rel, "#define X 1\n", false) == 0, "write %s", rel);
	}
	for (int k = 0; k < 200; k++) {
		snprintf(rel, sizeof(rel), "src/hdr/p%03d.h", k);
		CHECK(bw_ws_write(&S.ws, rel, "#define P 1\n", false) == 0, "write %s", rel);
	}
	write_sources();
	CHECK(bw_ws_mkdir(&S.ws, "scratch") == 0, "mkdir scratch");
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	/* Execs: sh (1) + /bin/true (300) + cat (2) = 303; [, echo, $(()) are dash builtins. */
	snprintf(script, sizeof(script),
		 "set -e\ncd '%s'\n"
		 "i=0\nwhile [ $i -lt %d ]; do /bin/true; i=$((i+1)); done\n"
		 "cat inc/*.h > /dev/null\n"
		 "cat src/*.c src/hdr/*.h > /dev/null\n"
		 "i=0\nwhile [ $i -lt 200 ]; do echo $i > scratch/f$i; i=$((i+1)); done\n"
		 "echo done > out/result.txt\n",
		 S.ws.path, BUSY_TRUES);
	CHECK(bw_ws_write(&S.ws, "ctl/build.sh", script, true) == 0, "write build.sh");

	run_scenario(true, cmd);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	CHECK(access(wsp("out/result.txt"), F_OK) == 0, "the build did not run to its end");
	check_stream();
	CHECK(n_violations() == 0, "%zu violations in a clean build", n_violations());

	/* positive control: the sensor does record protected-tree changes */
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .any_path = wsp("out/result.txt"), .in_build = BW_YES }) >= 1,
	      "the build's write of out/result.txt was not recorded");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .path_prefix = wsp("inc") }) == 0,
	      "file events for the unprotected inc/ (reads)");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .path_prefix = wsp("scratch") }) == 0,
	      "file events for the unprotected scratch/ (writes)");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .path_prefix = wsp("src") }) == 0,
	      "file events for reads of the protected src/");

	execs = bw_ev_count(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
							 .in_build = BW_YES });
	n_true_bin = bw_ev_count(&S.evs, &(struct bw_filter){ .filename = "/bin/true", .in_build = BW_YES });
	n_true_usr = bw_ev_count(&S.evs, &(struct bw_filter){ .filename = "/usr/bin/true", .in_build = BW_YES });
	trues = n_true_bin + n_true_usr;
	printf("  in-build exec events: %zu (true: %zu), all events: %zu\n", execs, trues, S.evs.n);
	CHECK(trues == BUSY_TRUES, "%zu exec events of true, expected %d", trues, BUSY_TRUES);
	CHECK(execs == BUSY_TRUES + 3, "%zu in-build exec events, expected %d (sh + %d true + 2 cat)", execs,
	      BUSY_TRUES + 3, BUSY_TRUES);
	CHECK(S.evs.n < BUSY_TRUES + 100, "%zu events for %d execs: something else is being delivered",
	      S.evs.n, BUSY_TRUES + 3);

	end = run_end();
	CHECK(end->run_end->drops == 0, "runEnd reports %llu drops", (unsigned long long)end->run_end->drops);
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[k];
		uint64_t sum = 0;

		if (ev->body_case != BUILDWARDEN__V1__EVENT__BODY_STATS)
			continue;
		for (size_t c = 0; c < ev->stats->n_ringbuf_drops_per_cpu; c++)
			sum += ev->stats->ringbuf_drops_per_cpu[c];
		CHECK(ev->stats->ringbuf_drops == 0 && sum == 0, "stats report ring-buffer drops");
		CHECK(ev->stats->unattributed == 0, "stats report unattributed events");
	}
	CHECK(strcasestr(S.res.err, "drop") || strcasestr(S.res.err, "lost"),
	      "the run summary on stderr does not report drops/lost events");
}

/* Exec identity comes from the kernel at sched_process_exec: (dev, ino) of the
 * image, argv even for a freshly forked child, and the resolved exe path. */
static void test_exec_identity(void **state)
{
	const char *cmd[] = { "/bin/sh", "-c", "i=0; while [ $i -lt 20 ]; do /bin/true; i=$((i+1)); done", NULL };
	size_t n = 0, ident = 0, argv_ok = 0, path_ok = 0;
	struct stat st;
	char *real;

	(void)state;
	alarm(run_timeout() + 20);
	real = realpath("/bin/true", NULL);
	CHECK(real && stat(real, &st) == 0, "stat /bin/true");
	run_scenario(false, cmd);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	check_stream();
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Process *p = S.evs.ev[k]->process;

		if (!bw_ev_match(S.evs.ev[k], &(struct bw_filter){ .filename = "/bin/true", .in_build = BW_YES }))
			continue;
		n++;
		ident += p->exe_dev == (uint64_t)st.st_dev && p->exe_ino == (uint64_t)st.st_ino;
		argv_ok += p->n_argv == 1 && !strcmp(p->argv[0], "/bin/true");
		path_ok += !strcmp(p->exe, real);
	}
	printf("  execs of /bin/true: %zu; exeDev/exeIno of %s: %zu; argv [\"/bin/true\"]: %zu; exe \"%s\": %zu\n",
	       n, real, ident, argv_ok, real, path_ok);
	free(real);
	CHECK(n == 20, "%zu exec events of /bin/true, expected 20", n);
	CHECK(ident == n, "exeDev/exeIno do not identify the executed file on every exec");
	CHECK(argv_ok == n, "argv missing or wrong on some execs");
	CHECK(path_ok == n, "process.exe is not the resolved executable path on every exec "
	      "(same file reported under different names)");
}

/* The kernel record holds 511 bytes of argv: an exec with more says it was cut (the
 * boundary: /bin/true plus a 500-byte argument is 511 bytes, whole), and decode shows it. */
static void test_exec_truncated(void **state)
{
	char longarg[601], fits[501], script[1400];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };
	const char *decode[] = { "decode", S.events, NULL };
	size_t n_long = 0, n_fits = 0;

	(void)state;
	alarm(run_timeout() + 20);
	memset(longarg, 'x', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	memset(fits, 'y', sizeof(fits) - 1);
	fits[sizeof(fits) - 1] = '\0';
	snprintf(script, sizeof(script), "/bin/true %s; /bin/true %s", longarg, fits);
	run_scenario(false, cmd);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	check_stream();
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[k];
		const Buildwarden__V1__Process *p = ev->process;

		if (!bw_ev_match(ev, &(struct bw_filter){ .filename = "/bin/true", .in_build = BW_YES }))
			continue;
		CHECK(p && p->n_argv == 2, "exec of /bin/true without its two arguments");
		if (p->argv[1][0] == 'x') {
			n_long++;
			CHECK(ev->exec->truncated, "exec with %zu bytes of argv is not marked truncated",
			      strlen("/bin/true") + sizeof(longarg) + 1);
			CHECK(strspn(p->argv[1], "x") == strlen(p->argv[1]) && strlen(p->argv[1]) < 600,
			      "truncated argv[1] is not a prefix of the argument");
		} else {
			n_fits++;
			CHECK(!ev->exec->truncated, "exec with 511 bytes of argv is marked truncated");
			CHECK(strlen(p->argv[1]) == 500, "argv[1] of 511 bytes of argv is %zu bytes long",
			      strlen(p->argv[1]));
		}
	}
	CHECK(n_long == 1 && n_fits == 1, "%zu execs with a long argument, %zu with one that fits; "
	      "expected 1 and 1", n_long, n_fits);
	run_bw(decode);
	CHECK(S.res.exit_code == 0, "decode exited %d", S.res.exit_code);
	CHECK(strstr(S.res.out, "\"truncated\":true"), "decode's JSON does not show truncated");
}

/* ---- exit status, lineage ------------------------------------------------ */

static void test_exit_passthrough(void **state)
{
	const char *cmd[] = { "/bin/sh", "-c", "exit 3", NULL };
	const Buildwarden__V1__Event *end;

	(void)state;
	alarm(2 * run_timeout() + 10);
	run_scenario(false, cmd);
	CHECK(S.res.exit_code == 3, "no policy: exit code %d, expected 3", S.res.exit_code);
	check_stream();

	write_sources();
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	run_scenario(true, cmd);
	CHECK(S.res.exit_code == 3, "with a policy: exit code %d, expected 3", S.res.exit_code);
	check_stream();
	CHECK(n_violations() == 0, "%zu violations", n_violations());
	end = run_end();
	CHECK(end->run_end->exit_status == 3, "runEnd exitStatus %d, expected 3", end->run_end->exit_status);
}

/* A descendant that outlives CMD, one that daemonizes with setsid: both stay
 * the build, and the run lasts until they are gone. */
static void test_descendants_recorded(void **state)
{
	char script[2048];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };

	(void)state;
	alarm(run_timeout() + 20);
	write_sources();
	CHECK(bw_write_policy(&S.ws, NULL, "%s", protect_src_out) == 0, "write policy");
	snprintf(script, sizeof(script),
		 "(sleep 1; echo late > '%s') </dev/null >/dev/null 2>&1 &\n"
		 "setsid -f /bin/sh -c 'sleep 1; echo late > \"%s\"' </dev/null >/dev/null 2>&1\n"
		 "exit 0\n",
		 wsp("out/late1"), wsp("out/late2"));
	run_scenario(true, cmd);
	CHECK(S.res.exit_code == 0, "exit code %d, expected 0", S.res.exit_code);
	CHECK(access(wsp("out/late1"), F_OK) == 0, "buildwarden returned before the background descendant ended");
	CHECK(access(wsp("out/late2"), F_OK) == 0, "buildwarden returned before the setsid descendant ended");
	check_stream();
	CHECK(n_violations() == 0, "%zu violations: a descendant was not counted as the build", n_violations());
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .any_path = wsp("out/late1"), .in_build = BW_YES }) >= 1,
	      "the background descendant's write is not recorded as the build's");
	CHECK(bw_ev_count(&S.evs, &(struct bw_filter){ .any_path = wsp("out/late2"), .in_build = BW_YES }) >= 1,
	      "the setsid descendant's write is not recorded as the build's");
}

/* Stream-wide promises: gap-free seq, one run id, attribution on every
 * activity event, violations counted in runEnd. */
static void test_event_stream_invariants(void **state)
{
	char script[2048];
	const char *cmd[] = { "/bin/sh", "-c", script, NULL };
	const Buildwarden__V1__Event *first, *end;
	char line[PATH_MAX * 3];

	(void)state;
	alarm(run_timeout() + 20);
	write_sources();
	CHECK(bw_ws_mkdir(&S.ws, "drop") == 0, "mkdir drop");
	CHECK(bw_write_policy(&S.ws, NULL, "%sexec:\n  deny: [\"%s\"]\n", protect_src_out, wsp("drop")) == 0,
	      "write policy");
	snprintf(script, sizeof(script), "cp /bin/true '%s' && '%s'; echo x > '%s'; exit 5",
		 wsp("drop/t"), wsp("drop/t"), wsp("out/o"));
	run_scenario(true, cmd);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "exit code %d, expected %d", S.res.exit_code, EXIT_VIOLATION);
	check_stream();
	first = S.evs.ev[0];
	CHECK(first->body_case == BUILDWARDEN__V1__EVENT__BODY_RUN_START, "the first event is not runStart");
	CHECK(!strcmp(first->run_start->mode, "audit"), "runStart mode '%s'", first->run_start->mode);
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Event *ev = S.evs.ev[k];

		bw_ev_describe(ev, line, sizeof(line));
		CHECK(k == 0 || ev->seq == S.evs.ev[k - 1]->seq + 1, "seq not gap-free at event %zu: %s", k, line);
		CHECK(ev->run_id[0] && !strcmp(ev->run_id, first->run_id), "runId differs: %s", line);
		CHECK(ev->host[0], "no host: %s", line);
		CHECK(ev->time_ns, "no timeNs: %s", line);
		if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_EXEC ||
		    ev->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE ||
		    ev->body_case == BUILDWARDEN__V1__EVENT__BODY_CONNECT) {
			CHECK(ev->process && ev->process->pid && ev->process->exe[0], "unattributed: %s", line);
			CHECK(!ev->process->in_build || ev->process->n_ancestors >= 1,
			      "in-build process without ancestors: %s", line);
			CHECK(ev->verdict, "no verdict: %s", line);
		}
	}
	end = run_end();
	CHECK(end->run_end->violations == n_violations(), "runEnd says %llu violations, the stream has %zu",
	      (unsigned long long)end->run_end->violations, n_violations());
	CHECK(n_violations() == 1, "%zu violations, expected 1", n_violations());
	check_violations_audited();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sunspot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_3cx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frp_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frp_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_passthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_descendants_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_stream_invariants, setup, teardown),
	};
	int rc;

	if (argc >= 5 && !strcmp(argv[1], "--bw-helper") && !strcmp(argv[2], "connect"))
		return helper_connect(argv[3], argv[4]);
	if (argc >= 2 && !strcmp(argv[1], "--bw-helper"))
		return 2;
	/* BW_TEST_FILTER=test_sunspot (glob) runs a subset */
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	bw_cleanup_all();
	return rc;
}
