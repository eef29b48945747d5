/* The sensor's feature probes where /tmp is read-only, as for buildwarden-agent.service
 * (ProtectSystem=strict with the host's /tmp): systemd's $STATE_DIRECTORY is writable
 * there, and the guards chosen must be those chosen with a writable /tmp. The
 * fanotify-permission probe made its file in /tmp alone and so reported the host as
 * lacking permission events under the unit (tests/packaging/test_systemd.sh found it
 * under a real systemd). Runs the real binary in a private mount namespace, as root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bwtest.h"

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

/* the "guards on this host" lines of a run summary, or NULL */
static const char *guards(const char *summary)
{
	return summary ? strstr(summary, "guards on this host:") : NULL;
}

static void test_guards_with_read_only_tmp(void **state)
{
	char statedir[PATH_MAX], script[4 * PATH_MAX];
	struct bw_result open_tmp = { 0 }, ro_tmp = { 0 };
	const char *unconfined[] = { bw_bin(), "run", "--", "/bin/true", NULL };
	const char *confined[] = { "/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
				   script, NULL };

	alarm(120);
	assert_int_equal(bw_ws_mkdir(&ws, "state"), 0);
	bw_ws_path(&ws, "state", statedir, sizeof(statedir));
	/* /tmp read-only (the workspace with it), the state directory writable again on top
	 * (a bind mount keeps its source's read-only flag: hence the remount) */
	assert_true((size_t)snprintf(script, sizeof(script),
				     "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && "
				     "mount --bind '%s' '%s' && mount -o remount,bind,rw '%s' && "
				     "! touch /tmp/.bw-ro-check 2>/dev/null && "
				     "STATE_DIRECTORY='%s' exec '%s' run -- /bin/true",
				     statedir, statedir, statedir, statedir, bw_bin()) < sizeof(script));

	assert_int_equal(bw_spawn(unconfined, 60, 0, &open_tmp), 0);
	assert_int_equal(bw_spawn(confined, 60, 0, &ro_tmp), 0);
	if (open_tmp.exit_code != 0 || !guards(open_tmp.err))
		fail_msg("buildwarden run -- /bin/true failed unconfined (%d):\n%s", open_tmp.exit_code,
			 open_tmp.err);
	if (ro_tmp.exit_code != 0 || !guards(ro_tmp.err))
		fail_msg("buildwarden run -- /bin/true failed with /tmp read-only (%d):\n%s",
			 ro_tmp.exit_code, ro_tmp.err);
	if (strcmp(guards(open_tmp.err), guards(ro_tmp.err)) != 0)
		fail_msg("the guards differ with /tmp read-only and $STATE_DIRECTORY set.\n"
			 "/tmp writable:\n%s\n/tmp read-only:\n%s",
			 guards(open_tmp.err), guards(ro_tmp.err));
	bw_result_free(&open_tmp);
	bw_result_free(&ro_tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guards_with_read_only_tmp, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
