"""``BEATFRAME_RENDER_BACKEND=deployment``: the API submits renders to a Prefect work pool with
``run_deployment`` and mirrors the flow run's state, progress and result.

Real pieces: the session's Prefect server, a ``process`` work pool, the canvas deployment made
from this checkout, and a ``prefect worker`` subprocess that runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
# serial: beside pytest-xdist's other worker its renders stayed queued (the session's SQLite Prefect
# server answered 'database is locked' to its event consumer); `.ci/run` runs it on its own
pytestmark = [pytest.mark.slow, pytest.mark.serial]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def work_pool(prefect_server):
    """A process pool with the canvas and generate deployments (no video deployment: its renders must fail clearly)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType

    from beatframe.flows.canvas import render_canvas
    from beatframe.flows.generate import generate_video

    name = f"test-cpu-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    # to_deployment().apply(): the deployment registered on the server, nothing built or pushed
    render_canvas.to_deployment(
        entrypoint_type=EntrypointType.MODULE_PATH, name="canvas", work_pool_name=name).apply()
    generate_video.to_deployment(
        entrypoint_type=EntrypointType.MODULE_PATH, name="generate", work_pool_name=name).apply()
    return name


@pytest.fixture(scope="module")
def worker(work_pool, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", work_pool,
                                    "--type", "process", "--limit", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=REPO)
    yield log
    process.terminate()
    try:  # its runs are over: a worker that does not stop at once is killed, not waited for
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def deployment_client(prefect_server):
    from fastapi.testclient import TestClient

    from beatframe.infra import db
    from beatframe.api.app import create_app
    from beatframe.infra.settings import get_settings

    settings = get_settings().model_copy(update={"render_backend": "deployment"})
    with TestClient(create_app(settings)) as client:
        yield client
    db.close_pool()
    db.stop_embedded_server()


@pytest.fixture(scope="module")
def keys(deployment_client):
    from conftest import bearer_for_new_project

    return bearer_for_new_project("deployments")


def _upload(client, headers, song) -> dict:
    with open(song, "rb") as f:
        return client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)}).json()


def test_canvas_renders_on_a_work_pool_worker(deployment_client, keys, worker, song, wait_render):
    from prefect.client.orchestration import get_client

    client = deployment_client
    track = _upload(client, keys, song)
    created = client.post("/v1/canvases", headers=keys, json={"track": track["id"], "seconds": 4, "seed": 5})
    assert created.status_code == 202, created.text
    render = wait_render(client, keys, created.json()["render"]["id"], timeout=300)
    assert render["status"] == "succeeded", (render["error"], worker.read_text()[-3000:])
    assert render["progress"] == 1 and render["cost"]["total"] > 0
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(render["flow_run_id"])
    assert flow_run.deployment_id is not None and flow_run.state.is_completed()
    canvas = client.get(f"/v1/canvases/{created.json()['id']}", headers=keys).json()
    assert canvas["manifest"]["provenance"]["prefect_flow_run_id"] == render["flow_run_id"]
    assert client.get(canvas["outputs"][0]["url"]).status_code == 200


def test_a_generate_task_runs_on_a_work_pool_worker(deployment_client, keys, worker):
    client = deployment_client
    task = client.post("/v1/generate", headers=keys, json={"prompt": "neon tunnel", "duration_seconds": 1, "fps": 12,
                                                          "resolution": "480p"}).json()
    deadline = time.monotonic() + 300
    while (status := client.get(f"/v1/status/{task['task_id']}", headers=keys).json())["status"] not in (
            "completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["status"] == "completed", (status, worker.read_text()[-3000:])
    result = client.get(f"/v1/result/{task['task_id']}", headers=keys).json()
    assert result["metadata"]["model"] == "procedural" and client.get(result["video_url"]).status_code == 200


def test_a_missing_deployment_fails_the_render_with_its_name(deployment_client, keys, song, wait_render):
    client = deployment_client
    track = _upload(client, keys, song)
    video = client.post("/v1/videos", headers=keys, json={"track": track["id"]}).json()
    render = wait_render(client, keys, video["render"]["id"], timeout=60)
    assert render["status"] == "failed" and "render_video/video" in render["error"]["message"]
    started = time.monotonic()
    assert client.get("/v1/renders", headers=keys).status_code == 200 and time.monotonic() - started < 5
