"""Test-session plumbing: one Prefect test server, temp result storage and data dir, test audio.

Environment is set before Prefect is imported so results and caches never leak between runs.
Subprocess CLI tests inherit ``PREFECT_API_URL`` and reuse the same test server.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="beatframe-tests-"))
os.environ["BEATFRAME_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(_SESSION_DIR / "prefect-results")
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# many tests send bursts with one key; tests/test_api_ratelimit.py turns limits on for its own servers
os.environ["BEATFRAME_RATE_LIMITS"] = "off"
for _name in [k for k in os.environ if k.startswith("BEATFRAME_S3_")] + ["PREFECT_API_URL", "DATABASE_URL",
                                                                         "BEATFRAME_API_URL", "BEATFRAME_API_KEY"]:
    os.environ.pop(_name, None)

import pytest  # noqa: E402


def pytest_configure(config):
    """Compile the analysis's numba kernels once, before pytest-xdist starts its workers: two
    workers compiling them into the venv's empty cache at the same moment crashed (a segmentation
    fault in librosa's peak_pick); see beatframe.music.analysis.jit."""
    if not hasattr(config, "workerinput"):  # the controller, or a run without workers
        from beatframe.music.analysis import warm_up

        warm_up()


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the whole session; its URL is exported for subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from beatframe.infra.settings import get_settings

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        get_settings.cache_clear()
        yield PREFECT_API_URL.value()
    os.environ.pop("PREFECT_API_URL", None)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def song_truth():
    """A synthesized 4/4 song at 120 BPM with a quiet verse and a loud chorus, and its truth."""
    from beatframe.music.synth import synthesize_track

    return synthesize_track(
        bpm=120.0, meter=4, seed=3,
        sections=[("intro", 2, 0.25), ("verse", 4, 0.45), ("chorus", 4, 0.95), ("outro", 2, 0.3)],
    )


@pytest.fixture(scope="session")
def song(song_truth, tmp_path_factory) -> Path:
    from beatframe.music.synth import write_wav

    return write_wav(tmp_path_factory.mktemp("audio") / "song.wav", song_truth)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3-compatible server (moto's server mode) on loopback, as ``host:port``."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_client(prefect_server):
    """The HTTP API on the embedded PostgreSQL and the local store (uploads start Prefect flows)."""
    from fastapi.testclient import TestClient

    from beatframe.infra import db
    from beatframe.api.app import create_app

    with TestClient(create_app()) as client:
        yield client
    db.close_pool()
    db.stop_embedded_server()


@pytest.fixture(scope="module")
def server_url(api_client):
    """The test client's app, also on a loopback port (uvicorn, lifespan off: the state is shared)."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api_client.app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    sock.close()


def bearer_for_new_project(name: str, env: str = "test", project: dict | None = None) -> dict:
    """The Authorization header of a new key of a new (or the given) project, on the current database."""
    from beatframe.infra import db

    pool = db.get_pool()
    project = project or db.create_project(pool, f"{name} {db.new_id('t')}")
    _, secret = db.create_api_key(pool, project=project, env=env)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def project_keys(api_client):
    """Bearer headers for two fresh projects of this test module: (mine, another project's)."""
    return bearer_for_new_project("mine"), bearer_for_new_project("theirs")


@pytest.fixture(scope="module")
def client(api_client):
    return api_client


@pytest.fixture(scope="module")
def auth(project_keys):
    return project_keys


@pytest.fixture(scope="module")
def track(client, auth, song):
    """The ``song`` uploaded as a track of this module's first project."""
    with open(song, "rb") as f:
        return client.post("/v1/tracks", headers=auth[0], files={"file": ("song.wav", f)}).json()


@pytest.fixture(scope="session")
def wait_render():
    """``wait_render(client, headers, render_id)``: poll a render until it finishes; returns it and
    keeps every snapshot seen in ``.snapshots`` of the returned function."""
    import time

    def wait(client, headers, render_id, timeout=240):
        deadline = time.monotonic() + timeout
        wait.snapshots = []
        while time.monotonic() < deadline:
            render = client.get(f"/v1/renders/{render_id}", headers=headers).json()
            wait.snapshots.append(render)
            if render["status"] in ("succeeded", "failed", "canceled"):
                return render
            time.sleep(0.1)
        raise AssertionError(f"render {render_id} still {render['status']} after {timeout} s")

    return wait


def settled_task_runs(api_url: str, flow_run_ids: list, *, names: tuple[str, ...], timeout: float = 60.0) -> list[dict]:
    """The task runs of ``flow_run_ids`` whose names start with one of ``names``, once each is in a
    final state. A flow returns before the server has recorded its task runs' last states (they
    arrive as events, consumed in the background), so a test that reads them at once can see a
    task still Running that has long finished."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{api_url}/task_runs/filter", json={
            "flow_runs": {"id": {"any_": [str(i) for i in flow_run_ids]}}, "limit": 200, "offset": 0,
            "sort": "EXPECTED_START_TIME_ASC"}, timeout=30)
        response.raise_for_status()
        runs = [r for r in response.json() if r["name"].startswith(names)]
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        if runs and all(r["state"] and r["state"]["type"] in final for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)
