#include "base/thread.h"

#include <signal.h>

int thread__start_quiet(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	/* the new thread inherits the creator's mask: block all, create, restore */
	sigfillset(&all);
	e = pthread_sigmask(SIG_BLOCK, &all, &old);
	if (e)
		return -e;
	e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -e;
}
