/* Bump allocator for the collector's hot path: one malloc per chunk instead of one per
 * string or per submessage. protobuf-c unpacks into it (slab__pb), and a batch keeps the
 * bytes of every event it will insert in one, so a whole batch is freed by a reset. */
#ifndef BUILDWARDEN_COLLECTOR_SLAB_H
#define BUILDWARDEN_COLLECTOR_SLAB_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct slab_chunk;

struct slab {
	struct slab_chunk *head;  /* every chunk, reused in order after a reset */
	struct slab_chunk *cur;   /* the chunk allocations come from */
	size_t chunk_size;        /* of the next chunk: grows */
	size_t used;              /* bytes handed out since the last reset */
	ProtobufCAllocator pb;    /* slab__pb() */
};

void slab__init(struct slab *s, size_t chunk_size);
/* 16-byte aligned, never NULL for size 0; NULL when malloc fails. */
void *slab__alloc(struct slab *s, size_t size);
void *slab__memdup(struct slab *s, const void *p, size_t len);
/* Forgets every allocation but keeps chunks up to keep bytes for the next round, so a
 * steady stream allocates nothing and one huge frame does not pin its memory forever. */
void slab__reset(struct slab *s, size_t keep);
void slab__free(struct slab *s);
/* An allocator for protobuf-c's unpack: frees are no-ops until the next reset. */
ProtobufCAllocator *slab__pb(struct slab *s);

#endif /* BUILDWARDEN_COLLECTOR_SLAB_H */
