// SPDX-License-Identifier: GPL-2.0
/* Batch of store operations: see batch.h. */
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "collector/batch.h"

/* Memory kept across batches: enough for a full default batch of typical events. */
#define BATCH_KEEP (8u << 20)

void batch__init(struct batch *b)
{
	memset(b, 0, sizeof(*b));
	slab__init(&b->mem, 64u * 1024);
}

void batch__reset(struct batch *b)
{
	b->n_ops = b->n_events = b->bytes = b->n_runs = 0;
	b->first_ns = 0;
	slab__reset(&b->mem, BATCH_KEEP);
}

void batch__free(struct batch *b)
{
	free(b->ops);
	free(b->runs);
	slab__free(&b->mem);
	memset(b, 0, sizeof(*b));
}

struct bop *batch__push(struct batch *b, enum bop_kind kind)
{
	struct bop *op;

	if (grow__reserve((void **)&b->ops, &b->cap_ops, b->n_ops + 1, sizeof(*b->ops), 256, 0))
		return NULL;
	op = &b->ops[b->n_ops++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	if (kind != BOP_FINDING)
		b->n_events++;
	return op;
}

struct batch_run *batch__push_run(struct batch *b)
{
	struct batch_run *r;

	if (grow__reserve((void **)&b->runs, &b->cap_runs, b->n_runs + 1, sizeof(*b->runs), 256, 0))
		return NULL;
	r = &b->runs[b->n_runs++];
	memset(r, 0, sizeof(*r));
	return r;
}

const char *batch__strdup(struct batch *b, const char *s)
{
	if (!s)
		return NULL;
	return slab__memdup(&b->mem, s, strlen(s) + 1);
}

bool batch__empty(const struct batch *b)
{
	return !b->n_ops && !b->n_runs;
}
