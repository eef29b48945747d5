#include "base/clock.h"

int64_t clock__ns(clockid_t id)
{
	struct timespec ts;

	/* Fails only for an invalid clock id, which the callers never pass. */
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

int64_t clock__mono_ns(void)
{
	return clock__ns(CLOCK_MONOTONIC);
}

int64_t clock__real_ns(void)
{
	return clock__ns(CLOCK_REALTIME);
}

struct timespec clock__real_deadline(int64_t ms)
{
	int64_t t = clock__real_ns() + (ms > 0 ? ms : 0) * NSEC_PER_MSEC;
	struct timespec ts = { .tv_sec = t / NSEC_PER_SEC, .tv_nsec = t % NSEC_PER_SEC };

	return ts;
}
