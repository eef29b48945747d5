#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "base/fdio.h"

ssize_t fdio__read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	if (len > SSIZE_MAX)
		return -EINVAL;
	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int fdio__write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
