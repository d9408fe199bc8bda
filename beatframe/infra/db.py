"""PostgreSQL for the HTTP API: where the database is, the connection pool, migrations, API keys.

Environment variables (read through :class:`beatframe.infra.settings.Settings`):

- ``DATABASE_URL``: an external PostgreSQL (any libpq URL or conninfo string). When set, it wins
  and no embedded server is started.
- ``BEATFRAME_DATA_DIR`` (default ``./.beatframe``): without ``DATABASE_URL``, an embedded
  PostgreSQL 16 from the ``pgserver`` package keeps its data in ``$BEATFRAME_DATA_DIR/postgres``
  and listens only on a Unix socket in that directory (no TCP port), trusting local connections.

The embedded server (``pgserver.get_server(..., cleanup_mode=None)``):

- is started by the first process that needs it (``initdb`` plus start: about 2-3 s the first
  time, about 0.5 s to start an existing data directory) and then *keeps running* after that
  process exits; later processes find it through ``postmaster.pid`` and reuse it (a few ms).
  Several processes (API, CLI, flow workers) therefore share one server. Stop it with
  :func:`stop_embedded_server` (or ``pg_ctl -D $BEATFRAME_DATA_DIR/postgres stop``).
- as root, PostgreSQL refuses to run, so pgserver itself creates a system user ``pgserver``
  (``useradd``), gives it the data directory, runs ``initdb``/``pg_ctl`` as that user and adds
  ``g+rx,o+rx`` to every ancestor directory of the data directory and of its own binaries so
  that user can reach them. As a normal user it runs everything as that user. Both were checked.

Connections come from one bounded pool per process (:func:`get_pool`), with rows as dicts. A
``with pool.connection() as conn:`` block is one transaction: committed when the block ends,
rolled back when it raises. :func:`get_pool` applies the migrations once when it opens the pool.

Migrations are the plain SQL files ``beatframe/migrations/NNNN_name.sql``, applied in version
order, each in its own transaction under a ``pg_advisory_xact_lock`` (so concurrent starts apply
each exactly once) and recorded in ``schema_migrations(version, name, applied_at)``.

API keys look like ``bf_test_<32 chars>`` / ``bf_live_<32 chars>``; only their sha256 is stored.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import re
import secrets
import string
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from beatframe.infra.settings import Settings, get_settings

# pgserver asks platformdirs for a runtime dir it never uses; on machines without XDG_RUNTIME_DIR
# (containers, CI, services) that prints a warning on every command.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
# the advisory lock every migrating process takes (any constant bigint; this one spells "bfmigr")
MIGRATION_LOCK_ID = 0x62666D696772

_ALPHABET = string.ascii_letters + string.digits  # url-safe and double-click selectable
ENVS = ("test", "live")


# ---------------------------------------------------------------------------------------------
# where the database is


_embedded_lock = threading.Lock()


def embedded_pgdata(settings: Settings | None = None) -> Path:
    """The embedded server's data directory: ``$BEATFRAME_DATA_DIR/postgres`` (absolute)."""
    settings = settings or get_settings()
    return (Path(settings.data_dir).expanduser() / "postgres").resolve()


def embedded_server(settings: Settings | None = None):
    """Start (or find the already running) embedded server; returns pgserver's server object."""
    import pgserver
    from pgserver.postgres_server import PostgresServer

    pgdata = embedded_pgdata(settings)
    with _embedded_lock:  # pgserver's own lock is between processes, not threads
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        cached = PostgresServer._instances.get(pgdata)
        if cached is None:
            return pgserver.get_server(pgdata, cleanup_mode=None)
        if not _is_alive(cached):
            # stopped (maybe restarted by another process) since this process last looked:
            # pgserver's own handle would keep the stale URI, so let it find or start it again
            with PostgresServer._lock:
                cached.ensure_postgres_running()
        return cached


def _is_alive(server) -> bool:
    """Whether the server a pgserver handle saw is still the one running. ``postmaster.pid`` is
    removed on shutdown; a stopped postmaster can linger as a zombie, which psutil counts as
    running, so that is checked too."""
    import psutil
    from pgserver.utils import PostmasterInfo

    seen = server._postmaster_info
    now = PostmasterInfo.read_from_pgdata(server.pgdata)
    if seen is None or now is None or now.pid != seen.pid or now.process is None:
        return False
    try:
        return now.process.is_running() and now.process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def database_url(settings: Settings | None = None) -> str:
    """``DATABASE_URL`` when set; otherwise the URI of the embedded server (started if needed).

    The embedded URI has the form ``postgresql://postgres:@/postgres?host=<socket dir>``.
    """
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_server(settings).get_uri()


def stop_embedded_server(settings: Settings | None = None) -> bool:
    """Stop the embedded server if it runs (fast shutdown); True when one was stopped."""
    import pgserver
    from pgserver.utils import PostmasterInfo

    pgdata = embedded_pgdata(settings)
    with _embedded_lock:
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        if info is None or not info.is_running():
            return False
        user = None
        if os.name == "posix" and os.geteuid() == 0:
            user = pgdata.owner()  # the 'pgserver' system user pgserver created
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)
        return True


# ---------------------------------------------------------------------------------------------
# the connection pool


#: A pooled connection idle longer than this is checked (one round trip) before it is handed out;
#: busier ones are not, which keeps a request's round trips to the ones doing work.
CHECK_IDLE_AFTER = 5.0


def _stamp_returned(conn: Connection) -> None:
    conn.info_returned_at = time.monotonic()  # type: ignore[attr-defined]


def _check_if_idle(conn: Connection) -> None:
    if time.monotonic() - getattr(conn, "info_returned_at", 0.0) > CHECK_IDLE_AFTER:
        ConnectionPool.check_connection(conn)


def open_pool(settings: Settings | None = None, *, conninfo: str | None = None,
              min_size: int = POOL_MIN_SIZE, max_size: int = POOL_MAX_SIZE,
              timeout: float = 30.0) -> ConnectionPool:
    """A new, opened, bounded pool (rows as dicts). Waits until one connection works, so an
    unreachable database fails here (``psycopg_pool.PoolTimeout``), not at the first request.
    The caller owns it; most code wants the process-wide :func:`get_pool` instead."""
    conninfo = conninfo or database_url(settings)
    pool = ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
        check=_check_if_idle,  # survive a restarted server
        reset=_stamp_returned,
        timeout=timeout,
        name="beatframe",
        open=False,
    )
    pool.open(wait=True, timeout=timeout)
    return pool


_pool_lock = threading.Lock()
_pool: ConnectionPool | None = None
_pool_pid: int | None = None


def get_pool(*, migrate_schema: bool = True) -> ConnectionPool:
    """The process-wide pool from :func:`get_settings`, opened (and migrated) on first use and
    closed at exit. A forked child gets its own pool (connections are never shared across a fork)."""
    global _pool, _pool_pid
    pool = _pool
    if pool is not None and _pool_pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            pool = open_pool(get_settings())
            try:
                if migrate_schema:
                    applied = migrate(pool)
                    if applied:
                        log.info("applied migrations %s", ", ".join(applied))
            except BaseException:
                pool.close()
                raise
            _pool, _pool_pid = pool, os.getpid()
        return _pool


def close_pool() -> None:
    """Close the process-wide pool (at exit, and in tests after changing the environment)."""
    global _pool, _pool_pid
    with _pool_lock:
        pool, pid = _pool, _pool_pid
        _pool, _pool_pid = None, None
    if pool is not None and pid == os.getpid():
        pool.close()


atexit.register(close_pool)


# ---------------------------------------------------------------------------------------------
# migrations


@dataclass(frozen=True)
class Migration:
    version: str  # "0001"
    name: str     # "initial"
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


_MIGRATION_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files in version order; a malformed name or a duplicate version is an error."""
    directory = Path(directory) if directory is not None else MIGRATIONS_DIR
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_FILE.match(path.name)
        if m is None:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path}")
        if m.group(1) in found:
            raise ValueError(f"two migrations with version {m.group(1)}: {found[m.group(1)].path}, {path}")
        found[m.group(1)] = Migration(m.group(1), m.group(2), path)
    return [found[v] for v in sorted(found)]


def _lock_and_read_applied(conn: Connection) -> set[str]:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return {row[0] if isinstance(row, tuple) else row["version"]
            for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(pool: ConnectionPool, *, directory: Path | None = None) -> list[str]:
    """Apply the pending migrations in order; returns the versions this call applied.

    Each migration runs in its own transaction holding the advisory lock and re-checks
    ``schema_migrations`` under it, so concurrent callers (threads or processes) apply each
    migration exactly once; a failing migration is rolled back alone and raised.
    """
    todo = migrations(directory)
    applied: list[str] = []
    with pool.connection() as conn:
        with conn.transaction():
            done = _lock_and_read_applied(conn)
        for mig in todo:
            if mig.version in done:
                continue
            with conn.transaction():
                done = _lock_and_read_applied(conn)
                if mig.version in done:  # another process got there first
                    continue
                try:
                    conn.execute(mig.sql.encode())  # no parameters: several statements are fine
                except Exception as exc:
                    raise RuntimeError(f"migration {mig.path.name} failed: {exc}") from exc
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (mig.version, mig.name))
            applied.append(mig.version)
    return applied


# ---------------------------------------------------------------------------------------------
# ids


def new_id(prefix: str) -> str:
    """``prefix`` + ``_`` + 24 random url-safe characters (~143 bits), e.g. ``trk_4fJ9...``.

    ``new_id("trk")`` and ``new_id("trk_")`` are the same.
    """
    return prefix.rstrip("_") + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


# ---------------------------------------------------------------------------------------------
# projects and API keys

_SECRET_RANDOM_CHARS = 32
_SECRET_RE = re.compile(r"^bf_(test|live)_[A-Za-z0-9]{%d}$" % _SECRET_RANDOM_CHARS)
_KEY_PREFIX_CHARS = 4  # random characters kept in api_keys.prefix to recognise a key
_KEY_COLUMNS = "id, project_id, env, prefix, created_at, revoked_at"


def hash_secret(secret: str) -> str:
    """The hex sha256 stored for an API key secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_project(pool: ConnectionPool, name: str) -> dict[str, Any]:
    """Create the project called ``name``, or return it when it exists already."""
    name = name.strip()
    if not name:
        raise ValueError("a project needs a name")
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO projects (id, name) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"
            " RETURNING id, name, created_at",
            (new_id("prj"), name),
        ).fetchone()
        if row is None:
            row = conn.execute("SELECT id, name, created_at FROM projects WHERE name = %s",
                               (name,)).fetchone()
    return row


def get_project(pool: ConnectionPool, project: str) -> dict[str, Any] | None:
    """A project by id (``prj_…``) or by name."""
    column = "id" if project.startswith("prj_") else "name"
    with pool.connection() as conn:
        return conn.execute(f"SELECT id, name, created_at FROM projects WHERE {column} = %s",
                            (project,)).fetchone()


def create_api_key(pool: ConnectionPool, *, project: str | dict[str, Any],
                   env: str = "test") -> tuple[dict[str, Any], str]:
    """A new key for ``project`` (a project dict, id or name) in ``env`` ('test' | 'live').

    Returns ``(record, secret)``; the secret is shown once and only its sha256 is stored.
    """
    if env not in ENVS:
        raise ValueError(f"env must be one of {ENVS}, not {env!r}")
    if isinstance(project, dict):
        project_id = project["id"]
    else:
        found = get_project(pool, project)
        if found is None:
            raise LookupError(f"no project {project!r}")
        project_id = found["id"]
    secret = f"bf_{env}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_RANDOM_CHARS))
    prefix = secret[: len(f"bf_{env}_") + _KEY_PREFIX_CHARS]
    with pool.connection() as conn:
        record = conn.execute(
            f"INSERT INTO api_keys (id, project_id, env, prefix, hash) VALUES (%s, %s, %s, %s, %s)"
            f" RETURNING {_KEY_COLUMNS}",
            (new_id("key"), project_id, env, prefix, hash_secret(secret)),
        ).fetchone()
    return record, secret


def revoke_api_key(pool: ConnectionPool, key_id: str) -> bool:
    """Revoke a key; True when it was active until now."""
    with pool.connection() as conn:
        cur = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,))
        return cur.rowcount == 1


def list_api_keys(pool: ConnectionPool, project_id: str) -> list[dict[str, Any]]:
    """A project's keys, newest first (never their hashes)."""
    with pool.connection() as conn:
        return conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE project_id = %s"
            " ORDER BY created_at DESC, id DESC", (project_id,)).fetchall()


def authenticate(pool: ConnectionPool, secret: str) -> dict[str, Any] | None:
    """The active key for a presented secret, or None (malformed, unknown or revoked).

    Returns ``{"key_id", "project_id", "project_name", "env"}``. The lookup is by the secret's
    sha256 (timing reveals nothing about the secret); the match is confirmed with
    ``hmac.compare_digest``.
    """
    if not isinstance(secret, str) or _SECRET_RE.match(secret) is None:
        return None
    digest = hash_secret(secret)
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT k.id AS key_id, k.project_id, p.name AS project_name, k.env, k.hash"
            " FROM api_keys k JOIN projects p ON p.id = k.project_id"
            " WHERE k.hash = %s AND k.revoked_at IS NULL",
            (digest,),
        ).fetchone()
    if row is None or not hmac.compare_digest(row.pop("hash"), digest):
        return None
    if not secret.startswith(f"bf_{row['env']}_"):
        return None
    return row
