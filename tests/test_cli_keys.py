"""`beatframe keys`: a key is printed once, stored hashed, and authenticates (embedded PostgreSQL)."""

from __future__ import annotations

import pytest

from beatframe.infra import db
from beatframe.cli import main


@pytest.fixture
def embedded_db():
    yield
    db.close_pool()
    db.stop_embedded_server()


def test_keys_create_list_revoke(embedded_db, capsys):
    assert main(["keys", "create", "--project", "Label One", "--env", "live"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("bf_live_") and len(secret) > 30
    pool = db.get_pool()
    who = db.authenticate(pool, secret)
    assert who["project_name"] == "Label One" and who["env"] == "live"
    with pool.connection() as conn:
        stored = conn.execute("SELECT * FROM api_keys").fetchall()
    assert all(secret not in str(row) for row in stored)

    assert main(["keys", "list", "--project", "Label One"]) == 0
    listing = capsys.readouterr().out
    assert who["key_id"] in listing and "active" in listing
    assert main(["keys", "revoke", who["key_id"]]) == 0
    assert db.authenticate(pool, secret) is None


def test_keys_bad_input_exits_2(embedded_db, capsys):
    assert main(["keys", "create"]) == 2
    assert main(["keys", "list", "--project", "no such project"]) == 2
    assert main(["keys", "revoke", "key_doesnotexist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("beatframe: error:") for line in err)
