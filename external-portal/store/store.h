/*
 * The portal's store: message bytes as files in one directory, metadata
 * (users, messages, tokens, web sessions, recovery codes, outbox) in
 * SQLite. Every SQL statement of the portal's own tables lives in the
 * store (store.c, store_msg.c, store_user.c, store_outbox.c behind
 * store_int.h) so the store can move to another engine without touching
 * its callers. Shared by the ingest worker, the web worker and
 * postern-cli; every call is safe from several threads: each thread uses
 * its own connection (db_thread(), see db.h) and the store keeps no lock.
 *
 * Durability: a message is committed as tmp file -> fsync -> link/rename to
 * its final name -> fsync(directory) -> row committed (WAL,
 * synchronous=FULL). store_open() removes what a crash can leave behind:
 * temp files, files without a row and rows without a file.
 */
#ifndef PORTAL_STORE_H
#define PORTAL_STORE_H

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>

#include "addr.h"

enum store_folder { STORE_FOLDER_INBOX, STORE_FOLDER_SENT };
enum store_msg_state { STORE_MSG_WEBMAIL, STORE_MSG_PDF_PENDING };
enum store_user_state { STORE_USER_PENDING, STORE_USER_ACTIVE };
enum store_token_kind { STORE_TOKEN_SIGNUP, STORE_TOKEN_RESET };
enum store_outbox_kind {
	STORE_OUTBOX_SIGNUP,	/* invite: a fresh sign-up token at send time */
	STORE_OUTBOX_NEWMSG,	/* "you have a new message", sign-in link */
	STORE_OUTBOX_RAW,	/* a complete message file (PDF, reset mail) */
	/*
	 * A Webmail Messenger reply or new message: path is a spool file
	 * shared by one row per recipient, sender_name the envelope sender
	 * (the portal user); sent through the reply relay.
	 */
	STORE_OUTBOX_REPLY,
	/* A read receipt: path as above, null envelope sender (RFC 8098). */
	STORE_OUTBOX_RECEIPT,
};

/* Results beyond 0 / -1 (environment failure). */
#define STORE_NOTFOUND	1
#define STORE_EQUOTA	(-2)

#define STORE_HASH_HEX	65	/* SHA-256 hex + NUL */

struct store;

struct store_user {
	char			 email[ADDR_MAX];
	enum store_user_state	 state;
	char			*password_hash;	/* NULL while pending */
	char			*totp_secret;	/* base32, NULL if none */
	int			 totp_enabled;
	int64_t			 totp_last_step; /* replay guard */
	int64_t			 created;	/* unix seconds */
};

struct store_msg {
	int64_t			 id;
	char			 owner[ADDR_MAX];
	enum store_folder	 folder;
	enum store_msg_state	 state;
	char			*mail_from;	/* envelope sender */
	char			*hdr_from;	/* raw From: value */
	char			*subject;	/* raw Subject: value */
	int64_t			 date;		/* unix seconds (Date: or arrival) */
	int64_t			 size;
	int			 has_attachments;
	int			 unread;
	char			*path;		/* absolute */
	int64_t			 created;
	/*
	 * Encrypted storage: hdr_from and subject sealed with the file's
	 * CEK (store_crypt_meta_seal), the two columns then NULL; NULL
	 * when they are in clear.
	 */
	unsigned char		*sealed_meta;
	size_t			 sealed_metalen;
	/* Delivery only: the MIME parts to record (store_part.c), or NULL. */
	const struct store_part	*parts;
	int			 nparts;
};

/*
 * Where a leaf MIME part of a stored message lies in its file, recorded
 * at delivery so a download needs no parse: the encoded bytes at
 * [offset, offset + length), their Content-Transfer-Encoding, and what
 * the download is called and how long it is once decoded. Parts are
 * numbered from 1 as the web pages number them.
 */
struct store_part {
	int			 part;
	int64_t			 offset;
	int64_t			 length;
	char			*encoding;	/* "base64", ...; NULL: as is */
	char			*ctype;		/* type/subtype */
	char			*filename;	/* raw, may be NULL */
	int64_t			 size;		/* decoded */
};

struct store_outbox {
	int64_t			 id;
	enum store_outbox_kind	 kind;
	char			 rcpt[ADDR_MAX];
	char			*sender_name;	/* original sender, may be NULL */
	char			*subject;	/* original subject, may be NULL */
	char			*path;		/* STORE_OUTBOX_RAW: the message */
	int			 attempts;
	int64_t			 next_attempt;
	int64_t			 created;
};

struct store_stats {
	int64_t	users, users_pending, users_active;
	int64_t	messages, messages_pdf_pending, bytes;
	int64_t	outbox, tokens_live;
};

/* A message being written before it is committed. */
struct store_tmp {
	FILE	*fp;
	char	*path;
};

/*
 * Opens (creating tables and the directory) the store. msgdir NULL opens
 * the metadata only (users, sessions; the web's session layer): a message
 * call on it is a broken invariant. recover: remove temp
 * and orphan files and rows without files, logging counts (the daemon does
 * this at start; the CLI does not). NULL with *err set (caller frees).
 */
struct store	*store_open(const char *dbpath, const char *msgdir, int recover,
		    char **err);
/*
 * Makes sure m's file is in this node's store directory (fetched from
 * the database when another portal stored it; PostgreSQL only). 0, or
 * -1 (logged).
 */
int		 store_msg_fetch(struct store *, const struct store_msg *);
/*
 * 1 when the calling thread can reach the database (a broken PostgreSQL
 * connection is re-established here), 0 when not (logged).
 */
int		 store_available(struct store *);
/* Also closes the calling thread's database connection (db.h). */
void		 store_close(struct store *);
/*
 * "New message" notifications of one account are coalesced: a delivery
 * within seconds of the last queued one queues none (that mail covers
 * it). 0, the default, queues one per message. Invitations and reminders
 * keep their own schedule (store_deliver_remind).
 */
void		 store_set_coalesce(struct store *, int64_t seconds);
/* Counts of the last recovery, for logs and tests. */
void		 store_recovered(struct store *, int *files, int *rows);

/* --- messages ------------------------------------------------------------ */

/* A temp file in the store's directory; -1 on failure (logged). */
int		 store_tmp_create(struct store *, struct store_tmp *);
/*
 * Takes over a spent file at path (the ingest's spool file once it was
 * read) by renaming it into the store directory, to be reused by a later
 * store_tmp_create(): 0 when taken (path is gone), -1 when not (another
 * file system, pool full; the caller removes it as before).
 */
int		 store_tmp_recycle(struct store *, const char *path);
/* Closes and removes the temp file. */
void		 store_tmp_discard(struct store_tmp *);

/*
 * Makes tmp durable as a new message of owner (tmp stays, so one written
 * message can be committed for several recipients; discard it after).
 * meta gives folder, state, from, subject, date, has_attachments; size is
 * taken from the file. quota: the owner's limit in bytes, 0 for none.
 * notify: also queue a notification in the same transaction: "new
 * message" for an active account; for a pending one the sign-up
 * invitation, and after it at most one reminder (a new invitation; no link
 * revokes another) per remind seconds. The owner's account is created
 * (pending) if absent. Returns 0 with *id set, STORE_EQUOTA, or -1.
 */
int		 store_deliver_remind(struct store *, struct store_tmp *,
		    const struct store_msg *meta, const char *owner,
		    int64_t quota, int notify, int64_t remind, int64_t *id);
/* store_deliver_remind() with the default reminder interval. */
#define STORE_REMIND_DEFAULT	(24 * 3600)
int		 store_deliver(struct store *, struct store_tmp *,
		    const struct store_msg *meta, const char *owner,
		    int64_t quota, int notify, int64_t *id);

/*
 * Newest first, keyset paginated: messages of owner in folder with
 * id < before (0: from the newest), at most limit. Returns the count put in
 * out (caller-allocated, limit long; free each with store_msg_free) or -1.
 * The entries have no path unless their From and Subject are sealed
 * (sealed_meta), where it names the file whose key opens them.
 */
int		 store_msg_list(struct store *, const char *owner,
		    enum store_folder, int64_t before, int limit,
		    struct store_msg *out);
/* The same, and the owner's usage (store_usage) read with it. */
int		 store_msg_page(struct store *, const char *owner,
		    enum store_folder, int64_t before, int limit,
		    struct store_msg *out, int64_t *used);
/* Another owner's id is STORE_NOTFOUND. */
int		 store_msg_get(struct store *, const char *owner, int64_t id,
		    struct store_msg *);
int		 store_msg_set_unread(struct store *, const char *owner,
		    int64_t id, int unread);
int		 store_msg_set_state(struct store *, const char *owner,
		    int64_t id, enum store_msg_state);
/*
 * The read receipt of a message, at most once: marks it sent and queues
 * the receipt file at path for rcpt in one transaction. 0 when queued,
 * STORE_NOTFOUND when already sent (or no such message of owner), -1.
 */
int		 store_msg_receipt_queue(struct store *, const char *owner,
		    int64_t id, const char *rcpt, const char *path);
/* 1 when the receipt of the message was sent, 0 when not, -1. */
int		 store_msg_receipt_sent(struct store *, const char *owner,
		    int64_t id);
/*
 * SQLite's plan for the inbox listing (store_msg_list), one "detail"
 * line per step, into out; for benchmarks and tests. 0 or -1.
 */
int		 store_msg_list_plan(struct store *, char *out, size_t outlen);
/* Removes the row, then the file. */
int		 store_msg_delete(struct store *, const char *owner, int64_t id);
/*
 * The same for a Webmail message only: what a user may delete in the
 * web (a PDF-OTP message waiting for its PDF is STORE_NOTFOUND).
 */
int		 store_msg_delete_webmail(struct store *, const char *owner,
		    int64_t id);
void		 store_msg_free(struct store_msg *);

/*
 * Part part of message id of owner as recorded at delivery, with the
 * message's metadata in *m (store_msg_free) and the part in *p
 * (store_part_free). STORE_NOTFOUND when the message is not owner's or
 * not a Webmail message (a PDF-OTP one waiting for its PDF), or
 * its parts were not recorded (stored before, or not a multipart
 * message), or that part was not (an attached message, a winmail.dat):
 * then the caller parses the message. -1 on error.
 */
int		 store_part_get(struct store *, const char *owner, int64_t id,
		    int part, struct store_msg *m, struct store_part *p);
void		 store_part_free(struct store_part *);

/*
 * Reads the decoded content of a recorded part from its message file in
 * chunks: the encoded bytes are read with pread() and decoded with
 * GMime's decoder, so the bytes are those of a parse. Memory: one
 * STORE_PART_CHUNK of input.
 */
#define STORE_PART_CHUNK	(16 * 1024)
struct store_part_reader;
/* NULL (logged) when the file cannot be opened or the encoding is unknown. */
struct store_part_reader *store_part_reader_open(const char *path,
		    const struct store_part *);
/*
 * At least 1 and at most len bytes of decoded content, 0 at the end, -1
 * on a read error or a file shorter than recorded (logged).
 */
ssize_t		 store_part_read(struct store_part_reader *, char *buf,
		    size_t len);
void		 store_part_reader_close(struct store_part_reader *);
/*
 * The whole (rest of the) decoded range appended to b, read in one go:
 * for parts the caller holds in memory anyway. 0, or -1 (logged; b past
 * its maximum, or the range longer than STORE_PART_ALL_MAX).
 */
#define STORE_PART_ALL_MAX	(4 * 1024 * 1024)
struct buf;
int		 store_part_read_all(struct store_part_reader *, struct buf *);
/*
 * The encodings a part may be recorded with: those the reader decodes
 * exactly as a parse does (base64, quoted-printable) or none (NULL).
 */
int		 store_part_encoding_ok(const char *);

/*
 * Bytes stored for one owner (its usage counter, kept with every insert
 * and delete), one domain, everything; -1 on error.
 */
int64_t		 store_usage(struct store *, const char *owner);
int64_t		 store_usage_domain(struct store *, const char *domain);
int64_t		 store_usage_total(struct store *);
/* Message count of an owner (for mailbox listings). */
int64_t		 store_msg_count(struct store *, const char *owner);

/*
 * Calls cb for every message created before cutoff (unix seconds), oldest
 * first, owner NULL for all owners. cb returns 0 to continue.
 */
int		 store_msg_older(struct store *, const char *owner,
		    int64_t cutoff, int (*cb)(void *, const struct store_msg *),
		    void *arg);

/* --- users --------------------------------------------------------------- */

int		 store_user_get(struct store *, const char *email,
		    struct store_user *);
void		 store_user_free(struct store_user *);
int		 store_user_list(struct store *,
		    void (*cb)(void *, const struct store_user *), void *arg);
/* Sets the hash and makes the account active; its sign-up links die. */
int		 store_user_set_password(struct store *, const char *email,
		    const char *hash);
/* Back to pending: password and 2FA cleared, live tokens revoked. */
int		 store_user_reset_password(struct store *, const char *email);
int		 store_user_set_totp(struct store *, const char *email,
		    const char *secret, int enabled);
/* Records a used TOTP step; 1 if it is not newer than the last (replay). */
int		 store_user_totp_step(struct store *, const char *email,
		    int64_t step);
/*
 * Deletes the account with its messages (rows, then files), tokens,
 * queued notifications, web sessions and recovery codes in one
 * transaction.
 */
int		 store_user_delete(struct store *, const char *email);

/* --- tokens (only hashes are stored) -------------------------------------- */

int		 store_token_put(struct store *, enum store_token_kind,
		    const char *hash_hex, const char *email, int64_t expires);
/*
 * Marks the live token with this hash used and copies its email; 0, or
 * STORE_NOTFOUND for an unknown, used or expired one. Single use even
 * under concurrent calls.
 */
int		 store_token_consume(struct store *, enum store_token_kind,
		    const char *hash_hex, int64_t now, char *email,
		    size_t emaillen);
/*
 * Looks a token up without using it: 0 with its email and *live (1 while
 * unused and unexpired), or STORE_NOTFOUND, or -1.
 */
int		 store_token_peek(struct store *, enum store_token_kind,
		    const char *hash_hex, int64_t now, char *email,
		    size_t emaillen, int *live);
/* Marks every live token of kind for email used. */
int		 store_token_revoke(struct store *, enum store_token_kind,
		    const char *email);

/* --- web sessions (only the SHA-256 of a session id is stored) ---------- */

/*
 * A session of email's account as it is now (its generation is kept with
 * the session). 0, or -1 (also when there is no such account).
 */
int		 store_session_put(struct store *, const char *hash,
		    const char *email, int stage, int64_t now);
/*
 * The live session with this hash: 0 with email and *stage set (and
 * last_seen touched), or STORE_NOTFOUND, and the session deleted, when it
 * is idle longer than idle or older than absolute seconds, or its account
 * is gone or was created anew since. -1 on a database error.
 */
int		 store_session_get(struct store *, const char *hash,
		    int64_t now, int64_t idle, int64_t absolute, char *email,
		    size_t emaillen, int *stage);
int		 store_session_delete(struct store *, const char *hash);
int		 store_session_delete_all(struct store *, const char *email);
/*
 * The server key called name, len bytes, into out: the stored one, or
 * fresh when none was stored yet (then stored). 0 or -1.
 */
int		 store_key_get(struct store *, const char *name,
		    const unsigned char *fresh, unsigned char *out, size_t len);

/* Sign-in failure counters by key; both 0 for an unknown key. 0 or -1. */
int		 store_throttle_get(struct store *, const char *key,
		    int64_t *failures, int64_t *last);
/* Counts a failure at now; the new failure count, or -1. */
int		 store_throttle_fail(struct store *, const char *key,
		    int64_t now);
int		 store_throttle_clear(struct store *, const char *key);

/* Replaces the recovery code hashes (SHA-256 hex) of email. */
int		 store_recovery_set(struct store *, const char *email,
		    char hashes[][65], size_t n);
/* 1 when hash was an unused recovery code of email (now used), 0, -1. */
int		 store_recovery_use(struct store *, const char *email,
		    const char *hash);
int		 store_recovery_clear(struct store *, const char *email);

/* --- outbox ---------------------------------------------------------------- */

int		 store_outbox_add(struct store *, enum store_outbox_kind,
		    const char *rcpt, const char *sender_name,
		    const char *subject, const char *path);
/* One row per recipient, all or none (one transaction). */
int		 store_outbox_add_many(struct store *, enum store_outbox_kind,
		    const char *const *rcpts, size_t nrcpts,
		    const char *sender_name, const char *subject,
		    const char *path);
/* Rows still naming path (a shared spool file); -1 on error. */
int64_t		 store_outbox_path_refs(struct store *, const char *path);
/* The due row with the earliest next_attempt; STORE_NOTFOUND if none. */
int		 store_outbox_next(struct store *, int64_t now,
		    struct store_outbox *);
/* Earliest next_attempt of any row, or -1 if the outbox is empty. */
int64_t		 store_outbox_wake_time(struct store *);
int		 store_outbox_done(struct store *, int64_t id);
/*
 * An outbox file whose last row is done: its copy in the database goes
 * (PostgreSQL; the caller unlinks the file). 0 or -1.
 */
int		 store_outbox_file_done(struct store *, const char *path);
/*
 * The outbox file path as a file of this node: path itself when it is
 * here, else its copy from the database written into spool_dir. NULL
 * when neither (logged). Caller frees.
 */
char		*store_outbox_fetch(struct store *, const char *path,
		    const char *spool_dir);
int		 store_outbox_retry(struct store *, int64_t id,
		    int64_t next_attempt, const char *error);
void		 store_outbox_free(struct store_outbox *);

int		 store_stats(struct store *, struct store_stats *);

#endif
