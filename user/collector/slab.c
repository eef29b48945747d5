// SPDX-License-Identifier: GPL-2.0
/* Bump allocator: see slab.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/slab.h"

struct slab_chunk {
	struct slab_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void slab__init(struct slab *s, size_t chunk_size)
{
	memset(s, 0, sizeof(*s));
	s->chunk_size = chunk_size ? chunk_size : 64 * 1024;
}

static struct slab_chunk *slab__new_chunk(size_t cap)
{
	struct slab_chunk *c = malloc(sizeof(*c) + cap);

	if (!c)
		return NULL;
	c->next = NULL;
	c->used = 0;
	c->cap = cap;
	return c;
}

void *slab__alloc(struct slab *s, size_t size)
{
	struct slab_chunk *c, *prev = NULL;
	size_t need;
	void *p;

	if (size > SIZE_MAX - 32)
		return NULL;
	need = (size + 15) & ~(size_t)15;
	if (!need)
		need = 16;
	/* Chunks after cur were emptied by a reset: move on until one is big enough. The
	 * walk ends at the tail, where a new chunk goes. */
	for (c = s->cur; c; prev = c, c = c->next)
		if (c->cap - c->used >= need)
			break;
	if (!c) {
		/* Chunks double (up to 4 MiB) so a connection that sends a handful of
		 * frames costs a small chunk and a busy batch still mallocs rarely. */
		size_t cap = need > s->chunk_size ? need : s->chunk_size;

		if (s->chunk_size < (4u << 20))
			s->chunk_size *= 2;

		c = slab__new_chunk(cap);
		if (!c)
			return NULL;
		if (prev)
			prev->next = c;
		else
			s->head = c;
	}
	s->cur = c;
	p = c->data + c->used;
	c->used += need;
	s->used += need;
	return p;
}

void *slab__memdup(struct slab *s, const void *p, size_t len)
{
	void *d = slab__alloc(s, len);

	if (d && len)
		memcpy(d, p, len);
	return d;
}

void slab__reset(struct slab *s, size_t keep)
{
	struct slab_chunk *c, **link = &s->head;
	size_t kept = 0;

	while ((c = *link)) {
		if (kept + c->cap > keep && kept) {
			*link = c->next;
			free(c);
			continue;
		}
		kept += c->cap;
		c->used = 0;
		link = &c->next;
	}
	s->cur = s->head;
	s->used = 0;
}

void slab__free(struct slab *s)
{
	struct slab_chunk *c, *n;

	for (c = s->head; c; c = n) {
		n = c->next;
		free(c);
	}
	s->head = s->cur = NULL;
	s->used = 0;
}

static void *slab__pb_alloc(void *data, size_t size)
{
	return slab__alloc(data, size);
}

static void slab__pb_free(void *data, void *ptr)
{
}

ProtobufCAllocator *slab__pb(struct slab *s)
{
	s->pb.alloc = slab__pb_alloc;
	s->pb.free = slab__pb_free;
	s->pb.allocator_data = s;
	return &s->pb;
}
