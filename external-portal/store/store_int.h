/*
 * Private to the store's .c files (store.c: open, recovery, schema,
 * statistics; store_msg.c; store_user.c; store_outbox.c). Callers include
 * store.h only.
 *
 * A struct store holds the database path, not a connection: every call
 * takes its thread's connection from db_thread() (the policy of db.h), so
 * a call that runs in a transaction can call another store function of
 * the same thread inside it.
 */
#ifndef PORTAL_STORE_INT_H
#define PORTAL_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct db;
struct db_stmt;

struct store {
	char		*dbpath;
	char		*dir;		/* NULL: metadata only, no messages */
	int		 dirfd;
	int		 rec_files, rec_rows;
	int64_t		 coalesce;	/* store_set_coalesce() */
	/* Group commit of this process's deliveries (store_group.c). */
	pthread_mutex_t	 gmtx;
	pthread_cond_t	 gcond;
	struct store_group_item *ghead, **gtail;
	int		 gbusy;		/* a leader is committing */
	/* Spent spool files for reuse as temp files (store_pool.c). */
	pthread_mutex_t	 pmtx;
#define STORE_POOL_MAX	16
#define STORE_POOL_NAME	40	/* "tmp-" + 32 hex + NUL */
	char		 pool[STORE_POOL_MAX][STORE_POOL_NAME];
	int		 npool;
};

/* One delivery waiting for its group's commit. */
struct store_group_item {
	const struct store_msg	*meta;
	const char		*owner, *domain;
	char			 name[64];	/* the linked file */
	int64_t			 size, quota, remind, now;
	int			 notify;
	int			 rc;		/* 0, STORE_EQUOTA, -1 */
	int64_t			 id;
	int			 done;
	struct store_group_item	*next;
};

/* The usage counter (store.c's triggers); 0 for an owner without a row. */
#define STORE_SQL_USAGE "SELECT COALESCE((SELECT used_bytes FROM " \
    "portal_users WHERE email = ?), 0)"

extern const char *const store_folder_names[2];
extern const char *const store_state_names[2];
extern const char *const store_user_states[2];
extern const char *const store_token_kinds[2];
extern const char *const store_outbox_kinds[5];

int		 store_enum(const char *const *names, size_t n, const char *s);
#define STORE_ENUM(tab, s) store_enum(tab, sizeof(tab) / sizeof(tab[0]), s)

/*
 * The store key of an email (addr_fold(): one spelling per mailbox) in
 * buf; email itself when it does not fold (not an address; it then
 * matches nothing that was stored folded).
 */
const char	*store_key(const char *email, char *buf, size_t len);
#define STORE_KEY_MAX	(2 * ADDR_MAX + 2)

/* This thread's connection to the store's database; NULL (logged). */
struct db	*store_db(struct store *);
/* Column i as a new string (NULL stays NULL), or copied into out. */
/* A random stamp for a new account (see portal_users.generation). */
int64_t		 store_generation(void);
char		*store_col_dup(struct db_stmt *, int i);
void		 store_col_copy(struct db_stmt *, int i, char *out,
		    size_t outlen);
/* The first column of a one-row query with an optional text key; -1. */
int64_t		 store_scalar(struct store *, const char *sql,
		    const char *key);

/* The store directory's path of a file name we generated. */
char		*store_abspath(struct store *, const char *name);
void		 store_random_name(const char *prefix, char *out,
		    size_t outlen);
int		 store_fsync_dir(struct store *);

void		 store_pool_init(struct store *);
/* Unlinks the pooled files. */
void		 store_pool_destroy(struct store *);
/*
 * A pooled file, truncated, open read-write, its name in name; -1 when
 * the pool is empty.
 */
int		 store_pool_take(struct store *, char *name, size_t len);

void		 store_group_init(struct store *);
void		 store_group_destroy(struct store *);
/*
 * Commits the delivery it (its file linked into the store directory) in
 * a group with the deliveries other threads queued meanwhile: the
 * directory fsync'd, the quota checked, the rows and the notification
 * inserted, committed; it->rc and it->id set when it returns.
 */
void		 store_group_run(struct store *, struct store_group_item *);
/* In the delivery's transaction: the notification rows (store_msg.c). */
int		 store_deliver_notify(struct db *, const struct store_msg *,
		    const char *owner, int64_t remind, int64_t coalesce,
		    int64_t now);

/*
 * Inside the caller's transaction: deletes the message rows matching
 * (where, owner[, id]) and returns their file names in *names (*n of
 * them; caller frees with store_names_unlink() after COMMIT). 0 or -1.
 */
int		 store_msg_delete_rows(struct store *, const char *where,
		    const char *owner, int64_t id, char ***names, size_t *n);
/* The PDF-OTP table (store_pdf.c), created with the rest. 0 or -1. */
int		 store_pdf_schema(struct db *, char **err);
/* Unlinks the files of committed deletes, then frees the names. */
void		 store_names_unlink(struct store *, char **names, size_t n);

/*
 * The parts table (store_part.c): one row per recorded part. A part
 * without a row is found by parsing the message, so messages stored
 * before the table existed need nothing. Rows go with their message
 * (ON DELETE CASCADE; foreign keys are on, see db.h).
 */
#define STORE_PART_SCHEMA \
    "CREATE TABLE IF NOT EXISTS portal_parts (" \
    " msg INTEGER NOT NULL REFERENCES portal_messages(id)" \
    " ON DELETE CASCADE, part INTEGER NOT NULL, \"offset\" INTEGER NOT NULL," \
    " length INTEGER NOT NULL, encoding TEXT, ctype TEXT, filename TEXT," \
    " size INTEGER NOT NULL, PRIMARY KEY (msg, part)) WITHOUT ROWID;"
/*
 * Message bytes in the database (store_blob.c; PostgreSQL only, no-ops
 * on SQLite). put: the store file name, inside the caller's transaction;
 * delete: its chunks, likewise; fetch: makes sure the file is in the
 * store directory (0, STORE_NOTFOUND or -1).
 */
#define STORE_BLOB_SCHEMA \
    "CREATE TABLE IF NOT EXISTS portal_blobs (" \
    " name TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL," \
    " PRIMARY KEY (name, seq));"
int		 store_blob_on(struct db *);
int		 store_blob_put(struct store *, struct db *, const char *name);
int		 store_blob_delete(struct db *, const char *name);
int		 store_blob_fetch(struct store *, const char *name);
/*
 * Outbox files (absolute paths in a spool directory), kept under their
 * base name: put in the transaction that adds the rows; fetch into path
 * (this node's spool) when it is not there.
 */
const char	*store_blob_spool_key(const char *path);
/* The building blocks, for postern-cli: fd (from its offset) as key. */
int		 store_blob_upload(struct db *, const char *key, int fd,
		    const char *what);
/* key into dir/name (dirfd open on dir): 0, STORE_NOTFOUND or -1. */
int		 store_blob_download(struct db *, const char *key, int dirfd,
		    const char *dir, const char *name);
int		 store_blob_put_path(struct db *, const char *path);
int		 store_blob_fetch_path(struct store *, const char *key,
		    const char *path);

/* In the delivery's transaction: the parts of message id; 0 or -1. */
int		 store_part_put(struct db *, int64_t id,
		    const struct store_part *, int n);

#endif
