// SPDX-License-Identifier: MIT
/* `buildwarden report` as a user meets it, without root: events files made here with
 * the product's own file sink (plain and gzip), holding a planted violation and
 * hostile strings (markup, script, markdown, invalid UTF-8) in argv, paths and comm.
 * Checks the markdown and SARIF (validated against the vendored official schema with
 * Debian's python3-jsonschema), and the HTML in headless Chromium: a screenshot, and
 * the rendered DOM (the violation row, the tree node a URL fragment opens, no injected
 * element). One case makes a 100k-event file and prints the figures: report time,
 * HTML size, Chromium's wall time and the page's own drawing time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clicase.h"
#include "transport/sink_file.h"

#define EXIT_CORRUPT 65
#define EXIT_VIOLATION 77
#define RUN_TIMEOUT 120
#define CHROMIUM "/usr/bin/chromium"
#define PYTHON "/usr/bin/python3" /* Debian's, with python3-jsonschema */
#define CHROMIUM_TIMEOUT 120

/* the planted violation: an outside process (its parent an outside shell) writes a
 * source file of the build */
#define OUTSIDER_PID 777777
#define OUTSIDER_PARENT 777776
#define ROOT_PID 1000

/* argv an attacker controls: each would do something if a report let it through */
static const char hostile_argv[] =
	"<script>document.body.setAttribute('data-pwned','script')</script>";
static const char hostile_img[] =
	"<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">";
static const char hostile_close[] = "</script><script>document.body.setAttribute('data-pwned','close')</script>";
static const char hostile_md[] = "| [click](http://127.0.0.1/x) **bold** @someone `tick`";
static const char hostile_bytes[] = "bad\xff\xfe utf8 \xe2\x80\xa8 sep";

static struct bw_cli S;

static void diag(void)
{
	bw_cli_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static const char *wsp(const char *rel)
{
	return bw_ws_tmp(&S.ws, rel);
}

static int setup(void **state)
{
	if (bw_cli_begin(&S))
		return -1;
	*state = &S;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bw_cli_end(&S);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run_bw(const char *const args[])
{
	bw_cli_run(&S, args, RUN_TIMEOUT, 0);
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish within %u s", RUN_TIMEOUT);
}

/* ---- making events --------------------------------------------------------------- */

struct gen {
	struct sink_file *f;
	uint64_t seq;
	const char *run_id;
	char root[256]; /* the workspace: the protected tree is <root>/src */
};

static void put(struct gen *g, Buildwarden__V1__Event *ev)
{
	ev->seq = ++g->seq;
	ev->time_ns = 1700000000000000000ull + g->seq * 1000;
	ev->host = (char *)"ci-runner-1";
	ev->run_id = (char *)g->run_id;
	assert_int_equal(sink_file__write_event(g->f, ev), 0);
}

/* A process with its parent as the one ancestor given (and the root's shell). */
static void proc_init(Buildwarden__V1__Process *p, Buildwarden__V1__Ancestor *anc,
		      Buildwarden__V1__Ancestor **ancp, uint32_t pid, uint32_t ppid,
		      const char *exe, char **argv, size_t argc, bool in_build)
{
	buildwarden__v1__process__init(p);
	buildwarden__v1__ancestor__init(anc);
	p->pid = pid;
	p->ppid = ppid;
	p->exe = (char *)exe;
	p->argv = argv;
	p->n_argv = argc;
	p->in_build = in_build;
	p->attributed = true;
	p->comm = (char *)"comm";
	anc->pid = ppid;
	anc->exe = (char *)(in_build ? "/usr/bin/make" : "/bin/bash");
	anc->in_build = in_build && ppid != 999;
	ancp[0] = anc;
	p->ancestors = ancp;
	p->n_ancestors = 1;
}

static void gen_exec(struct gen *g, uint32_t pid, uint32_t ppid, const char *exe, char **argv,
		     size_t argc)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Process p;
	Buildwarden__V1__Ancestor anc, *ancp[1];
	Buildwarden__V1__ExecBody x = BUILDWARDEN__V1__EXEC_BODY__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;

	proc_init(&p, &anc, ancp, pid, ppid, exe, argv, argc, true);
	x.filename = (char *)exe;
	v.action = BUILDWARDEN__V1__ACTION__ALLOWED;
	ev.process = &p;
	ev.verdict = &v;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev.exec = &x;
	put(g, &ev);
}

static void gen_file(struct gen *g, uint32_t pid, uint32_t ppid, const char *exe, bool in_build,
		     Buildwarden__V1__FileOp op, const char *path, const char *new_path,
		     const char *rule)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Process p;
	Buildwarden__V1__Ancestor anc, *ancp[1];
	Buildwarden__V1__FileBody f = BUILDWARDEN__V1__FILE_BODY__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;
	char *argv[] = { (char *)exe };
	char tree[300];

	snprintf(tree, sizeof(tree), "%s/src", g->root);
	proc_init(&p, &anc, ancp, pid, ppid, exe, argv, 1, in_build);
	f.op = op;
	f.path = (char *)path;
	f.new_path = (char *)(new_path ? new_path : "");
	f.tree = tree;
	v.violation = rule != NULL;
	v.rule = (char *)(rule ? rule : "");
	v.action = rule ? BUILDWARDEN__V1__ACTION__AUDITED : BUILDWARDEN__V1__ACTION__ALLOWED;
	ev.process = &p;
	ev.verdict = &v;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	ev.file = &f;
	put(g, &ev);
}

static void gen_connect(struct gen *g, uint32_t pid, uint32_t ppid, const char *addr,
			uint32_t port, bool refused)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__Process p;
	Buildwarden__V1__Ancestor anc, *ancp[1];
	Buildwarden__V1__ConnectBody c = BUILDWARDEN__V1__CONNECT_BODY__INIT;
	Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;
	char *argv[] = { (char *)"curl", (char *)addr };

	proc_init(&p, &anc, ancp, pid, ppid, "/usr/bin/curl", argv, 2, true);
	c.address = (char *)addr;
	c.port = port;
	c.protocol = BUILDWARDEN__V1__PROTOCOL__TCP;
	v.violation = refused;
	v.rule = (char *)(refused ? "network.default: deny" : "");
	v.action = refused ? BUILDWARDEN__V1__ACTION__AUDITED : BUILDWARDEN__V1__ACTION__ALLOWED;
	ev.process = &p;
	ev.verdict = &v;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_CONNECT;
	ev.connect = &c;
	put(g, &ev);
}

static void gen_start(struct gen *g)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunStart s = BUILDWARDEN__V1__RUN_START__INIT;
	char *argv[] = { (char *)"make", (char *)"all" };
	char *layers[] = { (char *)"file changes: detected by fanotify" };

	s.argv = argv;
	s.n_argv = 2;
	s.policy_path = (char *)"/w/.github/buildwarden.yaml";
	s.policy_sha256 = (char *)"00ff";
	s.mode = (char *)"audit";
	s.agent_version = (char *)"0.1.0";
	s.layers = layers;
	s.n_layers = 1;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_START;
	ev.run_start = &s;
	put(g, &ev);
}

static void gen_end(struct gen *g, uint64_t violations, uint64_t ringbuf_drops)
{
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunEnd e = BUILDWARDEN__V1__RUN_END__INIT;
	Buildwarden__V1__Incomplete in = BUILDWARDEN__V1__INCOMPLETE__INIT;

	e.exit_status = 0;
	e.events = g->seq;
	e.violations = violations;
	e.drops = ringbuf_drops;
	if (ringbuf_drops) {
		in.ringbuf_drops = ringbuf_drops;
		e.incomplete = &in;
	}
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &e;
	put(g, &ev);
}

/* A build of about `events` events: make (ROOT_PID) → one make per directory → a
 * compiler per file, each with an exec and a CREATE and WRITE of its object, every
 * tenth through a temporary name renamed into place; a few connects, one refused; and
 * (violation) the outsider's WRITE to src/main.c, with hostile argv, paths and comm. */
static void gen_build(const char *path, unsigned events, bool violation, uint64_t drops)
{
	struct gen g = { .run_id = "0123456789abcdef0123456789abcdef" };
	char *rargv[] = { (char *)"make", (char *)"all" };
	unsigned dirs = events / 2000 + 1, pid = ROOT_PID + 1, i = 0;
	int err = 0;

	snprintf(g.root, sizeof(g.root), "%s", S.ws.path);
	g.f = sink_file__open(path, &err);
	assert_non_null(g.f);
	gen_start(&g);
	gen_exec(&g, ROOT_PID, 999, "/usr/bin/make", rargv, 2);
	for (unsigned d = 0; d < dirs && g.seq < events; d++) {
		unsigned dpid = pid++;
		char dir[64];
		char *dargv[] = { (char *)"make", (char *)"-C", dir };

		snprintf(dir, sizeof(dir), "dir%u", d);
		gen_exec(&g, dpid, ROOT_PID, "/usr/bin/make", dargv, 3);
		for (unsigned f = 0; f < 700 && g.seq + 4 < events; f++, i++) {
			char src[128], obj[512], tmp[600];
			char *cargv[] = { (char *)"cc", (char *)"-c", src, (char *)"-o", obj };

			snprintf(src, sizeof(src), "%s/f%u.c", dir, f);
			snprintf(obj, sizeof(obj), "%s/src/out/%s/f%u.o", g.root, dir, f);
			snprintf(tmp, sizeof(tmp), "%s.tmp", obj);
			gen_exec(&g, pid, dpid, "/usr/bin/cc", cargv, 5);
			gen_file(&g, pid, dpid, "/usr/bin/cc", true, BUILDWARDEN__V1__FILE_OP__CREATE,
				 i % 10 ? obj : tmp, NULL, NULL);
			gen_file(&g, pid, dpid, "/usr/bin/cc", true, BUILDWARDEN__V1__FILE_OP__WRITE,
				 i % 10 ? obj : tmp, NULL, NULL);
			if (i % 10 == 0)
				gen_file(&g, pid, dpid, "/usr/bin/cc", true,
					 BUILDWARDEN__V1__FILE_OP__RENAME, tmp, obj, NULL);
			pid++;
		}
	}
	gen_connect(&g, pid, ROOT_PID, "127.0.0.1", 443, false);
	gen_connect(&g, pid, ROOT_PID, "127.0.0.1", 443, false);
	gen_connect(&g, pid + 1, ROOT_PID, "127.0.0.99", 8080, true);
	{
		/* a build step run from /tmp: an exec from an unusual place */
		char *targv[] = { (char *)"/tmp/helper", (char *)hostile_md };

		gen_exec(&g, pid + 2, ROOT_PID, "/tmp/helper", targv, 2);
	}
	if (violation) {
		Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
		Buildwarden__V1__Process p;
		Buildwarden__V1__Ancestor a1 = BUILDWARDEN__V1__ANCESTOR__INIT;
		Buildwarden__V1__Ancestor a2 = BUILDWARDEN__V1__ANCESTOR__INIT;
		Buildwarden__V1__Ancestor *ancp[2] = { &a1, &a2 };
		Buildwarden__V1__FileBody f = BUILDWARDEN__V1__FILE_BODY__INIT;
		Buildwarden__V1__Verdict v = BUILDWARDEN__V1__VERDICT__INIT;
		char *argv[] = { (char *)"dd", (char *)hostile_argv, (char *)hostile_img,
				 (char *)hostile_close, (char *)hostile_bytes };
		char path[512], tree[512];

		snprintf(path, sizeof(path), "%s/src/main.c", g.root);
		snprintf(tree, sizeof(tree), "%s/src", g.root);
		buildwarden__v1__process__init(&p);
		p.pid = OUTSIDER_PID;
		p.ppid = OUTSIDER_PARENT;
		p.exe = (char *)"/usr/bin/dd";
		p.argv = argv;
		p.n_argv = 5;
		p.comm = (char *)hostile_img;
		p.attributed = true;
		a1.pid = OUTSIDER_PARENT;
		a1.exe = (char *)"/tmp/.x/<b>implant</b>";
		a2.pid = 1;
		a2.exe = (char *)"/sbin/init";
		p.ancestors = ancp;
		p.n_ancestors = 2;
		f.op = BUILDWARDEN__V1__FILE_OP__WRITE;
		f.path = path;
		f.tree = tree;
		v.violation = true;
		v.rule = (char *)"protect[0]: src";
		v.action = BUILDWARDEN__V1__ACTION__AUDITED;
		ev.process = &p;
		ev.verdict = &v;
		ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
		ev.file = &f;
		put(&g, &ev);
	}
	gen_end(&g, violation ? 2 : 1, drops);
	assert_int_equal(sink_file__close(g.f), 0);
}

/* ---- helpers: programs the checks run ---------------------------------------------- */

/* Runs argv in its own process group with stdout to out_path, HOME and the XDG
 * directories in the workspace; after it ends (or timeout_s, then it is killed) what
 * is left of its group (Chromium's helpers) is killed by the group's id. Returns the
 * exit code, 128+signal, or -1 on a timeout. */
static int run_prog(const char *const argv[], const char *out_path, unsigned timeout_s,
		    double *wall_ms)
{
	double t0 = now_ms();
	pid_t pid;
	int st;

	pid = bw_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);

		setpgid(0, 0);
		if (fd < 0 || dn < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(dn, 0) < 0)
			_exit(126);
		setenv("HOME", S.ws.path, 1);
		setenv("XDG_CONFIG_HOME", S.ws.path, 1);
		setenv("XDG_CACHE_HOME", S.ws.path, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	bw_track_pid(pid);
	st = bw_wait_bounded(pid, timeout_s);
	kill(-pid, SIGKILL);
	bw_untrack_pid(pid);
	if (wall_ms)
		*wall_ms = now_ms() - t0;
	if (st < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool have_chromium(void)
{
	if (access(CHROMIUM, X_OK) == 0)
		return true;
	print_message("SKIP: %s is not installed (make deps installs Debian's chromium)\n", CHROMIUM);
	return false;
}

/* Chromium, headless, on file://html#frag: the DOM after scripts into dom_path (mode
 * "dom") or a screenshot into png_path. Fails the test if Chromium does not work. */
static double chromium(const char *html, const char *frag, const char *dom_path,
		       const char *png_path)
{
	char url[1024], udd[600], shot[700];
	const char *argv[12];
	double wall = 0;
	int n = 0, rc;

	snprintf(url, sizeof(url), "file://%s%s", html, frag ? frag : "");
	snprintf(udd, sizeof(udd), "--user-data-dir=%s", wsp("chromium-profile"));
	argv[n++] = CHROMIUM;
	argv[n++] = "--headless";
	argv[n++] = "--no-sandbox";
	argv[n++] = "--disable-gpu";
	argv[n++] = "--no-first-run";
	argv[n++] = udd;
	if (png_path) {
		snprintf(shot, sizeof(shot), "--screenshot=%s", png_path);
		argv[n++] = "--window-size=1280,1600";
		argv[n++] = shot;
	} else {
		argv[n++] = "--dump-dom";
	}
	argv[n++] = url;
	argv[n] = NULL;
	rc = run_prog(argv, png_path ? wsp("chromium.log") : dom_path, CHROMIUM_TIMEOUT, &wall);
	if (rc != 0) {
		char *log = bw_read_file(png_path ? wsp("chromium.log") : dom_path, NULL);

		print_message("chromium output:\n%s\n", log ? log : "(none)");
		free(log);
	}
	CHECK(rc == 0, "chromium failed on %s: status %d (-1: no end within %u s)", url, rc,
	      CHROMIUM_TIMEOUT);
	return wall;
}

/* needle in s not right after a backslash: live in markdown */
static bool md_raw(const char *s, const char *needle)
{
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		if (p == s || p[-1] != '\\')
			return true;
	return false;
}

/* Cuts a dumped DOM down to the process tree (in place). */
static void tree_only(char *s)
{
	char *a = strstr(s, "id=\"tree\""), *b = a ? strstr(a, "id=\"outputs\"") : NULL;

	CHECK(a && b, "no process tree in the DOM");
	memmove(s, a, (size_t)(b - a));
	s[b - a] = '\0';
}

static char *read_all(const char *path)
{
	char *s = bw_read_file(path, NULL);

	CHECK(s != NULL, "cannot read %s", path);
	return s;
}

/* ---- cases ------------------------------------------------------------------------ */

/* The markdown a CI summary shows: the planted violation with its lineage, the
 * refused egress, the exec from /tmp, completeness; no live markdown from the events. */
static void test_markdown(void **state)
{
	const char *ev = wsp("events.pb"), *md = wsp("summary.md");
	char *s;

	(void)state;
	gen_build(ev, 400, true, 0);
	run_bw((const char *[]){ "report", "--format", "markdown", "-o", md, ev, NULL });
	CHECK(S.res.exit_code == 0, "report: status %d, want 0 (--fail-on defaults to never)",
	      S.res.exit_code);
	s = read_all(md);
	CHECK(strstr(s, "## buildwarden: violations") != NULL, "no verdict line");
	CHECK(strstr(s, "### Violations (2)") != NULL, "violations count (file + connect)");
	CHECK(strstr(s, "pid 777777 \\/usr\\/bin\\/dd") != NULL, "the outsider is not named");
	CHECK(strstr(s, "pid 777776 \\/tmp\\/\\.x\\/\\<b\\>implant\\<\\/b\\> \\<\\- pid 1 \\/sbin\\/init") != NULL,
	      "the outsider's lineage is not there, escaped");
	CHECK(strstr(s, "127\\.0\\.0\\.99 port 8080 tcp | 1 | **yes**") != NULL, "refused egress");
	CHECK(strstr(s, "| \\/tmp\\/helper |") != NULL, "exec from /tmp not listed as unusual");
	CHECK(strstr(s, "complete") != NULL && strstr(s, "seq 1\\-") != NULL, "completeness");
	/* nothing from the events is live markdown or HTML */
	CHECK(!md_raw(s, "<script") && !md_raw(s, "<img") && !md_raw(s, "<b>"),
	      "raw markup from the events in the markdown");
	CHECK(!md_raw(s, "](http") && !md_raw(s, "@someone") && !md_raw(s, "*bold") &&
	      !md_raw(s, "| [click") && !md_raw(s, "`tick"), "live markdown from the events");
	CHECK(strstr(s, "\\| \\[click\\]\\(http") != NULL, "the hostile argv is not shown escaped");
	CHECK(strstr(s, "\xff") == NULL, "invalid UTF-8 passed through");
	free(s);

	/* --fail-on: 77 on the violation; incomplete alone does not fail a complete run */
	run_bw((const char *[]){ "report", "--format", "markdown", "--fail-on", "violations", ev, NULL });
	CHECK(S.res.exit_code == EXIT_VIOLATION, "--fail-on violations: status %d", S.res.exit_code);
	CHECK(strstr(S.res.out, "### Violations (2)") != NULL, "the report is written before failing");
	run_bw((const char *[]){ "report", "--format", "markdown", "--fail-on", "incomplete", ev, NULL });
	CHECK(S.res.exit_code == 0, "--fail-on incomplete on a complete run: status %d", S.res.exit_code);
}

/* A run that lost events fails --fail-on incomplete, and a gzip file reads the same. */
static void test_incomplete_gzip(void **state)
{
	const char *ev = wsp("events.pb.gz");
	char *s;

	(void)state;
	gen_build(ev, 200, false, 12);
	run_bw((const char *[]){ "report", "--format", "markdown", "--fail-on", "incomplete", ev, NULL });
	CHECK(S.res.exit_code == EXIT_VIOLATION, "incomplete run: status %d, want 77", S.res.exit_code);
	CHECK(strstr(S.res.out, "**incomplete**") != NULL, "not marked incomplete");
	CHECK(strstr(S.res.out, "ringbuf\\_drops 12") != NULL, "the cause is not named");
	/* a corrupt tail: the report of what came before, and 65 */
	s = read_all(ev);
	free(s);
	{
		int fd = open(ev, O_WRONLY | O_APPEND);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "\x1f\x8b\x08\x00garbage", 12), 12);
		close(fd);
	}
	run_bw((const char *[]){ "report", "--format", "markdown", ev, NULL });
	CHECK(S.res.exit_code == EXIT_CORRUPT, "corrupt tail: status %d, want 65", S.res.exit_code);
	CHECK(strstr(S.res.out, "the events file is corrupt") != NULL, "the report does not say so");
	CHECK(strstr(S.res.err, ev) != NULL, "stderr does not name the file");
}

/* SARIF 2.1.0, valid against the official schema, one result per violation. */
static void test_sarif_schema(void **state)
{
	const char *ev = wsp("events.pb"), *sarif = wsp("report.sarif");
	char schema[PATH_MAX], *s;
	const char *argv[8];
	int rc;

	(void)state;
	gen_build(ev, 300, true, 3);
	run_bw((const char *[]){ "report", "--format", "sarif", "--source-root", S.ws.path, "-o", sarif,
				 ev, NULL });
	CHECK(S.res.exit_code == 0, "report: status %d", S.res.exit_code);
	s = read_all(sarif);
	CHECK(strstr(s, "\"ruleId\":\"BW002\"") != NULL, "no protected-tree result");
	CHECK(strstr(s, "\"uri\":\"src/main.c\",\"uriBaseId\":\"SRCROOT\"") != NULL,
	      "the path is not relative to --source-root");
	CHECK(strstr(s, "\"ruleId\":\"BW005\"") != NULL, "the incomplete run is not a result");
	CHECK(strstr(s, "<script") == NULL, "< not escaped in the JSON");
	free(s);
	assert_non_null(realpath("tests/report/sarif-schema-2.1.0.json", schema));
	argv[0] = PYTHON;
	argv[1] = "-c";
	argv[2] = "import json,sys,jsonschema\n"
		  "schema=json.load(open(sys.argv[1]))\n"
		  "doc=json.load(open(sys.argv[2]))\n"
		  "jsonschema.Draft4Validator.check_schema(schema)\n"
		  "jsonschema.validate(doc,schema,cls=jsonschema.Draft4Validator)\n"
		  "assert len(doc['runs'][0]['results'])==3, doc['runs'][0]['results']\n"
		  "print('sarif: valid')\n";
	argv[3] = schema;
	argv[4] = sarif;
	argv[5] = NULL;
	rc = run_prog(argv, wsp("python.log"), 120, NULL);
	s = read_all(wsp("python.log"));
	CHECK(rc == 0 && strstr(s, "sarif: valid"), "SARIF does not validate (make deps installs "
	      "python3-jsonschema): status %d\n%s", rc, s);
	free(s);

	/* an empty events file: still valid, and one result saying nothing vouches */
	assert_int_equal(bw_write_file(wsp("empty.pb"), "", 0644), 0);
	run_bw((const char *[]){ "report", "--format", "sarif", "-o", sarif, wsp("empty.pb"), NULL });
	CHECK(S.res.exit_code == 0, "report of an empty file: status %d", S.res.exit_code);
	argv[2] = "import json,sys,jsonschema\n"
		  "doc=json.load(open(sys.argv[2]))\n"
		  "jsonschema.validate(doc,json.load(open(sys.argv[1])),cls=jsonschema.Draft4Validator)\n"
		  "assert doc['runs'][0]['results'][0]['ruleId']=='BW005'\n"
		  "print('sarif: valid')\n";
	rc = run_prog(argv, wsp("python.log"), 120, NULL);
	s = read_all(wsp("python.log"));
	CHECK(rc == 0 && strstr(s, "sarif: valid"), "empty-file SARIF: status %d\n%s", rc, s);
	free(s);
}

/* The HTML in Chromium: the violation row, the outsider's node opened by #pid-N with
 * its lineage above it, a node's children drawn on opening, nothing injected. */
static void test_html_chromium(void **state)
{
	const char *ev = wsp("events.pb"), *html = wsp("report.html"), *dom = wsp("dom.html");
	char frag[64], *s, *li;

	(void)state;
	gen_build(ev, 400, true, 0);
	run_bw((const char *[]){ "report", "-o", html, ev, NULL });
	CHECK(S.res.exit_code == 0, "report: status %d", S.res.exit_code);
	s = read_all(html);
	CHECK(strstr(s, "Content-Security-Policy") && strstr(s, "default-src 'none'"),
	      "no CSP forbidding fetches");
	CHECK(strstr(s, "src=\"http") == NULL && strstr(s, "href=\"http") == NULL,
	      "the page refers to the network");
	CHECK(strstr(s, "</script><script>document") == NULL, "a </script> from the events is raw");
	free(s);
	if (!have_chromium())
		skip();

	snprintf(frag, sizeof(frag), "#pid-%u", OUTSIDER_PID);
	chromium(html, frag, dom, NULL);
	s = read_all(dom);
	CHECK(strstr(s, "data-ready=\"1\"") != NULL, "the script did not finish: %.300s", s);
	CHECK(strstr(s, "data-pwned=") == NULL, "an event string ran as script");
	CHECK(strstr(s, "<tr class=\"violation\" id=\"v-0\">") != NULL, "no violation row");
	CHECK(strstr(s, "&lt;script&gt;document.body") != NULL, "hostile argv not shown as text");
	CHECK(strstr(s, "<img") == NULL && strstr(s, "<b>implant") == NULL, "markup from events in the DOM");
	/* the node the fragment names is open and marked, under its (opened) parent */
	li = strstr(s, "class=\"open target\"");
	CHECK(li != NULL, "no node opened by %s", frag);
	CHECK(strstr(s, "pid 777776 /tmp/.x/&lt;b&gt;implant&lt;/b&gt;") != NULL,
	      "the outsider's parent is not in the tree");
	CHECK(strstr(li, "pid 777777 /usr/bin/dd") != NULL && strstr(li, "WRITE ") != NULL,
	      "the opened node does not show the outsider and its write");
	free(s);

	/* opening the root draws its children (lazily: not there before) */
	snprintf(frag, sizeof(frag), "#pid-%u", ROOT_PID);
	chromium(html, frag, dom, NULL);
	s = read_all(dom);
	tree_only(s);
	CHECK(strstr(s, "pid 1001 /usr/bin/make") != NULL, "the root's children are not drawn");
	CHECK(strstr(s, "pid 1002 /usr/bin/cc") == NULL, "a closed node's children were drawn");
	free(s);
	chromium(html, NULL, dom, NULL);
	s = read_all(dom);
	CHECK(strstr(s, "renamed from ") != NULL && strstr(s, "f0.o.tmp") != NULL,
	      "no rename chain in the outputs");
	CHECK(strstr(s, "<td class=\"mono\">/tmp/helper</td>") != NULL, "no unusual exec row");
	tree_only(s);
	CHECK(strstr(s, "pid 1001 /usr/bin/make") == NULL, "the tree is not collapsed at first");
	free(s);

	chromium(html, "#pid-777777", NULL, wsp("report.png"));
	s = bw_read_file(wsp("report.png"), NULL);
	CHECK(s != NULL && memcmp(s, "\x89PNG", 4) == 0, "no PNG screenshot");
	free(s);
	if (getenv("BW_REPORT_KEEP"))
		print_message("kept: %s\n", S.ws.path);
}

/* 100k events: how long the report takes, how big the page is, how long Chromium takes
 * to open it and draw (the page measures its own drawing). Bounds are generous; the
 * figures are printed for PERFORMANCE.md. */
static void test_large_run(void **state)
{
	const char *ev = wsp("big.pb.gz"), *html = wsp("big.html"), *dom = wsp("dom.html");
	double t0, report_ms, wall;
	struct stat st;
	char *s, *ms, *ready;

	(void)state;
	gen_build(ev, 100000, true, 0);
	t0 = now_ms();
	run_bw((const char *[]){ "report", "-o", html, ev, NULL });
	report_ms = now_ms() - t0;
	CHECK(S.res.exit_code == 0, "report: status %d", S.res.exit_code);
	CHECK(S.res.err_len == 0, "progress shown when stderr is not a terminal: %s", S.res.err);
	assert_int_equal(stat(html, &st), 0);
	print_message("figure: report of 100000 events (gzip): %.0f ms, HTML %lld bytes\n", report_ms,
		      (long long)st.st_size);
	if (!have_chromium())
		skip();
	wall = chromium(html, "#pid-777777", dom, NULL);
	s = read_all(dom);
	CHECK(strstr(s, "data-ready=\"1\"") != NULL, "the page did not finish drawing");
	CHECK(strstr(s, "class=\"open target\"") != NULL, "the fragment did not open the node");
	ms = strstr(s, "id=\"render-ms\">");
	ready = strstr(s, "id=\"ready-ms\">");
	print_message("figure: chromium --dump-dom of the 100k-event page: %.0f ms wall (browser "
		      "start included); page ready %d ms after opening, its script %d ms\n", wall,
		      ready ? atoi(ready + 14) : -1, ms ? atoi(ms + 15) : -1);
	free(s);
}

/* On a terminal a person waits: progress on stderr (through script(1)'s pty); the
 * large-run case checks it stays quiet when stderr is not one. */
static void test_progress_on_terminal(void **state)
{
	const char *ev = wsp("events.pb"), *log = wsp("script.log");
	char cmd[2048], *s;
	const char *argv[8];
	int rc;

	(void)state;
	if (access("/usr/bin/script", X_OK) != 0) {
		print_message("SKIP: no /usr/bin/script (util-linux) to make a terminal\n");
		skip();
	}
	gen_build(ev, 300, false, 0);
	snprintf(cmd, sizeof(cmd), "%s report --format markdown -o %s %s", bw_bin(), wsp("r.md"), ev);
	argv[0] = "/usr/bin/script";
	argv[1] = "-qec";
	argv[2] = cmd;
	argv[3] = "/dev/null";
	argv[4] = NULL;
	rc = run_prog(argv, log, 60, NULL);
	s = read_all(log);
	CHECK(rc == 0, "report under script: status %d\n%s", rc, s);
	CHECK(strstr(s, "report: reading") != NULL, "no progress on a terminal: '%s'", s);
	free(s);
}

static void test_usage(void **state)
{
	(void)state;
	run_bw((const char *[]){ "report", NULL });
	CHECK(S.res.exit_code == 64 && strstr(S.res.err, "missing EVENTS"), "no events: %d", S.res.exit_code);
	run_bw((const char *[]){ "report", "--format", "pdf", "x.pb", NULL });
	CHECK(S.res.exit_code == 64 && strstr(S.res.err, "'pdf'"), "bad format: %d", S.res.exit_code);
	run_bw((const char *[]){ "report", "--fail-on", "always", "x.pb", NULL });
	CHECK(S.res.exit_code == 64 && strstr(S.res.err, "'always'"), "bad fail-on: %d", S.res.exit_code);
	run_bw((const char *[]){ "report", wsp("missing.pb"), NULL });
	CHECK(S.res.exit_code == 66 && strstr(S.res.err, "missing.pb"), "missing file: %d", S.res.exit_code);
	/* nothing half-written when the output cannot be made */
	gen_build(wsp("e.pb"), 50, false, 0);
	run_bw((const char *[]){ "report", "-o", wsp("no/such/dir/r.html"), wsp("e.pb"), NULL });
	CHECK(S.res.exit_code == 73, "uncreatable output: %d", S.res.exit_code);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incomplete_gzip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sarif_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_html_chromium, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_on_terminal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
