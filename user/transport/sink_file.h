/* A sink that appends framed events (frame.h) to a file: plain, gzip when the path ends
 * in ".gz", or stdout for "-". What it writes is what `buildwarden decode` reads. */
#ifndef BUILDWARDEN_TRANSPORT_SINK_FILE_H
#define BUILDWARDEN_TRANSPORT_SINK_FILE_H

#include <stdint.h>

#include "buildwarden.pb-c.h"
#include "transport/sink.h"

struct sink_file;

/* Size-bounded events files: when the next frame would take the live file past
 * max_size bytes, it is finished and renamed path.1 (path.1 -> path.2, ... up to
 * path.<max_files>; the oldest is dropped) and a new path is started. For a ".gz"
 * path the bytes counted are uncompressed, so the file on disk stays below the limit.
 * max_size 0: never rotate (reopen still works). max_files 0: the full file is
 * deleted. Every rotated file decodes alone (whole frames, a complete gzip member). */
struct sink_file_rotation {
	uint64_t max_size;
	unsigned max_files;
};
#define SINK_FILE_MIN_ROTATE 4096u /* below that a file would hold a handful of events */
#define SINK_FILE_MAX_FILES 1000u

/* Opens path for appending (created 0640). A ".gz" path gets a new gzip member per
 * open, which gzip readers see as one stream. NULL with *err = -errno on failure:
 * -ELOOP when path is a symlink, -EPERM when it is a file another user than the
 * caller's effective one owns, -ENXIO when it is not a regular file (a FIFO is refused
 * without blocking; a character device such as /dev/null is accepted), -EXDEV when its
 * directory is world-writable without the sticky bit. */
struct sink_file *sink_file__open(const char *path, int *err);
/* What an *err of sink_file__open means, for a message. */
const char *sink_file__error(int err);

/* Packs ev and appends it as one frame. -EMSGSIZE if it packs to more than
 * BW_FRAME_MAX (a reader would refuse it), -errno / -EIO on a write failure. */
int sink_file__write_event(struct sink_file *f, const Buildwarden__V1__Event *ev);

/* Hands buffered bytes to the kernel (gzip: completes a deflate block). No fsync. */
int sink_file__flush(struct sink_file *f);

/* Flushes, finishes the gzip member, fsyncs regular files, frees f. Returns the first
 * error; f is freed either way. NULL is a no-op. */
int sink_file__close(struct sink_file *f);

/* sink_file__open, and f remembers path and rot for sink_file__rotate and
 * sink_file__reopen. -EINVAL for "-", a max_size below SINK_FILE_MIN_ROTATE or
 * max_files above SINK_FILE_MAX_FILES; -ENXIO for a max_size on what is not a regular
 * file (a character device such as /dev/null: rotation would rename it). */
struct sink_file *sink_file__open_rotating(const char *path, const struct sink_file_rotation *rot,
					   int *err);

/* Starts writing to the file now at path (SIGHUP after an outside tool moved the file
 * away): the old file is finished first only once the new one is open, so a failure
 * (-errno) leaves f writing where it was. 0 for a sink not opened with
 * sink_file__open_rotating. */
int sink_file__reopen(struct sink_file *f);

/* Rotates now (as described above). 0; -errno when the old files could not be moved
 * (the live file is opened again and grows on); when no file can be opened at path the
 * error is sticky (every later write fails and is counted by its caller). */
int sink_file__rotate(struct sink_file *f);

/* f as a generic sink; the sink's close calls sink_file__close. */
struct sink sink_file__sink(struct sink_file *f);

#endif /* BUILDWARDEN_TRANSPORT_SINK_FILE_H */
