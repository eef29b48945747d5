/* What an engine of the store provides (store.c dispatches to it). Each engine's
 * handle starts with struct store. */
#ifndef BUILDWARDEN_COLLECTOR_STORE_PRIV_H
#define BUILDWARDEN_COLLECTOR_STORE_PRIV_H

#include "collector/store.h"
#include "collector/store_tail.h"

struct store_ops {
	enum store_engine engine;
	void (*close)(struct store *s);
	int (*set_sync)(struct store *s, enum store_sync mode);
	int (*apply)(struct store *s, const struct batch *b, char *err, size_t errlen);
	int (*lookup_run)(struct store *s, const char *agent, const char *run_id,
			  struct run_rec *out);
	int (*max_run_id)(struct store *s, int64_t *out);
	int (*retain)(struct store *s, int64_t cutoff_ns, size_t max_rows, bool *more, char *err,
		      size_t errlen);
	int (*query)(struct store *s, const char *sql, const struct store_param *params,
		     size_t n_params, int (*fn)(void *arg, const struct store_res *r), void *arg,
		     char *err, size_t errlen);
	int (*tail)(struct store *s, int64_t after, size_t max,
		    int (*fn)(void *arg, const struct store_row *r), void *arg);
	int (*tail_max)(struct store *s, int64_t *out);
};

struct store {
	const struct store_ops *ops;
	struct store_stats st;
};

/* A result row: the engine's accessors over its own handle. */
struct store_res_ops {
	bool (*null)(const struct store_res *r, int col);
	const char *(*text)(const struct store_res *r, int col);
	int64_t (*num)(const struct store_res *r, int col);
	const void *(*blob)(const struct store_res *r, int col, size_t *len);
};

struct store_res {
	const struct store_res_ops *ops;
	void *h;   /* sqlite3_stmt *, or PGresult * */
	int row;   /* PostgreSQL: the row number */
};

int store_sqlite__open(const char *path, enum store_mode mode, struct store **out, char *err,
		       size_t errlen);
sqlite3 *store_sqlite__db(struct store *s);
int store_sqlite__tail(struct store *s, int64_t after, size_t max,
		       int (*fn)(void *arg, const struct store_row *r), void *arg);
int store_sqlite__tail_max(struct store *s, int64_t *out);
void store_pg__describe(const char *conninfo, char *out, size_t len);
int store_pg__open(const char *conninfo, enum store_mode mode, struct store **out, char *err,
		   size_t errlen);

#endif /* BUILDWARDEN_COLLECTOR_STORE_PRIV_H */
