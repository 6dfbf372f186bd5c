/* The node's SQLite database: open with the durability settings; see db.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "xmalloc.h"

#define DB_BUSY_TIMEOUT_MS	5000

struct sqlite3 *
db_open(const char *path, char **err)
{
	static const char *const pragmas[] = {
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=FULL",
		"PRAGMA foreign_keys=ON",
	};
	sqlite3 *db = NULL;
	size_t i;
	int fd, rc;

	*err = NULL;
	if (path == NULL || *path == '\0') {
		*err = xstrdup("no database path configured");
		return NULL;
	}
	/*
	 * Create the file ourselves so it is 0600 whatever the umask; SQLite
	 * gives the -wal and -shm files the mode of the database. Only when
	 * it is missing: closing any descriptor of an existing database drops
	 * the POSIX locks of every other connection in this process (see
	 * "How To Corrupt An SQLite Database File", 2.2).
	 */
	if (access(path, F_OK) == -1) {
		if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1 && errno != EEXIST) {
			xasprintf(err, "%s: %s", path, strerror(errno));
			return NULL;
		}
		if (fd != -1)
			close(fd);
	}

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		xasprintf(err, "%s: %s", path, db ? sqlite3_errmsg(db) :
		    sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	for (i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		char *e = NULL;

		if (db_exec(db, pragmas[i], &e) == -1) {
			xasprintf(err, "%s: %s", path, e);
			free(e);
			sqlite3_close(db);
			return NULL;
		}
	}
	return db;
}

int
db_exec(struct sqlite3 *db, const char *sql, char **err)
{
	char *msg = NULL;

	*err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = xstrdup(msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void
db_close(struct sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close_v2(db);
}
