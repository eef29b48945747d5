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

#endif /* BUILDWARDEN_BASE_GROW_H */
