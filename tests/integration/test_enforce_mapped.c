// SPDX-License-Identifier: MIT
/* Enforce mode against the real kernel (issue 7): the two write routes that pass no
 * write-family syscall. A process outside the build, in its own session, opens a
 * protected file (and sets up its io_uring) BEFORE the run; during the run it writes
 * through
 *  - a shared writable mmap of the file (stores, then msync),
 *  - a shared read-only mmap of a read-write descriptor, mprotect'ed to writable,
 *  - io_uring IORING_OP_WRITE on the descriptor, inline and forced to a worker
 *    (IOSQE_ASYNC), and on the descriptor registered as a fixed file,
 *  - io_uring IORING_OP_OPENAT with O_WRONLY|O_TRUNC, then a write to what it opened.
 * Enforce: the actor dies by SIGKILL, no EVIL byte lands (content asserted), the event
 * says KILLED (or TAINTED for the truncating open, which lands), the run exits 77.
 * Audit: the change lands and is reported. The raw io_uring syscalls are used: no
 * liburing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/bwcase.h"
#include "lib/bwtest.h"

#define EXIT_VIOLATION 77
#define CONTENT "protected content\n"

enum op { OP_MMAP, OP_MMAP_MPROTECT, OP_URING_WRITE, OP_URING_ASYNC, OP_URING_FIXED, OP_URING_OPEN,
	  OP_URING_WARM, OP_PREMAPPED_MPROTECT };

static const struct {
	enum op op;
	const char *name;
} OPS[] = {
	{ OP_MMAP, "mmap shared writable" },
	{ OP_MMAP_MPROTECT, "mmap shared read-only, then mprotect" },
	{ OP_URING_WRITE, "io_uring write" },
	{ OP_URING_ASYNC, "io_uring write (IOSQE_ASYNC)" },
	{ OP_URING_FIXED, "io_uring write to a fixed file" },
	{ OP_URING_WARM, "io_uring write, ring with an io-wq worker already" },
	{ OP_URING_OPEN, "io_uring openat O_TRUNC, then write" },
};

static struct bw_case S;
static char target[PATH_MAX];

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

/* ---- a minimal io_uring, raw syscalls ---------------------------------------- */

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
	struct io_uring_params p;
	size_t sq_sz, cq_sz;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -1;
	sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_sz = cq_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
	sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		  IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -1;
	cq = (p.features & IORING_FEAT_SINGLE_MMAP)
		     ? sq
		     : mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			    IORING_OFF_CQ_RING);
	if (cq == MAP_FAILED)
		return -1;
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* Submits one request and waits for its completion; its result. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	int res;

	r->sqes[idx] = *sqe;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static int ring_write(struct ring *r, int fd, unsigned char flags)
{
	static char evil[] = "EVIL";
	struct io_uring_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_WRITE;
	sqe.fd = fd;
	sqe.flags = flags;
	sqe.addr = (uint64_t)(uintptr_t)evil;
	sqe.len = 4;
	sqe.off = 0;
	return ring_run(r, &sqe);
}

/* ---- the outsider ------------------------------------------------------------- */

struct outsider {
	enum op op;
	const char *file, *go, *done;
	int ready;
};

static int outsider_main(void *arg)
{
	struct outsider *o = arg;
	int fd = open(o->file, O_RDWR | O_CLOEXEC);
	int go = open(o->go, O_RDWR | O_CLOEXEC);
	int done = open(o->done, O_RDWR | O_CLOEXEC);
	struct io_uring_sqe sqe;
	struct ring r;
	long res = -1;
	char *m = MAP_FAILED;
	char c;

	if (fd < 0 || go < 0 || done < 0 || ring_init(&r))
		return 10;
	if (o->op == OP_URING_FIXED &&
	    syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, &fd, 1) != 0)
		return 11;
	if (o->op == OP_URING_WARM) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* a request forced to a worker leaves the worker idle, waiting for more */
		if (null < 0 || ring_write(&r, null, IOSQE_ASYNC) != 4)
			return 13;
	}
	/* mapped read-only before the run, through a descriptor open for writing: no mmap
	 * during the run for the write guard to see */
	if (o->op == OP_PREMAPPED_MPROTECT) {
		m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			return 14;
	}
	if (write(o->ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		return 12;
	switch (o->op) {
	case OP_MMAP:
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			memcpy(m, "EVIL", 4);
			res = msync(m, 4096, MS_SYNC);
		}
		break;
	case OP_MMAP_MPROTECT:
		m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED && mprotect(m, 4096, PROT_READ | PROT_WRITE) == 0) {
			memcpy(m, "EVIL", 4);
			res = msync(m, 4096, MS_SYNC);
		}
		break;
	case OP_PREMAPPED_MPROTECT:
		if (mprotect(m, 4096, PROT_READ | PROT_WRITE) == 0) {
			memcpy(m, "EVIL", 4);
			res = msync(m, 4096, MS_SYNC);
		} else {
			res = -errno;
		}
		break;
	case OP_URING_WRITE: res = ring_write(&r, fd, 0); break;
	case OP_URING_ASYNC:
	case OP_URING_WARM: res = ring_write(&r, fd, IOSQE_ASYNC); break;
	case OP_URING_FIXED: res = ring_write(&r, 0, IOSQE_FIXED_FILE); break;
	case OP_URING_OPEN:
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = IORING_OP_OPENAT;
		sqe.fd = AT_FDCWD;
		sqe.addr = (uint64_t)(uintptr_t)o->file;
		sqe.open_flags = O_WRONLY | O_TRUNC;
		res = ring_run(&r, &sqe);
		if (res >= 0)
			res = ring_write(&r, (int)res, 0);
		break;
	}
	/* closed before it says so: in audit mode a store through the mapping shows only
	 * when the last reference to the open file goes (FAN_CLOSE_WRITE) */
	if (o->op == OP_MMAP || o->op == OP_MMAP_MPROTECT || o->op == OP_PREMAPPED_MPROTECT)
		munmap(m, 4096);
	close(fd);
	dprintf(done, "survived %ld\n", res);
	return 0;
}

static pid_t start_outsider(struct outsider *o)
{
	pid_t pid = bw_start_outsider_ready(outsider_main, o, &o->ready);

	CHECK(pid > 0, "the outsider did not get ready: %s", strerror((int)-pid));
	return pid;
}

static void run_build(const char *mode, const char *script)
{
	char policy[PATH_MAX];
	const char *args[] = { "run", "--mode", mode, "--policy",
			       bw_ws_path(&S.ws, "policy.yaml", policy, sizeof(policy)),
			       "--events", S.events, "--", "/bin/sh", "-c", script, NULL };

	snprintf(S.events, sizeof(S.events), "%s/events.pb", S.ws.path);
	S.ran = bw_run_logged(args, 30, 0, &S.res, S.cmdline, sizeof(S.cmdline)) == 0;
	CHECK(S.ran, "cannot start %s", S.cmdline);
	CHECK(!S.res.timed_out, "buildwarden did not finish");
	S.have_evs = true;
	CHECK(bw_events_read(S.events, &S.evs) == 0, "events do not parse: %s", S.evs.err);
}

/* A protected src/f.txt, an outsider started on it (o->op) waiting for the build's
 * "go", and a build in mode that says go and prints what the outsider got ("RESULT
 * survived N"). Returns the outsider's wait status (-1: it did not end), its pid in pid. */
static int run_with_outsider(struct outsider *o, const char *mode, pid_t *pid)
{
	static char script[3 * PATH_MAX];

	CHECK(bw_ws_write(&S.ws, "src/f.txt", CONTENT, false) == 0, "write f.txt");
	CHECK(bw_ws_mkfifo(&S.ws, "go") == 0 && bw_ws_mkfifo(&S.ws, "done") == 0, "mkfifo");
	CHECK(realpath(bw_ws_tmp(&S.ws, "src/f.txt"), target) != NULL, "realpath");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: src\n") == 0,
	      "policy");
	o->file = target;
	o->go = bw_ws_tmp(&S.ws, "go");
	o->done = bw_ws_tmp(&S.ws, "done");
	*pid = start_outsider(o);
	snprintf(script, sizeof(script), "exec 3< '%s'; echo go > '%s'; read x <&3; echo \"RESULT $x\"",
		 o->done, o->go);
	run_build(mode, script);
	return bw_wait_bounded(*pid, 15);
}

static bool action_on(const char *path, pid_t pid, Buildwarden__V1__Action action)
{
	for (size_t k = 0; k < S.evs.n; k++) {
		const Buildwarden__V1__Event *e = S.evs.ev[k];

		if (e->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE && e->process &&
		    e->process->pid == (uint32_t)pid && !strcmp(e->file->path, path) &&
		    e->verdict && e->verdict->action == action)
			return true;
	}
	return false;
}

static bool tainted_on(const char *path, pid_t pid)
{
	return action_on(path, pid, BUILDWARDEN__V1__ACTION__TAINTED);
}

static void one_case(size_t k, bool enforce)
{
	struct outsider o = { .op = OPS[k].op };
	char *content;
	size_t len;
	pid_t pid;
	long i;
	int st;

	st = run_with_outsider(&o, enforce ? "enforce" : "audit", &pid);
	content = bw_read_file(target, &len);
	CHECK(S.res.exit_code == EXIT_VIOLATION, "%s: exit %d", OPS[k].name, S.res.exit_code);
	i = bw_ev_find(&S.evs, &(struct bw_filter){ .body = BUILDWARDEN__V1__EVENT__BODY_FILE,
						     .path = target, .pid = (uint32_t)pid,
						     .violation = BW_YES }, 0);
	CHECK(i >= 0, "%s: no violation event on %s", OPS[k].name, target);
	if (enforce && OPS[k].op == OP_URING_OPEN &&
	    action_on(target, pid, BUILDWARDEN__V1__ACTION__DENIED)) {
		/* Where the host has fanotify permission events, the io_uring open passed no
		 * open syscall, so the permission answer refuses it (no recorded intent counts
		 * as a write): nothing is truncated, the write that follows has no descriptor,
		 * and the outsider lives on to see its open fail. */
		CHECK(content && len == strlen(CONTENT) && !memcmp(content, CONTENT, len),
		      "%s: refused, yet the content changed", OPS[k].name);
		printf("MEASURED %s: refused=1 content_unchanged=1 action=DENIED\n", OPS[k].name);
	} else if (enforce) {
		bool evil = content && len >= 4 && memmem(content, len, "EVIL", 4);
		Buildwarden__V1__Action want = OPS[k].op == OP_URING_OPEN
						       ? BUILDWARDEN__V1__ACTION__TAINTED
						       : BUILDWARDEN__V1__ACTION__KILLED;

		CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "%s: the outsider was not killed (status %#x)", OPS[k].name, st);
		/* A known gap, measured here: after a truncating io_uring open (run on an
		 * io-wq worker), the write submitted next can still land although the
		 * outsider was killed as it entered io_uring_enter: the idle worker takes the
		 * fatal signal, and runs the queued write as the ring is torn down at exit.
		 * The file was already changed (the truncation) and is reported TAINTED;
		 * the pre-content permission layer, where present, refuses the write. */
		CHECK(content && (!evil || OPS[k].op == OP_URING_OPEN), "%s: the outsider's bytes landed",
		      OPS[k].name);
		if (OPS[k].op != OP_URING_OPEN)
			CHECK(len == strlen(CONTENT) && !memcmp(content, CONTENT, len),
			      "%s: the content changed", OPS[k].name);
		/* the first event on the file: KILLED from the kernel, or for the open the
		 * truncation fanotify saw; either way a TAINTED or KILLED verdict */
		if (want == BUILDWARDEN__V1__ACTION__TAINTED)
			CHECK(bw_ev_count(&S.evs, &(struct bw_filter){
					  .body = BUILDWARDEN__V1__EVENT__BODY_FILE, .path = target,
					  .pid = (uint32_t)pid, .violation = BW_YES }) >= 1 &&
				      tainted_on(target, pid),
			      "%s: no TAINTED event on %s", OPS[k].name, target);
		else
			CHECK(S.evs.ev[i]->verdict->action == want, "%s: action %d, not %d",
			      OPS[k].name, S.evs.ev[i]->verdict->action, want);
		if (OPS[k].op == OP_MMAP || OPS[k].op == OP_MMAP_MPROTECT)
			CHECK(S.evs.ev[i]->file->op == BUILDWARDEN__V1__FILE_OP__MMAP_WRITE,
			      "%s: op %d", OPS[k].name, S.evs.ev[i]->file->op);
		printf("MEASURED %s: killed=1 content_unchanged=%d outsider_bytes_landed=%d action=%s\n",
		       OPS[k].name, len == strlen(CONTENT) && !memcmp(content, CONTENT, len), evil,
		       want == BUILDWARDEN__V1__ACTION__KILLED ? "KILLED" : "TAINTED");
	} else {
		CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "%s: audit: the outsider did not finish (status %#x)", OPS[k].name, st);
		CHECK(content && len >= 4 && !memcmp(content, "EVIL", 4),
		      "%s: audit: the change did not land", OPS[k].name);
		CHECK(S.evs.ev[i]->verdict->action == BUILDWARDEN__V1__ACTION__AUDITED,
		      "%s: audit: action %d", OPS[k].name, S.evs.ev[i]->verdict->action);
	}
	free(content);
}

static void each_op(bool enforce)
{
	for (size_t k = 0; k < sizeof(OPS) / sizeof(OPS[0]); k++) {
		printf("case %s (%s)\n", OPS[k].name, enforce ? "enforce" : "audit");
		fflush(stdout);
		alarm(60);
		one_case(k, enforce);
		teardown(NULL);
		setup(&(void *){ NULL });
	}
}

static void test_outsider_killed(void **state)
{
	(void)state;
	each_op(true);
}

static void test_outsider_audit(void **state)
{
	(void)state;
	each_op(false);
}

/* A shared mapping made read-only before the run, through a descriptor open for
 * writing, made writable during it (issue 9): no mmap for the write guard to see. Where
 * a kernel layer refuses (BPF LSM file_mprotect, or fmod_ret on security_file_mprotect:
 * make vmtest rows 2-4) the mprotect fails with EPERM, no store lands and the refusal is
 * DENIED (op MMAP_WRITE). Elsewhere (this host) nothing sees
 * the mprotect nor the stores: the known gap is printed, not asserted. The expected
 * layer, where the harness knows it: BW_EXPECT_GUARD_LAYER (lsm, fmod_ret, none). */
static void test_enforce_premapped_mprotect(void **state)
{
	struct outsider o = { .op = OP_PREMAPPED_MPROTECT };
	const char *want = getenv("BW_EXPECT_GUARD_LAYER");
	const char *layer = "none";
	char *content;
	size_t len;
	pid_t pid;
	int st;

	(void)state;
	alarm(60);
	st = run_with_outsider(&o, "enforce", &pid);
	content = bw_read_file(target, &len);
	if (S.res.err && strstr(S.res.err, "refused in the kernel (BPF LSM mmap_file"))
		layer = "lsm";
	else if (S.res.err && strstr(S.res.err, "refused in the kernel (fmod_ret on security_mmap_file"))
		layer = "fmod_ret";
	if (want && *want)
		CHECK(!strcmp(want, layer),
		      "BW_EXPECT_GUARD_LAYER=%s, but the run summary says the mapping layer is %s", want,
		      layer);
	if (strcmp(layer, "none")) {
		/* It then closes its descriptor open for writing, which the fallback reports as
		 * a change by an outsider (OPEN_WRITE: TAINTED, killed): it may die after saying
		 * what it got, never before. */
		CHECK(st != -1 && ((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
				   (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)),
		      "%s: the outsider did not finish (status %#x)", layer, st);
		CHECK(S.res.out && strstr(S.res.out, "RESULT survived -1\n"),
		      "%s: the mprotect was not refused with EPERM", layer);
		CHECK(content && len == strlen(CONTENT) && !memcmp(content, CONTENT, len),
		      "%s: the content changed", layer);
		CHECK(action_on(target, pid, BUILDWARDEN__V1__ACTION__DENIED),
		      "%s: no DENIED event on %s", layer, target);
		CHECK(S.res.exit_code == EXIT_VIOLATION, "%s: exit %d", layer, S.res.exit_code);
		printf("MEASURED premapped mprotect (%s): refused=1 content_unchanged=1 action=DENIED\n",
		       layer);
	} else {
		printf("MEASURED premapped mprotect (no kernel layer, the known gap): "
		       "outsider_bytes_landed=%d exit=%d\n",
		       content && len >= 4 && !memcmp(content, "EVIL", 4), S.res.exit_code);
	}
	free(content);
}

/* The build maps its own outputs shared and writable, and uses io_uring on them. */
static void test_build_not_killed(void **state)
{
	(void)state;
	alarm(60);
	CHECK(bw_ws_write(&S.ws, "src/f.txt", CONTENT, false) == 0, "write f.txt");
	CHECK(realpath(bw_ws_tmp(&S.ws, "src/f.txt"), target) != NULL, "realpath");
	CHECK(bw_write_policy(&S.ws, NULL, "version: 1\nmode: audit\nprotect:\n  - path: src\n") == 0,
	      "policy");
	{
		static char script[2 * PATH_MAX];

		/* python3 is not a dependency: the test binary itself maps and writes */
		snprintf(script, sizeof(script), "BW_MAPPED_SELF='%s' '%s' && echo RESULT ok", target,
			 bw_self_exe());
		run_build("enforce", script);
	}
	CHECK(S.res.out && strstr(S.res.out, "RESULT ok"), "the build did not finish");
	CHECK(S.res.exit_code == 0, "exit %d", S.res.exit_code);
}

/* As the build's step in test_build_not_killed: map and write the file, then io_uring. */
static int self_writer(const char *file)
{
	int fd = open(file, O_RDWR | O_CLOEXEC);
	struct ring r;
	char *m;

	if (fd < 0 || ring_init(&r))
		return 1;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 2;
	memcpy(m, "BILD", 4);
	if (msync(m, 4096, MS_SYNC) || ring_write(&r, fd, 0) != 4)
		return 3;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_outsider_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outsider_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_not_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enforce_premapped_mprotect, setup, teardown),
	};
	const char *self = getenv("BW_MAPPED_SELF");

	if (self)
		return self_writer(self);
	if (geteuid() != 0) {
		printf("skipped: needs root\n");
		return 0;
	}
	/* make vmtest's refusing rows (2-4) run test_enforce_premapped_mprotect only */
	if (getenv("BW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BW_TEST_FILTER"));
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	bw_cleanup_all();
	return rc;
}
