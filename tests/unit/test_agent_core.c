// SPDX-License-Identifier: GPL-2.0
/* The agent's core without a kernel: the emitter's stamping and fan-out to sinks, the
 * run events built from a counters snapshot, the tally and its summary text, and a
 * reload that must change nothing when the new policy is bad. No root needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/emitter.h"
#include "agent/losses.h"
#include "agent/policy_load.h"
#include "agent/reload.h"
#include "agent/run_events.h"
#include "agent/tally.h"
#include "base/version.h"
#include "buildwarden.pb-c.h"

#define S(lit) ((char *)(lit))

/* ---- a fake sink: records what it got, fails when told to ---- */

#define FAKE_MAX 16

struct fake_sink {
	const char *name;
	uint64_t seqs[FAKE_MAX];
	uint64_t times[FAKE_MAX];
	char hosts[FAKE_MAX][32];
	char run_ids[FAKE_MAX][40];
	size_t n_writes; /* calls, failed ones included */
	size_t n_flushes;
	unsigned fail_every; /* 0: never; n: every n-th write fails */
	int flush_err;
	int closed; /* order of the close among all fakes, 1-based; 0: open */
};

static int close_counter;

static int fake__write(void *ctx, const Buildwarden__V1__Event *ev)
{
	struct fake_sink *f = ctx;
	size_t i = f->n_writes++;

	if (i < FAKE_MAX) {
		f->seqs[i] = ev->seq;
		f->times[i] = ev->time_ns;
		snprintf(f->hosts[i], sizeof(f->hosts[i]), "%s", ev->host);
		snprintf(f->run_ids[i], sizeof(f->run_ids[i]), "%s", ev->run_id);
	}
	if (f->fail_every && (i + 1) % f->fail_every == 0)
		return -ENOSPC;
	return 0;
}

static int fake__flush(void *ctx)
{
	struct fake_sink *f = ctx;

	f->n_flushes++;
	return f->flush_err;
}

static void fake__close(void *ctx)
{
	struct fake_sink *f = ctx;

	f->closed = ++close_counter;
}

static const struct sink_ops fake_ops = {
	.write = fake__write,
	.flush = fake__flush,
	.close = fake__close,
};

static struct sink fake_sink(struct fake_sink *f)
{
	return (struct sink){ .ops = &fake_ops, .ctx = f };
}

/* ---- emitter ---- */

static void test_emitter__fans_out_with_monotonic_seq(void **state)
{
	struct fake_sink good = { .name = "good" }, bad = { .name = "bad", .fail_every = 2 };
	struct emitter *e = malloc(sizeof(*e));
	Buildwarden__V1__Event ev;

	assert_non_null(e);
	emitter__init(e, "ci-01", "0123456789abcdef0123456789abcdef");
	assert_int_equal(emitter__add(e, fake_sink(&good)), 0);
	assert_int_equal(emitter__add(e, fake_sink(&bad)), 1);

	for (int i = 0; i < 6; i++) {
		size_t failed;

		buildwarden__v1__event__init(&ev);
		failed = emitter__emit(e, &ev, 0);
		assert_int_equal(ev.seq, (uint64_t)i + 1);
		assert_int_equal(failed, (i + 1) % 2 == 0 ? 1 : 0);
	}
	/* every sink saw every event, in the same order, with the same stamps */
	assert_int_equal(good.n_writes, 6);
	assert_int_equal(bad.n_writes, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(good.seqs[i], (uint64_t)i + 1);
		assert_int_equal(bad.seqs[i], good.seqs[i]);
		assert_int_equal(bad.times[i], good.times[i]);
		assert_string_equal(good.hosts[i], "ci-01");
		assert_string_equal(good.run_ids[i], "0123456789abcdef0123456789abcdef");
		if (i)
			assert_true(good.times[i] >= good.times[i - 1]);
	}
	/* a failing sink counts its own failures and does not stop the others */
	assert_int_equal(emitter__errors(e, 0), 0);
	assert_int_equal(emitter__errors(e, 1), 3);
	assert_int_equal(emitter__errors(e, -1), 0);
	assert_int_equal(emitter__errors(e, 7), 0);

	bad.flush_err = -EIO;
	assert_int_equal(emitter__flush(e), -EIO);
	assert_int_equal(good.n_flushes, 1);
	assert_int_equal(bad.n_flushes, 1);
	assert_int_equal(emitter__errors(e, 0), 0);
	assert_int_equal(emitter__errors(e, 1), 4);

	close_counter = 0;
	emitter__close(e);
	assert_int_equal(good.closed, 1);
	assert_int_equal(bad.closed, 2);
	free(e);
}

static void test_emitter__kernel_time_and_limits(void **state)
{
	struct fake_sink f[EMITTER_MAX_SINKS + 1];
	struct emitter *e = malloc(sizeof(*e));
	Buildwarden__V1__Event ev;

	assert_non_null(e);
	memset(f, 0, sizeof(f));
	emitter__init(e, "h", "r");
	assert_true(e->mono_to_real_ns > 0);
	e->mono_to_real_ns = 1000;
	for (int i = 0; i < EMITTER_MAX_SINKS; i++)
		assert_int_equal(emitter__add(e, fake_sink(&f[i])), i);
	assert_int_equal(emitter__add(e, fake_sink(&f[EMITTER_MAX_SINKS])), -ENOSPC);

	/* a kernel timestamp (CLOCK_MONOTONIC) is moved to the wall clock */
	buildwarden__v1__event__init(&ev);
	assert_int_equal(emitter__emit(e, &ev, 5000), 0);
	assert_int_equal(ev.time_ns, 6000);
	assert_int_equal(ev.seq, 1);
	/* 0: now, from the real-time clock */
	buildwarden__v1__event__init(&ev);
	emitter__emit(e, &ev, 0);
	assert_true(ev.time_ns > 1600000000ull * 1000000000ull);
	assert_int_equal(ev.seq, 2);
	assert_int_equal(f[EMITTER_MAX_SINKS].n_writes, 0);
	emitter__close(e);
	assert_int_equal(f[EMITTER_MAX_SINKS].closed, 0);
	free(e);
}

/* ---- run events ---- */

static const uint64_t per_cpu[3] = { 1, 0, 2 };

static struct run_counters sample_counters(void)
{
	return (struct run_counters){
		.events = 41,
		.violations = 5,
		.unattributed = 2,
		.bad_records = 43,
		.ringbuf_drops = 3,
		.ringbuf_drops_per_cpu = per_cpu,
		.ncpu = 3,
		.proc_table_failures = 7,
		.args_read_failures = 11,
		.depth_exceeded = 13,
		.fanwatch_overflows = 17,
		.procmem_overflows = 19,
		.fanwatch_skipped = 23,
		.spool_drops = 29,
		.fanwatch_unresolved = 31,
		.link_names_missing = 37,
		.link_names_shed = 41,
	};
}

static void test_run_events__stats(void **state)
{
	struct run_counters c = sample_counters();
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Stats st;

	run_events__stats(&c, &st, &ev);
	assert_int_equal(ev.body_case, BUILDWARDEN__V1__EVENT__BODY_STATS);
	assert_ptr_equal(ev.stats, &st);
	assert_int_equal(ev.seq, 0); /* stamped by the emitter, not here */
	assert_int_equal(st.events, 41);
	assert_int_equal(st.ringbuf_drops, 3);
	assert_int_equal(st.n_ringbuf_drops_per_cpu, 3);
	assert_int_equal(st.ringbuf_drops_per_cpu[2], 2);
	assert_int_equal(st.fanotify_overflows, 17 + 19);
	assert_int_equal(st.proc_table_failures, 7);
	assert_int_equal(st.unattributed, 2);
	assert_int_equal(st.args_read_failures, 11);
	assert_int_equal(st.depth_exceeded, 13 + 23);
	assert_int_equal(st.spool_full, 29);
	assert_int_equal(st.fanotify_unresolved, 31);
	assert_int_equal(st.link_names_missing, 37);
	assert_int_equal(st.link_names_shed, 41);
}

static void test_run_events__run_end(void **state)
{
	struct run_counters c = sample_counters();
	Buildwarden__V1__Event ev;
	Buildwarden__V1__RunEnd re;
	Buildwarden__V1__Incomplete inc;

	assert_int_equal(run_events__drops(&c), 3 + 17 + 19 + 31);
	run_events__run_end(&c, 2, &re, &inc, &ev);
	assert_int_equal(ev.body_case, BUILDWARDEN__V1__EVENT__BODY_RUN_END);
	assert_ptr_equal(ev.run_end, &re);
	assert_int_equal(re.exit_status, 2);
	assert_int_equal(re.events, 41);
	assert_int_equal(re.violations, 5);
	assert_int_equal(re.drops, 3 + 17 + 19 + 31);
	assert_ptr_equal(re.incomplete, &inc);
	assert_int_equal(inc.ringbuf_drops, 3);
	assert_int_equal(inc.fanotify_overflows, 17 + 19);
	assert_int_equal(inc.fanotify_unresolved, 31);
	assert_int_equal(inc.not_watched, 23);
	assert_int_equal(inc.depth_exceeded, 13);
	assert_int_equal(inc.unattributed, 2);
	assert_int_equal(inc.proc_table_failures, 7);
	assert_int_equal(inc.bad_records, 43);
	assert_int_equal(inc.spool_drops, 29);

	/* nothing counted: nothing lost, no incomplete */
	memset(&c, 0, sizeof(c));
	run_events__run_end(&c, 0, &re, &inc, &ev);
	assert_int_equal(re.drops, 0);
	assert_null(re.incomplete);
}

/* Each cause alone makes the run incomplete; argv and LINK-name misses do not. */
static void test_losses__each_cause(void **state)
{
	static const struct {
		size_t off;
		const char *line;
	} causes[] = {
		{ offsetof(struct run_counters, ringbuf_drops), "ringbuf_drops 1" },
		{ offsetof(struct run_counters, fanwatch_overflows), "fanotify_overflows 1" },
		{ offsetof(struct run_counters, procmem_overflows), "fanotify_overflows 1" },
		{ offsetof(struct run_counters, fanwatch_unresolved), "fanotify_unresolved 1" },
		{ offsetof(struct run_counters, fanwatch_skipped), "not_watched 1" },
		{ offsetof(struct run_counters, depth_exceeded), "depth_exceeded 1" },
		{ offsetof(struct run_counters, unattributed), "unattributed 1" },
		{ offsetof(struct run_counters, proc_table_failures), "proc_table_failures 1" },
		{ offsetof(struct run_counters, bad_records), "bad_records 1" },
		{ offsetof(struct run_counters, spool_drops), "spool_drops 1" },
	};
	struct run_counters c;
	struct run_losses l;
	char line[256];

	for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
		memset(&c, 0, sizeof(c));
		*(uint64_t *)((char *)&c + causes[i].off) = 1;
		losses__from_counters(&c, &l);
		assert_true(losses__any(&l));
		losses__format(&l, line, sizeof(line));
		assert_string_equal(line, causes[i].line);
	}
	memset(&c, 0, sizeof(c));
	c.args_read_failures = 5;
	c.link_names_missing = 6;
	c.events = 7;
	c.violations = 8;
	losses__from_counters(&c, &l);
	assert_false(losses__any(&l));
	losses__format(&l, line, sizeof(line));
	assert_string_equal(line, "");

	/* several, in a fixed order; cut to fit, always terminated */
	c = sample_counters();
	losses__from_counters(&c, &l);
	losses__format(&l, line, sizeof(line));
	assert_string_equal(line, "ringbuf_drops 3, fanotify_overflows 36, fanotify_unresolved 31, "
				  "not_watched 23, depth_exceeded 13, unattributed 2, "
				  "proc_table_failures 7, bad_records 43, spool_drops 29");
	losses__format(&l, line, 20);
	assert_string_equal(line, "ringbuf_drops 3");
	assert_string_equal(losses__name(LOSS_KINDS), "?");
}

static void test_run_events__run_start(void **state)
{
	char *argv[] = { S("make"), S("-j8"), NULL };
	const char *layers[] = { "exec: tracepoint", "file: fanotify" };
	struct run_start_info i = {
		.argv = argv,
		.policy_path = "/etc/bw.yaml",
		.policy_sha256 = "ab12",
		.enforce = true,
		.layers = layers,
		.n_layers = 2,
	};
	Buildwarden__V1__RunStart rs;
	Buildwarden__V1__Event ev;

	run_events__run_start(&i, &rs, &ev);
	assert_int_equal(ev.body_case, BUILDWARDEN__V1__EVENT__BODY_RUN_START);
	assert_int_equal(rs.n_argv, 2);
	assert_string_equal(rs.argv[1], "-j8");
	assert_string_equal(rs.policy_path, "/etc/bw.yaml");
	assert_string_equal(rs.policy_sha256, "ab12");
	assert_string_equal(rs.mode, "enforce");
	assert_string_equal(rs.agent_version, BW_VERSION);
	assert_int_equal(rs.schema_version, BW_SCHEMA_VERSION);
	assert_int_equal(rs.n_layers, 2);
	assert_string_equal(rs.layers[1], "file: fanotify");

	/* agent mode, the built-in policy */
	i.argv = NULL;
	i.policy_path = NULL;
	i.enforce = false;
	run_events__run_start(&i, &rs, &ev);
	assert_int_equal(rs.n_argv, 0);
	assert_string_equal(rs.policy_path, "<built-in>");
	assert_string_equal(rs.mode, "audit");
}

/* ---- tally and summary ---- */

static void emit_into(struct tally *t, const char *rule, bool attributed, bool violation)
{
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Verdict v;
	Buildwarden__V1__Process p;

	buildwarden__v1__event__init(&ev);
	buildwarden__v1__verdict__init(&v);
	buildwarden__v1__process__init(&p);
	p.attributed = attributed;
	ev.process = &p;
	if (rule) {
		v.rule = (char *)rule;
		ev.verdict = &v;
	}
	tally__event(t, &ev, violation);
}

static void test_tally__counts(void **state)
{
	struct tally *t = calloc(1, sizeof(*t));
	Buildwarden__V1__Event bare;
	char rule[32];

	assert_non_null(t);
	emit_into(t, "protect[0]: /src", true, true);
	emit_into(t, "protect[0]: /src", false, true);
	emit_into(t, "net deny 10.0.0.0/8", true, true);
	emit_into(t, NULL, true, false);
	buildwarden__v1__event__init(&bare); /* a Stats event: no process, no verdict */
	tally__event(t, &bare, false);
	assert_int_equal(t->events, 5);
	assert_int_equal(t->violations, 3);
	assert_int_equal(t->unattributed, 1);
	assert_int_equal(t->n_rules, 2);
	assert_string_equal(t->rules[0].rule, "protect[0]: /src");
	assert_int_equal(t->rules[0].n, 2);
	assert_int_equal(t->rules[1].n, 1);

	/* past the table, violations are still counted, only not named */
	for (int i = 0; i < TALLY_MAX_RULES + 5; i++) {
		snprintf(rule, sizeof(rule), "rule %d", i);
		emit_into(t, rule, true, true);
	}
	assert_int_equal(t->n_rules, TALLY_MAX_RULES);
	assert_int_equal(t->violations, 3 + TALLY_MAX_RULES + 5);
	free(t);
}

static char *summary_text(const struct tally *t, const struct tally_summary *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	tally__print_summary(t, s, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* TAINTED file events: each name once (a rename's both), the kills counted, and the
 * summary lists them after the violations. */
static void test_tally__tainted(void **state)
{
	struct tally *t = calloc(1, sizeof(*t));
	Buildwarden__V1__Event ev;
	Buildwarden__V1__Verdict v;
	Buildwarden__V1__FileBody fb;
	const char *layers[] = { "x" };
	struct tally_summary s = { .what = "build finished", .run_id = "r1", .enforce = true,
				   .layers = layers, .n_layers = 1 };
	char *text, name[32];

	(void)state;
	assert_non_null(t);
	buildwarden__v1__event__init(&ev);
	buildwarden__v1__verdict__init(&v);
	buildwarden__v1__file_body__init(&fb);
	v.violation = true;
	v.rule = (char *)"protect[0]: /src";
	v.action = BUILDWARDEN__V1__ACTION__TAINTED;
	v.actor_killed = true;
	fb.path = (char *)"/src/a";
	fb.new_path = (char *)"/src/b";
	ev.verdict = &v;
	ev.file = &fb;
	ev.body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	tally__event(t, &ev, true);
	v.actor_killed = false;
	fb.new_path = (char *)"";
	tally__event(t, &ev, true); /* /src/a again: one name */
	assert_int_equal(t->tainted, 2);
	assert_int_equal(t->actors_killed, 1);
	text = summary_text(t, &s);
	assert_non_null(strstr(text, "  tainted: 2 files changed by a process outside the build "
				     "(the change landed: do not trust them); 1 actors killed\n"
				     "    /src/a\n    /src/b\n"));
	free(text);
	/* past the table every new name still counts, and the summary says how many more */
	for (int i = 0; i < TALLY_MAX_TAINTED + 3; i++) {
		snprintf(name, sizeof(name), "/src/n%d", i);
		fb.path = name;
		tally__event(t, &ev, true);
	}
	assert_int_equal(t->n_tainted_paths, TALLY_MAX_TAINTED);
	assert_int_equal(t->tainted, 2 + TALLY_MAX_TAINTED + 3);
	text = summary_text(t, &s);
	assert_non_null(strstr(text, "    ... and 5 more (the events name them)\n"));
	free(text);
	/* an AUDITED event taints nothing */
	v.action = BUILDWARDEN__V1__ACTION__AUDITED;
	fb.path = (char *)"/src/z";
	tally__event(t, &ev, true);
	assert_int_equal(t->tainted, 2 + TALLY_MAX_TAINTED + 3);
	free(t);
}

static void test_tally__summary_text(void **state)
{
	struct tally *t = calloc(1, sizeof(*t));
	const char *layers[] = { "exec: tracepoint", "file: fanotify (after the fact)" };
	struct sink_collector_stats cs = {
		.spooled = 9, .acked = 7, .spool_full_drops = 1, .other_drops = 1, .unacked = 2,
	};
	struct tally_summary s = {
		.what = "build finished",
		.run_id = "r1",
		.enforce = false,
		.drops = 4,
		.not_written = 1,
		.layers = layers,
		.n_layers = 2,
	};
	char *text;

	assert_non_null(t);
	emit_into(t, "protect[0]: /src", true, true);
	emit_into(t, NULL, false, false);
	t->by_kind[TALLY_EXEC] = 1;
	t->by_kind[TALLY_FILE] = 1;
	t->bad_records = 3;

	text = summary_text(t, &s);
	assert_string_equal(text,
		"buildwarden: build finished (run r1, mode audit)\n"
		"  events: 2 (exec 1, file 1, connect 0, process 0)\n"
		"  violations: 1\n"
		"         1  protect[0]: /src\n"
		"  lost: 4 (kernel ring buffer and fanotify queue), unattributed: 1, "
		"bad records: 3, events not written: 1\n"
		"  guards on this host:\n"
		"    exec: tracepoint\n"
		"    file: fanotify (after the fact)\n");
	free(text);

	/* the optional lines: cpu, unwatched objects, the collector */
	s.what = "agent stopped";
	s.enforce = true;
	s.have_cpu = true;
	s.cpu_user_s = 0.25;
	s.cpu_system_s = 1.5;
	s.not_watched = 6;
	s.collector = "10.0.0.1:7443";
	s.collector_stats = &cs;
	snprintf(cs.last_error, sizeof(cs.last_error), "connection refused");
	s.n_layers = 0;
	struct run_losses l = { .n = { [LOSS_NOT_WATCHED] = 6, [LOSS_RINGBUF_DROPS] = 4 } };

	s.losses = &l;
	text = summary_text(t, &s);
	assert_string_equal(text,
		"buildwarden: agent stopped (run r1, mode enforce)\n"
		"  events: 2 (exec 1, file 1, connect 0, process 0)\n"
		"  agent cpu: 0.25 s user, 1.50 s system\n"
		"  violations: 1\n"
		"         1  protect[0]: /src\n"
		"  lost: 4 (kernel ring buffer and fanotify queue), unattributed: 1, "
		"bad records: 3, events not written: 1\n"
		"  not watched: 6 objects under the protected trees\n"
		"  collector 10.0.0.1:7443: 9 spooled, 7 acknowledged, 2 dropped (spool full), "
		"2 left in the spool for the next start; last error: connection refused\n"
		"  guards on this host:\n"
		"  run incomplete: ringbuf_drops 4, not_watched 6\n");
	free(text);
	free(t);
}

/* ---- reload ---- */

struct fake_target {
	unsigned watched, applied, switched;
	bool applied_enforce; /* what the last apply was told */
	int watch_err, apply_err;
	struct fanwatch *switched_old, *switched_new;
	const char *replace_with; /* apply writes this over the policy file: a swap mid-load */
};

static void write_policy(const char *text);

static int fake__watch(void *ctx, const struct bw_policy *p, struct fanwatch **out)
{
	struct fake_target *t = ctx;

	t->watched++;
	*out = NULL; /* the test policies protect no tree */
	return t->watch_err;
}

static int fake__apply(void *ctx, const struct bw_policy *p, bool enforce, char *err,
		       size_t errlen)
{
	struct fake_target *t = ctx;

	t->applied++;
	t->applied_enforce = enforce;
	if (t->replace_with)
		write_policy(t->replace_with);
	if (t->apply_err)
		snprintf(err, errlen, "the kernel said no");
	return t->apply_err;
}

static void fake__switch(void *ctx, struct fanwatch *old, struct fanwatch *nfw)
{
	struct fake_target *t = ctx;

	t->switched++;
	t->switched_old = old;
	t->switched_new = nfw;
}

static char policy_path[] = "/tmp/bw_test_agent_core.XXXXXX";

static void write_policy(const char *text)
{
	FILE *f = fopen(policy_path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The running state as a start with the built-in policy leaves it. */
static void start_state(struct policy_state *st)
{
	static struct bw_diags d;

	memset(st, 0, sizeof(*st));
	assert_int_equal(policy__parse("version: 1\n", 11, "<built-in>", "/", 0, &st->policy, &d), 0);
	snprintf(st->sha256, sizeof(st->sha256), "old-hash");
	st->enforce = false;
	st->fw = NULL;
}

static void test_reload__bad_policy_changes_nothing(void **state)
{
	struct fake_target t = { 0 };
	struct reload_ops ops = {
		.watch = fake__watch, .apply = fake__apply, .switch_watch = fake__switch, .ctx = &t,
	};
	struct agent_opts o = { .policy_path = policy_path };
	struct policy_state st;
	struct bw_policy *before;

	snprintf(policy_path, sizeof(policy_path), "/tmp/bw_test_agent_core.XXXXXX");
	assert_int_not_equal(mkstemp(policy_path), -1);
	start_state(&st);
	before = st.policy;

	/* does not parse */
	write_policy("version: 1\nmode: sideways\n");
	assert_true(reload__policy(&st, &o, &ops) < 0);
	assert_ptr_equal(st.policy, before);
	assert_string_equal(st.sha256, "old-hash");
	assert_false(st.enforce);
	assert_int_equal(t.watched + t.applied + t.switched, 0);

	/* gone */
	unlink(policy_path);
	assert_true(reload__policy(&st, &o, &ops) < 0);
	assert_ptr_equal(st.policy, before);
	assert_int_equal(t.watched + t.applied + t.switched, 0);

	/* loads, but its trees cannot be watched */
	write_policy("version: 1\nmode: enforce\n");
	t.watch_err = -ENOSPC;
	assert_int_equal(reload__policy(&st, &o, &ops), -ENOSPC);
	assert_ptr_equal(st.policy, before);
	assert_string_equal(st.sha256, "old-hash");
	assert_false(st.enforce);
	assert_int_equal(t.applied + t.switched, 0);

	/* loads, but the kernel refuses it */
	t.watch_err = 0;
	t.apply_err = -E2BIG;
	assert_int_equal(reload__policy(&st, &o, &ops), -E2BIG);
	assert_ptr_equal(st.policy, before);
	assert_string_equal(st.sha256, "old-hash");
	assert_false(st.enforce);
	assert_int_equal(t.applied, 1);
	assert_int_equal(t.switched, 0);

	policy__free(st.policy);
	unlink(policy_path);
}

static void test_reload__good_policy_replaces_all(void **state)
{
	struct fake_target t = { 0 };
	struct reload_ops ops = {
		.watch = fake__watch, .apply = fake__apply, .switch_watch = fake__switch, .ctx = &t,
	};
	struct agent_opts o = { .policy_path = policy_path };
	struct policy_state st;

	snprintf(policy_path, sizeof(policy_path), "/tmp/bw_test_agent_core.XXXXXX");
	assert_int_not_equal(mkstemp(policy_path), -1);
	start_state(&st);
	write_policy("version: 1\nmode: enforce\n");
	assert_int_equal(reload__policy(&st, &o, &ops), 0);
	assert_int_equal(st.policy->mode, BW_MODE_ENFORCE);
	assert_true(st.enforce);
	/* the kernel is told the new mode along with the new rules */
	assert_true(t.applied_enforce);
	assert_string_equal(st.sha256,
			    "a43d631c8e08d96626a574d159ef1783f08ec9d0a5043f76317fb5d71ca917a3");
	assert_int_equal(t.watched, 1);
	assert_int_equal(t.applied, 1);
	assert_int_equal(t.switched, 1);
	assert_null(st.fw);

	/* --mode audit wins over the policy's mode, on a reload too */
	o.mode_given = true;
	o.mode = BW_MODE_AUDIT;
	assert_int_equal(reload__policy(&st, &o, &ops), 0);
	assert_false(st.enforce);
	assert_false(t.applied_enforce);

	policy__free(st.policy);
	unlink(policy_path);
}

/* policySha256 vouches for the policy that was loaded: the bytes parsed, not whatever
 * the file holds when the hash is taken. Here the file is replaced between the parse
 * and the end of the reload (by the apply step), as a local user with write access to
 * the policy's directory could. */
static void test_reload__hash_is_of_the_bytes_parsed(void **state)
{
	struct fake_target t = { .replace_with = "version: 1\nmode: audit\n# swapped\n" };
	struct reload_ops ops = {
		.watch = fake__watch, .apply = fake__apply, .switch_watch = fake__switch, .ctx = &t,
	};
	struct agent_opts o = { .policy_path = policy_path };
	struct policy_state st;
	struct bw_policy *p = NULL;
	char sha[65];

	snprintf(policy_path, sizeof(policy_path), "/tmp/bw_test_agent_core.XXXXXX");
	assert_int_not_equal(mkstemp(policy_path), -1);
	start_state(&st);
	write_policy("version: 1\nmode: enforce\n");
	assert_int_equal(reload__policy(&st, &o, &ops), 0);
	assert_int_equal(st.policy->mode, BW_MODE_ENFORCE);
	/* sha256 of "version: 1\nmode: enforce\n", the bytes parsed */
	assert_string_equal(st.sha256,
			    "a43d631c8e08d96626a574d159ef1783f08ec9d0a5043f76317fb5d71ca917a3");

	/* the start's load: the same contract */
	write_policy("version: 1\nmode: enforce\n");
	assert_int_equal(policy_load__file(policy_path, &p, sha), 0);
	write_policy("version: 1\n");
	assert_string_equal(sha, "a43d631c8e08d96626a574d159ef1783f08ec9d0a5043f76317fb5d71ca917a3");
	policy__free(p);
	assert_int_equal(policy_load__file(NULL, &p, sha), 0);
	assert_string_equal(sha, "");
	policy__free(p);

	policy__free(st.policy);
	unlink(policy_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emitter__fans_out_with_monotonic_seq),
		cmocka_unit_test(test_emitter__kernel_time_and_limits),
		cmocka_unit_test(test_run_events__stats),
		cmocka_unit_test(test_run_events__run_end),
		cmocka_unit_test(test_run_events__run_start),
		cmocka_unit_test(test_losses__each_cause),
		cmocka_unit_test(test_tally__counts),
		cmocka_unit_test(test_tally__summary_text),
		cmocka_unit_test(test_tally__tainted),
		cmocka_unit_test(test_reload__bad_policy_changes_nothing),
		cmocka_unit_test(test_reload__hash_is_of_the_bytes_parsed),
		cmocka_unit_test(test_reload__good_policy_replaces_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
