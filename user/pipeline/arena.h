/* A bump allocator for the strings and sub-messages of one event: everything an event
 * points to is freed at once after the sinks have it. */
#ifndef BUILDWARDEN_ARENA_H
#define BUILDWARDEN_ARENA_H

#include <stddef.h>

/* The largest event fits with room to spare: a process with PROCINFO_MAX_ANCESTORS
 * ancestors whose exe paths are PATH_MAX long, PROCINFO_MAX_ARGV arguments and a file
 * change's three paths come to about 86 KiB. So a refused allocation (the event is then
 * built without that part) is a bug to fix, not a condition to count. */
#define ARENA_SIZE (128 * 1024)

struct arena {
	size_t used;
	_Alignas(16) char buf[ARENA_SIZE];
};

void arena__reset(struct arena *a);
/* NULL when the arena is full; never larger than ARENA_SIZE in total. */
void *arena__alloc(struct arena *a, size_t size);
/* Copies at most max bytes of s; returns "" (not NULL) when the arena is full. */
char *arena__strndup(struct arena *a, const char *s, size_t max);

#endif
