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
	int (*apply)(struct store *s, struct batch *b, char *err, size_t errlen);
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
	/* NULL for an engine whose cursor is the caller's (SQLite) */
	int (*tail_claim)(struct store *s, const char *name);
	bool (*tail_claimed)(const struct store *s);
	int (*tail_cursor_load)(struct store *s, const char *name, int64_t *pos);
	int (*tail_cursor_save)(struct store *s, const char *name, int64_t pos, char *err,
				size_t errlen);
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
/* store_pg_tail.c's view of a PostgreSQL handle: its connection, made usable again
 * (reconnected) when it was lost, and how many sessions it has had (a session-level
 * lock, the export claim, ends with its session). */
struct pg_conn;
int store_pg__ready(struct store *s, char *err, size_t errlen);
struct pg_conn *store_pg__conn(struct store *s);
/* The current session, from 1 */
uint64_t store_pg__session(const struct store *s);
/* The session that took the export claim, 0 for none */
uint64_t *store_pg__claim(struct store *s);
/* An integer column of a binary result (int2, int4, int8 or bool), 0 for NULL. */
struct pg_result;
int64_t store_pg__bin_int(const struct pg_result *res, int row, int col);
/* pg_advisory_lock keys of the export: the sequencer; a claim is (NS, hashtext(name)). */
#define PG_LOCK_EXPORT_SEQ 0x6277636f6c6c03LL
#define PG_LOCK_EXPORT_NS 0x62776578 /* "bwex" */
int store_pg__tail(struct store *s, int64_t after, size_t max,
		   int (*fn)(void *arg, const struct store_row *r), void *arg);
int store_pg__tail_claim(struct store *s, const char *name);
bool store_pg__tail_claimed(const struct store *s);
int store_pg__tail_cursor_load(struct store *s, const char *name, int64_t *pos);
int store_pg__tail_cursor_save(struct store *s, const char *name, int64_t pos, char *err,
			       size_t errlen);
int store_pg__open(const char *conninfo, enum store_mode mode, struct store **out, char *err,
		   size_t errlen);

#endif /* BUILDWARDEN_COLLECTOR_STORE_PRIV_H */
