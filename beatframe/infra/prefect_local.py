"""A local Prefect server that CLI calls share, so only the first call pays for its start.

Without ``PREFECT_API_URL``, every Prefect process would start a temporary server of its own
(about 6-8 s here, more on first use while it migrates its database). Instead the CLI starts
``prefect server start`` once, on loopback, with its home in ``$BEATFRAME_DATA_DIR/prefect``,
records it in ``server.json`` and reuses it while it answers; ``beatframe server stop`` ends
it. The server also gives the Prefect UI for watching runs.

Settings (:mod:`beatframe.infra.settings`): ``PREFECT_API_URL`` (a real server: used as is,
nothing is started), ``BEATFRAME_PREFECT_SERVER=temporary`` (let Prefect start a temporary server
per process), ``BEATFRAME_DATA_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beatframe.infra.settings import Settings

START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    home: Path

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def _home(settings: Settings) -> Path:
    return (settings.data_dir / "prefect").resolve()


def _record_path(settings: Settings) -> Path:
    return _home(settings) / "server.json"


def healthy(api_url: str, *, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running_server(settings: Settings) -> LocalServer | None:
    """The recorded local server, if it still answers."""
    try:
        data = json.loads(_record_path(settings).read_text())
        server = LocalServer(url=data["url"], pid=int(data["pid"]), home=Path(data["home"]))
    except (OSError, ValueError, KeyError):
        return None
    return server if healthy(server.url) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect settings for processes beatframe starts: home, database and results in the data dir."""
    home = _home(settings)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str((settings.data_dir / "results").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }


def start_server(settings: Settings, *, meanwhile: Callable[[], None] | None = None) -> LocalServer:
    """Start a detached ``prefect server start`` on loopback and wait until it answers.

    ``meanwhile`` runs in this process while the server starts in its own (it takes 8-15 s here,
    mostly CPU in the server's process), so work that does not need Prefect overlaps with it."""
    home = _home(settings)
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, **prefect_environment(settings)}
    env.pop("PREFECT_API_URL", None)
    # the UI asks the server where its API is; unset, it answers the default port 4200, not this one
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + START_TIMEOUT_S
    if meanwhile is not None:
        meanwhile()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local Prefect server exited at start; see {home / 'server.log'}")
        if healthy(url, timeout=0.5):
            server = LocalServer(url=url, pid=proc.pid, home=home)
            _record_path(settings).write_text(json.dumps({"url": url, "pid": proc.pid, "home": str(home)}))
            return server
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the local Prefect server did not answer within {START_TIMEOUT_S:.0f} s; "
                       f"see {home / 'server.log'}")


def stop_server(settings: Settings) -> bool:
    """Stop the recorded local server; False when none was running."""
    server = running_server(settings)
    _record_path(settings).unlink(missing_ok=True)
    if server is None:
        return False
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def ensure_api(settings: Settings, *, announce=None, meanwhile: Callable[[], None] | None = None) -> str | None:
    """Point this process's Prefect at a server: the configured one, or the shared local one.

    Returns the API URL in use, or None when Prefect is left to start a temporary server.
    Must run before Prefect reads its settings (before the first flow call). ``meanwhile`` runs
    while a local server starts (not at all when one is already there): see :func:`start_server`.
    """
    if settings.prefect_api_url:
        return settings.prefect_api_url
    os.environ.update({k: v for k, v in prefect_environment(settings).items() if k not in os.environ})
    if settings.prefect_server.lower() == "temporary":
        return None
    server = running_server(settings)
    if server is None:
        if announce:
            announce("Starting a local Prefect server (once; later runs reuse it)...")
        server = start_server(settings, meanwhile=meanwhile)
        if announce:
            announce(f"Prefect UI: {server.ui_url}  (stop it with `beatframe server stop`)")
    os.environ["PREFECT_API_URL"] = server.url
    return server.url
