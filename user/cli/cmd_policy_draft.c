/* buildwarden policy learn EVENTS... / policy test --policy P EVENTS...: a draft policy
 * from audit runs, and a draft tried on recorded runs before it is enforced
 * (docs/policy.md, "Learn, test, enforce"). The work is user/draft/'s; here: flags, the
 * files one after the other, progress on a terminal, exit codes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/policy_load.h"
#include "base/clock.h"
#include "cli/commands.h"
#include "cli/decode_exit.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "draft/learn.h"
#include "draft/replay.h"
#include "transport/decode.h"

/* the trees `learn` proposes for exec.deny when the build never executed from them */
static const char *const exec_deny_candidates[] = { "/tmp", "/var/tmp", "/dev/shm", NULL };

/* Progress on a terminal only, as `run` shows its upload and `report` its reading: a
 * person waits on many runs; a CI log does not want a line per update. */
struct draft_progress {
	bool on;
	const char *who;
	size_t file, files;
	uint64_t size;
	int64_t last_ns;
};

static void draft__size(char *buf, size_t len, uint64_t bytes)
{
	if (bytes < 1048576)
		snprintf(buf, len, "%.1f KiB", (double)bytes / 1024.0);
	else
		snprintf(buf, len, "%.1f MiB", (double)bytes / 1048576.0);
}

static void draft__show(void *ctx, uint64_t in_bytes)
{
	struct draft_progress *p = ctx;
	int64_t now = clock__mono_ns();
	char done[32], total[32];

	if (!p->on || now - p->last_ns < 200 * 1000 * 1000LL)
		return;
	p->last_ns = now;
	draft__size(done, sizeof(done), in_bytes);
	draft__size(total, sizeof(total), p->size);
	fprintf(stderr, "\r%sfile %zu of %zu, %s of %s   ", p->who, p->file, p->files, done, total);
}

struct draft_reader {
	struct draft_progress prog;
	struct draft_learn *learn;
	struct draft_replay *replay;
	const char *path;
	const char *who;
	int err;
};

static int draft__event(void *ctx, const Buildwarden__V1__Event *ev, const char **why)
{
	struct draft_reader *r = ctx;
	int err = r->learn ? draft_learn__event(r->learn, ev) : draft_replay__event(r->replay, ev);

	(void)why;
	if (!err)
		return 0;
	r->err = err;
	fprintf(stderr, "%s%s: %s\n", r->who, r->path,
		err == -E2BIG ? "more distinct items than a draft takes (4096 of a kind)"
			      : strerror(-err));
	return DECODE_NO_MEMORY;
}

static void draft__progress(void *ctx, uint64_t in_bytes)
{
	struct draft_reader *r = ctx;

	draft__show(&r->prog, in_bytes);
}

/* Every file, in order; stops at the first that fails (its message printed). */
static int draft__read_all(char **files, int n, struct draft_reader *r)
{
	struct draft_progress *prog = &r->prog;
	struct decode_visitor v = { .event = draft__event, .progress = draft__progress, .ctx = r };
	int rc = DECODE_OK;

	prog->on = isatty(STDERR_FILENO);
	prog->who = r->who;
	prog->files = (size_t)n;
	for (int i = 0; i < n && rc == DECODE_OK; i++) {
		struct stat st;

		r->path = files[i];
		prog->file = (size_t)i + 1;
		prog->size = stat(files[i], &st) == 0 ? (uint64_t)st.st_size : 0;
		if (prog->on && n > 1)
			draft__show(prog, 0);
		rc = decode__each(files[i], &v, r->who, stderr);
	}
	if (prog->on && prog->last_ns) /* a progress line was shown: end it */
		fprintf(stderr, "\r%sread %d files%40s\n", r->who, n, "");
	return rc;
}

static int cmd_policy_learn(int argc, char **argv)
{
	struct draft_reader r = { .who = "policy learn: " };
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	int rc, first = 1;

	if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
		fputs(help__text("policy"), stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--") == 0)
		first = 2;
	else if (argc >= 2 && argv[1][0] == '-' && argv[1][1])
		return usage__error("buildwarden policy learn", help__text("policy"),
				    "unknown flag '%s'", argv[1]);
	if (first >= argc)
		return usage__error("buildwarden policy learn", help__text("policy"),
				    "expected: learn EVENTS...");
	if (draft_learn__new(&r.learn))
		return EXIT_SOFTWARE;
	rc = draft__read_all(argv + first, argc - first, &r);
	if (rc != DECODE_OK) {
		draft_learn__free(r.learn);
		return decode_exit__code(rc);
	}
	/* whole, then out: a failure leaves no half policy on standard output */
	mem = open_memstream(&buf, &len);
	if (!mem || draft_learn__write(r.learn, exec_deny_candidates, mem) || fclose(mem)) {
		fprintf(stderr, "policy learn: cannot write the proposal: %s\n", strerror(errno));
		free(buf);
		draft_learn__free(r.learn);
		return EXIT_SOFTWARE;
	}
	draft_learn__free(r.learn);
	/* learn leaves out what no policy holds; a proposal that still does not parse is
	 * our bug, and is not printed as if it were a policy */
	{
		struct bw_policy *check = NULL;
		struct bw_diags d;

		memset(&d, 0, sizeof(d));
		if (policy__parse(buf, len, "<proposal>", "/", BW_POLICY_NO_FS, &check, &d)) {
			fprintf(stderr, "policy learn: internal error: the proposal does not parse:\n");
			policy__print_diags(&d, "<proposal>", stderr);
			free(buf);
			return EXIT_SOFTWARE;
		}
		policy__free(check);
	}
	rc = fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : EXIT_IOERR;
	free(buf);
	return rc;
}

static int cmd_policy_test(int argc, char **argv)
{
	struct draft_reader r = { .who = "policy test: " };
	struct draft_replay_counts c;
	const char *policy = NULL;
	struct bw_policy *p = NULL;
	int rc, first = 1;

	for (; first < argc; first++) {
		const char *a = argv[first];

		if (strcmp(a, "--help") == 0) {
			fputs(help__text("policy"), stdout);
			return 0;
		} else if (strcmp(a, "--policy") == 0 && first + 1 < argc) {
			policy = argv[++first];
		} else if (strcmp(a, "--") == 0) {
			first++;
			break;
		} else if (a[0] == '-' && a[1]) {
			return usage__error("buildwarden policy test", help__text("policy"),
					    strcmp(a, "--policy") == 0 ? "flag '%s' needs a value"
								       : "unknown flag '%s'", a);
		} else {
			break;
		}
	}
	if (!policy || first >= argc)
		return usage__error("buildwarden policy test", help__text("policy"),
				    "expected: test --policy FILE EVENTS...");
	if (policy_load__file(policy, &p, NULL))
		return EXIT_POLICY;
	if (draft_replay__new(p, &r.replay)) {
		policy__free(p);
		return EXIT_SOFTWARE;
	}
	rc = draft__read_all(argv + first, argc - first, &r);
	if (rc == DECODE_OK) {
		draft_replay__counts(r.replay, &c);
		if (draft_replay__write(r.replay, stdout) || fflush(stdout))
			rc = DECODE_IO_ERROR;
	}
	draft_replay__free(r.replay);
	policy__free(p);
	if (rc != DECODE_OK)
		return decode_exit__code(rc);
	return c.flagged ? EXIT_VIOLATION : 0;
}

/* `policy learn` and `policy test`, or -1 when argv[1] is neither. */
int cmd_policy_draft(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "learn") == 0)
		return cmd_policy_learn(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return cmd_policy_test(argc - 1, argv + 1);
	return -1;
}
