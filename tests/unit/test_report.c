// SPDX-License-Identifier: GPL-2.0
/* The report model and its escapers, with no file and no browser: the rename chain
 * behind an output, a pid reused by a new process, ancestors made into tree nodes,
 * seq gaps and incomplete causes, and what each escaper makes of hostile bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/escape.h"
#include "report/model.h"
#include "report/report.h"

/* What an escaper writes for s, in a buffer the caller frees. */
static char *esc(void (*fn)(FILE *, const char *), const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, s);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void check_esc(void (*fn)(FILE *, const char *), const char *in, const char *want)
{
	char *got = esc(fn, in);

	if (strcmp(got, want) != 0)
		fail_msg("escaping '%s': got '%s', want '%s'", in, got, want);
	free(got);
}

static void test_report__escapers(void **state)
{
	(void)state;
	check_esc(esc__html, "<a href=\"x\">'&'</a>", "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
	check_esc(esc__html, "a\nb\x7f", "a\\x0ab\\x7f");
	check_esc(esc__html, "ok \xc3\xa9 bad \xff\xc3", "ok \xc3\xa9 bad \xef\xbf\xbd\xef\xbf\xbd");
	check_esc(esc__json, "</script>\"\\\n", "\\u003c/script\\u003e\\\"\\\\\\n");
	check_esc(esc__json, "\xe2\x80\xa8\xe2\x80\xa9\x01", "\\u2028\\u2029\\u0001");
	check_esc(esc__json, "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
	check_esc(esc__md, "| [x](y) *b* @u `c` <i>", "\\| \\[x\\]\\(y\\) \\*b\\* \\@u \\`c\\` \\<i\\>");
	check_esc(esc__md, "a\tb", "a\\\\x09b");
	check_esc(esc__uri_path, "/a b/%c\xc3\xa9?#", "/a%20b/%25c%C3%A9%3F%23");
	check_esc(esc__html, NULL, "");
}

/* ---- events ------------------------------------------------------------------ */

struct evs {
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Process p;
	Buildwarden__V1__Ancestor a[2], *ap[2];
	Buildwarden__V1__FileBody f;
	Buildwarden__V1__ExecBody x;
	Buildwarden__V1__Verdict v;
	char *argv[2];
};

static uint64_t seq;

static void add_file(struct rpt_model *m, uint32_t pid, uint32_t ppid, int op, const char *path,
		     const char *new_path, bool violation)
{
	struct evs e;

	memset(&e, 0, sizeof(e));
	buildwarden__v1__event__init(&e.ev);
	buildwarden__v1__process__init(&e.p);
	buildwarden__v1__file_body__init(&e.f);
	buildwarden__v1__verdict__init(&e.v);
	for (int i = 0; i < 2; i++) {
		buildwarden__v1__ancestor__init(&e.a[i]);
		e.ap[i] = &e.a[i];
	}
	e.a[0].pid = ppid;
	e.a[0].exe = (char *)"/bin/sh";
	e.a[1].pid = 1;
	e.a[1].exe = (char *)"/sbin/init";
	e.p.pid = pid;
	e.p.ppid = ppid;
	e.p.exe = (char *)"/usr/bin/cc";
	e.p.ancestors = e.ap;
	e.p.n_ancestors = 2;
	e.p.attributed = true;
	e.f.op = op;
	e.f.path = (char *)path;
	e.f.new_path = (char *)(new_path ? new_path : "");
	e.f.tree = (char *)"/w/out";
	e.v.violation = violation;
	e.v.rule = (char *)(violation ? "protect[0]: out" : "");
	e.ev.seq = ++seq;
	e.ev.run_id = (char *)"r1";
	e.ev.process = &e.p;
	e.ev.verdict = &e.v;
	e.ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	e.ev.file = &e.f;
	assert_int_equal(rpt_model__add(m, &e.ev), 0);
}

/* out/app.tmp written, renamed to out/app: the output out/app leads back to the write. */
static void test_report__rename_chain(void **state)
{
	struct rpt_model *m = rpt_model__new();
	const struct rpt_output *app = NULL, *tmp;

	(void)state;
	seq = 0;
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__CREATE, "/w/out/app.tmp", NULL, false);
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/app.tmp", NULL, false);
	add_file(m, 11, 9, BUILDWARDEN__V1__FILE_OP__RENAME, "/w/out/app.tmp", "/w/out/app", false);
	add_file(m, 12, 9, BUILDWARDEN__V1__FILE_OP__RENAME, "/w/out/x", "/elsewhere/x", false);
	assert_int_equal(rpt_model__finish(m), 0);
	for (size_t i = 0; i < m->noutputs; i++)
		if (strcmp(m->outputs[i].path, "/w/out/app") == 0)
			app = &m->outputs[i];
	assert_non_null(app);
	assert_false(app->gone);
	assert_true(app->from >= 0);
	tmp = &m->outputs[app->from];
	assert_string_equal(tmp->path, "/w/out/app.tmp");
	assert_true(tmp->gone);
	assert_int_equal(tmp->nchanges, 3); /* CREATE, WRITE, and the RENAME itself */
	assert_int_equal(m->files[tmp->changes[1]].op, BUILDWARDEN__V1__FILE_OP__WRITE);
	assert_int_equal(m->procs[m->files[tmp->changes[1]].proc].pid, 10);
	/* a rename out of the tree: the other side kept, no chain */
	assert_string_equal(m->outputs[m->noutputs - 1].across, "/elsewhere/x");
	rpt_model__free(m);
}

/* Ancestors become nodes above the actor; a pid seen again with another parent is a
 * new process; the tree never has a cycle. */
static void test_report__tree(void **state)
{
	struct rpt_model *m = rpt_model__new();
	int32_t first, second;

	(void)state;
	seq = 0;
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/a", NULL, true);
	add_file(m, 10, 8, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/b", NULL, false);
	/* hostile: the parent named as its own child's child */
	add_file(m, 9, 10, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/c", NULL, false);
	assert_int_equal(rpt_model__finish(m), 0);
	/* 1 and 9 as ancestors, 10, then 8 for the second 10, and a new 9 */
	first = m->files[0].proc;
	second = m->files[1].proc;
	assert_int_not_equal(first, second);
	assert_int_equal(m->procs[first].pid, 10);
	assert_int_equal(m->procs[second].pid, 10);
	assert_int_equal(m->procs[m->procs[first].parent].pid, 9);
	assert_false(m->procs[m->procs[first].parent].seen);
	assert_int_equal(m->procs[m->procs[m->procs[first].parent].parent].pid, 1);
	for (size_t i = 0; i < m->nprocs; i++)
		assert_true(m->procs[i].parent < (int32_t)i);
	/* the violation keeps the lineage, parent first */
	assert_int_equal(m->nviolations, 1);
	assert_int_equal(m->violations[0].nlineage, 2);
	assert_int_equal(m->violations[0].lineage[0].pid, 9);
	{
		char *l = rpt__lineage(&m->violations[0]);

		assert_string_equal(l, "pid 9 /bin/sh <- pid 1 /sbin/init");
		free(l);
	}
	rpt_model__free(m);
}

/* A run is complete only with runEnd, no causes and a seq chain without gaps. */
static void test_report__completeness(void **state)
{
	struct rpt_model *m = rpt_model__new();
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	Buildwarden__V1__RunEnd end = BUILDWARDEN__V1__RUN_END__INIT;

	(void)state;
	seq = 0;
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/a", NULL, false);
	assert_true(rpt_run__incomplete(&m->runs[0])); /* no runEnd yet */
	assert_true(report__fails(m, REPORT_FAIL_INCOMPLETE));
	seq = 4; /* 2..4 lost */
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/a", NULL, false);
	ev.seq = ++seq;
	ev.run_id = (char *)"r1";
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	ev.run_end = &end;
	assert_int_equal(rpt_model__add(m, &ev), 0);
	assert_int_equal(m->runs[0].missing, 3);
	assert_int_equal(m->runs[0].ngaps, 1);
	assert_int_equal(m->runs[0].gaps[0].from, 2);
	assert_int_equal(m->runs[0].gaps[0].to, 4);
	assert_true(rpt_run__incomplete(&m->runs[0]));
	assert_false(report__fails(m, REPORT_FAIL_NEVER));
	assert_true(report__fails(m, REPORT_FAIL_VIOLATIONS)); /* a loss may hide one */
	rpt_model__free(m);

	/* the same, gap-free: complete, and nothing fails */
	m = rpt_model__new();
	seq = 0;
	add_file(m, 10, 9, BUILDWARDEN__V1__FILE_OP__WRITE, "/w/out/a", NULL, false);
	ev.seq = ++seq;
	assert_int_equal(rpt_model__add(m, &ev), 0);
	assert_false(rpt_run__incomplete(&m->runs[0]));
	assert_false(report__fails(m, REPORT_FAIL_VIOLATIONS));
	rpt_model__free(m);

	/* an empty file vouches for nothing */
	m = rpt_model__new();
	assert_true(report__fails(m, REPORT_FAIL_INCOMPLETE));
	rpt_model__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report__escapers),
		cmocka_unit_test(test_report__rename_chain),
		cmocka_unit_test(test_report__tree),
		cmocka_unit_test(test_report__completeness),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
