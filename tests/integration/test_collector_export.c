// SPDX-License-Identifier: MIT
/* Issue 12, "Feeding the SIEM": `collector --export` against a real rsyslog (Debian's
 * rsyslogd, started here with a config of our own: imtcp on a free loopback port,
 * omfile into the workspace, no system logging, its own pid file and work dir; stopped
 * by pid) and into a jsonl directory. Events come from a hand-written agent (plain TCP,
 * --insecure), so no eBPF is needed.
 *
 * - a normal run: every event arrives exactly once, in order, in rsyslog and in the
 *   jsonl files (every line parses; the files rotate; none exceeds the size unless it
 *   holds one line);
 * - kill -9 of the collector mid-export, restart: nothing lost; rsyslog's repeats are
 *   only rows after the cursor the killed collector had persisted; jsonl repeats nothing;
 * - rsyslog stopped mid-run and started again: nothing lost, the failures counted and
 *   logged;
 * - syslog:tls:// to rsyslog's OpenSSL driver: refused (and logged) when the receiver's
 *   certificate is not from --export-tls-ca, every event once when it is. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/collector_fixture.h"
#include "lib/rsyslog_fixture.h"

struct ex {
	struct bw_ws ws;
	struct cf_collector col;
	char jsonl[PATH_MAX];
	struct rsf rs;
	struct cf_pki pki;
	struct cf_peer peer;
	char run_id[64];
	bool dumped;
};

static struct ex X;

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&X.ws, rel);
}

static void diag(void)
{
	char *t;

	if (X.dumped)
		return;
	X.dumped = true;
	t = cf_read_from(X.col.log, 0);
	printf("---- collector: %s\n---- its log (last 3000 bytes):\n%s\n", X.col.cmdline,
	       strlen(t) > 3000 ? t + strlen(t) - 3000 : t);
	free(t);
	t = cf_read_from(X.rs.log, 0);
	printf("---- rsyslogd's own output:\n%.2000s\n", t);
	free(t);
	fflush(stdout);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

/* ---- rsyslog (tests/lib/rsyslog_fixture.c) ----------------------------------- */

static void rs_start(void)
{
	char err[8192];

	if (!X.rs.port)
		snprintf(X.rs.dir, sizeof(X.rs.dir), "%s", wsp("rs"));
	CHECK(rsf_start(&X.rs, err, sizeof(err)) == 0, "%s", err);
}

static void rs_start_tls(void)
{
	char err[1024];

	CHECK(cf_pki_create(&X.pki, wsp("pki"), err, sizeof(err)) == 0, "certificates: %s", err);
	X.rs.tls_ca = X.pki.ca;
	X.rs.tls_cert = X.pki.srv_cert;
	X.rs.tls_key = X.pki.srv_key;
	rs_start();
}

static void rs_stop(void)
{
	rsf_stop(&X.rs);
}

/* ---- the agent -------------------------------------------------------------- */

static void peer_up(void)
{
	cf_peer_close(&X.peer);
	memset(&X.peer, 0, sizeof(X.peer));
	X.peer.fd = -1;
	CHECK(cf_peer_connect(&X.peer, X.col.port, NULL, NULL, NULL) == 0, "connect: %s", X.peer.err);
	CHECK(cf_peer_hello(&X.peer, "agent-x", "host-x", X.run_id, NULL) == 0, "hello: %s",
	      X.peer.err);
}

/* Sends events up to seq last (reconnecting if the collector went away) and waits
 * until the collector stored them. */
static void feed_to(uint64_t last)
{
	for (int tries = 0; tries < 5 && X.peer.next_seq <= last; tries++) {
		if (X.peer.fd < 0 || X.peer.closed)
			peer_up();
		while (X.peer.next_seq <= last) {
			size_t len;
			uint8_t *ev = cf_event_bytes(X.peer.next_seq, "host-x", X.run_id, "/usr/bin/cc",
						     100, &len);
			int rc = cf_peer_send_event(&X.peer, X.peer.next_seq, ev, len, true);

			free(ev);
			if (rc) {
				X.peer.closed = true;
				break;
			}
		}
	}
	CHECK(cf_db_wait_count(X.col.db, X.run_id, (long long)last, 60000) == (long long)last,
	      "the collector did not store %llu events", (unsigned long long)last);
}

/* ---- what arrived ----------------------------------------------------------- */

static struct rsf_ids rs_ids(void)
{
	return rsf_ids(&X.rs);
}

static struct rsf_ids rs_wait_all(long long n, unsigned timeout_ms)
{
	return rsf_wait_all(&X.rs, n, timeout_ms);
}

static long long cursor_of(const char *spec_file_part)
{
	char path[2 * PATH_MAX], *t;
	long long v = -1;

	snprintf(path, sizeof(path), "%s.export-%s.cursor", X.col.db, spec_file_part);
	t = cf_read_from(path, 0);
	if (!strncmp(t, "buildwarden-export-cursor 1 ", 28))
		v = atoll(t + 28);
	free(t);
	return v;
}

/* jsonl: every line of every file through python3's json; prints "files lines maxsize
 * multiline_files" and the exportIds, one a line, in file order. */
static struct rsf_ids jsonl_check(long long rotate, int *files)
{
	char cmd[PATH_MAX * 2], out[PATH_MAX];
	struct rsf_ids ids = { 0 };
	struct bw_result r;
	char *t;

	snprintf(out, sizeof(out), "%s", wsp("jsonl-check.out"));
	snprintf(cmd, sizeof(cmd),
		 "import json, os, sys\n"
		 "d = sys.argv[1]; lim = int(sys.argv[2])\n"
		 "names = sorted(n for n in os.listdir(d) if n.endswith('.jsonl'))\n"
		 "sys.stderr.write(' '.join('%%s:%%d' %% (n, os.path.getsize(os.path.join(d, n))) for n in names) + '\\n')\n"
		 "ids = []\n"
		 "for n in names:\n"
		 "    data = open(os.path.join(d, n), 'rb').read()\n"
		 "    assert not data or data.endswith(b'\\n'), n + ': ends without a newline'\n"
		 "    lines = data.split(b'\\n')[:-1]\n"
		 "    assert len(data) <= lim or len(lines) == 1, n + ': above the rotation size'\n"
		 "    for l in lines:\n"
		 "        o = json.loads(l)\n"
		 "        assert o['agent'] == 'agent-x' and 'receivedTime' in o and o['exec']['filename'].startswith('/usr/bin/cc'), l\n"
		 "        ids.append(o['exportId'])\n"
		 "print(len(names))\n"
		 "print('\\n'.join('id ' + i for i in ids))\n");
	bw_ws_write(&X.ws, "jsonl_check.py", cmd, false);
	{
		char lim[32];
		const char *argv[] = { "/usr/bin/python3", wsp("jsonl_check.py"), X.jsonl, lim, NULL };

		snprintf(lim, sizeof(lim), "%lld", rotate);
		memset(&r, 0, sizeof(r));
		CHECK(bw_spawn(argv, 60, 0, &r) == 0 && r.exit_code == 0,
		      "a jsonl file does not parse: %s", r.err ? r.err : "");
	}
	*files = atoi(r.out);
	t = r.out;
	rsf_ids_add_text(&ids, t, "id ");
	bw_result_free(&r);
	return ids;
}

/* ---- cases ------------------------------------------------------------------ */

static void collector_up(const char *settle)
{
	char err[1024];
	static char rsx[128], jx[PATH_MAX + 8];

	snprintf(rsx, sizeof(rsx), "syslog:tcp://127.0.0.1:%d", X.rs.port);
	snprintf(jx, sizeof(jx), "jsonl:%s", X.jsonl);
	X.col.extra[0] = "--export";
	X.col.extra[1] = rsx;
	X.col.extra[2] = "--export";
	X.col.extra[3] = jx;
	X.col.extra[4] = "--export-rotate";
	X.col.extra[5] = "65536";
	X.col.extra[6] = "--export-settle";
	X.col.extra[7] = settle;
	CHECK(cf_collector_start(&X.col, err, sizeof(err)) == 0, "collector: %s", err);
}

static char rs_cursor_name[128];

static int case_setup(void **state)
{
	memset(&X, 0, sizeof(X));
	X.peer.fd = -1;
	if (bw_case_setup(&X.ws))
		return -1;
	alarm(240);
	snprintf(X.col.db, sizeof(X.col.db), "%s", wsp("events.db"));
	snprintf(X.col.log, sizeof(X.col.log), "%s", wsp("collector.log"));
	snprintf(X.jsonl, sizeof(X.jsonl), "%s", wsp("jsonl"));
	snprintf(X.run_id, sizeof(X.run_id), "export-%d", (int)getpid());
	rs_start();
	snprintf(rs_cursor_name, sizeof(rs_cursor_name), "syslog_tcp___127.0.0.1_%d", X.rs.port);
	return 0;
}

static int case_teardown(void **state)
{
	cf_peer_close(&X.peer);
	if (X.col.pid > 0)
		cf_collector_stop(&X.col);
	rs_stop();
	cf_cleanup();
	bw_case_teardown();
	return 0;
}

static void expect_once_in_order(const struct rsf_ids *ids, long long n, const char *where)
{
	CHECK(ids->n == (size_t)n, "%s: %zu messages for %lld events", where, ids->n, n);
	for (size_t i = 0; i < ids->n; i++)
		CHECK(ids->v[i] == (long long)i + 1, "%s: message %zu is row %lld, not %zu", where, i,
		      ids->v[i], i + 1);
}

static void test_normal_run_exactly_once(void **state)
{
	const long long n = 2000;
	struct rsf_ids ids;
	int files;

	collector_up("1");
	feed_to(n);
	ids = rs_wait_all(n, 60000);
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	free(ids.v);
	ids = rs_ids(); /* after the stop: nothing more came */
	expect_once_in_order(&ids, n, "rsyslog");
	free(ids.v);
	/* a clean stop waits for the settle time: the cursor says everything */
	CHECK(cursor_of(rs_cursor_name) == n, "syslog cursor at %lld after a clean stop, not %lld",
	      cursor_of(rs_cursor_name), n);
	ids = jsonl_check(65536, &files);
	expect_once_in_order(&ids, n, "jsonl");
	CHECK(files >= 3, "2000 events of ~600 bytes in 64 KiB files made %d files", files);
	free(ids.v);
	{
		char *t = cf_read_from(X.rs.out, 0);

		/* RFC 5424 header and structured data */
		CHECK(strstr(t, "<110>1 ") && strstr(t, " host-x buildwarden - exec [buildwarden@32473 agent=\"agent-x\" host=\"host-x\" runId=\""),
		      "no RFC 5424 header as documented in: %.300s", t);
		free(t);
	}
	/* a restart repeats nothing */
	collector_up("1");
	feed_to(n + 10);
	ids = rs_wait_all(n + 10, 60000);
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	free(ids.v);
	ids = rs_ids();
	expect_once_in_order(&ids, n + 10, "rsyslog after a restart");
	free(ids.v);
	ids = jsonl_check(65536, &files);
	expect_once_in_order(&ids, n + 10, "jsonl after a restart");
	free(ids.v);
}

static void test_kill9_mid_export(void **state)
{
	const long long n = 20000;
	long long cur, got_at_kill = 0;
	unsigned char *seen = calloc((size_t)n + 1, 1);
	unsigned *count = calloc((size_t)n + 1, sizeof(unsigned));
	struct rsf_ids ids;
	int files;

	/* a long settle: the cursor lags what rsyslog got, so the kill lands in that gap */
	collector_up("3");
	feed_to(2000);
	for (long long end = cf_now_ms() + 60000; cf_now_ms() < end && cursor_of(rs_cursor_name) <= 0;)
		cf_sleep_ms(50);
	CHECK(cursor_of(rs_cursor_name) > 0, "no syslog cursor saved within 60 s");
	feed_to(n / 2);
	for (long long end = cf_now_ms() + 60000; cf_now_ms() < end; cf_sleep_ms(20)) {
		ids = rs_ids();
		got_at_kill = (long long)ids.n;
		free(ids.v);
		if (got_at_kill > cursor_of(rs_cursor_name))
			break;
	}
	cf_collector_kill9(&X.col);
	cur = cursor_of(rs_cursor_name);
	printf("     killed with %lld messages in rsyslog, cursor at %lld\n", got_at_kill, cur);
	CHECK(cur > 0 && got_at_kill > cur, "no kill between the cursor (%lld) and what arrived (%lld)",
	      cur, got_at_kill);
	collector_up("3");
	X.peer.closed = true;
	feed_to(n);
	ids = rs_wait_all(n, 120000);
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	free(ids.v);
	ids = rs_ids();
	CHECK(rsf_ids_distinct_upto(&ids, n, seen) == (size_t)n, "lost: %zu of %lld rows arrived",
	      rsf_ids_distinct_upto(&ids, n, seen), n);
	for (size_t i = 0; i < ids.n; i++)
		count[ids.v[i]]++;
	{
		long long repeats = 0;

		for (long long id = 1; id <= n; id++) {
			CHECK(count[id] == 1 || (id > cur && count[id] == 2),
			      "row %lld arrived %u times (cursor at the kill: %lld)", id, count[id], cur);
			repeats += count[id] - 1;
		}
		printf("     %lld repeats, all after the cursor\n", repeats);
	}
	free(ids.v);
	/* jsonl knows what it wrote from its own last line: no repeat at all */
	ids = jsonl_check(65536, &files);
	expect_once_in_order(&ids, n, "jsonl after kill -9");
	free(ids.v);
	free(seen);
	free(count);
}

static void test_rsyslog_restart(void **state)
{
	const long long n = 3000;
	unsigned char *seen = calloc((size_t)n + 1, 1);
	struct rsf_ids ids;
	int files;

	collector_up("1");
	feed_to(1000);
	for (long long end = cf_now_ms() + 60000; cf_now_ms() < end; cf_sleep_ms(20)) {
		ids = rs_ids();
		free(ids.v);
		if (ids.n)
			break;
	}
	rs_stop();
	feed_to(2000); /* stored while the receiver is down */
	cf_sleep_ms(1500);
	rs_start();
	feed_to(n);
	ids = rs_wait_all(n, 120000);
	CHECK(rsf_ids_distinct_upto(&ids, n, seen) == (size_t)n, "lost: %zu of %lld rows arrived",
	      rsf_ids_distinct_upto(&ids, n, seen), n);
	printf("     %zu messages for %lld rows\n", ids.n, n);
	free(ids.v);
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	CHECK(cf_log_has_line(X.col.log, 0, (const char *const[]){ "export syslog:tcp://", "retrying", NULL },
			      NULL, NULL, 0),
	      "the collector did not log the receiver being down");
	CHECK(cf_log_has_line(X.col.log, 0, (const char *const[]){ "delivering again", NULL }, NULL, NULL, 0),
	      "the collector did not log the recovery");
	CHECK(cf_log_has_line(X.col.log, 0, (const char *const[]){ "stopped:", "failures", NULL },
			      (const char *const[]){ " 1 failures", " 2 failures", " 3 failures", " 4 failures", " 5 failures", " 6 failures", " 7 failures", " 8 failures", " 9 failures", "0 failures,", NULL }, NULL, 0),
	      "no failure count in the stop line");
	ids = jsonl_check(65536, &files);
	expect_once_in_order(&ids, n, "jsonl");
	free(ids.v);
	free(seen);
}

/* syslog:tls:// to rsyslog's OpenSSL driver: a receiver whose certificate our CA did
 * not sign gets nothing (and the failure is logged), the right one everything, once. */
static void test_tls(void **state)
{
	const long long n = 500;
	char err[1024], spec[128];
	struct rsf_ids ids;

	rs_stop();
	X.rs.port = 0;
	rs_start_tls();
	snprintf(spec, sizeof(spec), "syslog:tls://127.0.0.1:%d", X.rs.port);
	X.col.extra[0] = "--export";
	X.col.extra[1] = spec;
	X.col.extra[2] = "--export-tls-ca";
	X.col.extra[3] = X.pki.other_ca;
	X.col.extra[4] = NULL;
	CHECK(cf_collector_start(&X.col, err, sizeof(err)) == 0, "collector: %s", err);
	feed_to(n);
	for (long long end = cf_now_ms() + 30000; cf_now_ms() < end &&
	     !cf_log_has_line(X.col.log, 0, (const char *const[]){ "TLS handshake", "failed", NULL }, NULL, NULL, 0);)
		cf_sleep_ms(100);
	CHECK(cf_log_has_line(X.col.log, 0, (const char *const[]){ "TLS handshake", "failed", NULL }, NULL, NULL, 0),
	      "no TLS failure logged against a receiver of another CA");
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	ids = rs_ids();
	CHECK(ids.n == 0, "%zu messages reached a receiver we could not verify", ids.n);
	free(ids.v);
	X.col.extra[3] = X.pki.ca;
	CHECK(cf_collector_start(&X.col, err, sizeof(err)) == 0, "collector: %s", err);
	X.peer.closed = true;
	feed_to(n);
	ids = rs_wait_all(n, 60000);
	CHECK(cf_collector_stop(&X.col) == 0, "collector did not stop cleanly");
	free(ids.v);
	ids = rs_ids();
	expect_once_in_order(&ids, n, "rsyslog over TLS");
	free(ids.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_normal_run_exactly_once, case_setup, case_teardown),
		cmocka_unit_test_setup_teardown(test_kill9_mid_export, case_setup, case_teardown),
		cmocka_unit_test_setup_teardown(test_rsyslog_restart, case_setup, case_teardown),
		cmocka_unit_test_setup_teardown(test_tls, case_setup, case_teardown),
	};

	if (!rsf_available()) {
		printf("test_collector_export: SKIP: no %s (make deps installs rsyslog)\n", RSF_RSYSLOGD);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
