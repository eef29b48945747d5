// SPDX-License-Identifier: GPL-2.0
/* The agent's spool: what goes in comes out in seq order, chained, across seals,
 * compression, reopen and adoption by a later process; drops are counted and told as
 * Skips in order; damaged segments are reported and skipped, never crashed on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buildwarden.pb-c.h"
#include "collector.pb-c.h"
#include "transport/chain.h"
#include "transport/frame.h"
#include "transport/spool.h"

#define S(lit) ((char *)(lit))

static char root[64];

static int setup(void **state)
{
	strcpy(root, "/tmp/bw_test_spool.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	umount2(root, MNT_DETACH); /* the tmpfs test mounts one; harmless otherwise */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static unsigned stat_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0;
}

/* An exec event whose argv pads it to about pad bytes. */
static void make_event(uint64_t seq, size_t pad, char *padbuf, Buildwarden__V1__Event *ev,
		       Buildwarden__V1__ExecBody *ex, char **argv)
{
	buildwarden__v1__event__init(ev);
	buildwarden__v1__exec_body__init(ex);
	ev->seq = seq;
	ev->time_ns = 1000 + seq;
	ev->host = S("host1");
	ev->run_id = S("run");
	ex->filename = S("/usr/bin/cc");
	memset(padbuf, 'a' + (int)(seq % 26), pad);
	padbuf[pad] = '\0';
	argv[0] = padbuf;
	ev->body_case = BUILDWARDEN__V1__EVENT__BODY_EXEC;
	ev->exec = ex;
}

static int append(struct spool *sp, uint64_t seq, size_t pad)
{
	Buildwarden__V1__Event ev;
	Buildwarden__V1__ExecBody ex;
	char *argv[1], *buf = malloc(pad + 1);
	int rc;

	assert_non_null(buf);
	make_event(seq, pad, buf, &ev, &ex, argv);
	ex.filename = buf; /* pad the event itself */
	rc = spool__append(sp, &ev);
	free(buf);
	return rc;
}

static struct spool *open_run(const char *run_id, const char *key, uint64_t max)
{
	struct spool_opts o = {
		.dir = root,
		.run_id = run_id,
		.host = "host1",
		.agent_id = "agent-a",
		.key = (const uint8_t *)key,
		.keylen = key ? strlen(key) : 0,
		.max_bytes = max,
	};
	char err[256] = "";
	struct spool *sp = spool__open(&o, err, sizeof(err));

	if (!sp)
		fail_msg("spool__open: %s", err);
	return sp;
}

/* What a reader delivered, checked the way the collector checks it. */
struct seen {
	uint64_t seqs[4096];
	size_t n;
	uint64_t skip_first[16], skip_last[16];
	size_t n_skips;
	uint8_t chain[CHAIN_LEN];
	uint64_t prev;
	const char *run_id; /* seq 1 chains from chain__init(run_id) */
};

static void check_record(const struct spool_rec *rec, struct seen *s, const char *key)
{
	Buildwarden__V1__AgentMessage *m;
	uint64_t len;
	int k = frame__decode_len(rec->frame, rec->frame_len, &len);

	/* the record is exactly a framed AgentMessage that protobuf-c parses */
	assert_true(k > 0);
	assert_int_equal((size_t)k + len, rec->frame_len);
	m = buildwarden__v1__agent_message__unpack(NULL, len, rec->frame + k);
	assert_non_null(m);
	if (rec->kind == SPOOL_REC_EVENT) {
		Buildwarden__V1__Event *ev;
		uint8_t want[CHAIN_LEN];

		assert_int_equal(m->msg_case, BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT);
		assert_int_equal(m->event->seq, rec->first);
		ev = buildwarden__v1__event__unpack(NULL, m->event->event.len, m->event->event.data);
		assert_non_null(ev);
		assert_int_equal(ev->seq, rec->first);
		buildwarden__v1__event__free_unpacked(ev, NULL);
		if (rec->first == 1 && !s->prev)
			assert_int_equal(chain__init(s->run_id ? s->run_id : "", (const uint8_t *)key,
						     key ? strlen(key) : 0, s->chain), 0);
		assert_int_equal(chain__next(s->chain, rec->first, m->event->event.data,
					     m->event->event.len, (const uint8_t *)key,
					     key ? strlen(key) : 0, want), 0);
		assert_int_equal(m->event->chain.len, CHAIN_LEN);
		/* a reader that starts after deleted segments, or reads past a damaged
		 * one, cannot know the chain before: the collector records that break */
		if (rec->first == s->prev + 1)
			assert_memory_equal(m->event->chain.data, want, CHAIN_LEN);
		else
			memcpy(want, m->event->chain.data, CHAIN_LEN);
		memcpy(s->chain, want, CHAIN_LEN);
		s->seqs[s->n++] = rec->first;
	} else {
		assert_int_equal(m->msg_case, BUILDWARDEN__V1__AGENT_MESSAGE__MSG_SKIP);
		assert_int_equal(m->skip->first_seq, rec->first);
		assert_int_equal(m->skip->last_seq, rec->last);
		assert_true(s->n_skips < 16);
		s->skip_first[s->n_skips] = rec->first;
		s->skip_last[s->n_skips++] = rec->last;
	}
	assert_true(rec->first > s->prev);
	s->prev = rec->last;
	buildwarden__v1__agent_message__free_unpacked(m, NULL);
}

static void read_all(struct spool *sp, struct spool_run *run, uint64_t from, struct seen *s,
		     const char *key)
{
	struct spool_reader *r = spool_reader__new(sp, run, from);
	struct spool_rec rec;
	int rc;

	s->run_id = run->meta.run_id;
	assert_non_null(r);
	while ((rc = spool_reader__next(r, &rec)) == 1)
		check_record(&rec, s, key);
	assert_int_equal(rc, 0);
	spool_reader__free(r);
}

static size_t count_files(const char *run_id, const char *suffix)
{
	char path[256];
	struct dirent *de;
	size_t n = 0, sl = strlen(suffix);
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, run_id);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static bool exists(const char *run_id)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, run_id);
	return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* ---- records ---- */

static void test_spool__records(void **state)
{
	Buildwarden__V1__EventFrame ef = BUILDWARDEN__V1__EVENT_FRAME__INIT;
	Buildwarden__V1__AgentMessage am = BUILDWARDEN__V1__AGENT_MESSAGE__INIT;
	uint8_t buf[512], chain[CHAIN_LEN], ev[3] = { 1, 2, 3 };
	struct spool_rec rec;
	size_t n, off = 0, len;
	uint64_t first, last;

	/* a Skip we encode is what protobuf-c reads */
	n = spool__encode_skip(5, 9, "spool full", buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(spool__next_record(buf, n, &off, &rec), 1);
	assert_int_equal(rec.kind, SPOOL_REC_SKIP);
	assert_int_equal(rec.first, 5);
	assert_int_equal(rec.last, 9);
	assert_int_equal(rec.reason_len, 10);
	assert_memory_equal(rec.reason, "spool full", 10);
	assert_int_equal(spool__next_record(buf, n, &off, &rec), 0);
	assert_int_equal(spool__encode_skip(5, 9, "spool full", buf, 10), 0);

	/* an EventFrame packed by protobuf-c parses too */
	memset(chain, 7, sizeof(chain));
	ef.seq = 300;
	ef.event.data = ev;
	ef.event.len = sizeof(ev);
	ef.chain.data = chain;
	ef.chain.len = CHAIN_LEN;
	am.msg_case = BUILDWARDEN__V1__AGENT_MESSAGE__MSG_EVENT;
	am.event = &ef;
	len = buildwarden__v1__agent_message__pack(&am, buf + 2);
	assert_int_equal(frame__encode_len(len, buf), 1);
	memmove(buf + 1, buf + 2, len);
	off = 0;
	assert_int_equal(spool__next_record(buf, len + 1, &off, &rec), 1);
	assert_int_equal(rec.kind, SPOOL_REC_EVENT);
	assert_int_equal(rec.first, 300);
	assert_int_equal(rec.event_len, 3);
	assert_memory_equal(rec.chain, chain, CHAIN_LEN);

	/* damage: a chain of the wrong size, a Hello, an empty message, a truncation */
	buf[len] ^= 0x01; /* last chain byte: still parses */
	off = 0;
	assert_int_equal(spool__next_record(buf, len + 1, &off, &rec), 1);
	off = 0;
	assert_int_equal(spool__next_record(buf, len, &off, &rec), FRAME_ETRUNC);
	assert_int_equal(off, 0);
	{
		const uint8_t hello[] = { 4, 0x0a, 2, 0x08, 1 }, empty[] = { 0 },
			      badchain[] = { 8, 0x12, 6, 0x08, 1, 0x1a, 2, 0, 0 },
			      backwards[] = { 5, 0x1a, 3, 0x08, 5, 0x10, 4 };

		off = 0;
		assert_int_equal(spool__next_record(hello, sizeof(hello), &off, &rec), -EBADMSG);
		off = 0;
		assert_int_equal(spool__next_record(empty, sizeof(empty), &off, &rec), -EBADMSG);
		off = 0;
		assert_int_equal(spool__next_record(badchain, sizeof(badchain), &off, &rec),
				 -EBADMSG);
		off = 0;
		assert_int_equal(spool__next_record(backwards, sizeof(backwards), &off, &rec),
				 -EBADMSG);
	}

	/* scan: seqs must increase */
	n = spool__encode_skip(5, 9, "a", buf, sizeof(buf));
	n += spool__encode_skip(9, 10, "b", buf + n, sizeof(buf) - n);
	assert_int_equal(spool__scan(buf, n, &len, &first, &last, NULL), -EBADMSG);
	assert_int_equal(first, 5);
	assert_int_equal(last, 9);
	assert_true(len > 0 && len < n);
}

/* ---- writing and reading ---- */

static void test_spool__append_read_chain(void **state)
{
	struct spool *sp = open_run("r1", NULL, 0);
	struct spool_run *run;
	struct spool_stats st;
	struct seen *s = calloc(1, sizeof(*s));
	struct spool_reader *r;
	struct spool_rec rec;

	assert_int_equal(spool__n_runs(sp), 1);
	run = spool__run(sp, 0);
	assert_true(run->current);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(append(sp, i, 100), 0);
	assert_int_equal(append(sp, 3, 100), -EINVAL); /* seq must move forward */

	/* the reader follows the live segment as it grows */
	s->run_id = "r1";
	r = spool_reader__new(sp, run, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(spool_reader__next(r, &rec), 1);
		check_record(&rec, s, NULL);
	}
	assert_int_equal(spool_reader__next(r, &rec), 0);
	assert_false(spool_reader__eof(r));
	assert_int_equal(append(sp, 4, 100), 0);
	assert_int_equal(append(sp, 6, 100), 0); /* gaps are the agent's business */
	assert_int_equal(spool_reader__next(r, &rec), 1);
	check_record(&rec, s, NULL);
	assert_int_equal(spool_reader__next(r, &rec), 1);
	check_record(&rec, s, NULL);
	assert_int_equal(s->seqs[4], 6);
	assert_int_equal(spool_reader__next(r, &rec), 0);
	spool_reader__free(r);

	spool__stats(sp, &st);
	assert_int_equal(st.spooled, 5);
	assert_int_equal(st.last_seq, 6);
	assert_true(st.usage > 500);
	assert_int_equal(count_files("r1", ".live"), 1);

	/* a reader from seq 4 starts there */
	memset(s, 0, sizeof(*s));
	r = spool_reader__new(sp, run, 4);
	assert_int_equal(spool_reader__next(r, &rec), 1);
	assert_int_equal(rec.first, 4);
	spool_reader__free(r);
	spool__close(sp);
	assert_int_equal(count_files("r1", ".live"), 0);
	assert_int_equal(count_files("r1", ".seg"), 1);
	free(s);
}

/* Seal at 1 MiB, compress, reopen the same run and continue the chain, ack-delete. */
static void test_spool__seal_compress_resume_ack(void **state)
{
	const char *key = "0123456789abcdef";
	struct spool *sp = open_run("r2", key, 0);
	struct seen *s = calloc(1, sizeof(*s));
	struct spool_stats st;
	uint64_t usage_before;
	size_t nseg;

	for (uint64_t i = 1; i <= 300; i++)
		assert_int_equal(append(sp, i, 10000), 0);
	nseg = count_files("r2", ".seg");
	assert_int_equal(nseg, 2); /* ~3 MB in 1 MiB segments, the third is live */
	assert_int_equal(count_files("r2", ".live"), 1);

	/* the sender's housekeeping compresses sealed segments */
	spool__stats(sp, &st);
	usage_before = st.usage;
	assert_int_equal(spool__maintain(sp, spool__run(sp, 0), 0), 0);
	assert_int_equal(count_files("r2", ".segz"), 2);
	assert_int_equal(count_files("r2", ".seg"), 0);
	spool__stats(sp, &st);
	assert_true(st.usage < usage_before / 2);

	read_all(sp, spool__run(sp, 0), 1, s, key);
	assert_int_equal(s->n, 300);
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(s->seqs[i], i + 1);
	spool__close(sp);

	/* a later process resumes the same run: seq and chain carry on */
	sp = open_run("r2", key, 0);
	assert_int_equal(append(sp, 300, 10), -EINVAL);
	assert_int_equal(append(sp, 301, 10), 0);
	memset(s, 0, sizeof(*s));
	read_all(sp, spool__run(sp, 0), 1, s, key);
	assert_int_equal(s->n, 301);

	/* acks delete whole sealed segments only */
	assert_int_equal(spool__ack(sp, spool__run(sp, 0), 5), 0);
	assert_true(spool__ack(sp, spool__run(sp, 0), 300) >= 3);
	assert_int_equal(count_files("r2", ".segz"), 0);
	assert_int_equal(count_files("r2", ".live"), 1);
	spool__stats(sp, &st);
	assert_true(st.usage < 200);
	spool__close(sp);

	/* the wrong key setting is refused rather than producing a broken chain */
	{
		struct spool_opts o = { .dir = root, .run_id = "r2" };
		char err[256];

		assert_null(spool__open(&o, err, sizeof(err)));
		assert_non_null(strstr(err, "with a key"));
	}
	free(s);
}

/* A process dies mid-run; the next one adopts its run, oldest first, before its own. */
static void test_spool__adopt_old_runs(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct spool *sp;
	pid_t pid;
	int status;

	for (int k = 0; k < 2; k++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct spool_opts o = { .dir = root, .run_id = k ? "old-b" : "old-a" };
			char err[256];
			struct spool *c = spool__open(&o, err, sizeof(err));

			if (!c)
				_exit(1);
			for (uint64_t i = 1; i <= 50; i++)
				if (append(c, i, 30000))
					_exit(2);
			_exit(0); /* like kill -9: no seal, no close */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_int_equal(status, 0);
		usleep(2000); /* created_ns orders them */
	}
	/* a truncated tail, as after a crash in the middle of a write */
	{
		char path[256];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/old-b", root);
		d = opendir(path);
		while ((de = readdir(d)))
			if (strstr(de->d_name, ".live")) {
				char f[512];
				int fd;

				snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
				fd = open(f, O_WRONLY | O_APPEND);
				assert_int_equal(write(fd, "\x80\x01garbage", 9), 9);
				close(fd);
			}
		closedir(d);
	}
	/* an empty run is removed at adoption; a directory that is not a run is not */
	{
		const char meta[] = "buildwarden-spool 1\nrun_id old-empty\nhost h\n";
		char path[256];

		snprintf(path, sizeof(path), "%s/old-empty", root);
		assert_int_equal(mkdir(path, 0700), 0);
		snprintf(path, sizeof(path), "%s/old-empty/meta", root);
		write_file(path, meta, sizeof(meta) - 1);
		snprintf(path, sizeof(path), "%s/not-a-run", root);
		assert_int_equal(mkdir(path, 0700), 0);
	}

	sp = open_run("new", NULL, 0);
	assert_false(exists("old-empty"));
	assert_true(exists("not-a-run"));
	assert_int_equal(spool__n_runs(sp), 3);
	assert_string_equal(spool__run(sp, 0)->meta.run_id, "old-a");
	assert_string_equal(spool__run(sp, 1)->meta.run_id, "old-b");
	assert_string_equal(spool__run(sp, 2)->meta.run_id, "new");
	assert_int_equal(spool__run(sp, 1)->meta.last_seq, 50);
	assert_int_equal(count_files("old-b", ".live"), 0);

	for (int k = 0; k < 2; k++) {
		struct spool_run *run = spool__run(sp, (size_t)k);
		struct spool_reader *r = spool_reader__new(sp, run, 1);
		struct spool_rec rec;

		memset(s, 0, sizeof(*s));
		s->run_id = run->meta.run_id;
		while (spool_reader__next(r, &rec) == 1)
			check_record(&rec, s, NULL);
		assert_true(spool_reader__eof(r));
		assert_int_equal(s->n, 50);
		spool_reader__free(r);
		assert_int_equal(spool__remove_run(sp, run), 0);
	}
	assert_false(exists("old-a"));
	assert_false(exists("old-b"));
	{
		struct spool_stats st;

		spool__stats(sp, &st);
		assert_int_equal(st.usage, 0);
		assert_int_equal(st.corrupt, 1); /* old-b's torn tail, reported once */
	}

	/* a run locked by a live process is left to it */
	pid = fork();
	if (pid == 0) {
		struct spool_opts o = { .dir = root, .run_id = "busy" };
		char err[256];
		struct spool *c = spool__open(&o, err, sizeof(err));

		append(c, 1, 10);
		pause();
		_exit(0);
	}
	usleep(200000);
	spool__close(sp);
	sp = open_run("new2", NULL, 0);
	for (size_t i = 0; i < spool__n_runs(sp); i++)
		assert_string_not_equal(spool__run(sp, i)->meta.run_id, "busy");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	spool__close(sp);
	free(s);
}

/* Over the cap: drops are counted and told as Skips in order, the chain skips them. */
static void test_spool__cap_skips(void **state)
{
	struct spool *sp = open_run("cap", NULL, 5000);
	struct seen *s = calloc(1, sizeof(*s));
	struct spool_stats st;
	int rc;

	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(append(sp, i, 1000), 0);
	for (uint64_t i = 5; i <= 9; i++)
		assert_int_equal(append(sp, i, 1000), -ENOSPC);
	spool__stats(sp, &st);
	assert_int_equal(st.full_drops, 5);
	assert_int_equal(st.last_seq, 9);
	/* the first drop sealed the full live segment (1..4) so an ack can free it; sealing
	 * now writes the pending Skip over the cap into a second one; acks free both */
	assert_int_equal(spool__seal(sp, false), 0);
	assert_int_equal(spool__ack(sp, spool__run(sp, 0), 9), 2);
	assert_int_equal(append(sp, 10, 1000), 0);
	/* an event too large for a frame is dropped alone; its Skip goes with seq 12 */
	rc = append(sp, 11, BW_FRAME_MAX);
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(append(sp, 12, 100), 0);
	spool__stats(sp, &st);
	assert_int_equal(st.full_drops, 5);
	assert_int_equal(st.other_drops, 1);
	assert_int_equal(st.spooled, 6);

	/* 1..9 were acknowledged and deleted; left: 10, Skip{11}, 12 */
	read_all(sp, spool__run(sp, 0), 1, s, NULL);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->seqs[0], 10);
	assert_int_equal(s->seqs[1], 12);
	assert_int_equal(s->n_skips, 1);
	assert_int_equal(s->skip_first[0], 11);
	assert_int_equal(s->skip_last[0], 11);
	spool__close(sp);
	free(s);
}

/* The Skip of a full spool precedes the next event in the same segment, and the
 * chain continues from the last event written (checked against a fresh chain). */
static void test_spool__skip_in_order(void **state)
{
	struct spool *sp = open_run("order", NULL, 3000);
	struct seen *s = calloc(1, sizeof(*s));

	assert_int_equal(append(sp, 1, 1000), 0);
	assert_int_equal(append(sp, 2, 1000), 0);
	assert_int_equal(append(sp, 3, 1000), -ENOSPC);
	assert_int_equal(append(sp, 4, 1000), -ENOSPC);
	spool__close(sp); /* final seal writes Skip{3,4} */
	sp = open_run("order", NULL, 1 << 20);
	assert_int_equal(append(sp, 5, 10), 0);
	read_all(sp, spool__run(sp, 0), 1, s, NULL);
	assert_int_equal(s->n, 3);
	assert_int_equal(s->n_skips, 1);
	assert_int_equal(s->skip_first[0], 3);
	assert_int_equal(s->skip_last[0], 4);
	assert_int_equal(s->seqs[2], 5);
	spool__close(sp);
	free(s);
}

/* A real full disk: a 64 KiB tmpfs. */
static void test_spool__enospc(void **state)
{
	struct spool *sp;
	struct seen *s = calloc(1, sizeof(*s));
	struct spool_stats st;
	uint64_t i, ok = 0, dropped = 0;

	if (mount("bwspool", root, "tmpfs", 0, "size=64k,mode=0700") < 0) {
		free(s);
		skip();
	}
	sp = open_run("full", NULL, 1ull << 30);
	for (i = 1; i <= 200; i++) {
		int rc = append(sp, i, 1000);

		if (rc == 0)
			ok++;
		else if (rc == -ENOSPC)
			dropped++;
		else
			fail_msg("append %lu: %d", (unsigned long)i, rc);
	}
	assert_true(ok > 10);
	assert_true(dropped > 10);
	spool__stats(sp, &st);
	assert_int_equal(st.full_drops, dropped);
	read_all(sp, spool__run(sp, 0), 1, s, NULL);
	assert_int_equal(s->n, ok);
	spool__close(sp);
	free(s);
	umount2(root, MNT_DETACH);
}

/* Damaged segments: the good records before the damage are read, the damage is
 * reported and counted, the next segment is read as usual. */
static void test_spool__corrupt_segments(void **state)
{
	struct spool *sp = open_run("bad", NULL, 0);
	struct seen *s = calloc(1, sizeof(*s));
	struct spool_stats st;
	char dir[128], path[512];
	struct dirent *de;
	DIR *d;
	int nseg = 0;

	for (uint64_t i = 1; i <= 400; i++)
		assert_int_equal(append(sp, i, 10000), 0);
	assert_int_equal(spool__maintain(sp, spool__run(sp, 0), 0), 0);

	/* damage: a flipped length in the first segment (compressed; re-written raw),
	 * a truncated second one, garbage for the third */
	snprintf(dir, sizeof(dir), "%s/bad", root);
	d = opendir(dir);
	while ((de = readdir(d))) {
		uint8_t *buf;
		size_t len;
		struct stat st2;
		int fd;

		if (!strstr(de->d_name, ".segz"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_int_equal(stat(path, &st2), 0);
		buf = malloc((size_t)st2.st_size);
		fd = open(path, O_RDONLY);
		assert_int_equal(read(fd, buf, (size_t)st2.st_size), st2.st_size);
		close(fd);
		len = (size_t)st2.st_size;
		if (strncmp(de->d_name, "00000000000000000001-", 21) == 0) {
			struct spool_rec rec;
			uint8_t *raw;
			size_t rawlen, off = 0;

			/* a record in the middle gets an empty body: framing still parses,
			 * the record does not (payload damage is the collector's to find:
			 * the chain breaks) */
			assert_int_equal(spool__inflate(buf, len, &raw, &rawlen), 0);
			while (off < rawlen / 2)
				assert_int_equal(spool__next_record(raw, rawlen, &off, &rec), 1);
			raw[off] = 0x00;
			path[strlen(path) - 1] = '\0'; /* .segz -> .seg */
			write_file(path, raw, rawlen);
			path[strlen(path)] = 'z';
			unlink(path);
			free(raw);
		} else if (nseg == 1) {
			write_file(path, buf, len / 2);
		} else {
			memset(buf, 0x5a, len);
			write_file(path, buf, len);
		}
		nseg++;
		free(buf);
	}
	closedir(d);
	assert_int_equal(nseg, 3);

	read_all(sp, spool__run(sp, 0), 1, s, NULL);
	spool__stats(sp, &st);
	assert_int_equal(st.corrupt, 3);
	/* seqs read are increasing, start at 1, end at 400 (the live segment is intact) */
	assert_int_equal(s->seqs[0], 1);
	assert_int_equal(s->seqs[s->n - 1], 400);
	assert_true(s->n > 100 && s->n < 400);
	spool__close(sp);
	free(s);
}

static void test_spool__bad_opts(void **state)
{
	char err[256];
	struct spool_opts o = { .dir = root, .run_id = "../x" };

	assert_null(spool__open(&o, err, sizeof(err)));
	o.run_id = "";
	assert_null(spool__open(&o, err, sizeof(err)));
	o.run_id = "ok";
	o.host = "a\nb";
	assert_null(spool__open(&o, err, sizeof(err)));
	o.host = NULL;
	o.dir = "/proc/nonexistent/spool";
	assert_null(spool__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot create"));
}

/* The spool is what the root agent will sign and send: a spool directory that other
 * users can write, or a symlink to one, is refused before anything is created in it. */
static void test_spool__refuses_unsafe_dir(void **state)
{
	char err[256], dir[128], link[128], run[160];
	struct spool_opts o = { .dir = dir, .run_id = "r1" };
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/open", root);
	snprintf(link, sizeof(link), "%s/link", root);
	snprintf(run, sizeof(run), "%s/r1", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_null(spool__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "only its owner can write"));
	assert_int_equal(stat(run, &st), -1);

	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(symlink(dir, link), 0);
	o.dir = link;
	assert_null(spool__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(stat(run, &st), -1);
}

/* A run directory in the spool that this agent did not make (another user's, or one
 * others may read or write) could hold a forged run that the agent would sign for and
 * upload: it is refused at open, logged, counted and left alone, never read or sent.
 * The root is created 0700 when missing, and a root others may read is made 0700. */
static void test_spool__refuses_foreign_runs(void **state)
{
	char dir[128], path[256], cmd[512], err[256] = "";
	struct spool_opts o = { .dir = dir, .run_id = "planted" };
	struct spool_stats st;
	struct spool *sp;
	const char *olds[] = { "old-x", "old-y", "old-z" };

	/* missing: created 0700 */
	snprintf(dir, sizeof(dir), "%s/a/spool", root);
	sp = spool__open(&(struct spool_opts){ .dir = dir, .run_id = "r" }, err, sizeof(err));
	assert_non_null(sp);
	spool__close(sp);
	assert_int_equal(stat_mode(dir), 0700);
	/* readable by others: tightened */
	assert_int_equal(chmod(dir, 0755), 0);
	sp = spool__open(&(struct spool_opts){ .dir = dir, .run_id = "r" }, err, sizeof(err));
	assert_non_null(sp);
	spool__close(sp);
	assert_int_equal(stat_mode(dir), 0700);

	for (size_t i = 0; i < 3; i++) {
		sp = spool__open(&(struct spool_opts){ .dir = dir, .run_id = olds[i] }, err, sizeof(err));
		assert_non_null(sp);
		for (uint64_t seq = 1; seq <= 5; seq++)
			assert_int_equal(append(sp, seq, 100), 0);
		spool__close(sp); /* nothing acknowledged: left for the next start */
	}
	if (geteuid() == 0) { /* old-x: as if planted by uid 65534 */
		snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 '%s/old-x'", dir);
		assert_int_equal(system(cmd), 0);
	} else {
		snprintf(path, sizeof(path), "%s/old-x", dir);
		assert_int_equal(chmod(path, 0770), 0);
	}
	snprintf(path, sizeof(path), "%s/old-y", dir); /* ours, but others may look in */
	assert_int_equal(chmod(path, 0755), 0);

	sp = spool__open(&(struct spool_opts){ .dir = dir, .run_id = "new" }, err, sizeof(err));
	assert_non_null(sp);
	spool__stats(sp, &st);
	assert_int_equal(st.foreign_runs, 2);
	assert_int_equal(spool__n_runs(sp), 2); /* old-z and the current run */
	assert_string_equal(spool__run(sp, 0)->meta.run_id, "old-z");
	spool__close(sp);
	snprintf(path, sizeof(path), "%s/old-x/meta", dir); /* left alone */
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/old-y/meta", dir);
	assert_int_equal(access(path, F_OK), 0);

	/* the current run's own directory, planted before the start */
	snprintf(path, sizeof(path), "%s/planted", dir);
	assert_int_equal(mkdir(path, 0777), 0);
	assert_int_equal(chmod(path, 0777), 0);
	assert_null(spool__open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "not this agent's"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spool__records),
		cmocka_unit_test_setup_teardown(test_spool__append_read_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__seal_compress_resume_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__adopt_old_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__cap_skips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__skip_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__corrupt_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__bad_opts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__refuses_unsafe_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool__refuses_foreign_runs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
