// SPDX-License-Identifier: MIT
/* Fault tests of the collector transport (issue 3, "Fault tests"): real agents
 * (`buildwarden run --collector ...`) against a real collector child, through a proxy
 * we control where the network is cut. Every test ends by comparing every event the
 * agent recorded in its local events file with what the collector stored for that
 * run: same count, same seqs, no duplicates, same content (tests/lib/collector_fixture.c).
 *
 * Builds are shell scripts written to the workspace; they write files into a
 * protected tree (two events per new file: cheap and fast) and exec /bin/true, and
 * coordinate with the test through marker files outside the tree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bwtest.h"
#include "lib/collector_fixture.h"

struct fx {
	struct bw_ws ws;
	struct cf_pki pki;
	struct cf_collector col;
	struct cf_proxy *proxy;
	char policy[PATH_MAX];
	char spool[PATH_MAX];
	char run_log[PATH_MAX];
	char cmdline[4096];
	char diag_extra[2048];
	bool dumped;
};

static struct fx F;

/* Flags every agent run gets besides the collector ones (none by default; e.g.
 * BW_TEST_AGENT_FLAGS="--drain-timeout 5" while the lead settles names). */
static void agent_extra(const char **argv, size_t *n, size_t max)
{
	static char buf[512];
	char *save = NULL, *tok;
	const char *env = getenv("BW_TEST_AGENT_FLAGS");

	if (!env || !*env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (tok = strtok_r(buf, " ", &save); tok && *n < max; tok = strtok_r(NULL, " ", &save))
		argv[(*n)++] = tok;
}

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&F.ws, rel);
}

static void diag(void)
{
	char *t;

	if (F.dumped)
		return;
	F.dumped = true;
	printf("---- agent command: %s\n", F.cmdline);
	t = cf_read_from(F.run_log, 0);
	printf("---- agent output (%s, last 4000 bytes):\n%s\n", F.run_log,
	       strlen(t) > 4000 ? t + strlen(t) - 4000 : t);
	free(t);
	if (F.col.log[0]) {
		t = cf_read_from(F.col.log, 0);
		printf("---- collector: %s\n---- collector log (last 3000 bytes):\n%s\n", F.col.cmdline,
		       strlen(t) > 3000 ? t + strlen(t) - 3000 : t);
		free(t);
	}
	if (F.diag_extra[0])
		printf("---- %s\n", F.diag_extra);
	fflush(stdout);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	char err[512];

	cf_cleanup();
	memset(&F, 0, sizeof(F));
	if (bw_case_setup(&F.ws))
		return -1;
	if (cf_pki_create(&F.pki, wsp("pki"), err, sizeof(err))) {
		printf("certificates: %s\n", err);
		return -1;
	}
	bw_ws_mkdir(&F.ws, "out");
	bw_ws_mkdir(&F.ws, "spool");
	snprintf(F.policy, sizeof(F.policy), "%s", wsp("policy.yaml"));
	snprintf(F.spool, sizeof(F.spool), "%s", wsp("spool"));
	snprintf(F.run_log, sizeof(F.run_log), "%s", wsp("agent.log"));
	if (bw_write_policy(&F.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: %s\n", wsp("out")))
		return -1;
	snprintf(F.col.db, sizeof(F.col.db), "%s", wsp("events.db"));
	snprintf(F.col.log, sizeof(F.col.log), "%s", wsp("collector.log"));
	F.col.pki = &F.pki;
	*state = &F;
	return 0;
}

static int teardown(void **state)
{
	alarm(0);
	cf_cleanup();
	bw_cleanup_all();
	return 0;
}

/* The build: a shell script with helpers; body uses them.
 *   burst N  - N new files in the protected tree (CREATE + WRITE each)
 *   execs N  - N execs of /bin/true
 *   mark X   - creates marker X (a builtin: no event)
 *   gate X   - waits up to 20 s for marker X (made by the test) */
static void write_build(const char *name, const char *body)
{
	char script[8192];

	snprintf(script, sizeof(script),
		 "W=%s\n"
		 "i=${I0:-0}\n"
		 "burst() { n=$1; while [ $n -gt 0 ]; do i=$((i+1)); echo x > $W/out/f$i; n=$((n-1)); done; }\n"
		 "execs() { n=$1; while [ $n -gt 0 ]; do /bin/true; n=$((n-1)); done; }\n"
		 "mark() { : > $W/$1; }\n"
		 "gate() { n=0; while [ ! -e $W/$1 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; }\n"
		 "%s\n",
		 F.ws.path, body);
	CHECK(bw_ws_write(&F.ws, name, script, false) == 0, "write %s", name);
}

/* `buildwarden run --policy P --events EVENTS --collector 127.0.0.1:PORT --spool SPOOL
 *  --tls-cert agent-N --tls-key ... --tls-ca CA [extra] -- /bin/sh SCRIPT` in the
 * background; output appended to F.run_log. */
static pid_t start_run(int port, const char *events, const char *spool, int agent,
		       const char *script, const char *const extra[])
{
	const char *argv[64];
	char addr[64];
	size_t n = 0, off = 0;
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	argv[n++] = bw_bin();
	argv[n++] = "run";
	argv[n++] = "--policy";
	argv[n++] = F.policy;
	argv[n++] = "--events";
	argv[n++] = events;
	argv[n++] = "--collector";
	argv[n++] = addr;
	argv[n++] = "--spool";
	argv[n++] = spool;
	argv[n++] = "--tls-cert";
	argv[n++] = F.pki.agent_cert[agent];
	argv[n++] = "--tls-key";
	argv[n++] = F.pki.agent_key[agent];
	argv[n++] = "--tls-ca";
	argv[n++] = F.pki.ca;
	agent_extra(argv, &n, 50);
	for (size_t i = 0; extra && extra[i] && n < 58; i++)
		argv[n++] = extra[i];
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = script;
	argv[n] = NULL;
	F.cmdline[0] = '\0';
	for (size_t i = 0; argv[i] && off < sizeof(F.cmdline); i++)
		off += (size_t)snprintf(F.cmdline + off, sizeof(F.cmdline) - off, "%s%s", i ? " " : "",
					argv[i]);
	{
		FILE *f = fopen(F.run_log, "a");

		if (f) {
			fprintf(f, "==== %s\n", F.cmdline);
			fclose(f);
		}
	}
	pid = cf_spawn_bg(argv, F.run_log);
	CHECK(pid > 0, "cannot start %s", bw_bin());
	return pid;
}

/* Waits for the run; it must exit `want`: 0 when the build succeeds and nothing was
 * lost, 77 when events were lost on the way (a full spool): every loss fails the run. */
static void finish_run_code(pid_t pid, unsigned timeout_ms, const char *what, int want)
{
	int code = -1;
	long long t0 = cf_now_ms();

	CHECK(cf_wait_exit(pid, timeout_ms, &code) == 1,
	      "%s: `buildwarden run` still running %u s after the build was let go", what,
	      timeout_ms / 1000);
	printf("     %s: run exited %d after %lld ms more\n", what, code, cf_now_ms() - t0);
	CHECK(code == want, "%s: `buildwarden run` exited %d, expected %d", what, code, want);
}

static void finish_run(pid_t pid, unsigned timeout_ms, const char *what)
{
	finish_run_code(pid, timeout_ms, what, 0);
}

/* The build writes marker done as its last step; the run must return within its
 * --drain-timeout (plus slack for the sensor's own end) of that, delivered or not. */
static long long wait_exit_after_done(pid_t pid, const char *done, unsigned drain_s, const char *what)
{
	long long t_done, waited;
	int code = -1;

	CHECK(cf_wait_file(done, 30000), "%s: the build did not finish", what);
	t_done = cf_now_ms();
	CHECK(cf_wait_exit(pid, (drain_s * 3 + 10) * 1000, &code) == 1,
	      "%s: `buildwarden run` still running %u s after its build ended (--drain-timeout %u)", what,
	      drain_s * 3 + 10, drain_s);
	waited = cf_now_ms() - t_done;
	printf("     %s: run exited %d, %lld ms after its build ended (--drain-timeout %u)\n", what, code,
	       waited, drain_s);
	CHECK(code == 0, "%s: `buildwarden run` exited %d, expected 0 (the build succeeds)", what, code);
	return waited;
}

/* Checked last, so that a slow return does not hide what was delivered. */
static void check_drain_bound(long long waited, unsigned drain_s, const char *what)
{
	CHECK(waited <= (long long)drain_s * 1000 + 1500,
	      "%s: `buildwarden run --drain-timeout %u` returned %lld ms after the build ended: it waited "
	      "longer than its drain timeout for the collector", what, drain_s, waited);
}

static void read_local(const char *events, struct bw_events *evs)
{
	CHECK(bw_events_read(events, evs) == 0, "local events file %s: %s", events, evs->err);
	CHECK(evs->n > 0, "local events file %s is empty", events);
}

static void start_collector(void)
{
	char err[1024];

	CHECK(cf_collector_start(&F.col, err, sizeof(err)) == 0, "collector: %s", err);
}

/* The stored events of the run of local equal the local ones (skips allowed only when
 * given), under agent-<agent>. */
static void expect_delivered(const struct bw_events *local, int agent, const struct cf_findings *skips,
			     const char *what)
{
	char report[4096], name[32];
	bool ok;

	snprintf(name, sizeof(name), "agent-%d", agent);
	ok = cf_compare(local, F.col.db, name, skips, report, sizeof(report));
	printf("     %s: %s\n", what, report);
	CHECK(ok, "%s: what the collector stored is not what the agent recorded: %s", what, report);
}

/* No integrity finding of any kind for the run. */
static void expect_no_findings(const char *run_id, const char *what)
{
	struct cf_findings f;

	CHECK(cf_query_findings(F.col.db, run_id, &f) == 0, "query --findings: %s", f.err);
	if (f.n) {
		snprintf(F.diag_extra, sizeof(F.diag_extra), "findings of run %s:\n%.1800s", run_id,
			 f.f[0].line);
		cf_findings_free(&f);
		CHECK(false, "%s: query --findings lists %s for run %s: the run is not complete", what,
		      F.diag_extra, run_id);
	}
	cf_findings_free(&f);
}

/* ---- 1. happy path -------------------------------------------------------- */

static void test_happy_path_tls(void **state)
{
	struct bw_events evs;
	pid_t pid;

	alarm(60);
	start_collector();
	write_build("build.sh", "burst 150\nexecs 200\n");
	pid = start_run(F.col.port, wsp("events.pb"), F.spool, 1, wsp("build.sh"), NULL);
	finish_run(pid, 40000, "happy path");
	read_local(wsp("events.pb"), &evs);
	CHECK(evs.n >= 500, "only %zu local events; the build makes 500+", evs.n);
	/* The run waited for the final ack before it returned: all stored already. */
	expect_delivered(&evs, 1, NULL, "happy path");
	expect_no_findings(cf_run_id(&evs), "happy path");
	bw_events_free(&evs);
}

/* The same run pointed at a port where nothing listens must not look delivered: the
 * comparison can fail. */
static void test_self_check_wrong_port(void **state)
{
	struct bw_events evs;
	char report[2048];
	pid_t pid;
	int dead = cf_free_port();

	alarm(60);
	start_collector();
	write_build("build.sh", "burst 20\n");
	pid = start_run(dead, wsp("events.pb"), F.spool, 1, wsp("build.sh"),
			(const char *const[]){ "--drain-timeout", "1", NULL });
	finish_run(pid, 40000, "wrong port");
	read_local(wsp("events.pb"), &evs);
	CHECK(!cf_compare(&evs, F.col.db, "agent-1", NULL, report, sizeof(report)),
	      "the comparison passed for a run that was sent to a dead port: %s", report);
	printf("     self-check: comparison fails as it should: %.300s\n", report);
	bw_events_free(&evs);
}

/* ---- 2. kill -9 the collector mid-stream ---------------------------------- */

static void test_collector_kill9_restart(void **state)
{
	struct bw_events evs;
	long long at_kill;
	pid_t pid;
	int port;

	alarm(90);
	start_collector();
	port = F.col.port;
	write_build("build.sh",
		    "burst 300\nexecs 20\nmark phase1\ngate go\n"
		    "k=0; while [ $k -lt 150 ]; do /bin/true; burst 2; k=$((k+1)); done\n"
		    "mark done\n");
	pid = start_run(port, wsp("events.pb"), F.spool, 1, wsp("build.sh"), NULL);
	CHECK(cf_wait_file(wsp("phase1"), 30000), "the build did not reach phase 1");
	/* mid-stream: some of this run stored, more coming */
	{
		struct bw_events part;
		const char *rid;

		CHECK(bw_events_read(wsp("events.pb"), &part) == 0 || part.n > 0,
		      "cannot read the partial events file");
		rid = cf_run_id(&part);
		at_kill = cf_db_wait_count(F.col.db, rid, 200, 10000);
		bw_events_free(&part);
	}
	CHECK(at_kill >= 200, "the collector stored only %lld events of phase 1 within 10 s", at_kill);
	cf_collector_kill9(&F.col);
	CHECK(bw_ws_write(&F.ws, "go", "", false) == 0, "write go");
	cf_sleep_ms(800);
	start_collector(); /* same port, same database */
	CHECK(F.col.port == port, "restarted on port %d, not %d", F.col.port, port);
	finish_run(pid, 60000, "kill -9");
	CHECK(cf_exists(wsp("done")), "the build did not finish");
	read_local(wsp("events.pb"), &evs);
	printf("     kill -9 at %lld stored events of %zu\n", at_kill, evs.n);
	CHECK((size_t)at_kill < evs.n, "the kill came after everything was stored: not mid-stream");
	expect_delivered(&evs, 1, NULL, "kill -9 and restart");
	expect_no_findings(cf_run_id(&evs), "kill -9 and restart");
	bw_events_free(&evs);
}

/* ---- 3. network cut ------------------------------------------------------- */

/* Cut (connections closed, new ones held and never forwarded) after phase 1; the
 * build's phase 2 must finish while the network is still cut; restore; everything
 * arrives once, before the run returns. */
static void test_network_cut_build_does_not_wait(void **state)
{
	struct bw_events evs, part;
	long long at_cut, t_cut, t_done, early, late;
	bool early_exit;
	pid_t pid;
	int code;

	alarm(90);
	start_collector();
	F.proxy = cf_proxy_start(F.col.port);
	CHECK(F.proxy, "cannot start the proxy");
	write_build("build.sh",
		    "burst 300\nexecs 20\nmark phase1\ngate go\n"
		    "k=0; while [ $k -lt 60 ]; do /bin/true; burst 3; k=$((k+1)); done\n"
		    "mark done\n");
	pid = start_run(cf_proxy_port(F.proxy), wsp("events.pb"), F.spool, 1, wsp("build.sh"), NULL);
	CHECK(cf_wait_file(wsp("phase1"), 30000), "the build did not reach phase 1");
	bw_events_read(wsp("events.pb"), &part);
	at_cut = cf_db_wait_count(F.col.db, cf_run_id(&part), 200, 10000);
	CHECK(at_cut >= 200, "only %lld events stored through the proxy within 10 s", at_cut);
	cf_proxy_cut(F.proxy, CF_CUT_CLOSE);
	t_cut = cf_now_ms();
	CHECK(bw_ws_write(&F.ws, "go", "", false) == 0, "write go");
	/* what was already inside the collector's socket buffers still lands; after that,
	 * nothing may get through a cut network */
	cf_sleep_ms(700);
	early = cf_db_count(F.col.db, cf_run_id(&part));
	/* the build must not wait for the network: phase 2 ends while the cut lasts */
	CHECK(cf_wait_file(wsp("done"), 15000),
	      "the build did not finish within 15 s of a network cut: it waits on the network");
	t_done = cf_now_ms();
	printf("     phase 2 of the build ran %lld ms under the cut\n", t_done - t_cut);
	cf_sleep_ms(1500);
	late = cf_db_count(F.col.db, cf_run_id(&part));
	bw_events_free(&part);
	printf("     stored: %lld before the cut, %lld 0.7 s into it, %lld after %lld ms of it\n", at_cut,
	       early, late, cf_now_ms() - t_cut);
	CHECK(late == early, "events reached the collector through a cut network (%lld -> %lld): the "
	      "proxy does not cut", early, late);
	early_exit = cf_wait_exit(pid, 0, &code) == 1;
	if (early_exit)
		printf("     run exited (%d) before the network came back\n", code);
	cf_proxy_restore(F.proxy);
	if (early_exit)
		CHECK(code == 0, "network cut: `buildwarden run` exited %d, expected 0", code);
	else
		finish_run(pid, 45000, "network cut");
	read_local(wsp("events.pb"), &evs);
	CHECK(late < (long long)evs.n, "all %zu events were stored before the network came back: "
	      "the cut did not cut", evs.n);
	CHECK(cf_proxy_accepted(F.proxy) >= 2, "the agent never reconnected (%u connections)",
	      cf_proxy_accepted(F.proxy));
	/* The run waits for the final ack (its drain) once the network is back. If it
	 * returned before, the next agent start delivers: not accepted here, where the
	 * network came back well within the run. */
	expect_delivered(&evs, 1, NULL, "network cut");
	expect_no_findings(cf_run_id(&evs), "network cut");
	bw_events_free(&evs);
}

/* The network stays cut (a silent one: connections neither forward nor close) until
 * the run gives up waiting for its final ack; the run must return on its own, with
 * the build's exit code; the next agent start with the same spool delivers the rest. */
static void test_network_cut_until_exit_next_start_delivers(void **state)
{
	struct bw_events evs, evs2, part;
	long long at_cut, t0, waited;
	pid_t pid;

	alarm(120);
	start_collector();
	F.proxy = cf_proxy_start(F.col.port);
	CHECK(F.proxy, "cannot start the proxy");
	write_build("build.sh", "burst 200\nmark phase1\ngate go\nburst 200\nexecs 20\nmark done\n");
	pid = start_run(cf_proxy_port(F.proxy), wsp("events.pb"), F.spool, 1, wsp("build.sh"),
			(const char *const[]){ "--drain-timeout", "3", NULL });
	CHECK(cf_wait_file(wsp("phase1"), 30000), "the build did not reach phase 1");
	bw_events_read(wsp("events.pb"), &part);
	at_cut = cf_db_wait_count(F.col.db, cf_run_id(&part), 100, 10000);
	bw_events_free(&part);
	CHECK(at_cut >= 100, "only %lld events stored through the proxy within 10 s", at_cut);
	cf_proxy_cut(F.proxy, CF_CUT_STALL);
	t0 = cf_now_ms();
	CHECK(bw_ws_write(&F.ws, "go", "", false) == 0, "write go");
	/* the run gives up on the final ack by itself (its drain timeout) */
	waited = wait_exit_after_done(pid, wsp("done"), 3, "silent cut");
	printf("     run returned %lld ms after the cut\n", cf_now_ms() - t0);
	read_local(wsp("events.pb"), &evs);
	{
		long long stored = cf_db_count(F.col.db, cf_run_id(&evs));

		printf("     stored when the run returned: %lld of %zu\n", stored, evs.n);
		CHECK(stored < (long long)evs.n,
		      "everything was stored through a cut network: the cut did not cut");
	}
	cf_proxy_restore(F.proxy);
	write_build("build2.sh", "I0=100000\nburst 5\n");
	pid = start_run(cf_proxy_port(F.proxy), wsp("events2.pb"), F.spool, 1, wsp("build2.sh"), NULL);
	finish_run(pid, 40000, "next agent start");
	/* the leftover run is uploaded by the next start: give its sender a moment */
	cf_db_wait_count(F.col.db, cf_run_id(&evs), (long long)evs.n, 10000);
	expect_delivered(&evs, 1, NULL, "cut run, delivered by the next start");
	expect_no_findings(cf_run_id(&evs), "cut run, delivered by the next start");
	read_local(wsp("events2.pb"), &evs2);
	expect_delivered(&evs2, 1, NULL, "the next start's own run");
	bw_events_free(&evs);
	bw_events_free(&evs2);
	check_drain_bound(waited, 3, "silent cut");
}

/* ---- 4. agent restart with a non-empty spool ------------------------------ */

static void test_agent_restart_nonempty_spool(void **state)
{
	struct bw_events evs1, evs2;
	long long t0, waited;
	pid_t pid;

	alarm(120);
	F.col.port = cf_free_port(); /* nothing listens there yet */
	write_build("build1.sh", "burst 200\nexecs 30\nmark done\n");
	t0 = cf_now_ms();
	pid = start_run(F.col.port, wsp("events1.pb"), F.spool, 1, wsp("build1.sh"),
			(const char *const[]){ "--drain-timeout", "3", NULL });
	waited = wait_exit_after_done(pid, wsp("done"), 3, "collector down");
	printf("     run with the collector down took %lld ms\n", cf_now_ms() - t0);
	read_local(wsp("events1.pb"), &evs1);
	CHECK(cf_db_count(F.col.db, cf_run_id(&evs1)) <= 0, "events stored with no collector running");
	start_collector();
	write_build("build2.sh", "I0=100000\nburst 10\nexecs 5\n");
	pid = start_run(F.col.port, wsp("events2.pb"), F.spool, 1, wsp("build2.sh"), NULL);
	finish_run(pid, 40000, "second run, same spool");
	cf_db_wait_count(F.col.db, cf_run_id(&evs1), (long long)evs1.n, 10000);
	expect_delivered(&evs1, 1, NULL, "first run (spooled while the collector was down)");
	expect_no_findings(cf_run_id(&evs1), "first run");
	read_local(wsp("events2.pb"), &evs2);
	CHECK(strcmp(cf_run_id(&evs1), cf_run_id(&evs2)), "both runs have run id %s", cf_run_id(&evs1));
	expect_delivered(&evs2, 1, NULL, "second run");
	expect_no_findings(cf_run_id(&evs2), "second run");
	bw_events_free(&evs1);
	bw_events_free(&evs2);
	check_drain_bound(waited, 3, "collector down");
}

/* The agent itself is killed (-9) mid-run with the collector down: what it spooled is
 * delivered by the next start, as a gap-free prefix of the run, and the collector says
 * the run has no end. */
static void test_agent_kill9_spool_delivered(void **state)
{
	struct bw_events evs1;
	struct cf_stored s;
	struct cf_findings f;
	char report[4096];
	pid_t pid;

	alarm(120);
	F.col.port = cf_free_port();
	write_build("build1.sh", "burst 300\nmark phase1\ngate never\n");
	pid = start_run(F.col.port, wsp("events1.pb"), F.spool, 1, wsp("build1.sh"), NULL);
	CHECK(cf_wait_file(wsp("phase1"), 30000), "the build did not reach phase 1");
	cf_sleep_ms(500); /* the agent reads what phase 1 did */
	cf_kill9(pid);
	start_collector();
	write_build("build2.sh", "I0=100000\nburst 5\n");
	pid = start_run(F.col.port, wsp("events2.pb"), F.spool, 1, wsp("build2.sh"), NULL);
	finish_run(pid, 40000, "next start after kill -9");
	bw_events_read(wsp("events1.pb"), &evs1); /* may end in a torn frame */
	CHECK(evs1.n >= 300, "the killed run recorded only %zu events locally", evs1.n);
	cf_db_wait_count(F.col.db, cf_run_id(&evs1), (long long)evs1.n, 10000);
	CHECK(cf_query_run(F.col.db, cf_run_id(&evs1), &s) == 0, "query: %s", s.err);
	printf("     killed run: %zu local events, %zu stored\n", evs1.n, s.n);
	for (size_t i = 0; i < s.n; i++)
		CHECK(s.seq[i] == i + 1, "stored seqs of the killed run are not 1..%zu: #%zu is %llu", s.n,
		      i, (unsigned long long)s.seq[i]);
	/* Every event the agent had handed on before it died is in the spool: the local
	 * file and the spool are written for each event, so at most the last few differ. */
	CHECK(s.n + 2 >= evs1.n, "only %zu of the %zu locally recorded events reached the collector",
	      s.n, evs1.n);
	cf_stored_free(&s);
	/* those stored must be the local ones */
	if (evs1.n) {
		struct bw_events pre = evs1;

		/* compare the common prefix only */
		pre.n = evs1.n;
		{
			struct cf_stored s2;

			cf_query_run(F.col.db, cf_run_id(&evs1), &s2);
			if (s2.n < pre.n)
				pre.n = s2.n;
			cf_stored_free(&s2);
		}
		CHECK(cf_compare(&pre, F.col.db, "agent-1", NULL, report, sizeof(report)) ||
			      strstr(report, "NOT RECORDED LOCALLY"),
		      "killed run: %s", report);
		CHECK(!strstr(report, "DUPLICATED") && !strstr(report, "differ"), "killed run: %s", report);
	}
	CHECK(cf_query_findings(F.col.db, cf_run_id(&evs1), &f) == 0, "query --findings: %s", f.err);
	CHECK(cf_findings_count(&f, "no_run_end") == 1,
	      "the killed run has no runEnd, but query --findings does not say so: %s", f.raw);
	cf_findings_free(&f);
	bw_events_free(&evs1);
}

/* ---- 5. full spool on a 1 MiB tmpfs --------------------------------------- */

static void test_spool_disk_full(void **state)
{
	struct bw_events evs, part;
	struct cf_findings f;
	uint64_t skipped = 0, spool_full = 0, after_stats = 0, phase2 = 0;
	size_t lost_late = 0;
	long long free_b, free_b2, last = -1, now;
	char hello[160];
	pid_t pid;

	alarm(120);
	CHECK(bw_ws_mkdir(&F.ws, "spoolfs") == 0, "mkdir spoolfs");
	snprintf(F.spool, sizeof(F.spool), "%s", wsp("spoolfs"));
	CHECK(cf_tmpfs_mount(F.spool, 1u << 20) == 0, "mount a 1 MiB tmpfs on %s: %s", F.spool,
	      strerror(errno));
	F.col.port = cf_free_port(); /* the collector is down while the spool fills */
	write_build("build.sh",
		    "burst 2500\nmark phase1\ngate go\n"
		    "k=0; while [ $k -lt 20 ]; do burst 10; /bin/true; sleep 0.1; k=$((k+1)); done\n"
		    "mark done\n");
	pid = start_run(F.col.port, wsp("events.pb"), F.spool, 1, wsp("build.sh"), NULL);
	CHECK(cf_wait_file(wsp("phase1"), 40000), "the build did not reach phase 1");
	cf_sleep_ms(1000);
	free_b = cf_fs_free(F.spool);
	printf("     spool tmpfs free after phase 1: %lld bytes\n", free_b);
	CHECK(free_b >= 0 && free_b < 128 * 1024,
	      "phase 1 (5000 events) did not fill the 1 MiB spool: %lld bytes free", free_b);
	start_collector();
	/* let the agent reconnect (its backoff) and upload what it spooled, so that the
	 * spool has room again before phase 2 */
	bw_events_read(wsp("events.pb"), &part);
	snprintf(hello, sizeof(hello), "agent-1/%s: hello", cf_run_id(&part));
	for (long long end = cf_now_ms() + 40000; cf_now_ms() < end;) {
		if (cf_log_has_line(F.col.log, 0, (const char *const[]){ hello, NULL }, NULL, NULL, 0))
			break;
		cf_sleep_ms(100);
	}
	CHECK(cf_log_has_line(F.col.log, 0, (const char *const[]){ hello, NULL }, NULL, NULL, 0),
	      "the agent did not reconnect within 40 s of the collector's start");
	for (long long end = cf_now_ms() + 15000; cf_now_ms() < end; last = now) {
		now = cf_db_count(F.col.db, cf_run_id(&part));
		if (now == last && now > 0)
			break;
		cf_sleep_ms(700);
	}
	free_b2 = cf_fs_free(F.spool);
	printf("     uploaded before phase 2: %lld; spool free now %lld bytes\n", last, free_b2);
	bw_events_free(&part);
	CHECK(bw_ws_write(&F.ws, "go", "", false) == 0, "write go");
	/* the events the full spool could not keep are a loss: the run fails for it */
	finish_run_code(pid, 60000, "full spool", 77);
	{
		char *log = bw_read_file(F.run_log, NULL);

		CHECK(log && strstr(log, "run incomplete:") && strstr(log, "spool"),
		      "full spool: the summary does not say the run is incomplete for the spool");
		free(log);
	}
	CHECK(cf_exists(wsp("done")), "the build did not finish");
	read_local(wsp("events.pb"), &evs);

	/* not silent: the stats and the summary say how many were dropped */
	for (size_t i = 0; i < evs.n; i++) {
		if (evs.ev[i]->body_case == BUILDWARDEN__V1__EVENT__BODY_STATS) {
			spool_full = evs.ev[i]->stats->spool_full;
			after_stats = 1; /* itself: counted in the next one, if any */
		} else {
			after_stats++;
		}
		if (!phase2 && evs.ev[i]->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE &&
		    evs.ev[i]->file->path && strstr(evs.ev[i]->file->path, "/out/f2501"))
			phase2 = evs.ev[i]->seq;
	}
	printf("     stats.spoolFull (last stats event) = %llu; phase 2 starts at seq %llu of %zu\n",
	       (unsigned long long)spool_full, (unsigned long long)phase2, evs.n);
	CHECK(spool_full > 0, "the spool filled up but stats.spoolFull is 0");
	CHECK(cf_log_has_line(F.run_log, 0, (const char *const[]){ "spool", NULL },
			      (const char *const[]){ "full", "drop", NULL }, NULL, 0),
	      "the run summary does not report the spool-full drops");

	/* the collector knows what was dropped */
	CHECK(cf_query_findings(F.col.db, cf_run_id(&evs), &f) == 0, "query --findings: %s", f.err);
	printf("     findings:\n%.3000s", f.raw);
	CHECK(cf_findings_count(&f, "skip") >= 1, "no skip finding for the dropped events: %.500s", f.raw);
	for (size_t i = 0; i < f.n; i++) {
		if (strcmp(f.f[i].kind, "skip"))
			continue;
		CHECK(f.f[i].first >= 1 && f.f[i].last >= f.f[i].first, "skip finding without a range: %s",
		      f.f[i].line);
		skipped += f.f[i].last - f.f[i].first + 1;
	}
	CHECK(skipped >= spool_full && skipped <= spool_full + after_stats,
	      "skip findings cover %llu seqs, stats.spoolFull says %llu (+ at most %llu after it)",
	      (unsigned long long)skipped, (unsigned long long)spool_full,
	      (unsigned long long)after_stats);

	/* once the collector had everything, the spool has room again: phase 2 and the
	 * runEnd are not dropped */
	CHECK(phase2 > 0, "no local event for out/f2501 (phase 2)");
	for (uint64_t q = phase2; q <= evs.n; q++)
		for (size_t i = 0; i < f.n; i++)
			if (!strcmp(f.f[i].kind, "skip") && q >= f.f[i].first && q <= f.f[i].last) {
				lost_late++;
				break;
			}
	CHECK(lost_late == 0,
	      "the spool never recovered: after the collector was back and had acknowledged all the "
	      "agent spooled, %zu of the %llu later events (seqs %llu-%zu, phase 2 and the runEnd) "
	      "were still dropped as spool full (spool free space after the upload: %lld bytes)",
	      lost_late, (unsigned long long)(evs.n - phase2 + 1), (unsigned long long)phase2, evs.n, free_b2);
	CHECK(cf_findings_count(&f, "gap") == 0 && cf_findings_count(&f, "chain_break") == 0 &&
		      cf_findings_count(&f, "no_run_end") == 0,
	      "findings other than the skip: %.800s", f.raw);
	/* and everything not dropped arrived */
	expect_delivered(&evs, 1, &f, "full spool");
	cf_findings_free(&f);
	bw_events_free(&evs);
	CHECK(cf_tmpfs_umount(F.spool) == 0, "unmount %s", F.spool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_happy_path_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_check_wrong_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector_kill9_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_cut_build_does_not_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_cut_until_exit_next_start_delivers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_restart_nonempty_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_kill9_spool_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_disk_full, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("test_collector_faults: needs root (eBPF, tmpfs)\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* BW_TEST_FILTER=test_happy* (glob) runs a subset */
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
