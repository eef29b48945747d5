// SPDX-License-Identifier: GPL-2.0
/* Open addressing with linear probing: see htab.h. */
#include <errno.h>
#include <stdlib.h>

#include "report/htab.h"

#define HTAB_FIRST 1024

uint64_t htab__num_key(uint64_t k)
{
	/* splitmix64's finalizer: pids and run numbers are dense, the probe wants spread */
	k += 0x9e3779b97f4a7c15ull;
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ull;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebull;
	k ^= k >> 31;
	return k ? k : 1;
}

uint64_t htab__str_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

static size_t htab__find(const struct rpt_htab *t, uint64_t key, htab_eq_fn eq, const void *ctx)
{
	size_t i = (size_t)key & (t->cap - 1);

	while (t->keys[i] && !(t->keys[i] == key && (!eq || eq(ctx, t->vals[i]))))
		i = (i + 1) & (t->cap - 1);
	return i;
}

int32_t htab__get(const struct rpt_htab *t, uint64_t key, htab_eq_fn eq, const void *ctx)
{
	size_t i;

	if (!t->cap)
		return -1;
	i = htab__find(t, key, eq, ctx);
	return t->keys[i] ? t->vals[i] : -1;
}

/* Doubles the table; keys are rehashed without eq (each stored key is distinct). */
static int htab__grow(struct rpt_htab *t)
{
	size_t cap = t->cap ? t->cap * 2 : HTAB_FIRST, i, j;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	int32_t *vals = calloc(cap, sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (i = 0; i < t->cap; i++) {
		if (!t->keys[i])
			continue;
		j = (size_t)t->keys[i] & (cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = t->keys[i];
		vals[j] = t->vals[i];
	}
	free(t->keys);
	free(t->vals);
	t->keys = keys;
	t->vals = vals;
	t->cap = cap;
	return 0;
}

int htab__put(struct rpt_htab *t, uint64_t key, int32_t val, htab_eq_fn eq, const void *ctx)
{
	size_t i;
	int err;

	if ((t->n + 1) * 2 > t->cap) {
		err = htab__grow(t);
		if (err)
			return err;
	}
	i = htab__find(t, key, eq, ctx);
	if (!t->keys[i])
		t->n++;
	t->keys[i] = key;
	t->vals[i] = val;
	return 0;
}

void htab__free(struct rpt_htab *t)
{
	free(t->keys);
	free(t->vals);
	t->keys = NULL;
	t->vals = NULL;
	t->cap = t->n = 0;
}
