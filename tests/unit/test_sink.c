// SPDX-License-Identifier: GPL-2.0
/* File sink and decoder together: what the agent writes (.pb, .pb.gz, appended runs)
 * is what `buildwarden decode` prints, and damaged files report where the damage is
 * after printing every good event before it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buildwarden.pb-c.h"
#include "transport/decode.h"
#include "transport/frame.h"
#include "transport/pbjson.h"
#include "transport/sink_file.h"

#define S(lit) ((char *)(lit))

static char tmpdir[] = "/tmp/bw_test_sink.XXXXXX";

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *tmp_path(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

/* Three different events: an exec, a file change, a run end. */
static Buildwarden__V1__Event evs[3];
static Buildwarden__V1__ExecBody ex = BUILDWARDEN__V1__EXEC_BODY__INIT;
static Buildwarden__V1__FileBody fb = BUILDWARDEN__V1__FILE_BODY__INIT;
static Buildwarden__V1__RunEnd re = BUILDWARDEN__V1__RUN_END__INIT;
static Buildwarden__V1__Process pr = BUILDWARDEN__V1__PROCESS__INIT;

static void fill_events(void)
{
	Buildwarden__V1__Event init = BUILDWARDEN__V1__EVENT__INIT;
	int i;

	for (i = 0; i < 3; i++) {
		evs[i] = init;
		evs[i].seq = (uint64_t)i + 1;
		evs[i].host = S("ci-01");
	}
	pr.pid = 99;
	pr.exe = S("/usr/bin/cc");
	evs[0].process = &pr;
	evs[0].body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	evs[0].exec = &ex;
	ex.filename = S("/usr/bin/cc");
	evs[1].body_case = BUILDWARDEN__V1__EVENT__BODY_FILE;
	evs[1].file = &fb;
	fb.op = BUILDWARDEN__V1__FILE_OP__RENAME;
	fb.path = S("/src/a\n.c");
	fb.new_path = S("/src/\xff.c");
	evs[2].body_case = BUILDWARDEN__V1__EVENT__BODY_RUN_END;
	evs[2].run_end = &re;
	re.exit_status = 77;
	re.violations = 1;
}

/* What decode must print for evs[0..n), n times over `times` appended runs. */
static char *expected_lines(size_t n, int times)
{
	char *s = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	while (times--) {
		for (i = 0; i < n; i++) {
			assert_int_equal(pbjson__print(f, &evs[i].base), 0);
			fputc('\n', f);
		}
	}
	fclose(f);
	return s;
}

struct captured {
	char *out, *err;
	int rc;
};

static void run_decode(const char *path, struct captured *c)
{
	size_t no, ne;
	FILE *out = open_memstream(&c->out, &no);
	FILE *err = open_memstream(&c->err, &ne);

	assert_non_null(out);
	assert_non_null(err);
	c->rc = decode__stream(path, out, err);
	fclose(out);
	fclose(err);
}

static void captured_free(struct captured *c)
{
	free(c->out);
	free(c->err);
}

static void write_events(const char *path, size_t n)
{
	struct sink_file *f;
	size_t i;
	int err = 1;

	f = sink_file__open(path, &err);
	assert_non_null(f);
	assert_int_equal(err, 0);
	for (i = 0; i < n; i++)
		assert_int_equal(sink_file__write_event(f, &evs[i]), 0);
	assert_int_equal(sink_file__close(f), 0);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void append_bytes(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "ab");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void round_trip(const char *name, int gz_magic)
{
	char *path = tmp_path(name), *want = expected_lines(3, 1);
	struct captured c;
	uint8_t head[2];
	FILE *f;

	write_events(path, 3);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(head, 1, 2, f), 2);
	fclose(f);
	assert_int_equal(head[0] == 0x1f && head[1] == 0x8b, gz_magic);

	run_decode(path, &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, want);
	assert_string_equal(c.err, "");
	captured_free(&c);
	free(want);
	free(path);
}

static void test_sink__plain_round_trip(void **state)
{
	round_trip("events.pb", 0);
}

static void test_sink__gzip_round_trip(void **state)
{
	round_trip("events.pb.gz", 1);
}

/* The agent reopens its file on restart: both runs must read back as one stream. */
static void test_sink__append_runs(void **state)
{
	static const char *names[] = { "append.pb", "append.pb.gz" };
	size_t i;

	for (i = 0; i < 2; i++) {
		char *path = tmp_path(names[i]), *want = expected_lines(3, 2);
		struct captured c;

		write_events(path, 3);
		write_events(path, 3);
		run_decode(path, &c);
		assert_int_equal(c.rc, 0);
		assert_string_equal(c.out, want);
		captured_free(&c);
		free(want);
		free(path);
	}
}

static void test_sink__generic_interface(void **state)
{
	char *path = tmp_path("generic.pb"), *want = expected_lines(2, 1);
	struct sink_file *f;
	struct sink s;
	struct captured c;
	int err;

	f = sink_file__open(path, &err);
	assert_non_null(f);
	s = sink_file__sink(f);
	assert_int_equal(sink__write(&s, &evs[0]), 0);
	assert_int_equal(sink__write(&s, &evs[1]), 0);
	assert_int_equal(sink__flush(&s), 0);
	/* flushed: a reader sees both before close */
	run_decode(path, &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, want);
	captured_free(&c);
	sink__close(&s);
	assert_null(s.ops);
	free(want);
	free(path);
}

static void test_sink__open_errors(void **state)
{
	int err = 0;

	assert_null(sink_file__open("/nonexistent-dir/x.pb", &err));
	assert_int_equal(err, -ENOENT);
	err = 0;
	assert_null(sink_file__open("/nonexistent-dir/x.pb.gz", &err));
	assert_int_equal(err, -ENOENT);
	assert_int_equal(sink_file__close(NULL), 0);
}

/* The agent runs as root and --events may name a path in /tmp: a planted symlink
 * or a file another user made must be refused, and nothing written through them. */
static void test_sink__refuses_symlink_and_foreign_file(void **state)
{
	char *target = tmp_path("target"), *link = tmp_path("link.pb"), *foreign = tmp_path("foreign.pb");
	struct stat st;
	int err = 0;

	assert_int_equal(symlink(target, link), 0);
	assert_null(sink_file__open(link, &err));
	assert_int_equal(err, -ELOOP);
	assert_int_equal(lstat(target, &st), -1); /* not created through the link */
	if (geteuid() == 0) {
		int fd = open(foreign, O_WRONLY | O_CREAT | O_EXCL, 0666);

		assert_true(fd >= 0);
		assert_int_equal(fchown(fd, 65534, 65534), 0);
		close(fd);
		err = 0;
		assert_null(sink_file__open(foreign, &err));
		assert_int_equal(err, -EPERM);
		assert_int_equal(stat(foreign, &st), 0);
		assert_int_equal(st.st_size, 0);
	}
	free(target);
	free(link);
	free(foreign);
}

/* Not a file the agent may append to: a FIFO (refused at once, never a blocked start,
 * with or without a reader), a directory, a device another user owns, a file in a
 * directory every user may write without the sticky bit (the file could be swapped). */
static void test_sink__refuses_fifo_and_shared_dir(void **state)
{
	char *fifo = tmp_path("events.fifo"), *dir = tmp_path("adir"), *shared = tmp_path("shared"),
	     *in_shared = tmp_path("shared/events.pb"), *sticky = tmp_path("sticky"),
	     *in_sticky = tmp_path("sticky/events.pb");
	struct sink_file *f;
	int err = 0, rd;

	alarm(10); /* a blocking open would hang here */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_null(sink_file__open(fifo, &err));
	assert_int_equal(err, -ENXIO);
	rd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader: the open succeeds, the type does not */
	assert_true(rd >= 0);
	err = 0;
	assert_null(sink_file__open(fifo, &err));
	assert_int_equal(err, -ENXIO);
	close(rd);
	alarm(0);

	assert_int_equal(mkdir(dir, 0700), 0);
	err = 0;
	assert_null(sink_file__open(dir, &err));
	assert_true(err == -EISDIR || err == -ENXIO);

	assert_int_equal(mkdir(shared, 0700), 0);
	assert_int_equal(chmod(shared, 0777), 0);
	err = 0;
	assert_null(sink_file__open(in_shared, &err));
	assert_int_equal(err, -EXDEV);
	assert_int_equal(access(in_shared, F_OK), -1); /* nothing created */

	assert_int_equal(mkdir(sticky, 0700), 0);
	assert_int_equal(chmod(sticky, 01777), 0); /* like /tmp: accepted */
	f = sink_file__open(in_sticky, &err);
	assert_non_null(f);
	assert_int_equal(sink_file__close(f), 0);

	/* a character device is accepted (/dev/null: discard), as the owner's */
	f = sink_file__open("/dev/null", &err);
	if (geteuid() == 0) {
		assert_non_null(f);
		assert_int_equal(sink_file__close(f), 0);
	} else {
		assert_null(f);
		assert_int_equal(err, -EPERM);
	}
	free(fifo);
	free(dir);
	free(shared);
	free(in_shared);
	free(sticky);
	free(in_sticky);
}

static void test_sink__too_big_refused(void **state)
{
	char *path = tmp_path("big.pb");
	Buildwarden__V1__Event ev = BUILDWARDEN__V1__EVENT__INIT;
	struct sink_file *f;
	char *host = malloc(BW_FRAME_MAX + 1);
	int err;

	assert_non_null(host);
	memset(host, 'h', BW_FRAME_MAX);
	host[BW_FRAME_MAX] = '\0';
	ev.host = host;
	f = sink_file__open(path, &err);
	assert_non_null(f);
	/* a frame no reader would accept is never written */
	assert_int_equal(sink_file__write_event(f, &ev), -EMSGSIZE);
	assert_int_equal(sink_file__write_event(f, &evs[0]), 0);
	assert_int_equal(sink_file__close(f), 0);
	free(host);
	free(path);
}

static void test_sink__write_error_is_sticky(void **state)
{
	struct sink_file *f;
	int err, i, ret = 0;

	if (access("/dev/full", W_OK) != 0)
		skip();
	f = sink_file__open("/dev/full", &err);
	assert_non_null(f);
	/* the 64 KiB buffer fills, then every later write reports the first error */
	for (i = 0; i < 100000 && !ret; i++)
		ret = sink_file__write_event(f, &evs[1]);
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(sink_file__write_event(f, &evs[0]), -ENOSPC);
	assert_int_equal(sink_file__close(f), -ENOSPC);
}

/* Large frames and many frames cross the decoder's read-chunk boundaries. */
static void test_decode__large_and_many(void **state)
{
	char *path = tmp_path("large.pb.gz");
	Buildwarden__V1__Event big = BUILDWARDEN__V1__EVENT__INIT;
	struct sink_file *f;
	struct captured c;
	size_t hlen = BW_FRAME_MAX - 64, i, lines = 0;
	char *host = malloc(hlen + 1);
	char *p;
	int err;

	assert_non_null(host);
	memset(host, 'x', hlen);
	host[hlen] = '\0';
	big.host = host;
	f = sink_file__open(path, &err);
	assert_non_null(f);
	for (i = 0; i < 5000; i++)
		assert_int_equal(sink_file__write_event(f, &evs[i % 3]), 0);
	assert_int_equal(sink_file__write_event(f, &big), 0);
	assert_int_equal(sink_file__write_event(f, &evs[0]), 0);
	assert_int_equal(sink_file__close(f), 0);

	run_decode(path, &c);
	assert_int_equal(c.rc, 0);
	for (p = c.out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 5002);
	assert_non_null(strstr(c.out, "{\"seq\":\"1\",\"host\":\"ci-01\",\"process\""));
	assert_int_equal(strlen(c.out), strlen(c.out)); /* printed in full */
	assert_true(strlen(c.out) > hlen);
	captured_free(&c);
	free(host);
	free(path);
}

static void expect_corrupt(const char *path, size_t good, off_t offset,
			   const char *reason)
{
	char *want = expected_lines(good, 1), *msg;
	struct captured c;

	run_decode(path, &c);
	assert_int_equal(c.rc, DECODE_BAD_DATA);
	assert_string_equal(c.out, want);
	assert_true(asprintf(&msg,
			     "decode: %s: corrupt frame at byte offset %lld: %s\n",
			     path, (long long)offset, reason) > 0);
	assert_string_equal(c.err, msg);
	free(msg);
	captured_free(&c);
	free(want);
}

static void test_decode__garbage_after_three(void **state)
{
	char *path = tmp_path("garbage.pb");
	uint8_t junk[12];
	off_t good;

	memset(junk, 0xff, sizeof(junk));
	write_events(path, 3);
	good = file_size(path);
	append_bytes(path, junk, sizeof(junk));
	expect_corrupt(path, 3, good, "invalid length varint");
	free(path);
}

static void test_decode__unparseable_payload(void **state)
{
	/* a well-framed body that is not protobuf: a truncated tag varint */
	static const uint8_t junk[] = { 0x02, 0xff, 0xff };
	char *plain = tmp_path("payload.pb"), *gz = tmp_path("payload.pb.gz");
	gzFile g;
	off_t good;

	write_events(plain, 3);
	good = file_size(plain);
	append_bytes(plain, junk, sizeof(junk));
	expect_corrupt(plain, 3, good, "payload is not a valid Event message");

	/* the same in gzip, junk in a second member: offsets count uncompressed bytes */
	write_events(gz, 3);
	g = gzopen(gz, "ab");
	assert_non_null(g);
	assert_int_equal(gzwrite(g, junk, sizeof(junk)), (int)sizeof(junk));
	assert_int_equal(gzclose(g), Z_OK);
	expect_corrupt(gz, 3, good, "payload is not a valid Event message");
	free(plain);
	free(gz);
}

static void test_decode__truncated_final_frame(void **state)
{
	char *path = tmp_path("trunc.pb");
	off_t good, full;

	write_events(path, 3);
	good = file_size(path);
	{
		struct sink_file *f;
		int err;

		f = sink_file__open(path, &err);
		assert_non_null(f);
		assert_int_equal(sink_file__write_event(f, &evs[0]), 0);
		assert_int_equal(sink_file__close(f), 0);
	}
	full = file_size(path);
	/* cut inside the body, then inside... nothing: only the length byte left */
	assert_int_equal(truncate(path, full - 3), 0);
	expect_corrupt(path, 3, good, "truncated frame");
	assert_int_equal(truncate(path, good + 1), 0);
	expect_corrupt(path, 3, good, "truncated frame");
	free(path);
}

static void test_decode__oversized_length(void **state)
{
	char *path = tmp_path("huge.pb");
	uint8_t hdr[FRAME_VARINT_MAX];
	size_t n = frame__encode_len(1ull << 40, hdr);
	off_t good;

	write_events(path, 3);
	good = file_size(path);
	append_bytes(path, hdr, n);
	expect_corrupt(path, 3, good, "frame length above the limit");
	free(path);
}

static void test_decode__truncated_gzip(void **state)
{
	char *path = tmp_path("cut.pb.gz");
	struct captured c;

	write_events(path, 3);
	assert_int_equal(truncate(path, file_size(path) - 4), 0);
	run_decode(path, &c);
	/* the gzip trailer is gone: whatever the frames say, the file is damaged */
	assert_int_equal(c.rc, DECODE_BAD_DATA);
	assert_non_null(strstr(c.err, "decode: "));
	assert_non_null(strstr(c.err, "gzip"));
	captured_free(&c);
	free(path);
}

static void test_decode__empty_input(void **state)
{
	char *path = tmp_path("empty.pb");
	struct captured c;

	append_bytes(path, "", 0);
	run_decode(path, &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, "");
	assert_string_equal(c.err, "");
	captured_free(&c);
	free(path);
}

static void test_decode__cannot_open(void **state)
{
	struct captured c;
	char *msg;

	run_decode("/nonexistent/events.pb", &c);
	assert_int_equal(c.rc, DECODE_NO_INPUT);
	assert_true(asprintf(&msg, "decode: cannot open '/nonexistent/events.pb': %s\n",
			     strerror(ENOENT)) > 0);
	assert_string_equal(c.err, msg);
	free(msg);
	captured_free(&c);

	run_decode(tmpdir, &c);
	assert_int_equal(c.rc, DECODE_NO_INPUT);
	assert_non_null(strstr(c.err, strerror(EISDIR)));
	captured_free(&c);
}

static void test_decode__stdin(void **state)
{
	char *path = tmp_path("stdin.pb.gz"), *want = expected_lines(3, 1);
	struct captured c;
	int saved, fd;

	write_events(path, 3);
	saved = dup(STDIN_FILENO);
	fd = open(path, O_RDONLY);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	run_decode(NULL, &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, want);
	captured_free(&c);
	/* "-" is stdin too, and stdin is still open after the first decode */
	assert_int_equal(lseek(STDIN_FILENO, 0, SEEK_SET), 0);
	run_decode("-", &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, want);
	captured_free(&c);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	free(want);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sink__plain_round_trip),
		cmocka_unit_test(test_sink__gzip_round_trip),
		cmocka_unit_test(test_sink__append_runs),
		cmocka_unit_test(test_sink__generic_interface),
		cmocka_unit_test(test_sink__open_errors),
		cmocka_unit_test(test_sink__refuses_symlink_and_foreign_file),
		cmocka_unit_test(test_sink__refuses_fifo_and_shared_dir),
		cmocka_unit_test(test_sink__too_big_refused),
		cmocka_unit_test(test_sink__write_error_is_sticky),
		cmocka_unit_test(test_decode__large_and_many),
		cmocka_unit_test(test_decode__garbage_after_three),
		cmocka_unit_test(test_decode__unparseable_payload),
		cmocka_unit_test(test_decode__truncated_final_frame),
		cmocka_unit_test(test_decode__oversized_length),
		cmocka_unit_test(test_decode__truncated_gzip),
		cmocka_unit_test(test_decode__empty_input),
		cmocka_unit_test(test_decode__cannot_open),
		cmocka_unit_test(test_decode__stdin),
	};

	fill_events();
	return cmocka_run_group_tests(tests, setup, teardown);
}
