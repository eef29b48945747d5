#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/grow.h"

int grow__reserve(void **ptr, size_t *cap, size_t need, size_t elem_size, size_t first,
		  size_t max_elems)
{
	size_t ncap = *cap;
	void *p;

	if (need <= *cap)
		return 0;
	if (!max_elems)
		max_elems = SIZE_MAX;
	if (need > max_elems || elem_size == 0 || need > SIZE_MAX / elem_size)
		return -EOVERFLOW;
	if (ncap < first)
		ncap = first;
	if (ncap == 0)
		ncap = 1;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
	if (ncap > max_elems)
		ncap = max_elems;
	if (ncap > SIZE_MAX / elem_size)
		ncap = SIZE_MAX / elem_size;
	p = realloc(*ptr, ncap * elem_size);
	if (!p)
		return -ENOMEM;
	*ptr = p;
	*cap = ncap;
	return 0;
}
