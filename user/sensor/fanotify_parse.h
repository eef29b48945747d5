/* fanotify_parse: the bytes of one read() of a fanotify descriptor, as plain records.
 * Pure: no syscalls, no allocation. Every length is checked against its record, the
 * event and the buffer; nothing is cast in place (records are only 4-byte aligned, and
 * in the fuzzer the bytes come from anyone). Pointers in a record point into the
 * buffer, which must outlive them. */
#ifndef BUILDWARDEN_FANOTIFY_PARSE_H
#define BUILDWARDEN_FANOTIFY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FANOTIFY_PARSE_MAX_HANDLE 128 /* MAX_HANDLE_SZ: a longer handle is malformed */

/* One file identifier record: the object (FID), its directory (DFID), or its directory
 * and name (DFID_NAME, and the OLD_/NEW_ pair of a rename). */
struct fan_fid {
	bool ok;		/* the record was present */
	uint64_t fsid;		/* val[0] in the low half, val[1] in the high half */
	int32_t type;		/* file_handle.handle_type */
	uint32_t len;		/* file_handle.handle_bytes, at most FANOTIFY_PARSE_MAX_HANDLE */
	const unsigned char *h;	/* file_handle.f_handle */
	const char *name;	/* *_DFID_NAME: NUL-terminated inside the record; else NULL */
};

struct fan_info {
	struct fan_fid fid, dfid_name, dfid, old, new;
	/* FAN_REPORT_PIDFD: an open pidfd of the actor (the caller closes it), FAN_NOPIDFD
	 * (-1: the actor had exited when the event was read), FAN_EPIDFD (-2: no pidfd
	 * for another reason); has_pidfd false (pidfd -1) when the event has no pidfd
	 * record. FAN_NOPIDFD is -1 too: only has_pidfd tells "exited" from "not reported".
	 * Kept even when another record is malformed, so the caller can close it. */
	bool has_pidfd;
	int32_t pidfd;
};

enum fan_status {
	FAN_REC_OK = 0,
	FAN_REC_BAD_VERSION,	/* metadata of a version we do not know: info not parsed */
	FAN_REC_BAD_INFO,	/* an info record is malformed: info is not to be used */
};

struct fan_record {
	uint64_t mask;
	int32_t fd;		/* an open descriptor the caller must close, or negative */
	int32_t pid;
	enum fan_status status;
	struct fan_info info;	/* valid if status is FAN_REC_OK */
};

/* A position in one read()'s bytes. */
struct fan_cursor {
	const unsigned char *buf;
	size_t len, off;
};

void fanotify_parse__init(struct fan_cursor *c, const void *buf, size_t len);

/* The next event: 1 with *rec filled, or 0 at the end of the buffer or where what is
 * left does not hold a whole event (the rest is not read: the kernel never splits one). */
int fanotify_parse__next(struct fan_cursor *c, struct fan_record *rec);

/* The info records of one event of event_len bytes whose metadata is metadata_len bytes
 * long; unknown record types are skipped by their length. 0 or -EINVAL. */
int fanotify_parse__info(const void *event, size_t event_len, size_t metadata_len,
			 struct fan_info *in);

/* The inode generation (inode->i_generation) a file handle of the object with inode
 * number ino carries, for the layouts whose place for it the kernel fixes:
 *  - FILEID_INO32_GEN (1), 8 bytes {u32 ino, u32 gen}: exportfs's default encoder
 *    (ext2/3/4, and what AT_HANDLE_FID gives for them), XFS below 2^32;
 *  - FILEID_INO64_GEN (0x81), 12 bytes {u64 ino, u32 gen}: the AT_HANDLE_FID encoder
 *    of file systems that cannot export, XFS's 64-bit inodes;
 *  - type 1, 12 bytes {u32 gen, u32 ino_lo, u32 ino_hi}: tmpfs (shmem_encode_fh).
 * The inode number in the handle must equal ino, or the layout is not the one assumed.
 * 0 with *gen set, or -ENOENT (another layout: btrfs, overlayfs, NFS...). */
int fanotify_parse__handle_gen(int32_t type, const void *h, size_t len, uint64_t ino,
			       uint32_t *gen);

#endif
