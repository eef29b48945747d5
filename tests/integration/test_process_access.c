/* An outside process reaching into a build process (ptrace attach, process_vm_writev,
 * opening /proc/PID/mem for writing) is a violation naming the actor and the target;
 * the build reaching into itself is not. Real binary, real kernel, root. */
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
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
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

/* The child of pid that runs comm, from /proc (bounded wait): -1 if none in timeout_s.
 * Not "the first child": the agent has another one for a moment, the middle process of
 * its guard's double fork (user/agent/guard.c). Under load the test could take that
 * one, wait in vain for it to become the build, and attach to a pid that was gone
 * (PTRACE_SEIZE: -1, ESRCH). */
static pid_t child_running(pid_t pid, const char *comm, unsigned timeout_s)
{
	char path[64], list[4096], name[32];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	for (unsigned i = 0; i < timeout_s * 50; i++) {
		FILE *f = fopen(path, "re");
		size_t n = 0;

		if (f) {
			n = fread(list, 1, sizeof(list) - 1, f);
			fclose(f);
		}
		list[n] = '\0';
		for (char *tok = strtok(list, " \n"); tok; tok = strtok(NULL, " \n")) {
			long c = strtol(tok, NULL, 10);
			char cpath[64];

			snprintf(cpath, sizeof(cpath), "/proc/%ld/comm", c);
			f = fopen(cpath, "re");
			if (!f)
				continue;
			if (!fgets(name, sizeof(name), f))
				name[0] = '\0';
			fclose(f);
			name[strcspn(name, "\n")] = '\0';
			if (c > 0 && !strcmp(name, comm))
				return (pid_t)c;
		}
		usleep(20000);
	}
	return -1;
}

static size_t count_access(const struct bw_events *evs, Buildwarden__V1__ProcessAccessKind kind,
			   pid_t actor, pid_t target)
{
	size_t n = 0;

	for (size_t i = 0; i < evs->n; i++) {
		const Buildwarden__V1__Event *e = evs->ev[i];

		if (e->body_case != BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS || !e->process ||
		    !e->verdict)
			continue;
		if (e->process_access->kind == kind && e->process->pid == (uint32_t)actor &&
		    e->process_access->target_pid == (uint32_t)target && e->verdict->violation &&
		    !e->process->in_build)
			n++;
	}
	return n;
}

static void test_outsider_reaches_into_build(void **state)
{
	char events[PATH_MAX], go[PATH_MAX], mem[64];
	struct bw_events evs;
	struct iovec local = { 0 }, remote = { 0 };
	pid_t run, target;
	int st, fd;

	alarm(120);
	bw_ws_path(&ws, "ev.pb", events, sizeof(events));
	bw_ws_path(&ws, "GO", go, sizeof(go));
	run = fork();
	if (run == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		/* The build lives until the test has done its attacks, not for a fixed time:
		 * "sleep 2" can end before them when the test waits for a CPU that long. */
		execl(bw_bin(), bw_bin(), "run", "--events", events, "--", "/bin/sh", "-c",
		      "while [ ! -e \"$1\" ]; do sleep 0.1; done", "sh", go, (char *)NULL);
		_exit(127);
	}
	assert_true(run > 0);
	bw_track_pid(run);
	/* The build from its exec on: the agent's child that runs sh. */
	target = child_running(run, "sh", 60);
	assert_true(target > 0);

	/* The attacks, each harmless to the target: attach then detach, an open, an
	 * empty write. */
	if (ptrace(PTRACE_SEIZE, target, NULL, NULL) != 0)
		fail_msg("PTRACE_SEIZE %d: %s", (int)target, strerror(errno));
	assert_int_equal(ptrace(PTRACE_INTERRUPT, target, NULL, NULL), 0);
	assert_int_equal(waitpid(target, &st, __WALL), target);
	assert_int_equal(ptrace(PTRACE_DETACH, target, NULL, NULL), 0);
	/* Writes back the byte already at the start of the target's stack: a real write
	 * (that is what is reported; an open alone is not) that changes nothing. */
	{
		unsigned long lo = 0;
		char maps[64], line[512];
		unsigned char byte;
		FILE *f;

		snprintf(maps, sizeof(maps), "/proc/%d/maps", target);
		f = fopen(maps, "re");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "[stack]"))
				lo = strtoul(line, NULL, 16);
		fclose(f);
		assert_true(lo != 0);
		snprintf(mem, sizeof(mem), "/proc/%d/mem", target);
		fd = open(mem, O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &byte, 1, (off_t)lo), 1);
		assert_int_equal(pwrite(fd, &byte, 1, (off_t)lo), 1);
		close(fd);
	}
	assert_int_equal(process_vm_writev(target, &local, 0, &remote, 0, 0), 0);
	/* the attacks are done: the build may end */
	fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);

	st = bw_wait_bounded(run, 30);
	assert_true(st >= 0);
	bw_untrack_pid(run);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 77);
	assert_int_equal(bw_events_read(events, &evs), 0);
	assert_int_equal(count_access(&evs, BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PTRACE, getpid(), target), 1);
	assert_int_equal(count_access(&evs, BUILDWARDEN__V1__PROCESS_ACCESS_KIND__PROC_MEM_WRITE, getpid(), target), 1);
	assert_int_equal(count_access(&evs, BUILDWARDEN__V1__PROCESS_ACCESS_KIND__VM_WRITEV, getpid(), target), 1);
	bw_events_free(&evs);
}

static void test_build_into_itself_is_fine(void **state)
{
	/* the build writing its own memory through /proc (python: a real write) */
	const char *args[] = { "run", "--events", NULL, "--", "python3", "-c",
			       "import ctypes; b = ctypes.create_string_buffer(1); "
			       "f = open('/proc/self/mem', 'r+b', buffering=0); "
			       "f.seek(ctypes.addressof(b)); f.write(b'x')", NULL };
	char events[PATH_MAX];
	struct bw_events evs;
	struct bw_result r;

	alarm(60);
	args[2] = bw_ws_path(&ws, "ev.pb", events, sizeof(events));
	assert_int_equal(bw_run(args, 30, &r), 0);
	assert_int_equal(r.exit_code, 0);
	bw_result_free(&r);
	assert_int_equal(bw_events_read(events, &evs), 0);
	assert_int_equal(bw_ev_count(&evs, &(struct bw_filter){ .violation = BW_YES }), 0);
	bw_events_free(&evs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_outsider_reaches_into_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_into_itself_is_fine, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
