#include "pipeline/arena.h"

#include <string.h>

void arena__reset(struct arena *a)
{
	a->used = 0;
}

void *arena__alloc(struct arena *a, size_t size)
{
	size_t start = (a->used + 15) & ~(size_t)15;

	if (size > ARENA_SIZE || start > ARENA_SIZE - size)
		return NULL;
	a->used = start + size;
	memset(a->buf + start, 0, size);
	return a->buf + start;
}

char *arena__strndup(struct arena *a, const char *s, size_t max)
{
	static char empty[1];
	size_t n = strnlen(s, max);
	char *p = arena__alloc(a, n + 1);

	if (!p)
		return empty;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
