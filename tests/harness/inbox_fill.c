/*
 * Fills one portal mailbox through the real store (store_deliver, with
 * its fsyncs and transactions) for benchmarks, then prints the database's
 * plan for the inbox listing query. DATABASE is what the portal's
 * `database` setting holds: an SQLite file or a PostgreSQL URL (then the
 * message bytes go into the database too, as the portal's own delivery
 * puts them).
 *
 *   inbox_fill DATABASE STORE_DIR OWNER COUNT [CERTFILE]
 *
 * With CERTFILE each message is sealed as the ingest seals it with
 * encrypted storage on: the file to the certificates, From and Subject
 * in the row with the file's key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "store/store_crypt.h"

static double
inbox_fill_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The store calls behind one inbox page, without HTTP. */
static void
inbox_fill_time(struct store *s, const char *owner, int64_t before,
    const char *what)
{
	struct store_msg list[51];
	double t0 = inbox_fill_now(), t1;
	int n = store_msg_list(s, owner, STORE_FOLDER_INBOX, before, 51, list);
	int64_t used;

	t1 = inbox_fill_now();
	used = store_usage(s, owner);
	printf("store: %s: %d rows in %.0f us, usage sum (%lld bytes) in "
	    "%.0f us\n", what, n, t1 - t0, (long long)used,
	    inbox_fill_now() - t1);
	for (int i = 0; i < n; i++)
		store_msg_free(&list[i]);
}

int
main(int argc, char *argv[])
{
	struct store *s;
	struct store_tmp t;
	struct store_msg meta;
	char *err = NULL, plan[4096], subj[64];
	unsigned char key[STORE_CRYPT_KEYLEN];
	const char *v[STORE_CRYPT_META_N];
	struct store_crypt *sc = NULL;
	long count;
	int64_t id;

	if ((argc != 5 && argc != 6) ||
	    (count = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: inbox_fill DATABASE STORE_DIR OWNER "
		    "COUNT [CERTFILE]\n");
		return 2;
	}
	if (argc == 6 && (sc = store_crypt_new(argv[5], &err)) == NULL) {
		fprintf(stderr, "inbox_fill: %s\n", err);
		return 1;
	}
	if ((s = store_open(argv[1], argv[2], 0, &err)) == NULL) {
		fprintf(stderr, "inbox_fill: %s\n", err);
		return 1;
	}
	for (long i = 0; i < count; i++) {
		if (store_tmp_create(s, &t) == -1)
			return 1;
		snprintf(subj, sizeof(subj), "Bench message %ld", i);
		fprintf(t.fp, "From: Bench <bench@example.com>\r\n"
		    "To: %s\r\nSubject: %s\r\n"
		    "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
		    "Body of message %ld.\r\n", argv[3], subj, i);
		memset(&meta, 0, sizeof(meta));
		meta.folder = STORE_FOLDER_INBOX;
		meta.state = STORE_MSG_WEBMAIL;
		meta.mail_from = "bench@example.com";
		meta.hdr_from = "Bench <bench@example.com>";
		meta.subject = subj;
		meta.date = time(NULL);
		if (sc != NULL) {
			v[STORE_CRYPT_META_FROM] = meta.hdr_from;
			v[STORE_CRYPT_META_SUBJECT] = meta.subject;
			if (store_crypt_seal(sc, s, &t, key) == -1 ||
			    store_crypt_meta_seal(key, v, STORE_CRYPT_META_N,
			    &meta.sealed_meta, &meta.sealed_metalen) == -1)
				return 1;
			meta.hdr_from = meta.subject = NULL;
		}
		if (store_deliver(s, &t, &meta, argv[3], 0, 0, &id) != 0) {
			fprintf(stderr, "inbox_fill: deliver failed at %ld\n",
			    i);
			return 1;
		}
		store_tmp_discard(&t);
		free(meta.sealed_meta);
	}
	store_crypt_free(sc);
	if (store_msg_list_plan(s, plan, sizeof(plan)) == -1)
		return 1;
	printf("plan: %s", plan);
	inbox_fill_time(s, argv[3], 0, "first page");
	inbox_fill_time(s, argv[3], 100, "deep page (before=100)");
	store_close(s);
	return 0;
}
