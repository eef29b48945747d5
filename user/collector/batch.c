// SPDX-License-Identifier: GPL-2.0
/* Batch of store operations: see batch.h. */
#include <stdlib.h>
#include <string.h>

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

/* Grows a vector by doubling; returns false when out of memory. */
static bool batch__grow(void **v, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 256;
	p = realloc(*v, ncap * elem);
	if (!p)
		return false;
	*v = p;
	*cap = ncap;
	return true;
}

struct bop *batch__push(struct batch *b, enum bop_kind kind)
{
	struct bop *op;

	if (!batch__grow((void **)&b->ops, &b->cap_ops, b->n_ops, sizeof(*b->ops)))
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

	if (!batch__grow((void **)&b->runs, &b->cap_runs, b->n_runs, sizeof(*b->runs)))
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
