#include "sensor/ringpos.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The kernel's layout (kernel/bpf/ringbuf.c): the consumer position alone on page 0,
 * the producer position alone on page 1, then the data. Read-only mappings of any of
 * them are allowed; libbpf holds its own writable one of page 0. */
struct ringpos {
	void *cons;
	void *prod;
	size_t page;
};

int ringpos__open(int map_fd, struct ringpos **out)
{
	struct ringpos *rp = calloc(1, sizeof(*rp));
	int err;

	*out = NULL;
	if (!rp)
		return -ENOMEM;
	rp->page = (size_t)sysconf(_SC_PAGESIZE);
	rp->cons = mmap(NULL, rp->page, PROT_READ, MAP_SHARED, map_fd, 0);
	rp->prod = mmap(NULL, rp->page, PROT_READ, MAP_SHARED, map_fd, (off_t)rp->page);
	if (rp->cons == MAP_FAILED || rp->prod == MAP_FAILED) {
		err = -errno;
		ringpos__close(rp);
		return err;
	}
	*out = rp;
	return 0;
}

/* Acquire: pairs with the kernel's release stores, as libbpf's own reads do. */
uint64_t ringpos__producer(const struct ringpos *rp)
{
	return __atomic_load_n((const unsigned long *)rp->prod, __ATOMIC_ACQUIRE);
}

uint64_t ringpos__consumer(const struct ringpos *rp)
{
	return __atomic_load_n((const unsigned long *)rp->cons, __ATOMIC_ACQUIRE);
}

void ringpos__close(struct ringpos *rp)
{
	if (!rp)
		return;
	if (rp->cons && rp->cons != MAP_FAILED)
		munmap(rp->cons, rp->page);
	if (rp->prod && rp->prod != MAP_FAILED)
		munmap(rp->prod, rp->page);
	free(rp);
}
