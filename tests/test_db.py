"""The PostgreSQL layer against a real embedded PostgreSQL (pgserver), started once per session.

Each test that needs a clean schema gets its own fresh database on that server.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

from psycopg.conninfo import make_conninfo  # noqa: E402

from beatframe.infra import db  # noqa: E402
from beatframe.infra.settings import Settings  # noqa: E402

TABLES = {"schema_migrations", "projects", "api_keys", "tracks", "renders", "canvases", "videos",
          "idempotency_keys", "usage_lines"}


@pytest.fixture(scope="session")
def embedded():
    """The embedded server started through beatframe's own code path, stopped at the end.

    Its data lives outside pytest's temp root: as root, PostgreSQL runs as pgserver's own user,
    which needs to reach the folder, and any pytest run re-closes ``/tmp/pytest-of-<user>``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="beatframe-pg-tests-"))
    settings = Settings(data_dir=data_dir, DATABASE_URL=None)
    t0 = time.perf_counter()
    try:
        url = db.database_url(settings)
    except Exception as exc:  # pragma: no cover - only where pgserver has no binaries
        pytest.skip(f"the embedded PostgreSQL (pgserver) cannot start on this platform: {exc!r}")
    print(f"embedded PostgreSQL started in {time.perf_counter() - t0:.2f} s: {url}")
    yield settings, url
    db.stop_embedded_server(settings)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fresh_url(embedded):
    """A conninfo for a new, empty database on the embedded server."""
    _, url = embedded
    name = "t_" + db.new_id("db").split("_", 1)[1].lower()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pool(fresh_url):
    pool = db.open_pool(conninfo=fresh_url, max_size=4)
    db.migrate(pool)
    yield pool
    pool.close()


def test_embedded_server_is_reused_and_restarted(embedded):
    settings, url = embedded
    assert url.startswith("postgresql://") and str(db.embedded_pgdata(settings)) in url
    assert db.database_url(settings) == url  # same process: the same running server
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # a stopped server is started again on the next call
    assert db.stop_embedded_server(settings) is True
    assert db.stop_embedded_server(settings) is False
    again = db.database_url(settings)
    with psycopg.connect(again) as conn:
        assert conn.execute("SELECT current_setting('server_version_num')::int >= 160000").fetchone() == (True,)


def test_database_url_wins_over_the_embedded_server(embedded, tmp_path):
    _, url = embedded
    settings = Settings(data_dir=tmp_path / "data", DATABASE_URL=url)  # used as an "external" URL
    assert db.database_url(settings) == url
    pool = db.open_pool(settings)
    try:
        with pool.connection() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}  # dict rows
    finally:
        pool.close()
    assert not (tmp_path / "data" / "postgres").exists()  # no embedded server was made


def test_migrations_apply_once_and_are_idempotent(fresh_url):
    pool = db.open_pool(conninfo=fresh_url, max_size=2)
    try:
        versions = [m.version for m in db.migrations()]
        assert versions and versions[0] == "0001" and versions == sorted(versions)
        assert db.migrate(pool) == versions
        assert db.migrate(pool) == []
        with pool.connection() as conn:
            rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
            tables = {r["table_name"] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert [r["version"] for r in rows] == versions and rows[0]["name"] == "initial"
        assert TABLES <= tables
    finally:
        pool.close()


def test_schema_columns_and_listing_indexes(pool):
    with pool.connection() as conn:
        cols = {(r["table_name"], r["column_name"]): r["data_type"] for r in conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'")}
        indexes = {r["indexname"]: r["indexdef"] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    for table in ("renders", "canvases", "videos"):
        assert cols[(table, "params")] == "jsonb"
    for column in ("stages", "cost", "error"):
        assert cols[("renders", column)] == "jsonb"
    assert cols[("idempotency_keys", "response_body")] == "jsonb"
    assert cols[("usage_lines", "day")] == "date"
    for table in ("tracks", "renders", "canvases", "videos"):
        assert "(project_id, created_at DESC, id DESC)" in indexes[f"{table}_list"]


def test_schema_rejects_bad_values_and_cross_project_references(pool):
    a = db.create_project(pool, "a")
    b = db.create_project(pool, "b")
    with pool.connection() as conn:
        conn.execute("INSERT INTO tracks (id, project_id, env) VALUES ('trk_1', %s, 'test')", (a["id"],))
    with pytest.raises(psycopg.errors.CheckViolation), pool.connection() as conn:
        conn.execute("INSERT INTO renders (id, project_id, env, kind, status)"
                     " VALUES ('rnd_1', %s, 'test', 'canvas', 'exploded')", (a["id"],))
    with pytest.raises(psycopg.errors.ForeignKeyViolation), pool.connection() as conn:
        conn.execute("INSERT INTO canvases (id, project_id, env, track_id)"
                     " VALUES ('cnv_1', %s, 'test', 'trk_1')", (b["id"],))  # a's track, b's canvas


def test_concurrent_migrate_applies_once(fresh_url):
    pools = [db.open_pool(conninfo=fresh_url, max_size=1) for _ in range(2)]
    barrier = threading.Barrier(len(pools))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run(p):
        try:
            barrier.wait()
            results.append(db.migrate(p))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in pools]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for p in pools:
            p.close()
    assert not errors, errors
    versions = [m.version for m in db.migrations()]
    assert sorted(v for r in results for v in r) == versions  # each applied by exactly one
    with psycopg.connect(fresh_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(versions),)


def test_migrations_run_in_order_and_a_failing_one_rolls_back_alone(fresh_url, tmp_path: Path):
    (tmp_path / "0002_second.sql").write_text("INSERT INTO t VALUES (2);")
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (v int); INSERT INTO t VALUES (1);")
    (tmp_path / "0003_broken.sql").write_text("INSERT INTO t VALUES (3); SELECT nope FROM nowhere;")
    pool = db.open_pool(conninfo=fresh_url, max_size=1)
    try:
        with pytest.raises(RuntimeError, match="0003_broken.sql"):
            db.migrate(pool, directory=tmp_path)
        with pool.connection() as conn:
            assert [r["v"] for r in conn.execute("SELECT v FROM t ORDER BY v")] == [1, 2]
            assert [r["version"] for r in conn.execute(
                "SELECT version FROM schema_migrations ORDER BY version")] == ["0001", "0002"]
        (tmp_path / "0003_broken.sql").write_text("INSERT INTO t VALUES (3);")
        assert db.migrate(pool, directory=tmp_path) == ["0003"]
    finally:
        pool.close()
    (tmp_path / "1_bad.sql").write_text("")
    with pytest.raises(ValueError, match="0001_name.sql"):
        db.migrations(tmp_path)


def test_new_id():
    ids = {db.new_id("trk") for _ in range(1000)}
    assert len(ids) == 1000
    for i in ids:
        assert i.startswith("trk_") and len(i) == 4 + 24 and i[4:].isalnum()
    assert db.new_id("rnd_").startswith("rnd_") and not db.new_id("rnd_").startswith("rnd__")


def test_projects_and_keys_authenticate(pool):
    project = db.create_project(pool, "Label One")
    assert project["id"].startswith("prj_") and project["name"] == "Label One"
    assert db.create_project(pool, "Label One")["id"] == project["id"]  # by name: the same one
    other = db.create_project(pool, "Label Two")

    record, secret = db.create_api_key(pool, project=project, env="test")
    live_record, live_secret = db.create_api_key(pool, project="Label One", env="live")
    _, other_secret = db.create_api_key(pool, project=other["id"], env="test")
    assert secret.startswith("bf_test_") and len(secret) == len("bf_test_") + 32
    assert live_secret.startswith("bf_live_") and len(live_secret) == len("bf_live_") + 32
    assert record["id"].startswith("key_") and record["revoked_at"] is None
    assert record["prefix"] == secret[:12] and "hash" not in record

    auth = db.authenticate(pool, secret)
    assert auth == {"key_id": record["id"], "project_id": project["id"],
                    "project_name": "Label One", "env": "test"}
    assert db.authenticate(pool, live_secret)["env"] == "live"
    assert db.authenticate(pool, other_secret)["project_id"] == other["id"]

    # wrong keys fail
    for wrong in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x", "", "bf_test_",
                  secret.replace("bf_test_", "bf_live_"), None, "Bearer " + secret):
        assert db.authenticate(pool, wrong) is None, wrong

    # a revoked key fails; the others keep working
    assert db.revoke_api_key(pool, record["id"]) is True
    assert db.revoke_api_key(pool, record["id"]) is False
    assert db.authenticate(pool, secret) is None
    assert db.authenticate(pool, live_secret) is not None
    keys = db.list_api_keys(pool, project["id"])
    assert {k["id"] for k in keys} == {record["id"], live_record["id"]}
    assert next(k for k in keys if k["id"] == record["id"])["revoked_at"] is not None

    with pytest.raises(ValueError):
        db.create_api_key(pool, project=project, env="prod")
    with pytest.raises(LookupError):
        db.create_api_key(pool, project="no such project")


def test_the_secret_is_stored_nowhere(pool):
    project = db.create_project(pool, "secretive")
    _, secret = db.create_api_key(pool, project=project, env="live")
    random_part = secret[len("bf_live_"):]
    with pool.connection() as conn:
        tables = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        dump = "\n".join(
            r["row"] for t in tables
            for r in conn.execute(f'SELECT row_to_json(x)::text AS row FROM "{t}" x'))
        stored = conn.execute("SELECT hash FROM api_keys").fetchone()["hash"]
    assert "api_keys" in tables and stored in dump  # the dump did see the key's row
    assert secret not in dump and random_part not in dump and random_part[:16] not in dump
    assert stored == db.hash_secret(secret)


def test_get_pool_is_one_per_process_and_migrated(fresh_url, monkeypatch):
    from beatframe.infra.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", fresh_url)
    get_settings.cache_clear()
    db.close_pool()
    try:
        pools: list = []
        threads = [threading.Thread(target=lambda: pools.append(db.get_pool())) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(pools) == 4 and all(p is pools[0] for p in pools)
        assert pools[0].max_size == db.POOL_MAX_SIZE and pools[0].min_size == db.POOL_MIN_SIZE
        with pools[0].connection() as conn:
            assert conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone()["n"] >= 1
    finally:
        db.close_pool()
        monkeypatch.delenv("DATABASE_URL")
        get_settings.cache_clear()
    assert pools[0].closed
