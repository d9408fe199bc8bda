"""Scale-out on one machine: a real ``prefect server start`` on loopback, on its own PostgreSQL
database (asyncpg; the system's PostgreSQL, which ``.ci/run`` installs) as in production, two process workers on the ``cpu``
pool, the deployments applied with ``beatframe deploy`` (which runs ``prefect deploy``), and a
catalog run triggered through the API (``run_deployment``) in distributed mode. Every track is a
flow run of the canvas deployment: both workers take some; one worker is killed with every process
it started (as when its machine goes away) while it renders a track, and the catalog still ends
with every track rendered: the zombie automation marks the dead worker's run Crashed and the
catalog's retry renders it on the other worker.

Slow (a few minutes): flow heartbeats come every 30 s at the fastest, so a dead worker's run is
detected after the automation's 60 s of silence.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TRACKS = 4
#: two heartbeats of 30 s: one may come late on a loaded machine without the run counting as dead
ZOMBIE_AFTER = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _postgres_bindir() -> Path | None:
    """The bin folder of the system's PostgreSQL (Debian's ``postgresql`` package), newest first.
    Not pgserver's: Prefect's migrations need the ``pg_trgm`` extension, which pgserver lacks."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (bindir / "initdb").exists() and Path(f"/usr/share/postgresql/{bindir.parent.name}/extension/pg_trgm.control").exists():
            return bindir
    return None


@pytest.fixture(scope="module")
def prefect_database():
    """An empty database ``prefect`` on a private PostgreSQL cluster listening on a Unix socket
    only, as a SQLAlchemy asyncpg URL. As root it runs as the ``postgres`` system user."""
    import shutil
    import tempfile

    bindir = _postgres_bindir()
    if bindir is None:
        message = "no system PostgreSQL with pg_trgm (Debian: apt-get install postgresql)"
        if os.environ.get("BEATFRAME_REQUIRE_SYSTEM_PACKAGES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="beatframe-prefect-pg-"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run([*as_user, bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-w", "-l", folder / "postgres.log", "-o",
                    f"-c listen_addresses='' -k {folder}", "start"], check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([bindir / "psql", "-h", folder, "-U", "postgres", "-c", "CREATE DATABASE prefect"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+asyncpg://postgres@/prefect?host={folder}"
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, prefect_database):
    """A Prefect server, the deployments and two workers, sharing one data folder and result store."""
    from beatframe.music.synth import synthesize_track, write_wav

    root = tmp_path_factory.mktemp("scale-out")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BEATFRAME_"))}
    env = {**clean, "PREFECT_HOME": str(root / "prefect"), "PREFECT_API_URL": url,
           "PREFECT_UI_API_URL": url, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_LOCAL_STORAGE_PATH": str(root / "results"), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
           "BEATFRAME_DATA_DIR": str(root / "data"), "BEATFRAME_PROJECT_DIR": str(REPO)}
    processes, logs = [], {}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=root, start_new_session=True,
                              stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT)
    processes.append(server)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, (root / "server.log").read_text()[-2000:]
                time.sleep(0.5)
        deploy = subprocess.run([sys.executable, "-m", "beatframe.cli", "deploy", "--prefect-yaml",
                                 str(REPO / "prefect.yaml"), "--name", "canvas", "--name", "catalog",
                                 "--zombie-after", str(ZOMBIE_AFTER)], env=env, cwd=REPO, capture_output=True,
                                text=True, timeout=180)
        assert deploy.returncode == 0, deploy.stderr
        workers = {}
        for name in ("worker-a", "worker-b"):
            logs[name] = root / f"{name}.log"
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", "cpu", "--type", "process",
                 "--limit", "2", "--name", name], env=env, cwd=REPO, start_new_session=True,
                stdout=open(logs[name], "w"), stderr=subprocess.STDOUT)
            processes.append(workers[name])
        (root / "tracks").mkdir()
        for i in range(TRACKS):
            write_wav(root / "tracks" / f"track{i}.wav", synthesize_track(
                bpm=110.0 + 6 * i, seed=i, sections=[("intro", 2, 0.3), ("chorus", 4, 0.9)]))
        yield {"root": root, "url": url, "env": env, "workers": workers, "logs": logs}
    finally:
        for process in reversed(processes):
            _stop(process)


def _flow_runs(client, deployment_name: str) -> list:
    from prefect.client.schemas.objects import FlowRun

    deployment = client.read_deployment_by_name(deployment_name)
    # the REST filter directly: a deployment's runs in one call, newest first
    response = client.request("POST", "/flow_runs/filter", json={
        "deployments": {"id": {"any_": [str(deployment.id)]}}, "limit": 200, "sort": "ID_DESC"})
    return [FlowRun.model_validate(run) for run in response.json()]


def _running_on(client, workers: dict, flow_run_id) -> str | None:
    """Which live worker runs the flow run: the parent of the process its worker recorded as
    the run's infrastructure. Logs cannot tell: every worker that polls a run logs "submitting"
    before the server lets exactly one of them take it."""
    pid = client.read_flow_run(flow_run_id).infrastructure_pid
    try:
        parent = int(Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (TypeError, ValueError, OSError):  # not started yet, or already gone
        return None
    return next((name for name, worker in workers.items() if worker.pid == parent), None)


def _submitted_by(logs: dict, flow_run_id) -> set[str]:
    """The workers whose logs show they submitted the flow run (and were not told to abort)."""
    return {name for name, log in logs.items()
            if f"submitting flow run '{flow_run_id}'" in (text := log.read_text())
            and f"Aborted submission of flow run '{flow_run_id}'" not in text}


def test_a_catalog_shares_two_workers_and_loses_nothing_when_one_dies(stack):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root, logs = stack["root"], stack["logs"]
    with temporary_settings(updates={PREFECT_API_URL: stack["url"]}):
        catalog = run_deployment("render_catalog/catalog", timeout=0, parameters={
            "source": str(root / "tracks"), "out_dir": str(root / "out"), "kind": "canvas", "distribute": True})
        with get_client(sync_client=True) as client:
            # kill a worker while it renders a track (never the one running the catalog itself)
            deadline, victim = time.monotonic() + 240, None
            while victim is None:
                assert time.monotonic() < deadline, {n: p.read_text()[-1500:] for n, p in logs.items()}
                running = [r for r in _flow_runs(client, "render_canvas/canvas") if r.state and r.state.is_running()]
                catalog_worker = _running_on(client, stack["workers"], catalog.id)
                if catalog_worker is None:  # not started yet: the catalog's worker must be spared
                    time.sleep(0.5)
                    continue
                for run in running:
                    worker = _running_on(client, stack["workers"], run.id)
                    if worker and worker != catalog_worker:
                        victim, killed_run = worker, run.id
                        break
                time.sleep(0.5)
            # the worker and every process it started: the flow runs' own process groups too
            doomed = psutil.Process(stack["workers"][victim].pid)
            for process in [doomed, *doomed.children(recursive=True)]:
                process.kill()
            stack["workers"][victim].wait(timeout=10)

            deadline = time.monotonic() + 420
            while not (state := client.read_flow_run(catalog.id).state).is_final():
                assert time.monotonic() < deadline, f"the catalog is still {state.type} after the worker died"
                time.sleep(2)
            assert state.is_completed(), state
            track_runs = _flow_runs(client, "render_canvas/canvas")
            assert client.read_flow_run(killed_run).state.is_crashed()  # the dead worker's run
    summary = json.loads((root / "out" / "catalog.json").read_text())
    assert summary["succeeded"] == TRACKS and summary["failed"] == 0, summary
    completed = [r for r in track_runs if r.state.is_completed()]
    assert len(completed) == TRACKS  # every track, the killed one included, rendered once more
    assert set().union(*(_submitted_by(logs, r.id) for r in track_runs)) == {"worker-a", "worker-b"}  # both took tracks
