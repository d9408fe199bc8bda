"""The API's whole lifecycle on S3: upload -> analysis -> canvas -> presigned download -> delete.

Real servers: embedded PostgreSQL, moto's S3 server spoken to by the ``minio`` client (uploads,
the flows' inputs and outputs, presigned URLs), and the session's Prefect server.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest


@pytest.fixture(scope="module")
def s3_api(prefect_server, moto_endpoint):
    from fastapi.testclient import TestClient

    from beatframe.infra import db
    from beatframe.api.app import create_app
    from beatframe.infra.settings import get_settings

    env = pytest.MonkeyPatch()
    bucket = f"bf-api-{uuid.uuid4().hex[:10]}"
    for name, value in {"BEATFRAME_S3_ENDPOINT": f"http://{moto_endpoint}", "BEATFRAME_S3_ACCESS_KEY": "test",
                        "BEATFRAME_S3_SECRET_KEY": "test", "BEATFRAME_S3_BUCKET": bucket,
                        "BEATFRAME_S3_REGION": "us-east-1"}.items():
        env.setenv(name, value)
    get_settings.cache_clear()  # the flows the runner starts read the store from the settings too
    try:
        with TestClient(create_app()) as client:
            yield client
        db.close_pool()
        db.stop_embedded_server()
    finally:
        env.undo()
        get_settings.cache_clear()


def test_lifecycle_on_s3(s3_api, song, wait_render):
    from conftest import bearer_for_new_project

    from beatframe.infra.storage import get_store

    client, headers = s3_api, bearer_for_new_project("s3")
    store = client.app.state.store
    with open(song, "rb") as f:
        track = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f, "audio/wav")}).json()
    deadline = time.monotonic() + 120
    while (analysis := client.get(f"/v1/tracks/{track['id']}/analysis", headers=headers)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert analysis.status_code == 200 and abs(analysis.json()["bpm"] - 120) < 2

    canvas = client.post("/v1/canvases", headers=headers, json={"track": track["id"], "seconds": 4}).json()
    render = wait_render(client, headers, canvas["render"]["id"])
    assert render["status"] == "succeeded", render["error"]
    done = client.get(f"/v1/canvases/{canvas['id']}", headers=headers).json()
    video = done["outputs"][0]
    assert video["uri"].startswith(f"s3://{get_store().bucket}/")
    assert "X-Amz-Signature=" in video["url"]  # presigned by S3 itself, not by the API
    downloaded = httpx.get(video["url"])
    assert downloaded.status_code == 200 and hashlib.sha256(downloaded.content).hexdigest() == video["sha256"]

    audio_keys = [k for k in _keys(store) if k.startswith("tracks/") and track["id"] in k]
    assert len(audio_keys) == 1
    assert client.delete(f"/v1/tracks/{track['id']}", headers=headers).json()["deleted"] is True
    assert not store.exists(audio_keys[0])


def _keys(store) -> list[str]:
    return [o.object_name for o in store.client.list_objects(store.bucket, recursive=True)]
