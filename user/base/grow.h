/* The one growable-array helper: every buffer that grows (read buffers, frame
 * queues, record vectors, index tables) doubles through here, so the overflow check
 * on count * size and the cap on growth are written once. */
#ifndef BUILDWARDEN_BASE_GROW_H
#define BUILDWARDEN_BASE_GROW_H

#include <stddef.h>

/*
 * Makes *ptr (an array of *cap elements of elem_size bytes) hold at least `need`
 * elements: doubles from max(*cap, first), never past max_elems (0: no cap but
 * SIZE_MAX). On success *ptr and *cap are updated and 0 is returned; on failure
 * they are untouched and -ENOMEM (allocation) or -EOVERFLOW (need > max_elems or
 * the byte count overflows) is returned.
 */
int grow__reserve(void **ptr, size_t *cap, size_t need, size_t elem_size, size_t first,
		  size_t max_elems);

/* A byte buffer that grows: data[0..len) is in use. */
struct bytebuf {
	unsigned char *data;
	size_t len, cap;
};

/* room for `extra` more bytes after len, capped at max bytes in all (0: no cap) */
int bytebuf__reserve(struct bytebuf *b, size_t extra, size_t max);
int bytebuf__append(struct bytebuf *b, const void *p, size_t n, size_t max);
void bytebuf__free(struct bytebuf *b);

#endif /* BUILDWARDEN_BASE_GROW_H */
