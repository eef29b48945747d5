/* What the files of the export share (export.c: the thread, cursor and retries;
 * export_cursor.c; export_format.c; export_jsonl.c and export_syslog.c: the sinks).
 * Not for use outside them. */
#ifndef BUILDWARDEN_COLLECTOR_EXPORT_PRIV_H
#define BUILDWARDEN_COLLECTOR_EXPORT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buildwarden.pb-c.h"
#include "collector/export.h"
#include "collector/store_tail.h"

/* One event ready for a sink: the row and its decoded event (NULL when the bytes are
 * not an Event: flagged bad_event, exported with the collector fields only). */
struct export_item {
	struct store_row row;      /* strings and bytes copied into the batch */
	Buildwarden__V1__Event *ev;
};

/* A sink. Each call returns 0 or -errno with a reason in err. write() makes the items
 * durable at the sink before it returns (jsonl: fdatasync; syslog: the peer's TCP has
 * acknowledged every byte) or fails; a failed write may have delivered a prefix, which
 * the retry repeats (at-least-once). */
struct export_sink {
	const char *name;
	/* Connect or open. */
	int (*open)(struct export_sink *k, char *err, size_t errlen);
	int (*write)(struct export_sink *k, const struct export_item *it, size_t n, char *err,
		     size_t errlen);
	/* Highest row id the sink itself proves delivered, or 0 (jsonl: the last line of
	 * the newest file), consulted after every open. */
	int64_t (*delivered)(struct export_sink *k);
	/* Row id up to which delivery is settled (syslog: held back for the settle time
	 * while the connection stays up), or -1: everything written is settled. */
	int64_t (*settled)(struct export_sink *k, int64_t written);
	void (*close)(struct export_sink *k);
	void (*free)(struct export_sink *k);
};

int export_jsonl__new(const struct export_cfg *cfg, const char *dir, struct export_sink **out,
		      char *err, size_t errlen);
int export_syslog__new(const struct export_cfg *cfg, const char *url, struct export_sink **out,
		       char *err, size_t errlen);

/* settled(): the connection went away while idle: rewind to the cursor and reopen */
#define EXPORT_BROKEN (-2)

/* ---- export_format.c ---- */

/* The JSON object of one event: the collector's fields ("agent", "boundHost",
 * "receivedTime", "integrity", "exportId") then the event's own in the proto3 JSON
 * mapping, as `decode` prints them. No newline. 0, or -errno. */
int export__json(FILE *out, const struct export_item *it);
/* RFC 3339 UTC with microseconds ("2026-01-02T03:04:05.678901Z"), 32 bytes room. */
void export__rfc3339(char *buf, size_t len, int64_t ns);
/* The comma-separated integrity flag names of flags ("" for none). */
void export__flag_names(char *buf, size_t len, uint32_t flags);

/* ---- export_cursor.c ---- */

/* Reads the cursor file at path: 0 with *id (0 when the file does not exist), or
 * -errno with err set (not ours, not a cursor file). */
int export_cursor__load(const char *path, int64_t *id, char *err, size_t errlen);
/* Replaces it atomically and durably (temporary file, fsync, rename, fsync of the
 * directory). 0, or -errno with err set. */
int export_cursor__save(const char *path, int64_t id, char *err, size_t errlen);

#endif /* BUILDWARDEN_COLLECTOR_EXPORT_PRIV_H */
