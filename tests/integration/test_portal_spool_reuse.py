"""external-portal reuses the ingest's spent spool files as the store's
temp files (no inode freed per message): each stored copy is exactly its
message even when the reused file held a larger one before, the spool
directory is left empty, and the pool stays small and is gone after a
restart."""

import os

from test_portal_ingest import Portal, RELAY, WEBMAIL, message


def test_reused_files_hold_exactly_their_message(tmp_path):
    p = Portal(tmp_path)
    rcpt = [f"bob=example.org@{RELAY}"]
    sent = {}
    try:
        for i in range(24):
            # Large and small alternate: a small message lands in a file
            # that held a large one.
            body = (b"L" * 60000 if i % 2 == 0 else b"s" * 10) + b"\r\n"
            data = message(f"reuse-{i}", body=body)
            p.send(rcpt, data)
            sent[f"reuse-{i}"] = data
        rows = p.messages("bob@example.org")
        assert len(rows) == 24
        for _id, _state, subject, name in rows:
            assert p.file(name) == sent[subject].replace(WEBMAIL, b"")
        assert os.listdir(os.path.join(p.dir, "spool")) == []
        names = {r[3] for r in rows}
        extra = set(os.listdir(p.store)) - names
        assert all(n.startswith("tmp-") for n in extra), extra
        assert len(extra) <= 16
    finally:
        p.stop()
    p.start()
    p.daemon.wait_for(r"store: recovery")
    try:
        assert set(os.listdir(p.store)) == names
    finally:
        p.stop()
