"""Prefect results on S3, shared across machines: ``deploy/prefect_result_storage.py`` saves the
``remote-file-system`` block for beatframe's object store (here moto's S3 server), and two separate
processes with their own local folders, like two workers on two hosts, run the same analysis flow
with ``PREFECT_DEFAULT_RESULT_STORAGE_BLOCK`` naming it: the second finds the first one's cached
result in the bucket instead of analysing again.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

pytest.importorskip("s3fs")

ROOT = Path(__file__).resolve().parents[1]
BLOCK = "remote-file-system/beatframe-results-test"
RUN_ANALYSIS = ("import sys; from beatframe.flows.analyze import analyze_track; "
                "state = analyze_track(audio=sys.argv[1], return_state=True); state.result(); "
                "print(state.state_details.flow_run_id)")


def _save_block(monkeypatch, endpoint: str) -> None:
    spec = importlib.util.spec_from_file_location("prefect_result_storage", ROOT / "deploy" / "prefect_result_storage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, value in {"BEATFRAME_S3_ENDPOINT": f"http://{endpoint}", "BEATFRAME_S3_ACCESS_KEY": "results",
                        "BEATFRAME_S3_SECRET_KEY": "results-secret", "BEATFRAME_S3_BUCKET": "prefect-shared",
                        "BEATFRAME_S3_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    assert module.main(["--block", BLOCK]) == 0


def test_a_second_worker_finds_the_first_ones_results_on_s3(prefect_server, moto_endpoint, song, tmp_path,
                                                             monkeypatch):
    import s3fs
    from conftest import settled_task_runs
    from minio import Minio

    Minio(moto_endpoint, access_key="results", secret_key="results-secret", secure=False).make_bucket("prefect-shared")
    s3 = s3fs.S3FileSystem(key="results", secret="results-secret",
                           client_kwargs={"endpoint_url": f"http://{moto_endpoint}", "region_name": "us-east-1"})
    _save_block(monkeypatch, moto_endpoint)

    flow_runs = []
    for worker in ("host-a", "host-b"):
        home = tmp_path / worker
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BEATFRAME_"))}
        env.update(PREFECT_API_URL=prefect_server, PREFECT_DEFAULT_RESULT_STORAGE_BLOCK=BLOCK,
                   PREFECT_HOME=str(home / "prefect"), PREFECT_LOCAL_STORAGE_PATH=str(home / "results"),
                   BEATFRAME_DATA_DIR=str(home / "data"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        proc = subprocess.run([sys.executable, "-c", RUN_ANALYSIS, str(song)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert not (home / "results").exists() or not any((home / "results").iterdir())  # nothing kept locally
        flow_runs.append(proc.stdout.strip().splitlines()[-1])

    states = [[run["state"]["name"] for run in settled_task_runs(prefect_server, [flow_run], names=("analyze",))]
              for flow_run in flow_runs]
    assert states[0] == ["Completed"] and states[1] == ["Cached"], states
    assert s3.ls("prefect-shared/prefect-results")  # where both hosts looked
