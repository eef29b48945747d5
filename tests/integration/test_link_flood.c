/* Any local user can call link() as fast as a CPU allows, and the kernel records the
 * name of every link() on the host for the LINK events. Such a flood must not blind
 * the sensor: during it, a build's every violation still arrives and the kernel drops
 * none of the build's events; the shed link() names are counted (stats.linkNamesShed).
 * The flood runs as uid 65534, in its own session, outside the build. Root. */
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
#include <unistd.h>

#include "lib/bwtest.h"

#define DENIED_EXECS 300
#define FLOODERS 4

static struct bw_ws ws;

static int setup(void **state)
{
	return bw_case_setup(&ws);
}

static int teardown(void **state)
{
	bw_case_teardown();
	return 0;
}

static char flood_dir[PATH_MAX];

/* As nobody: link and unlink one file until killed (each flooder its own pair). */
static int flood(void *arg)
{
	char src[PATH_MAX + 32], dst[PATH_MAX + 32];
	int fd;

	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 1;
	snprintf(src, sizeof(src), "%s/a%d", flood_dir, (int)getpid());
	snprintf(dst, sizeof(dst), "%s/b%d", flood_dir, (int)getpid());
	fd = open(src, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return 2;
	close(fd);
	for (;;) {
		if (link(src, dst) == 0)
			unlink(dst);
	}
	return 0;
}

static uint64_t last_stats(const struct bw_events *evs, uint64_t *shed)
{
	for (size_t i = evs->n; i-- > 0;) {
		const Buildwarden__V1__Event *e = evs->ev[i];

		if (e->body_case == BUILDWARDEN__V1__EVENT__BODY_STATS) {
			*shed = e->stats->link_names_shed;
			return e->stats->ringbuf_drops;
		}
	}
	fail_msg("no stats event");
	return 0;
}

static void test_flood_does_not_blind_the_sensor(void **state)
{
	char policy[PATH_MAX], events[PATH_MAX], deny[PATH_MAX], tru[PATH_MAX], script[3 * PATH_MAX], cmd[2 * PATH_MAX];
	struct bw_events evs;
	struct bw_result r;
	uint64_t drops, shed = 0;
	size_t n;
	pid_t fl[FLOODERS];

	alarm(120);
	assert_int_equal(bw_ws_mkdir(&ws, "deny"), 0);
	assert_int_equal(bw_ws_mkdir(&ws, "flood"), 0);
	bw_ws_path(&ws, "flood", flood_dir, sizeof(flood_dir));
	assert_int_equal(chown(flood_dir, 65534, 65534), 0);
	/* nobody must reach its directory through the workspace */
	bw_ws_path(&ws, "", deny, sizeof(deny));
	assert_int_equal(chmod(deny, 0755), 0);
	bw_ws_path(&ws, "deny", deny, sizeof(deny));
	bw_ws_path(&ws, "deny/true", tru, sizeof(tru));
	snprintf(cmd, sizeof(cmd), "cp /bin/true '%s'", tru);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(bw_write_policy(&ws, NULL, "version: 1\nmode: audit\nexec:\n  scope: build\n  deny: [\"%s\"]\n",
					 deny), 0);
	bw_ws_path(&ws, "policy.yaml", policy, sizeof(policy));
	bw_ws_path(&ws, "ev.pb", events, sizeof(events));

	for (int i = 0; i < FLOODERS; i++) {
		fl[i] = bw_fork_outsider(flood, NULL);
		assert_true(fl[i] > 0);
	}
	usleep(200000); /* the flood is running before the build starts */
	snprintf(script, sizeof(script), "i=0; while [ $i -lt %d ]; do '%s'; i=$((i+1)); done", DENIED_EXECS, tru);
	assert_int_equal(bw_run((const char *const[]){ "run", "--policy", policy, "--events", events, "--",
						 "/bin/sh", "-c", script, NULL },
				90, &r), 0);
	for (int i = 0; i < FLOODERS; i++) {
		kill(fl[i], SIGKILL);
		bw_wait_bounded(fl[i], 10);
	}
	if (r.exit_code != 77)
		fail_msg("exit code %d, expected 77 (violations); stderr: %s", r.exit_code, r.err);
	bw_result_free(&r);

	assert_int_equal(bw_events_read(events, &evs), 0);
	n = bw_ev_count(&evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_EXEC,
						   .filename = tru, .violation = BW_YES });
	drops = last_stats(&evs, &shed);
	printf("# %zu of %d denied execs reported; ring drops %llu; link() names shed %llu\n", n,
	       DENIED_EXECS, (unsigned long long)drops, (unsigned long long)shed);
	if (n != DENIED_EXECS || drops != 0)
		fail_msg("during a link() flood: %zu of %d violations reported, %llu kernel drops", n,
			 DENIED_EXECS, (unsigned long long)drops);
	bw_events_free(&evs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flood_does_not_blind_the_sensor, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
