/* Whole reads and writes on a file descriptor: the loops that retry EINTR and short
 * transfers, written once. */
#ifndef BUILDWARDEN_BASE_FDIO_H
#define BUILDWARDEN_BASE_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads until len bytes or end of file: the bytes read (< len only at end of file),
 * or -errno. */
ssize_t fdio__read_full(int fd, void *buf, size_t len);

/* Writes all len bytes: 0, or -errno (-EIO if the kernel accepts nothing). */
int fdio__write_all(int fd, const void *buf, size_t len);

#endif /* BUILDWARDEN_BASE_FDIO_H */
