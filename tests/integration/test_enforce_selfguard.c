// SPDX-License-Identifier: MIT
/* The agent protects itself where the kernel runs BPF LSM programs (issue 9,
 * bpf/selfguard.bpf.c): during an enforce run, a process outside it (root, forked
 * before the run) walks every BPF map, program and link id of the host and asks for a
 * descriptor to each, as bpftool does. Under BPF LSM the sensor's own are refused with
 * EPERM (the run summary says so; BW_EXPECT_BPF_LSM, set by make vmtest's guests from
 * their LSM list, checks that claim); elsewhere root gets every one, and the summary
 * does not claim the guard. After the run no id is refused: the guard went with the
 * agent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

#define EXIT_OK 0

static struct bw_case S;

static void diag(void)
{
	bw_case_diag(&S);
}

#define CHECK(cond, ...) BW_CHECK(diag, cond, __VA_ARGS__)

static int setup(void **state)
{
	*state = &S;
	return bw_case_begin(&S);
}

static int teardown(void **state)
{
	(void)state;
	bw_case_end(&S);
	return 0;
}

/* How many ids of one kind refuse a descriptor with EPERM (and how many were seen). */
static void refused_ids(int next_cmd, int get_cmd, unsigned *refused, unsigned *seen)
{
	union bpf_attr a;
	__u32 id = 0;

	*refused = *seen = 0;
	for (unsigned n = 0; n < 100000; n++) {
		int fd;

		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (syscall(SYS_bpf, next_cmd, &a, sizeof(a)))
			return; /* ENOENT: the last one */
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.map_id = id; /* prog_id and link_id share the union's first word */
		fd = (int)syscall(SYS_bpf, get_cmd, &a, sizeof(a));
		(*seen)++;
		if (fd >= 0)
			close(fd);
		else if (errno == EPERM)
			(*refused)++;
	}
}

struct counts {
	unsigned maps, progs, links, seen_maps, seen_progs, seen_links;
};

static void count_all(struct counts *c)
{
	refused_ids(BPF_MAP_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID, &c->maps, &c->seen_maps);
	refused_ids(BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, &c->progs, &c->seen_progs);
	refused_ids(BPF_LINK_GET_NEXT_ID, BPF_LINK_GET_FD_BY_ID, &c->links, &c->seen_links);
}

struct outsider {
	int ready;
};

/* Waits for "go" (sent by the build once the sensor runs), counts, reports on "done". */
static int outsider_main(void *arg)
{
	struct outsider *o = arg;
	int go = open(bw_ws_tmp(&S.ws, "go"), O_RDWR | O_CLOEXEC);
	int done = open(bw_ws_tmp(&S.ws, "done"), O_RDWR | O_CLOEXEC);
	struct counts c;
	char ch;

	if (go < 0 || done < 0 || write(o->ready, "r", 1) != 1 || read(go, &ch, 1) != 1)
		return 10;
	count_all(&c);
	dprintf(done, "maps %u/%u progs %u/%u links %u/%u\n", c.maps, c.seen_maps, c.progs,
		c.seen_progs, c.links, c.seen_links);
	return 0;
}

static bool summary_claims_guard(void)
{
	const char *want = getenv("BW_EXPECT_BPF_LSM");
	bool lsm = S.res.err && strstr(S.res.err, "enforce the sensor's own maps, programs and links");

	if (want && *want)
		CHECK(lsm == (strcmp(want, "1") == 0),
		      "BW_EXPECT_BPF_LSM=%s, but the run summary says the self-protection is %s",
		      want, lsm ? "on" : "off");
	return lsm;
}

static void test_enforce_outsider_gets_no_descriptor(void **state)
{
	struct outsider o;
	static char script[3 * PATH_MAX];
	char policy[PATH_MAX];
	struct counts after;
	unsigned m = 0, sm = 0, p = 0, sp = 0, l = 0, sl = 0;
	const char *r;
	int pp[2], st;
	pid_t pid;
	char ch;

	(void)state;
	alarm(120);
	CHECK(bw_ws_write(&S.ws, "src/f.txt", "x\n", false) == 0, "write f.txt");
	CHECK(bw_ws_mkfifo(&S.ws, "go") == 0 && bw_ws_mkfifo(&S.ws, "done") == 0, "mkfifo");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: src\n") == 0,
	      "policy");
	CHECK(pipe2(pp, O_CLOEXEC) == 0, "pipe");
	o.ready = pp[1];
	pid = bw_fork_outsider(outsider_main, &o);
	close(pp[1]);
	CHECK(pid > 0 && read(pp[0], &ch, 1) == 1, "the outsider did not get ready");
	close(pp[0]);
	snprintf(script, sizeof(script), "exec 3< '%s'; echo go > '%s'; read x <&3; echo \"RESULT $x\"",
		 bw_ws_tmp(&S.ws, "done"), bw_ws_tmp(&S.ws, "go"));
	{
		const char *args[] = { "run", "--mode", "enforce", "--policy",
				       bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy)),
				       "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

		snprintf(S.events, sizeof(S.events), "%s/events.pb", S.ws.path);
		S.ran = bw_run_logged(args, 60, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	}
	CHECK(S.ran && !S.res.timed_out, "buildwarden did not finish");
	st = bw_wait_bounded(pid, 15);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_OK, "the outsider failed (%#x)", st);
	r = S.res.out ? strstr(S.res.out, "RESULT maps ") : NULL;
	CHECK(r && sscanf(r, "RESULT maps %u/%u progs %u/%u links %u/%u", &m, &sm, &p, &sp, &l,
			  &sl) == 6,
	      "no counts from the outsider");
	printf("MEASURED during the run: refused maps %u of %u, programs %u of %u, links %u of %u\n",
	       m, sm, p, sp, l, sl);
	CHECK(S.res.exit_code == 0, "exit %d", S.res.exit_code);
	if (summary_claims_guard()) {
		/* the sensor has a dozen maps, some fifty programs, as many links */
		CHECK(m >= 10 && p >= 10 && l >= 10,
		      "BPF LSM: the outsider got descriptors to the sensor's objects");
	} else {
		CHECK(m == 0 && p == 0 && l == 0, "no self-protection claimed, yet ids were refused");
	}
	count_all(&after);
	CHECK(after.maps == 0 && after.progs == 0 && after.links == 0,
	      "after the run, ids are still refused (%u maps, %u programs, %u links)", after.maps,
	      after.progs, after.links);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enforce_outsider_gets_no_descriptor, setup,
						teardown),
	};

	if (geteuid() != 0) {
		printf("skipped: needs root\n");
		return 0;
	}
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	bw_cleanup_all();
	return rc;
}
