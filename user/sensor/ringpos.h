/* Read-only view of a BPF ring buffer's consumer and producer positions, next to
 * libbpf's consumer: libbpf 1.1 has no ring__producer_pos(). The positions tell whether
 * the consumer has passed a point, which one consume call cannot promise: it stops at a
 * record another CPU has reserved and not yet submitted, and the records behind that one
 * wait for the next call. */
#ifndef BUILDWARDEN_RINGPOS_H
#define BUILDWARDEN_RINGPOS_H

#include <stdint.h>

struct ringpos;

/* map_fd: a BPF_MAP_TYPE_RINGBUF. Returns 0 or -errno. */
int ringpos__open(int map_fd, struct ringpos **out);
/* Where the next record will be reserved: every record reserved so far lies before it. */
uint64_t ringpos__producer(const struct ringpos *rp);
/* Where the consumer will read next: every record before it has been handled. */
uint64_t ringpos__consumer(const struct ringpos *rp);
void ringpos__close(struct ringpos *rp);

#endif
