"""The inbox listing's index: a store database made before it existed
(schema version 3 of portal-store, with the old owner index) gets
portal_messages_list when a node opens it, loses the index it replaces,
and lists its messages as before. Runs on the back end of the run
(SQLite or PostgreSQL, POSTERN_TEST_DB)."""

import pytest

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


def _pkey_reads(db):
    with db_connect(db) as c:
        return c.execute("SELECT idx_tup_read FROM pg_stat_user_indexes "
                         "WHERE indexrelname = 'portal_messages_pkey'"
                         ).fetchone()[0]


@pytest.mark.skipif(not PG, reason="PostgreSQL's planner: run with "
                    "POSTERN_TEST_DB=postgresql")
def test_pg_listing_does_not_walk_newer_mail_of_others(tmp_path):
    # PostgreSQL's planner likes to walk the primary key backwards for
    # "owner = ? ORDER BY id DESC LIMIT n" when the owner has a large
    # share of the rows; when the owner's mail is not the newest, that
    # reads everyone's newer messages first (here 2,000 of b's).
    conf, db = _conf(tmp_path, "external-portal")
    r = _cli(conf, "mailbox", "list", "--email", "a@example.org")
    assert r.returncode == 0, r.stderr
    with db_connect(db) as c:
        c.execute("INSERT INTO portal_messages (owner, domain, folder, "
                  "state, hdr_from, subject, date, size, path, created) "
                  "SELECT CASE WHEN g <= 2000 THEN 'a@example.org' ELSE "
                  "'b@example.org' END, 'example.org', 'inbox', "
                  "'webmail', 'x@example.com', 's' || g, 1700000000 + g, "
                  "100, 'm-' || g, 1700000000 + g "
                  "FROM generate_series(1, 4000) g")
    with db_connect(db) as c:
        c.execute("ANALYZE portal_messages")
    before = _pkey_reads(db)
    r = _cli(conf, "mailbox", "list", "--email", "a@example.org")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("2000\t"), r.stdout[:200]
    # The backend's counters reach the view when it ends (the CLI's
    # connection closed); a fresh connection reads them.
    assert _pkey_reads(db) - before < 1000
