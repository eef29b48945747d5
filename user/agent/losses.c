/* Losses of guarding: see losses.h. */
#include <stdio.h>

#include "agent/losses.h"

static const char *const loss_names[LOSS_KINDS] = {
	[LOSS_RINGBUF_DROPS] = "ringbuf_drops",
	[LOSS_FANOTIFY_OVERFLOWS] = "fanotify_overflows",
	[LOSS_FANOTIFY_UNRESOLVED] = "fanotify_unresolved",
	[LOSS_NOT_WATCHED] = "not_watched",
	[LOSS_DEPTH_EXCEEDED] = "depth_exceeded",
	[LOSS_UNATTRIBUTED] = "unattributed",
	[LOSS_PROC_TABLE_FAILURES] = "proc_table_failures",
	[LOSS_BAD_RECORDS] = "bad_records",
	[LOSS_SPOOL_DROPS] = "spool_drops",
};

void losses__from_counters(const struct run_counters *c, struct run_losses *out)
{
	*out = (struct run_losses){ .n = {
		[LOSS_RINGBUF_DROPS] = c->ringbuf_drops,
		[LOSS_FANOTIFY_OVERFLOWS] = c->fanwatch_overflows + c->procmem_overflows,
		[LOSS_FANOTIFY_UNRESOLVED] = c->fanwatch_unresolved,
		[LOSS_NOT_WATCHED] = c->fanwatch_skipped,
		[LOSS_DEPTH_EXCEEDED] = c->depth_exceeded,
		[LOSS_UNATTRIBUTED] = c->unattributed,
		[LOSS_PROC_TABLE_FAILURES] = c->proc_table_failures,
		[LOSS_BAD_RECORDS] = c->bad_records,
		[LOSS_SPOOL_DROPS] = c->spool_drops,
	} };
}

bool losses__any(const struct run_losses *l)
{
	for (int k = 0; k < LOSS_KINDS; k++)
		if (l->n[k])
			return true;
	return false;
}

const char *losses__name(enum run_loss k)
{
	return k < LOSS_KINDS ? loss_names[k] : "?";
}

void losses__format(const struct run_losses *l, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (int k = 0; k < LOSS_KINDS; k++) {
		int n;

		if (!l->n[k])
			continue;
		n = snprintf(buf + off, len - off, "%s%s %llu", off ? ", " : "", loss_names[k],
			     (unsigned long long)l->n[k]);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0'; /* whole causes only: a cut number would mislead */
			return;
		}
		off += (size_t)n;
	}
}

Buildwarden__V1__Incomplete *losses__to_proto(const struct run_losses *l,
					      Buildwarden__V1__Incomplete *inc)
{
	buildwarden__v1__incomplete__init(inc);
	if (!losses__any(l))
		return NULL;
	inc->ringbuf_drops = l->n[LOSS_RINGBUF_DROPS];
	inc->fanotify_overflows = l->n[LOSS_FANOTIFY_OVERFLOWS];
	inc->fanotify_unresolved = l->n[LOSS_FANOTIFY_UNRESOLVED];
	inc->not_watched = l->n[LOSS_NOT_WATCHED];
	inc->depth_exceeded = l->n[LOSS_DEPTH_EXCEEDED];
	inc->unattributed = l->n[LOSS_UNATTRIBUTED];
	inc->proc_table_failures = l->n[LOSS_PROC_TABLE_FAILURES];
	inc->bad_records = l->n[LOSS_BAD_RECORDS];
	inc->spool_drops = l->n[LOSS_SPOOL_DROPS];
	return inc;
}
