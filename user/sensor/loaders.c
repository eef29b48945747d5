/* Finding the dynamic loaders: see loaders.h. */
#include "sensor/loaders.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Other ABIs' loaders may be installed beside the native one (multilib, x32). */
static const char *const known_loaders[] = {
	"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2",	    "/libx32/ld-linux-x32.so.2",
	"/lib/ld-linux-aarch64.so.1",	"/lib/ld-linux-armhf.so.3", "/lib/ld-musl-x86_64.so.1",
	"/lib/ld-musl-aarch64.so.1",
};

int loaders__interp_of(const char *path, char *interp, size_t len)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -ENOENT;

	if (fd < 0)
		return -errno;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr)) {
		close(fd);
		return -ENOEXEC;
	}
	for (unsigned i = 0; i < eh.e_phnum && i < 64; i++) {
		Elf64_Phdr ph;
		ssize_t n;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			break;
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz > len) {
			ret = -ENAMETOOLONG;
			break;
		}
		n = pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset);
		if (n != (ssize_t)ph.p_filesz) {
			ret = -EIO;
			break;
		}
		interp[ph.p_filesz - 1] = '\0';
		ret = 0;
		break;
	}
	close(fd);
	return ret;
}

static size_t add_loader(const char *path, struct loader_id *out, size_t n, size_t max)
{
	struct stat st;

	if (n >= max || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return n;
	for (size_t i = 0; i < n; i++)
		if (out[i].dev == st.st_dev && out[i].ino == st.st_ino)
			return n;
	out[n].dev = st.st_dev;
	out[n].ino = st.st_ino;
	return n + 1;
}

size_t loaders__find(struct loader_id *out, size_t max)
{
	const char *bins[] = { "/proc/self/exe", "/bin/sh" };
	char interp[256];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++)
		if (loaders__interp_of(bins[i], interp, sizeof(interp)) == 0)
			n = add_loader(interp, out, n, max);
	for (size_t i = 0; i < sizeof(known_loaders) / sizeof(known_loaders[0]); i++)
		n = add_loader(known_loaders[i], out, n, max);
	return n;
}
