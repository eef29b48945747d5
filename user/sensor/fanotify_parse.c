#include "sensor/fanotify_parse.h"

#include <errno.h>
#include <string.h>
#include <sys/fanotify.h>

/* struct fanotify_event_info_fid: header, fsid, then a struct file_handle (handle_bytes,
 * handle_type, f_handle[]). Offsets, not casts: see the header comment. */
#define FID_FSID_OFF 4
#define FID_HANDLE_OFF 12
#define FH_BYTES_OFF 0
#define FH_TYPE_OFF 4
#define FH_DATA_OFF 8
#define INFO_HDR_LEN 4

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t get_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool has_name(uint8_t info_type)
{
	return info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
	       info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
	       info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;
}

/* One FID-type record of rec_len bytes at p (rec_len already checked against the event). */
static int parse_fid(const unsigned char *p, size_t rec_len, struct fan_fid *f)
{
	const unsigned char *fh = p + FID_HANDLE_OFF;
	size_t off = FID_HANDLE_OFF + FH_DATA_OFF;
	uint32_t bytes;

	if (rec_len < off)
		return -EINVAL;
	bytes = get_u32(fh + FH_BYTES_OFF);
	if (bytes > FANOTIFY_PARSE_MAX_HANDLE || bytes > rec_len - off)
		return -EINVAL;
	f->fsid = (uint64_t)get_u32(p + FID_FSID_OFF) | (uint64_t)get_u32(p + FID_FSID_OFF + 4) << 32;
	f->type = (int32_t)get_u32(fh + FH_TYPE_OFF);
	f->len = bytes;
	f->h = fh + FH_DATA_OFF;
	f->name = NULL;
	if (has_name(p[0])) {
		const char *name = (const char *)f->h + bytes;
		size_t room = rec_len - off - bytes;

		if (!room || !memchr(name, '\0', room))
			return -EINVAL;
		f->name = name;
	}
	f->ok = true;
	return 0;
}

static struct fan_fid *slot_of(struct fan_info *in, uint8_t info_type)
{
	switch (info_type) {
	case FAN_EVENT_INFO_TYPE_FID:
		return &in->fid;
	case FAN_EVENT_INFO_TYPE_DFID_NAME:
		return &in->dfid_name;
	case FAN_EVENT_INFO_TYPE_DFID:
		return &in->dfid;
	case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
		return &in->old;
	case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
		return &in->new;
	default:
		return NULL; /* error, future types: skipped by length */
	}
}

int fanotify_parse__info(const void *event, size_t event_len, size_t metadata_len,
			 struct fan_info *in)
{
	const unsigned char *p = (const unsigned char *)event + metadata_len;
	const unsigned char *end = (const unsigned char *)event + event_len;
	int err = 0;

	memset(in, 0, sizeof(*in));
	in->pidfd = -1;
	if (metadata_len < FAN_EVENT_METADATA_LEN || metadata_len > event_len)
		return -EINVAL;
	/* A malformed record fails the event, but the walk goes on while lengths hold:
	 * a pidfd record after it is still found, so the caller can close it. */
	while ((size_t)(end - p) >= INFO_HDR_LEN) {
		uint16_t len = get_u16(p + 2);
		struct fan_fid *dst;

		if (len < INFO_HDR_LEN || len > (size_t)(end - p))
			return -EINVAL;
		if (p[0] == FAN_EVENT_INFO_TYPE_PIDFD) {
			/* one per event: a second fails it (the first stays, to be closed) */
			if (len < INFO_HDR_LEN + sizeof(int32_t) || in->has_pidfd) {
				err = -EINVAL;
			} else {
				in->has_pidfd = true;
				in->pidfd = (int32_t)get_u32(p + INFO_HDR_LEN);
			}
		} else {
			dst = slot_of(in, p[0]);
			if (dst && parse_fid(p, len, dst))
				err = -EINVAL;
		}
		p += len;
	}
	return err;
}

void fanotify_parse__init(struct fan_cursor *c, const void *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->off = 0;
}

int fanotify_parse__next(struct fan_cursor *c, struct fan_record *rec)
{
	struct fanotify_event_metadata m;
	const unsigned char *ev;

	if (c->off > c->len || c->len - c->off < sizeof(m))
		return 0;
	ev = c->buf + c->off;
	memcpy(&m, ev, sizeof(m));
	if (m.event_len < sizeof(m) || m.event_len > c->len - c->off)
		return 0;
	c->off += m.event_len;
	memset(rec, 0, sizeof(*rec));
	rec->info.pidfd = -1;
	rec->mask = m.mask;
	rec->fd = m.fd;
	rec->pid = m.pid;
	if (m.vers != FANOTIFY_METADATA_VERSION)
		rec->status = FAN_REC_BAD_VERSION;
	else if (fanotify_parse__info(ev, m.event_len, m.metadata_len, &rec->info))
		rec->status = FAN_REC_BAD_INFO;
	else
		rec->status = FAN_REC_OK;
	return 1;
}

#define FH_INO32_GEN 1
#define FH_INO64_GEN 0x81

int fanotify_parse__handle_gen(int32_t type, const void *h, size_t len, uint64_t ino,
			       uint32_t *gen)
{
	uint32_t w[3];
	uint64_t ino64;

	if (!h || len > sizeof(w) || len < 8)
		return -ENOENT;
	memcpy(w, h, len);
	if (type == FH_INO32_GEN && len == 8 && ino <= UINT32_MAX && w[0] == (uint32_t)ino) {
		*gen = w[1];
		return 0;
	}
	if (type == FH_INO64_GEN && len == 12) {
		memcpy(&ino64, h, sizeof(ino64));
		if (ino64 == ino) {
			*gen = w[2];
			return 0;
		}
	}
	if (type == FH_INO32_GEN && len == 12 && w[1] == (uint32_t)ino &&
	    w[2] == (uint32_t)(ino >> 32)) {
		*gen = w[0];
		return 0;
	}
	return -ENOENT;
}
