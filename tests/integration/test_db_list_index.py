"""The inbox listing's index: a store database made before it existed
(schema version 3 of portal-store, with the old owner index) gets
portal_messages_list when a node opens it, loses the index it replaces,
and lists its messages as before. Runs on the back end of the run
(SQLite or PostgreSQL, POSTERN_TEST_DB)."""

from dbutil import PG, db_connect
from test_db_schema import _cli, _conf, _versions

LIST_SQL = ("SELECT id, date, size, unread, has_attachments, created, "
            "mail_from, hdr_from, subject, sealed_meta, path FROM "
            "portal_messages WHERE owner = ? AND folder = ? AND "
            "state = 'webmail' AND id < ? ORDER BY id DESC LIMIT ?")


def _indexes(db):
    with db_connect(db) as c:
        if PG:
            rows = c.execute("SELECT indexname FROM pg_indexes WHERE "
                             "tablename = 'portal_messages'").fetchall()
        else:
            rows = c.execute("SELECT name FROM sqlite_master WHERE "
                             "type = 'index' AND tbl_name = "
                             "'portal_messages'").fetchall()
    return {r[0] for r in rows}


def test_old_store_gets_listing_index(tmp_path):
    conf, db = _conf(tmp_path, "external-portal")
    r = _cli(conf, "mailbox", "list", "--email", "x@example.org")
    assert r.returncode == 0, r.stderr
    assert _versions(db)["portal-store"] == 4
    assert "portal_messages_list" in _indexes(db)
    assert "portal_messages_owner" not in _indexes(db)
    # Back to what the release before this index left behind.
    with db_connect(db) as c:
        c.execute("DROP INDEX portal_messages_list")
        c.execute("CREATE INDEX portal_messages_owner ON "
                  "portal_messages(owner, folder, id)")
        c.execute("UPDATE postern_schema SET version = 3 WHERE "
                  "component = 'portal-store'")
        for i, subj in ((1, "older"), (2, "newer")):
            c.execute("INSERT INTO portal_messages (owner, domain, folder,"
                      " state, hdr_from, subject, date, size, path, "
                      "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      ("x@example.org", "example.org", "inbox", "webmail",
                       "a@example.com", subj, 1700000000 + i, 100 * i,
                       f"m-old{i}", 1700000000 + i))
    assert "portal_messages_list" not in _indexes(db)
    r = _cli(conf, "mailbox", "list", "--email", "x@example.org")
    assert r.returncode == 0, r.stderr
    assert _versions(db)["portal-store"] == 4
    idx = _indexes(db)
    assert "portal_messages_list" in idx and \
        "portal_messages_owner" not in idx, idx
    # Newest first, the columns the list shows.
    lines = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert [(ln[5], ln[7]) for ln in lines] == [("200", "newer"),
                                                ("100", "older")], lines
    if not PG:
        # SQLite answers the listing from the index alone.
        with db_connect(db) as c:
            plan = " ".join(str(x) for row in c.execute(
                "EXPLAIN QUERY PLAN " + LIST_SQL,
                ("x@example.org", "inbox", 1 << 62, 51)).fetchall()
                for x in row)
        assert "COVERING INDEX portal_messages_list" in plan, plan
