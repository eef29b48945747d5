// SPDX-License-Identifier: GPL-2.0
/* The exit codes of `buildwarden collector` and `buildwarden decode`, seen from the
 * outside as scripts see them. The libraries report outcomes (enum server_error, enum
 * decode_result) and only the CLI turns them into numbers (cli/exitcodes.h): this pins
 * the numbers that docs/collector.md and users rely on. Needs no root: the collector
 * listens on loopback with --insecure, and every case fails before it would serve. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bwtest.h"

static struct bw_ws ws;

/* Runs buildwarden with args; returns its exit code, stderr kept in err. */
static int run(const char *const args[], char *err, size_t errlen)
{
	struct bw_result r;
	int code;

	assert_int_equal(bw_run(args, 30, &r), 0);
	assert_false(r.timed_out);
	code = r.exit_code;
	snprintf(err, errlen, "%s", r.err);
	bw_result_free(&r);
	return code;
}

static void expect(const char *const args[], int code, const char *in_stderr)
{
	char err[1024];
	int got = run(args, err, sizeof(err));

	if (got != code || !strstr(err, in_stderr))
		fail_msg("buildwarden %s %s: exit %d, expected %d; stderr: %s", args[0],
			 args[1] ? args[1] : "", got, code, err);
}

static void test_cli_exitcodes__collector(void **state)
{
	char db[300], bad_db[300], file[300], addr[64];
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd;

	bw_ws_path(&ws, "c.db", db, sizeof(db));
	bw_ws_path(&ws, "no/such/dir/c.db", bad_db, sizeof(bad_db));
	bw_ws_path(&ws, "plain-file", file, sizeof(file));
	assert_int_equal(bw_ws_write(&ws, "plain-file", "x", false), 0);

	/* 64: flags the CLI refuses, and a configuration the server refuses */
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db, NULL },
	       64, "refusing to start without TLS");
	expect((const char *const[]){ "collector", "--listen", "localhost:7400", "--db", db,
				      "--insecure", NULL },
	       64, "expected IPv4:PORT or [IPv6]:PORT");
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", ":memory:",
				      "--insecure", NULL },
	       64, "--db needs a file");
	/* 66: an unreadable TLS file, a key directory that is not one */
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
				      "--tls-cert", "/nonexistent/c.pem", "--tls-key", file,
				      "--tls-client-ca", file, NULL },
	       66, "cannot read '/nonexistent/c.pem'");
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
				      "--insecure", "--agent-keys", file, NULL },
	       66, "is not a directory");
	/* 69: the port is taken */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
	expect((const char *const[]){ "collector", "--listen", addr, "--db", db, "--insecure", NULL },
	       69, "cannot listen on");
	close(fd);
	/* 73: the database cannot be created */
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", bad_db,
				      "--insecure", NULL },
	       73, "cannot create");
	/* --export: a bad destination is a usage error; an export directory that others
	 * may write (they could plant a link where the next file goes) cannot be used */
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
				      "--insecure", "--export", "splunk:x", NULL },
	       64, "expected jsonl:DIR, syslog:tcp://HOST:PORT or syslog:tls://HOST:PORT");
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
				      "--insecure", "--export", "syslog:tcp://127.0.0.1", NULL },
	       64, "expected tcp://HOST:PORT");
	expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
				      "--insecure", "--export", "syslog:tcp://127.0.0.1:514",
				      "--export-tls-ca", file, NULL },
	       64, "need a --export syslog:tls://");
	{
		char dir[300], spec[320];

		assert_int_equal(bw_ws_mkdir(&ws, "open-dir"), 0);
		bw_ws_path(&ws, "open-dir", dir, sizeof(dir));
		assert_int_equal(chmod(dir, 0777), 0);
		snprintf(spec, sizeof(spec), "jsonl:%s", dir);
		expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
					      "--insecure", "--export", spec, NULL },
		       73, "writable by it alone");
		snprintf(spec, sizeof(spec), "jsonl:%s", file);
		expect((const char *const[]){ "collector", "--listen", "127.0.0.1:0", "--db", db,
					      "--insecure", "--export", spec, NULL },
		       73, "not a directory");
	}
}

static void test_cli_exitcodes__decode(void **state)
{
	char good[300], bad[300], cmd[1024];
	int st;

	bw_ws_path(&ws, "good.pb", good, sizeof(good));
	bw_ws_path(&ws, "bad.pb", bad, sizeof(bad));
	/* one empty Event (a zero-length frame), and an over-long varint */
	{
		FILE *f = fopen(good, "wb");

		assert_non_null(f);
		assert_int_equal(fputc(0, f), 0);
		fclose(f);
	}
	assert_int_equal(bw_ws_write(&ws, "bad.pb", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", false), 0);

	expect((const char *const[]){ "decode", good, NULL }, 0, "");
	expect((const char *const[]){ "decode", bad, NULL }, 65, "corrupt frame at byte offset 0");
	expect((const char *const[]){ "decode", "/nonexistent/events.pb", NULL }, 66, "cannot open");
	expect((const char *const[]){ "decode", "a", "b", NULL }, 64, "usage");
	/* 74: stdout cannot be written */
	if (access("/dev/full", W_OK) == 0) {
		snprintf(cmd, sizeof(cmd), "'%s' decode '%s' >/dev/full 2>/dev/null", bw_bin(), good);
		st = system(cmd);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 74);
	}
}

/* enroll: 64 bad usage, 69 no agent to ask, 76 no such process; run refuses the
 * agent-only flag; a build root without its cgroup is a bad policy (78). */
static void test_cli_exitcodes__enroll(void **state)
{
	char sock[300], pol[300], pidtxt[16];

	bw_ws_path(&ws, "none/enroll.sock", sock, sizeof(sock));
	bw_ws_path(&ws, "roots.yaml", pol, sizeof(pol));
	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)getpid());
	expect((const char *const[]){ "enroll", NULL }, 64, "enroll needs --pid PID");
	expect((const char *const[]){ "enroll", "--pid", "0", NULL }, 64, "--pid needs a process id");
	expect((const char *const[]){ "enroll", "--pid", "12x", NULL }, 64, "--pid needs a process id");
	expect((const char *const[]){ "enroll", "--pid", pidtxt, "--socket", sock, NULL }, 69,
	       "cannot reach the agent");
	/* pid_max is at most 2^22: this one is no process */
	expect((const char *const[]){ "enroll", "--pid", "1073741823", "--socket", sock, NULL }, 76,
	       "cannot open pid 1073741823");
	expect((const char *const[]){ "run", "--enroll-socket", sock, "--", "true", NULL }, 64,
	       "--enroll-socket is for agent");
	assert_int_equal(bw_ws_write(&ws, "roots.yaml", "version: 1\nbuild_roots:\n  - exe: /bin/sh\n",
				     false),
			 0);
	expect((const char *const[]){ "policy", "check", pol, NULL }, 78,
	       "roots.yaml:3:5: error: build root '/bin/sh' needs a 'cgroup'");
}

static int setup(void **state)
{
	if (access(bw_bin(), X_OK) < 0) {
		fprintf(stderr, "%s: not built (make %s)\n", bw_bin(), bw_bin());
		return -1;
	}
	return bw_ws_create(&ws);
}

static int teardown(void **state)
{
	bw_ws_destroy(&ws);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_exitcodes__collector),
		cmocka_unit_test(test_cli_exitcodes__decode),
		cmocka_unit_test(test_cli_exitcodes__enroll),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
