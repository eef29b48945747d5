/* A sink that appends framed events (frame.h) to a file: plain, gzip when the path ends
 * in ".gz", or stdout for "-". What it writes is what `buildwarden decode` reads. */
#ifndef BUILDWARDEN_TRANSPORT_SINK_FILE_H
#define BUILDWARDEN_TRANSPORT_SINK_FILE_H

#include "buildwarden.pb-c.h"
#include "transport/sink.h"

struct sink_file;

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

/* f as a generic sink; the sink's close calls sink_file__close. */
struct sink sink_file__sink(struct sink_file *f);

#endif /* BUILDWARDEN_TRANSPORT_SINK_FILE_H */
