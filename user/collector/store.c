// SPDX-License-Identifier: GPL-2.0
/* The store interface: picks the engine from the --db value and dispatches to it. See
 * store.h; the engines are store_sqlite.c and store_pg.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "collector/store_priv.h"

enum store_engine store__engine_of(const char *db)
{
	const char *p = db;

	if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
		return STORE_PG;
	/* "host=/run/pg dbname=bw": a conninfo string starts with a keyword and '=' (a
	 * file of that name is still reachable as ./host=...) */
	while (*p && (islower((unsigned char)*p) || *p == '_'))
		p++;
	return p != db && *p == '=' ? STORE_PG : STORE_SQLITE;
}

void store__describe(const char *db, char *out, size_t len)
{
	if (store__engine_of(db) == STORE_PG)
		store_pg__describe(db, out, len);
	else
		snprintf(out, len, "%s", db);
}

enum store_engine store__engine(const struct store *s)
{
	return s->ops->engine;
}

int store__open(const char *db, enum store_mode mode, struct store **out, char *err,
		size_t errlen)
{
	*out = NULL;
	if (store__engine_of(db) == STORE_PG)
		return store_pg__open(db, mode, out, err, errlen);
	return store_sqlite__open(db, mode, out, err, errlen);
}

void store__close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

int store__set_sync(struct store *s, enum store_sync mode)
{
	return s->ops->set_sync(s, mode);
}

int store__apply(struct store *s, struct batch *b, char *err, size_t errlen)
{
	if (batch__empty(b))
		return 0;
	return s->ops->apply(s, b, err, errlen);
}

int store__lookup_run(struct store *s, const char *agent, const char *run_id,
		      struct run_rec *out)
{
	return s->ops->lookup_run(s, agent, run_id, out);
}

int store__max_run_id(struct store *s, int64_t *out)
{
	return s->ops->max_run_id(s, out);
}

int store__retain(struct store *s, int64_t cutoff_ns, size_t max_rows, bool *more, char *err,
		  size_t errlen)
{
	*more = false;
	return s->ops->retain(s, cutoff_ns, max_rows, more, err, errlen);
}

int store__query(struct store *s, const char *sql, const struct store_param *params,
		 size_t n_params, int (*fn)(void *arg, const struct store_res *r), void *arg,
		 char *err, size_t errlen)
{
	return s->ops->query(s, sql, params, n_params, fn, arg, err, errlen);
}

int store__tail(struct store *s, int64_t after, size_t max,
		int (*fn)(void *arg, const struct store_row *r), void *arg)
{
	return s->ops->tail ? s->ops->tail(s, after, max, fn, arg) : -EOPNOTSUPP;
}

int store__tail_max(struct store *s, int64_t *out)
{
	*out = 0;
	return s->ops->tail_max ? s->ops->tail_max(s, out) : -EOPNOTSUPP;
}

bool store__tail_shared(const struct store *s)
{
	return s->ops->tail_claim != NULL;
}

int store__tail_claim(struct store *s, const char *name)
{
	return s->ops->tail_claim ? s->ops->tail_claim(s, name) : 1;
}

bool store__tail_claimed(const struct store *s)
{
	return s->ops->tail_claimed ? s->ops->tail_claimed(s) : true;
}

int store__tail_cursor_load(struct store *s, const char *name, int64_t *pos)
{
	*pos = 0;
	return s->ops->tail_cursor_load ? s->ops->tail_cursor_load(s, name, pos) : -EOPNOTSUPP;
}

int store__tail_cursor_save(struct store *s, const char *name, int64_t pos, char *err,
			    size_t errlen)
{
	if (!s->ops->tail_cursor_save) {
		snprintf(err, errlen, "this store keeps no export cursor");
		return -EOPNOTSUPP;
	}
	return s->ops->tail_cursor_save(s, name, pos, err, errlen);
}

sqlite3 *store__db(struct store *s)
{
	return s->ops->engine == STORE_SQLITE ? store_sqlite__db(s) : NULL;
}

void store__stats(const struct store *s, struct store_stats *out)
{
	*out = s->st;
}

bool store_res__null(const struct store_res *r, int col)
{
	return r->ops->null(r, col);
}

const char *store_res__text(const struct store_res *r, int col)
{
	return r->ops->text(r, col);
}

int64_t store_res__int(const struct store_res *r, int col)
{
	return r->ops->num(r, col);
}

const void *store_res__blob(const struct store_res *r, int col, size_t *len)
{
	return r->ops->blob(r, col, len);
}
