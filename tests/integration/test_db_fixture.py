"""The database fixture itself (dbutil): the PostgreSQL server the run
starts is the one the issue asks for (Debian's PostgreSQL 15, a unix
socket only, fsync on), db_url() gives each node its own empty database
and the same one again for the same place, the role the nodes use is no
superuser, and db_connect() speaks "?" SQL on both back ends."""

import os
import stat

import pytest

import dbutil
from dbutil import db_connect, db_url, q


def test_q_rewrites_placeholders_outside_quotes_only():
    assert q("SELECT a FROM t WHERE b = ? AND c LIKE 'x?%'") == \
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x?%%'"
    assert q("UPDATE t SET n = n % 7 WHERE id = ?") == \
        "UPDATE t SET n = n %% 7 WHERE id = %s"


def test_connect_round_trip(tmp_path):
    url = db_url(tmp_path, "round")
    c = db_connect(url)
    try:
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body "
                  + ("BYTEA" if dbutil.PG else "BLOB") + ", s TEXT)")
        c.execute("INSERT INTO t (id, body, s) VALUES (?, ?, ?)",
                  (1, b"\x00\xff", "50% off?"))
        c.commit()
        assert c.execute("SELECT body, s FROM t WHERE s LIKE '50%' AND "
                         "id = ?", (1,)).fetchall() == [(b"\x00\xff",
                                                         "50% off?")]
    finally:
        c.close()


def test_same_place_same_database_new_place_empty(tmp_path):
    a = db_url(tmp_path, "node")
    assert db_url(str(tmp_path), "node") == a
    c = db_connect(a)
    try:
        c.execute("CREATE TABLE mark (x INTEGER)")
        c.commit()
    finally:
        c.close()
    b = db_url(tmp_path, "other")
    assert b != a
    if dbutil.PG:
        c = db_connect(b)
        try:
            assert c.execute("SELECT count(*) FROM pg_tables WHERE "
                             "tablename = 'mark'").fetchone() == (0,)
        finally:
            c.close()
    else:
        assert not os.path.exists(b)


def test_server_is_local_durable_and_the_role_unprivileged(pg, tmp_path):
    url = db_url(tmp_path, "probe")
    assert url.startswith("postgresql://") and f"host={pg.sockdir}" in url
    c = db_connect(url)
    try:
        (version,) = c.execute("SHOW server_version_num").fetchone()
        assert int(version) // 10000 == 15
        assert c.execute("SHOW fsync").fetchone() == ("on",)
        assert c.execute("SHOW listen_addresses").fetchone() == ("",)
        assert c.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM "
                         "pg_roles WHERE rolname = current_user"
                         ).fetchone() == (False, False, False)
        # The node's role owns its database: it creates its tables there.
        (owner,) = c.execute("SELECT pg_get_userbyid(datdba) FROM "
                             "pg_database WHERE datname = "
                             "current_database()").fetchone()
        assert owner == dbutil.PG_ROLE
    finally:
        c.close()
    sock = [n for n in os.listdir(pg.sockdir) if n.startswith(".s.PGSQL.")
            and not n.endswith(".lock")]
    assert len(sock) == 1
    assert stat.S_ISSOCK(os.stat(os.path.join(pg.sockdir, sock[0])).st_mode)
    assert pg.data.startswith(pg.top) and pg.top != "/var/lib/postgresql"


def test_stop_and_start_keeps_the_data(pg, tmp_path):
    url = db_url(tmp_path, "restart")
    c = db_connect(url)
    c.execute("CREATE TABLE kept (x INTEGER)")
    c.execute("INSERT INTO kept VALUES (?)", (42,))
    c.commit()
    c.close()
    pg.stop("immediate")
    try:
        import psycopg2
        with pytest.raises(psycopg2.OperationalError):
            db_connect(url)
    finally:
        pg.start()
    c = db_connect(url)
    try:
        assert c.execute("SELECT x FROM kept").fetchall() == [(42,)]
    finally:
        c.close()
