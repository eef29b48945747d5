/* The pipeline alone: ring buffer records are checked against the ABI, and kernel
 * records and file changes become Events with the right verdicts and rule texts. The
 * kernel's process table is replaced by a table in this file. */
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

#include "pipeline/event_build.h"
#include "pipeline/records.h"

#define OUTSIDER 4242
#define BUILDER 4343
#define WRITER 4444

static struct bw_proc procs[3];
static const pid_t pids[3] = { OUTSIDER, BUILDER, WRITER };

static int fake_lookup(void *ctx, pid_t pid, struct bw_proc *out)
{
	for (int i = 0; i < 3; i++) {
		if (pids[i] == pid) {
			*out = procs[i];
			return 0;
		}
	}
	return -ENOENT;
}

/* The exited processes: the outsider that wrote, under the pid a build process has now. */
#define REUSED 4545
static struct bw_proc exited_outsider;

static int fake_lookup_exited(void *ctx, pid_t pid, struct bw_proc *out)
{
	if (pid != REUSED)
		return -ENOENT;
	*out = exited_outsider;
	return 0;
}

static const char policy_text[] = "version: 1\n"
				  "protect:\n  - path: /src\n  - path: /out\n"
				  "exec:\n  deny: [/tmp, /dev/shm]\n"
				  "network:\n  default: deny\n  allow: [{to: \"127.0.0.0/8\", name: loopback}]\n"
				  "  deny: [\"127.0.0.2/32:9\"]\n";

struct fixture {
	struct bw_policy *policy;
	struct procinfo *pi;
	struct arena *arena;
	struct event_ctx ctx;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct proc_source src = { .lookup = fake_lookup, .lookup_exited = fake_lookup_exited };
	struct bw_diags d;

	if (!f || policy__parse(policy_text, sizeof(policy_text) - 1, "t.yaml", "/", BW_POLICY_NO_FS,
				&f->policy, &d))
		return -1;
	memset(procs, 0, sizeof(procs));
	snprintf(procs[0].filename, sizeof(procs[0].filename), "/usr/bin/evil");
	procs[0].ppid = 1;
	procs[1].flags = BW_PROC_IN_BUILD | BW_PROC_EXEC_SEEN | BW_PROC_EXITED;
	snprintf(procs[1].filename, sizeof(procs[1].filename), "/usr/bin/cc");
	procs[1].ppid = 1;
	procs[2].writer_mask = 1u << 1; /* may write /out, not /src */
	procs[2].flags = BW_PROC_FROM_FORK;
	f->pi = procinfo__new(&src);
	f->arena = malloc(sizeof(*f->arena));
	if (!f->pi || !f->arena)
		return -1;
	f->ctx = (struct event_ctx){ .policy = f->policy, .pi = f->pi, .arena = f->arena };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	procinfo__free(f->pi);
	policy__free(f->policy);
	free(f->arena);
	free(f);
	return 0;
}

static struct bw_exec_event exec_record(pid_t pid, int denied)
{
	struct bw_exec_event e;

	memset(&e, 0, sizeof(e));
	e.hdr = (struct bw_event_hdr){ .type = BW_EV_EXEC, .version = BW_ABI_VERSION, .size = sizeof(e) };
	e.pid = (__u32)pid;
	e.denied_tree = denied;
	snprintf(e.filename, sizeof(e.filename), "/tmp/x/dropper");
	e.filename_len = (__u16)strlen(e.filename) + 1;
	memcpy(e.args, "dropper\0-q\0", 11);
	e.args_len = 11;
	return e;
}

static void test_records__check(void **state)
{
	struct bw_exec_event e = exec_record(1, -1);
	struct bw_connect_event c;

	assert_int_equal(records__check(&e, sizeof(e)), BW_EV_EXEC);
	assert_int_equal(records__check(&e, sizeof(e) - 8), -EINVAL); /* size disagrees */
	assert_int_equal(records__check(&e, 4), -EINVAL); /* shorter than a header */
	e.args_len = BW_ARGS_LEN + 1;
	assert_int_equal(records__check(&e, sizeof(e)), -EINVAL);
	e = exec_record(1, -1);
	e.filename_len = BW_FILENAME_LEN + 1;
	assert_int_equal(records__check(&e, sizeof(e)), -EINVAL);
	e = exec_record(1, -1);
	e.hdr.version = BW_ABI_VERSION + 1;
	assert_int_equal(records__check(&e, sizeof(e)), -EINVAL);
	e = exec_record(1, -1);
	e.hdr.type = 99;
	assert_int_equal(records__check(&e, sizeof(e)), -ENOTSUP);

	memset(&c, 0, sizeof(c));
	c.hdr = (struct bw_event_hdr){ .type = BW_EV_CONNECT, .version = BW_ABI_VERSION, .size = sizeof(c) };
	c.family = 2;
	assert_int_equal(records__check(&c, sizeof(c)), BW_EV_CONNECT);
	c.family = 7;
	assert_int_equal(records__check(&c, sizeof(c)), -EINVAL);

	/* a BPF LSM refusal: a known op, the exact size */
	{
		struct bw_lsm_deny_event d;

		memset(&d, 0, sizeof(d));
		d.hdr = (struct bw_event_hdr){ .type = BW_EV_LSM_DENY, .version = BW_ABI_VERSION,
					       .size = sizeof(d) };
		d.op = BW_LSM_RENAME;
		assert_int_equal(records__check(&d, sizeof(d)), BW_EV_LSM_DENY);
		d.op = BW_LSM_OP_MAX;
		assert_int_equal(records__check(&d, sizeof(d)), -EINVAL);
		d.op = 0;
		assert_int_equal(records__check(&d, sizeof(d)), -EINVAL);
		d.op = BW_LSM_WRITE;
		d.hdr.size = sizeof(d) - 8;
		assert_int_equal(records__check(&d, sizeof(d) - 8), -EINVAL);
	}
}

static void test_exec_denied_is_a_violation(void **state)
{
	struct fixture *f = *state;
	struct bw_exec_event e = exec_record(BUILDER, 0);
	Buildwarden__V1__Event ev;

	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__exec(&f->ctx, &e, &ev));
	assert_int_equal(ev.body_case, BUILDWARDEN__V1__EVENT__BODY_EXEC);
	assert_string_equal(ev.exec->filename, "/tmp/x/dropper");
	assert_string_equal(ev.verdict->rule, "exec.deny[0]: /tmp");
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__AUDITED);
	assert_true(ev.process->in_build);
	assert_int_equal(ev.process->n_argv, 2);
	assert_string_equal(ev.process->argv[0], "dropper");
	assert_string_equal(ev.process->argv[1], "-q");
	/* the process had exited: the exec's filename names it */
	assert_string_equal(ev.process->exe, "/usr/bin/cc");

	e = exec_record(BUILDER, -1);
	snprintf(e.filename, sizeof(e.filename), "relative/never-resolves");
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_false(event_build__exec(&f->ctx, &e, &ev));
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__ALLOWED);
}

/* The ways around exec.deny are violations with a rule of their own, and the verdict is
 * what the record says was done: killed in the kernel, refused by the exec guard. */
static void test_exec_evasions(void **state)
{
	struct fixture *f = *state;
	const struct {
		uint32_t flags;
		const char *rule;
		Buildwarden__V1__Action action;
	} want[] = {
		{ BW_EXEC_NAMELESS, "exec.deny: a file with no name in any mounted tree (memfd, deleted)",
		  BUILDWARDEN__V1__ACTION__AUDITED },
		{ BW_EXEC_LOADER | BW_EXEC_KILLED, "exec.deny: the dynamic loader run directly on a program",
		  BUILDWARDEN__V1__ACTION__KILLED },
		{ BW_EXEC_TOO_DEEP | BW_EXEC_KILLED,
		  "exec.deny: a file deeper than the 32-level walk: cannot tell whether it is in a deny tree",
		  BUILDWARDEN__V1__ACTION__KILLED },
		{ BW_EXEC_NAMELESS | BW_EXEC_REFUSED,
		  "exec.deny: a file with no name in any mounted tree (memfd, deleted)",
		  BUILDWARDEN__V1__ACTION__DENIED },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct bw_exec_event e = exec_record(BUILDER, -1);
		Buildwarden__V1__Event ev;

		e.flags = want[i].flags;
		buildwarden__v1__event__init(&ev);
		arena__reset(f->arena);
		assert_true(event_build__exec(&f->ctx, &e, &ev));
		assert_string_equal(ev.verdict->rule, want[i].rule);
		assert_int_equal(ev.verdict->action, want[i].action);
	}
	/* a refused script: a deny tree's index, DENIED */
	{
		struct bw_exec_event e = exec_record(BUILDER, 1);
		Buildwarden__V1__Event ev;

		e.flags = BW_EXEC_REFUSED;
		buildwarden__v1__event__init(&ev);
		arena__reset(f->arena);
		assert_true(event_build__exec(&f->ctx, &e, &ev));
		assert_string_equal(ev.verdict->rule, "exec.deny[1]: /dev/shm");
		assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__DENIED);
	}
}

/* argv past 511 bytes (or a long filename) is cut in the kernel: the event says so. */
static void test_exec_truncated(void **state)
{
	static const __u32 flags[] = { 0, BW_EXEC_ARGS_TRUNCATED, BW_EXEC_FILENAME_TRUNCATED,
				       BW_EXEC_ARGS_TRUNCATED | BW_EXEC_FILENAME_TRUNCATED };
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct bw_exec_event e = exec_record(BUILDER, -1);
		Buildwarden__V1__Event ev;

		e.flags = flags[i];
		buildwarden__v1__event__init(&ev);
		arena__reset(f->arena);
		event_build__exec(&f->ctx, &e, &ev);
		assert_non_null(ev.exec);
		assert_int_equal(ev.exec->truncated, flags[i] != 0);
		/* what was kept is still shown */
		assert_string_equal(ev.exec->filename, "/tmp/x/dropper");
		assert_int_equal(ev.process->n_argv, 2);
	}
}

static struct bw_connect_event connect_record(const char *ip4, uint16_t port, uint8_t action,
					      uint8_t matched, uint32_t idx)
{
	struct bw_connect_event c;
	unsigned a, b, cc, d;

	memset(&c, 0, sizeof(c));
	c.hdr = (struct bw_event_hdr){ .type = BW_EV_CONNECT, .version = BW_ABI_VERSION, .size = sizeof(c) };
	c.pid = BUILDER;
	c.family = 2;
	c.port = port;
	sscanf(ip4, "%u.%u.%u.%u", &a, &b, &cc, &d);
	c.addr[0] = (uint8_t)a;
	c.addr[1] = (uint8_t)b;
	c.addr[2] = (uint8_t)cc;
	c.addr[3] = (uint8_t)d;
	c.protocol = BW_PROTO_TCP;
	c.action = action;
	c.matched = matched;
	c.rule_index = idx;
	return c;
}

static void test_connect_rules_are_named(void **state)
{
	struct fixture *f = *state;
	struct bw_connect_event c = connect_record("127.0.0.2", 9, BW_NET_DENY, BW_MATCH_DENY, 0);
	Buildwarden__V1__Event ev;

	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__connect(&f->ctx, &c, &ev));
	assert_string_equal(ev.connect->address, "127.0.0.2");
	assert_int_equal(ev.connect->port, 9);
	assert_int_equal(ev.connect->protocol, BUILDWARDEN__V1__PROTOCOL__TCP);
	assert_string_equal(ev.verdict->rule, "network.deny: 127.0.0.2/32:9");

	c = connect_record("10.9.9.9", 443, BW_NET_DENY, BW_MATCH_DEFAULT, 0);
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__connect(&f->ctx, &c, &ev));
	assert_string_equal(ev.verdict->rule, "network.default: deny");

	c = connect_record("127.0.0.1", 80, BW_NET_ALLOW, BW_MATCH_ALLOW, 0);
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_false(event_build__connect(&f->ctx, &c, &ev));
	/* an allowed connect names the allow rule that matched, by its `name:` (issue 10) */
	assert_false(ev.verdict->violation);
	assert_string_equal(ev.verdict->rule, "loopback");

	/* a rule index from the kernel past the policy's list is not trusted */
	c = connect_record("127.0.0.2", 9, BW_NET_DENY, BW_MATCH_DENY, 77);
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__connect(&f->ctx, &c, &ev));
	assert_string_equal(ev.verdict->rule, "network.default: deny");
}

/* Enforce mode: the action says what the kernel did, from the record alone. */
static void test_verdict_actions(void **state)
{
	struct fixture *f = *state;
	struct bw_connect_event c = connect_record("127.0.0.2", 9, BW_NET_DENY, BW_MATCH_DENY, 0);
	struct bw_exec_event e = exec_record(BUILDER, 0);
	Buildwarden__V1__Event ev;

	assert_int_equal(event_build__action(false, EVENT_STOP_NONE), BUILDWARDEN__V1__ACTION__ALLOWED);
	/* a record that claims a stop without a violation is still just allowed */
	assert_int_equal(event_build__action(false, EVENT_STOP_KILLED), BUILDWARDEN__V1__ACTION__ALLOWED);
	assert_int_equal(event_build__action(true, EVENT_STOP_NONE), BUILDWARDEN__V1__ACTION__AUDITED);
	assert_int_equal(event_build__action(true, EVENT_STOP_REFUSED), BUILDWARDEN__V1__ACTION__DENIED);
	assert_int_equal(event_build__action(true, EVENT_STOP_KILLED), BUILDWARDEN__V1__ACTION__KILLED);
	assert_int_equal(event_build__action(true, EVENT_STOP_TAINTED), BUILDWARDEN__V1__ACTION__TAINTED);
	assert_int_equal(event_build__action(false, EVENT_STOP_TAINTED), BUILDWARDEN__V1__ACTION__ALLOWED);

	/* a refused connect: DENIED; the same one let through: AUDITED */
	c.enforced = 1;
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__connect(&f->ctx, &c, &ev));
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__DENIED);
	c.enforced = 0;
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__connect(&f->ctx, &c, &ev));
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__AUDITED);

	/* a killed exec: KILLED, and the truncation flags still read apart from it */
	e.flags = BW_EXEC_KILLED;
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__exec(&f->ctx, &e, &ev));
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__KILLED);
	assert_false(ev.exec->truncated);
}

static bool file_verdict(struct fixture *f, pid_t pid, unsigned tree, Buildwarden__V1__Event *ev)
{
	struct file_change fc = { .op = BUILDWARDEN__V1__FILE_OP__WRITE, .pid = pid, .tree = tree,
				  .path = tree ? "/out/app" : "/src/main.c" };

	buildwarden__v1__event__init(ev);
	arena__reset(f->arena);
	return event_build__file(&f->ctx, &fc, ev);
}

static void test_file_verdicts(void **state)
{
	struct fixture *f = *state;
	Buildwarden__V1__Event ev;

	assert_true(file_verdict(f, OUTSIDER, 0, &ev));
	assert_string_equal(ev.verdict->rule, "protect[0]: /src");
	assert_string_equal(ev.file->path, "/src/main.c");
	assert_string_equal(ev.file->tree, "/src");
	assert_false(ev.process->in_build);

	assert_false(file_verdict(f, BUILDER, 0, &ev));
	assert_int_equal(ev.verdict->action, BUILDWARDEN__V1__ACTION__ALLOWED);

	/* a writer of /out: allowed there, a violation in /src */
	assert_false(file_verdict(f, WRITER, 1, &ev));
	assert_true(ev.process->authorized_writer);
	assert_true(file_verdict(f, WRITER, 0, &ev));
	assert_false(ev.process->authorized_writer);
}

/* Issue 8: an actor that exited before its change was read is looked up among exited
 * processes only, never as the live process that has its pid now (a build process). */
static void test_exited_actor_is_not_the_pid_owner(void **state)
{
	struct fixture *f = *state;
	struct file_change fc = { .op = BUILDWARDEN__V1__FILE_OP__WRITE, .pid = BUILDER, .tree = 0,
				  .path = "/src/main.c", .actor_exited = true };
	Buildwarden__V1__Event ev;

	/* BUILDER's pid: live and in the build; the actor had exited, and the exited table
	 * does not know it: unattributed, a violation */
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__file(&f->ctx, &fc, &ev));
	assert_false(ev.process->attributed);
	assert_false(ev.process->in_build);

	/* REUSED: live owner unknown to fake_lookup, the exited outsider found */
	memset(&exited_outsider, 0, sizeof(exited_outsider));
	exited_outsider.flags = BW_PROC_EXITED | BW_PROC_EXEC_SEEN;
	snprintf(exited_outsider.filename, sizeof(exited_outsider.filename), "/usr/bin/evil");
	fc.pid = REUSED;
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_true(event_build__file(&f->ctx, &fc, &ev));
	assert_true(ev.process->attributed);
	assert_false(ev.process->in_build);

	/* the same pid, actor alive: the live table answers (the build: allowed) */
	fc.pid = BUILDER;
	fc.actor_exited = false;
	buildwarden__v1__event__init(&ev);
	arena__reset(f->arena);
	assert_false(event_build__file(&f->ctx, &fc, &ev));
	assert_true(ev.process->in_build);
}

static void test_arena_never_overflows(void **state)
{
	struct arena *a = malloc(sizeof(*a));
	size_t total = 0;
	char *s;

	assert_non_null(a);
	arena__reset(a);
	while (arena__alloc(a, 1000))
		total += 1000;
	assert_true(total <= ARENA_SIZE);
	while (arena__alloc(a, 1))
		total++;
	assert_true(total <= ARENA_SIZE);
	s = arena__strndup(a, "abc", 3);
	assert_string_equal(s, ""); /* full: an empty string, never NULL */
	assert_null(arena__alloc(a, (size_t)-1));
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records__check),
		cmocka_unit_test_setup_teardown(test_exec_denied_is_a_violation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_evasions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_rules_are_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_verdicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdict_actions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exited_actor_is_not_the_pid_owner, setup, teardown),
		cmocka_unit_test(test_arena_never_overflows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
