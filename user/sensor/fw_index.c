#include "sensor/fw_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"

#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX
#define FW_INDEX_FIRST 1024
/* ids are stored as id + 1 and UINT32_MAX marks a tombstone */
#define FW_INDEX_MAX_IDS (UINT32_MAX - 2)

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ULL;
	return h;
}

static uint64_t handle_hash(const struct fw_key *k)
{
	uint64_t x = fnv(&k->fsid, sizeof(k->fsid), 0xcbf29ce484222325ULL);

	x = fnv(&k->type, sizeof(k->type), x);
	return fnv(k->h, k->len, x);
}

static uint64_t path_hash(const char *p)
{
	return fnv(p, strlen(p), 0xcbf29ce484222325ULL);
}

struct fw_key fw_index__key(const struct fw_obj *o)
{
	return (struct fw_key){ .fsid = o->fsid, .type = o->htype, .len = o->hlen, .h = o->handle };
}

static uint64_t obj_hash(const struct fw_obj *o, bool by_path)
{
	struct fw_key k = fw_index__key(o);

	return by_path ? path_hash(o->path) : handle_hash(&k);
}

static bool obj_has_handle(const struct fw_obj *o, const struct fw_key *k)
{
	return o->fsid == k->fsid && o->htype == k->type && o->hlen == k->len &&
	       !memcmp(o->handle, k->h, k->len);
}

/* Grow a table to twice the live entries, dropping tombstones. */
static int table_rebuild(struct fw_index *ix, bool by_path)
{
	uint32_t **slots = by_path ? &ix->pidx : &ix->hidx;
	size_t *cap = by_path ? &ix->pcap : &ix->hcap;
	size_t *used = by_path ? &ix->pused : &ix->hused;
	size_t ncap = FW_INDEX_FIRST, i;
	uint32_t *n;

	while (ncap < 4 * (ix->live + 1))
		ncap *= 2;
	n = calloc(ncap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	*used = 0;
	for (i = 0; i < ix->n_objs; i++) {
		struct fw_obj *o = ix->objs[i];
		size_t s;

		if (!o || (by_path && !o->path))
			continue;
		for (s = obj_hash(o, by_path) & (ncap - 1); n[s] != SLOT_EMPTY; s = (s + 1) & (ncap - 1))
			;
		n[s] = (uint32_t)i + 1;
		(*used)++;
	}
	free(*slots);
	*slots = n;
	*cap = ncap;
	return 0;
}

static int table_insert(struct fw_index *ix, bool by_path, struct fw_obj *o)
{
	uint32_t *slots;
	size_t cap, s;

	if ((by_path ? ix->pused : ix->hused) * 2 + 2 > (by_path ? ix->pcap : ix->hcap))
		return table_rebuild(ix, by_path); /* holds o already: it is live */
	slots = by_path ? ix->pidx : ix->hidx;
	cap = by_path ? ix->pcap : ix->hcap;
	for (s = obj_hash(o, by_path) & (cap - 1); slots[s] != SLOT_EMPTY && slots[s] != SLOT_TOMB;
	     s = (s + 1) & (cap - 1))
		;
	if (slots[s] == SLOT_EMPTY)
		(*(by_path ? &ix->pused : &ix->hused))++;
	slots[s] = o->id + 1;
	return 0;
}

static void table_remove(struct fw_index *ix, bool by_path, const struct fw_obj *o)
{
	uint32_t *slots = by_path ? ix->pidx : ix->hidx;
	size_t cap = by_path ? ix->pcap : ix->hcap, s, n;

	if (!slots)
		return;
	for (s = obj_hash(o, by_path) & (cap - 1), n = 0; slots[s] != SLOT_EMPTY && n < cap;
	     s = (s + 1) & (cap - 1), n++) {
		if (slots[s] == o->id + 1) {
			slots[s] = SLOT_TOMB;
			return;
		}
	}
}

struct fw_obj *fw_index__by_handle(const struct fw_index *ix, const struct fw_key *key)
{
	size_t s, n;

	if (!ix->hidx)
		return NULL;
	s = handle_hash(key) & (ix->hcap - 1);
	for (n = 0; ix->hidx[s] != SLOT_EMPTY && n < ix->hcap; s = (s + 1) & (ix->hcap - 1), n++) {
		uint32_t v = ix->hidx[s];

		if (v != SLOT_TOMB && obj_has_handle(ix->objs[v - 1], key))
			return ix->objs[v - 1];
	}
	return NULL;
}

struct fw_obj *fw_index__by_path(const struct fw_index *ix, const char *path)
{
	size_t s, n;

	if (!ix->pidx)
		return NULL;
	s = path_hash(path) & (ix->pcap - 1);
	for (n = 0; ix->pidx[s] != SLOT_EMPTY && n < ix->pcap; s = (s + 1) & (ix->pcap - 1), n++) {
		uint32_t v = ix->pidx[s];

		if (v != SLOT_TOMB && !strcmp(ix->objs[v - 1]->path, path))
			return ix->objs[v - 1];
	}
	return NULL;
}

int fw_index__set_path(struct fw_index *ix, struct fw_obj *o, const char *path, unsigned tree)
{
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	table_remove(ix, true, o);
	free(o->path);
	o->path = p;
	o->tree = tree;
	return table_insert(ix, true, o);
}

/* A free id: a released one first, else a new one at the end. */
static int take_id(struct fw_index *ix, uint32_t *id)
{
	int err;

	if (ix->n_free) {
		*id = ix->free_ids[--ix->n_free];
		return 0;
	}
	/* free_ids can hold every id there is, so releasing one never allocates. */
	err = grow__reserve((void **)&ix->objs, &ix->cap_objs, ix->n_objs + 1, sizeof(*ix->objs),
			    FW_INDEX_FIRST, FW_INDEX_MAX_IDS);
	if (!err)
		err = grow__reserve((void **)&ix->free_ids, &ix->cap_free, ix->n_objs + 1,
				    sizeof(*ix->free_ids), FW_INDEX_FIRST, FW_INDEX_MAX_IDS);
	if (err)
		return err;
	*id = (uint32_t)ix->n_objs++;
	return 0;
}

int fw_index__upsert(struct fw_index *ix, const struct fw_key *key, const char *path,
		     unsigned tree, bool is_dir, nlink_t nlink, uint64_t gen, struct fw_obj **out)
{
	struct fw_obj *o = fw_index__by_handle(ix, key);
	int err;

	if (o) {
		o->gen = gen;
		if (out)
			*out = o;
		if (strcmp(o->path, path))
			return fw_index__set_path(ix, o, path, tree);
		return 0;
	}
	o = calloc(1, sizeof(*o) + key->len);
	if (!o || !(o->path = strdup(path))) {
		free(o);
		return -ENOMEM;
	}
	o->fsid = key->fsid;
	o->htype = key->type;
	o->hlen = key->len;
	memcpy(o->handle, key->h, key->len);
	o->serial = ++ix->serial;
	o->gen = gen;
	o->nlink = nlink;
	o->is_dir = is_dir;
	o->tree = tree;
	err = take_id(ix, &o->id);
	if (err) {
		free(o->path);
		free(o);
		return err == -EOVERFLOW ? -ENOSPC : err;
	}
	ix->objs[o->id] = o;
	ix->live++;
	err = table_insert(ix, false, o);
	if (!err)
		err = table_insert(ix, true, o);
	if (err)
		return err;
	if (out)
		*out = o;
	return 1;
}

void fw_index__remove(struct fw_index *ix, struct fw_obj *o)
{
	table_remove(ix, false, o);
	table_remove(ix, true, o);
	ix->objs[o->id] = NULL;
	ix->live--;
	ix->free_ids[ix->n_free++] = o->id;
	free(o->path);
	free(o);
}

void fw_index__free(struct fw_index *ix)
{
	size_t i;

	for (i = 0; i < ix->n_objs; i++) {
		if (ix->objs[i]) {
			free(ix->objs[i]->path);
			free(ix->objs[i]);
		}
	}
	free(ix->objs);
	free(ix->free_ids);
	free(ix->hidx);
	free(ix->pidx);
	memset(ix, 0, sizeof(*ix));
}
