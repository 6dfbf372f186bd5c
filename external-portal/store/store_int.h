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

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

struct store {
	char		*dbpath;
	char		*dir;		/* NULL: metadata only, no messages */
	int		 dirfd;
	int		 rec_files, rec_rows;
};

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
struct sqlite3	*store_db(struct store *);
/* Column i as a new string (NULL stays NULL), or copied into out. */
char		*store_col_dup(struct sqlite3_stmt *, int i);
void		 store_col_copy(struct sqlite3_stmt *, int i, char *out,
		    size_t outlen);
/* The first column of a one-row query with an optional text key; -1. */
int64_t		 store_scalar(struct store *, const char *sql,
		    const char *key);

/* The store directory's path of a file name we generated. */
char		*store_abspath(struct store *, const char *name);
void		 store_random_name(const char *prefix, char *out,
		    size_t outlen);
int		 store_fsync_dir(struct store *);

/*
 * Inside the caller's transaction: deletes the message rows matching
 * (where, owner[, id]) and returns their file names in *names (*n of
 * them; caller frees with store_names_unlink() after COMMIT). 0 or -1.
 */
int		 store_msg_delete_rows(struct store *, const char *where,
		    const char *owner, int64_t id, char ***names, size_t *n);
/* The PDF-OTP table (store_pdf.c), created with the rest. 0 or -1. */
int		 store_pdf_schema(struct sqlite3 *, char **err);
/* Unlinks the files of committed deletes, then frees the names. */
void		 store_names_unlink(struct store *, char **names, size_t n);

#endif
