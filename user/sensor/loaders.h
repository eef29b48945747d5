/* The dynamic loaders of this host, by identity: an exec whose image is one of them, run
 * directly on a program (`ld.so /tmp/x`), maps a program no exec checked
 * (bpf/proc.bpf.c, BW_EXEC_LOADER). */
#ifndef BUILDWARDEN_LOADERS_H
#define BUILDWARDEN_LOADERS_H

#include <stddef.h>
#include <sys/types.h>

struct loader_id {
	dev_t dev;
	ino_t ino;
};

/* Reads path's PT_INTERP into interp (NUL-terminated); 0, -ENOENT when it has none, or
 * -errno. Bounded: an interpreter name longer than len - 1 is -ENAMETOOLONG. */
int loaders__interp_of(const char *path, char *interp, size_t len);

/* Fills out with the distinct loaders found: the PT_INTERP of our own executable and of
 * /bin/sh, and the usual loader paths that exist here. Returns how many (at most max). */
size_t loaders__find(struct loader_id *out, size_t max);

#endif
