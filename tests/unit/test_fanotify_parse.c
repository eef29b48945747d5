// SPDX-License-Identifier: GPL-2.0
/* The fanotify record parser on records built here byte by byte, as the kernel lays
 * them out (include/uapi/linux/fanotify.h): metadata, then info records of a header,
 * an fsid, a file_handle and, for the DFID_NAME kinds, a NUL-terminated name padded
 * to 4 bytes. Every length the kernel writes is also tried wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>

#include "sensor/fanotify_parse.h"

struct buf {
	unsigned char b[4096];
	size_t len;
	size_t ev;	/* start of the event being built */
};

static void put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->len + n <= sizeof(b->b));
	memcpy(b->b + b->len, p, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(struct buf *b, uint16_t v) { put(b, &v, 2); }
static void put_u32(struct buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { put(b, &v, 8); }

/* Starts an event; its event_len is filled by end_event. */
static void begin_event(struct buf *b, uint8_t vers, uint64_t mask, int32_t fd, int32_t pid)
{
	b->ev = b->len;
	put_u32(b, 0);
	put_u8(b, vers);
	put_u8(b, 0);
	put_u16(b, FAN_EVENT_METADATA_LEN);
	put_u64(b, mask);
	put_u32(b, (uint32_t)fd);
	put_u32(b, (uint32_t)pid);
}

static void end_event(struct buf *b)
{
	uint32_t len = (uint32_t)(b->len - b->ev);

	memcpy(b->b + b->ev, &len, 4);
}

static void set_u16(struct buf *b, size_t off, uint16_t v) { memcpy(b->b + off, &v, 2); }
static void set_u32(struct buf *b, size_t off, uint32_t v) { memcpy(b->b + off, &v, 4); }

/* An info record; returns its offset. name NULL: no name (FID, DFID). */
static size_t put_fid(struct buf *b, uint8_t type, uint32_t fsid0, uint32_t fsid1, int32_t htype,
		      const char *handle, const char *name)
{
	size_t at = b->len, hlen = strlen(handle);

	put_u8(b, type);
	put_u8(b, 0);
	put_u16(b, 0);
	put_u32(b, fsid0);
	put_u32(b, fsid1);
	put_u32(b, (uint32_t)hlen);
	put_u32(b, (uint32_t)htype);
	put(b, handle, hlen);
	if (name)
		put(b, name, strlen(name) + 1);
	while ((b->len - at) % 4)
		put_u8(b, 0);
	set_u16(b, at + 2, (uint16_t)(b->len - at));
	return at;
}

static int parse_one(struct buf *b, struct fan_record *rec)
{
	struct fan_cursor c;

	fanotify_parse__init(&c, b->b, b->len);
	return fanotify_parse__next(&c, rec);
}

static void assert_fid(const struct fan_fid *f, uint64_t fsid, int32_t type, const char *handle,
		       const char *name)
{
	assert_true(f->ok);
	assert_int_equal(f->fsid, fsid);
	assert_int_equal(f->type, type);
	assert_int_equal(f->len, strlen(handle));
	assert_memory_equal(f->h, handle, f->len);
	if (name)
		assert_string_equal(f->name, name);
	else
		assert_null(f->name);
}

static void test_create_with_dfid_name_and_fid(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_CREATE, FAN_NOFD, 4242);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 0x11111111, 0x22222222, 1, "DIRHANDL", "a.c");
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 0x11111111, 0x22222222, 1, "FILEHNDL", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_int_equal(rec.mask, FAN_CREATE);
	assert_int_equal(rec.pid, 4242);
	assert_true(rec.fd < 0);
	/* val[0] is the low half of the packed fsid */
	assert_fid(&rec.info.dfid_name, 0x2222222211111111ULL, 1, "DIRHANDL", "a.c");
	assert_fid(&rec.info.fid, 0x2222222211111111ULL, 1, "FILEHNDL", NULL);
	assert_false(rec.info.dfid.ok);
	assert_false(rec.info.old.ok);
	assert_false(rec.info.new.ok);
}

static void test_rename_old_and_new(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_RENAME, FAN_NOFD, 7);
	put_fid(&b, FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, 1, 0, 1, "OLDDIR..", "w1.c");
	put_fid(&b, FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, 1, 0, 1, "NEWDIR..", "w2.c");
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "OBJECT..", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_fid(&rec.info.old, 1, 1, "OLDDIR..", "w1.c");
	assert_fid(&rec.info.new, 1, 1, "NEWDIR..", "w2.c");
	assert_fid(&rec.info.fid, 1, 1, "OBJECT..", NULL);
}

/* A link count change carries only the object's own FID; a DFID has no name. */
static void test_fid_only_and_dfid(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_ATTRIB, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 5, 6, 0x81, "H", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_fid(&rec.info.fid, 5 | 6ULL << 32, 0x81, "H", NULL);
	assert_false(rec.info.dfid_name.ok);

	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID, 5, 6, 1, "DIR", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_fid(&rec.info.dfid, 5 | 6ULL << 32, 1, "DIR", NULL);
}

static void test_several_events_and_fd(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_cursor c;
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_Q_OVERFLOW, FAN_NOFD, 0);
	end_event(&b);
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, 9, 100);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 2, 1, "F1", NULL);
	end_event(&b);
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_DELETE | FAN_ONDIR, FAN_NOFD, 101);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 2, 1, "D1", "gone");
	end_event(&b);
	fanotify_parse__init(&c, b.b, b.len);
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.mask, FAN_Q_OVERFLOW);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.fd, 9); /* the caller closes it */
	assert_int_equal(rec.pid, 100);
	assert_true(rec.info.fid.ok);
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.mask, FAN_DELETE | FAN_ONDIR);
	assert_string_equal(rec.info.dfid_name.name, "gone");
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
	assert_int_equal(c.off, b.len);
}

/* Records are only 4-byte aligned, and a fuzzer's are not even that: no cast in place. */
static void test_unaligned_buffer(void **state)
{
	struct buf b = { .len = 0 };
	unsigned char *odd = malloc(sizeof(b.b) + 1);
	struct fan_cursor c;
	struct fan_record rec;

	(void)state;
	assert_non_null(odd);
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_CREATE, FAN_NOFD, 3);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 7, 8, 1, "ABC", "x");
	end_event(&b);
	memcpy(odd + 1, b.b, b.len);
	fanotify_parse__init(&c, odd + 1, b.len);
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_fid(&rec.info.dfid_name, 7 | 8ULL << 32, 1, "ABC", "x");
	free(odd);
}

/* Unknown info records (pidfd, error, later kinds) are skipped by their length. */
/* FAN_REPORT_PIDFD: the actor's pidfd, or FAN_NOPIDFD when it had exited (issue 8:
 * its pid may be another process's by then). */
static void test_pidfd_info(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_u8(&b, FAN_EVENT_INFO_TYPE_PIDFD);
	put_u8(&b, 0);
	put_u16(&b, 8);
	put_u32(&b, 12345);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_true(rec.info.has_pidfd);
	assert_int_equal(rec.info.pidfd, 12345);
	assert_fid(&rec.info.fid, 1, 1, "K", NULL);

	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_u8(&b, FAN_EVENT_INFO_TYPE_PIDFD);
	put_u8(&b, 0);
	put_u16(&b, 8);
	put_u32(&b, (uint32_t)FAN_NOPIDFD);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_true(rec.info.has_pidfd);
	assert_int_equal(rec.info.pidfd, FAN_NOPIDFD);

	/* without one: no pidfd, and -1 never mistaken for "exited" by has_pidfd */
	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_false(rec.info.has_pidfd);

	/* one too short to hold the descriptor: malformed */
	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_u8(&b, FAN_EVENT_INFO_TYPE_PIDFD);
	put_u8(&b, 0);
	put_u16(&b, 4);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
}

static void test_unknown_info_skipped(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_u8(&b, 5 /* FAN_EVENT_INFO_TYPE_ERROR */);
	put_u8(&b, 0);
	put_u16(&b, 12);
	put_u32(&b, 5);
	put_u32(&b, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_fid(&rec.info.fid, 1, 1, "K", NULL);
}

static void test_bad_version(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_cursor c;
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION + 1, FAN_MODIFY, 5, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 2);
	end_event(&b);
	fanotify_parse__init(&c, b.b, b.len);
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_VERSION);
	assert_int_equal(rec.fd, 5); /* still handed over, so it is closed */
	assert_false(rec.info.fid.ok);
	/* its length is still trusted to find the next one */
	assert_int_equal(fanotify_parse__next(&c, &rec), 1);
	assert_int_equal(rec.pid, 2);
	assert_int_equal(rec.status, FAN_REC_OK);
}

/* What does not hold a whole event ends the buffer: the kernel never splits one. */
static void test_truncated_and_short_events(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_cursor c;
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	/* cut inside the info record */
	fanotify_parse__init(&c, b.b, b.len - 1);
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
	/* cut inside the metadata */
	fanotify_parse__init(&c, b.b, FAN_EVENT_METADATA_LEN - 1);
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
	/* event_len shorter than the metadata */
	set_u32(&b, 0, FAN_EVENT_METADATA_LEN - 4);
	fanotify_parse__init(&c, b.b, b.len);
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
	/* event_len past the end */
	set_u32(&b, 0, (uint32_t)b.len + 4);
	fanotify_parse__init(&c, b.b, b.len);
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
	/* empty */
	fanotify_parse__init(&c, b.b, 0);
	assert_int_equal(fanotify_parse__next(&c, &rec), 0);
}

static void test_bad_metadata_len(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	set_u16(&b, 6, (uint16_t)(b.len + 1)); /* past the event */
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	set_u16(&b, 6, FAN_EVENT_METADATA_LEN - 1); /* shorter than the metadata */
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
}

/* Each length inside an info record, wrong: the event is not used. */
static void test_bad_info_lengths(void **state)
{
	struct buf b;
	struct fan_record rec;
	size_t at;

	(void)state;
	/* header length below its own size */
	memset(&b, 0, sizeof(b));
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	at = put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, "K", NULL);
	end_event(&b);
	set_u16(&b, at + 2, 3);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* header length past the event */
	set_u16(&b, at + 2, (uint16_t)(b.len - at + 4));
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* a FID record too short to hold an fsid and a file_handle header */
	set_u16(&b, at + 2, 8);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* handle_bytes past the record */
	set_u16(&b, at + 2, (uint16_t)(b.len - at));
	set_u32(&b, at + 12, 64);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* handle_bytes above MAX_HANDLE_SZ, even inside the record */
	memset(&b, 0, sizeof(b));
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	{
		char big[FANOTIFY_PARSE_MAX_HANDLE + 2];

		memset(big, 'h', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, big, NULL);
	}
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* exactly MAX_HANDLE_SZ is fine */
	memset(&b, 0, sizeof(b));
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_MODIFY, FAN_NOFD, 1);
	{
		char max[FANOTIFY_PARSE_MAX_HANDLE + 1];

		memset(max, 'h', sizeof(max) - 1);
		max[sizeof(max) - 1] = '\0';
		put_fid(&b, FAN_EVENT_INFO_TYPE_FID, 1, 0, 1, max, NULL);
	}
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_int_equal(rec.info.fid.len, FANOTIFY_PARSE_MAX_HANDLE);
}

/* A DFID_NAME record must hold a name that ends inside it. */
static void test_bad_names(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;
	size_t at;

	(void)state;
	/* no room for a name at all */
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_CREATE, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIRH", NULL);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	/* a name without its NUL: "abc" fills the record's padding exactly */
	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_CREATE, FAN_NOFD, 1);
	at = put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIRH", "abc");
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	b.b[at + 27] = 'd'; /* the NUL after "abc": hdr 4, fsid 8, fh 8, "DIRH" 4, "abc" 3 */
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
}

/* The info parser alone, as the fuzzer also drives it. */
static void test_info_direct(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_info in;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_CREATE, FAN_NOFD, 1);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "D", "n");
	end_event(&b);
	assert_int_equal(fanotify_parse__info(b.b, b.len, FAN_EVENT_METADATA_LEN, &in), 0);
	assert_string_equal(in.dfid_name.name, "n");
	assert_int_equal(fanotify_parse__info(b.b, b.len, b.len + 1, &in), -EINVAL);
	/* no info records at all is fine */
	assert_int_equal(fanotify_parse__info(b.b, FAN_EVENT_METADATA_LEN, FAN_EVENT_METADATA_LEN,
					      &in), 0);
	assert_false(in.dfid_name.ok);
}

static void put_pidfd(struct buf *b, int32_t pidfd)
{
	put_u8(b, FAN_EVENT_INFO_TYPE_PIDFD);
	put_u8(b, 0);
	put_u16(b, 8);
	put_u32(b, (uint32_t)pidfd);
}

/* FAN_REPORT_PIDFD: the acting process's pidfd is handed over, and also when another
 * record of the event is malformed (the caller must still close it); absent, it is -1,
 * never 0 (a descriptor the caller would close). */
static void test_pidfd_record(void **state)
{
	struct buf b = { .len = 0 };
	struct fan_record rec;
	size_t at;

	(void)state;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_ATTRIB, FAN_NOFD, 77);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIR", "f");
	put_pidfd(&b, 9);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_OK);
	assert_int_equal(rec.info.pidfd, 9);
	assert_true(rec.info.dfid_name.ok);

	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_ATTRIB, FAN_NOFD, 77);
	at = put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIR", "f");
	set_u32(&b, at + 12, 500); /* handle_bytes past the record */
	put_pidfd(&b, 11);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	assert_int_equal(rec.info.pidfd, 11);
	assert_true(rec.info.has_pidfd);

	/* one pidfd per event: a second record fails it, the first stays to be closed */
	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_ATTRIB, FAN_NOFD, 77);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIR", "f");
	put_pidfd(&b, 12);
	put_pidfd(&b, FAN_NOPIDFD);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_INFO);
	assert_true(rec.info.has_pidfd);
	assert_int_equal(rec.info.pidfd, 12);

	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION, FAN_ATTRIB, FAN_NOFD, 77);
	put_fid(&b, FAN_EVENT_INFO_TYPE_DFID_NAME, 1, 0, 1, "DIR", "f");
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.info.pidfd, -1);
	assert_false(rec.info.has_pidfd); /* -1 here is "no record", not FAN_NOPIDFD */

	b.len = 0;
	begin_event(&b, FANOTIFY_METADATA_VERSION + 1, FAN_ATTRIB, FAN_NOFD, 77);
	end_event(&b);
	assert_int_equal(parse_one(&b, &rec), 1);
	assert_int_equal(rec.status, FAN_REC_BAD_VERSION);
	assert_int_equal(rec.info.pidfd, -1);
}

/* The generation of a file handle, per layout the kernel fixes, and only when the
 * handle's inode number is the file's. */
static void test_handle_gen(void **state)
{
	const uint32_t ino32_gen[2] = { 1234, 0xdeadbeef };
	const uint32_t shmem[3] = { 0xfeedf00d, 77, 1 }; /* gen, ino lo, ino hi */
	unsigned char ino64_gen[12];
	const uint64_t ino64 = 0x100000005ULL;
	const uint32_t g64 = 42;
	uint32_t gen = 0;

	(void)state;
	memcpy(ino64_gen, &ino64, 8);
	memcpy(ino64_gen + 8, &g64, 4);
	assert_int_equal(fanotify_parse__handle_gen(1, ino32_gen, 8, 1234, &gen), 0);
	assert_int_equal(gen, 0xdeadbeef);
	assert_int_equal(fanotify_parse__handle_gen(0x81, ino64_gen, 12, ino64, &gen), 0);
	assert_int_equal(gen, 42);
	assert_int_equal(fanotify_parse__handle_gen(1, shmem, 12, 77 | 1ULL << 32, &gen), 0);
	assert_int_equal(gen, 0xfeedf00d);
	/* another inode number: not the layout assumed (or another file) */
	assert_int_equal(fanotify_parse__handle_gen(1, ino32_gen, 8, 1235, &gen), -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(1, ino32_gen, 8, 1234 | 1ULL << 32, &gen),
			 -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(0x81, ino64_gen, 12, 5, &gen), -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(1, shmem, 12, 77, &gen), -ENOENT);
	/* other types and lengths: btrfs, overlayfs, a short or long handle */
	assert_int_equal(fanotify_parse__handle_gen(0x4d, ino32_gen, 8, 1234, &gen), -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(1, ino32_gen, 4, 1234, &gen), -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(1, ino64_gen, 16, 1234, &gen), -ENOENT);
	assert_int_equal(fanotify_parse__handle_gen(1, NULL, 8, 1234, &gen), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_with_dfid_name_and_fid),
		cmocka_unit_test(test_rename_old_and_new),
		cmocka_unit_test(test_fid_only_and_dfid),
		cmocka_unit_test(test_several_events_and_fd),
		cmocka_unit_test(test_unaligned_buffer),
		cmocka_unit_test(test_pidfd_info),
		cmocka_unit_test(test_unknown_info_skipped),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_truncated_and_short_events),
		cmocka_unit_test(test_pidfd_record),
		cmocka_unit_test(test_bad_metadata_len),
		cmocka_unit_test(test_bad_info_lengths),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_info_direct),
		cmocka_unit_test(test_handle_gen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
