/* Clock readings in nanoseconds as one int64: what every timeout, rate limit and
 * event timestamp in the agent and the collector is computed in. */
#ifndef BUILDWARDEN_BASE_CLOCK_H
#define BUILDWARDEN_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_MSEC 1000000LL

/* CLOCK_MONOTONIC: intervals, deadlines, rate limits */
int64_t clock__mono_ns(void);
/* CLOCK_REALTIME: what is written into events and stores */
int64_t clock__real_ns(void);
int64_t clock__ns(clockid_t id);

static inline int64_t clock__mono_ms(void)
{
	return clock__mono_ns() / NSEC_PER_MSEC;
}

/* an absolute CLOCK_REALTIME deadline `ms` from now, for pthread_cond_timedwait */
struct timespec clock__real_deadline(int64_t ms);

#endif /* BUILDWARDEN_BASE_CLOCK_H */
