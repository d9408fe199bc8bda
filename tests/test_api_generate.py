"""The reference video-generation API on beatframe: ``POST /v1/generate`` -> ``GET /v1/status`` ->
``GET /v1/result`` end to end on the CPU, its ranges and error body, its ``task.*`` webhooks with the
``sha256=`` signature, ``WS /ws/{task_id}``, and the ``/genius/*`` routes (real ones and 501s).

Real servers: embedded PostgreSQL, the local object store, the session's Prefect server, and a
webhook receiver on loopback.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections import Counter

import av
import pytest
from starlette.websockets import WebSocketDisconnect

from beatframe.api.webhooks import verify_reference_signature, verify_signature

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

SMALL = {"duration_seconds": 2, "fps": 12, "resolution": "480p", "aspect_ratio": "9:16"}
RUNNING = {"pending", "planning", "generating", "finalizing", "uploading", "processing"}


def wait_task(client, headers, task_id: str, timeout: float = 240) -> list[dict]:
    """Every status seen until the task finished."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        response = client.get(f"/v1/status/{task_id}", headers=headers)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if seen[-1]["status"] not in RUNNING:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still {seen[-1]['status']} after {timeout} s")


def test_generate_status_result_end_to_end_on_the_cpu(client, auth, tmp_path):
    prompt = "Warm ocean waves at sunset, slow and dreamy"
    accepted = client.post("/v1/generate", headers=auth[0], json={"prompt": prompt, **SMALL})
    assert accepted.status_code == 202, accepted.text
    task = accepted.json()
    assert task["task_id"].startswith("gen_") and task["status"] == "pending"
    assert task["estimated_time_seconds"] > 0 and task["queue_position"] >= 1
    assert 0 <= task["seed"] < 2**32 and task["webhook_secret"] is None

    statuses = wait_task(client, auth[0], task["task_id"])
    assert statuses[-1]["status"] == "completed", statuses[-1]
    progress = [s["progress"] for s in statuses]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert statuses[-1]["preview_url"] and statuses[-1]["eta_seconds"] == 0.0

    result = client.get(f"/v1/result/{task['task_id']}", headers=auth[0])
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["status"] == "completed" and body["resolution"] == "480p" and body["duration_seconds"] == 2.0
    assert body["metadata"] == {**body["metadata"], "prompt": prompt, "model": "procedural", "seed": task["seed"],
                                "template": "sunset-waves"}
    assert body["generation_time_seconds"] > 0 and body["file_size_mb"] > 0
    video = client.get(body["video_url"])
    assert video.status_code == 200
    (tmp_path / "video.mp4").write_bytes(video.content)
    with av.open(str(tmp_path / "video.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (480, 854)
        assert float(stream.average_rate) == 12 and not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert client.get(body["thumbnail_url"]).content[:2] == b"\xff\xd8"

    render = client.get(f"/v1/renders/{body['metadata']['render']}", headers=auth[0]).json()
    assert render["kind"] == "generation" and render["generation"] == task["task_id"]
    assert [s["name"] for s in render["stages"]] == ["plan", "generate", "stitch", "check", "upload", "manifest"]

    # the same request and seed renders the same frames (served from the render cache)
    again = client.post("/v1/generate", headers=auth[0], json={"prompt": prompt, **SMALL, "seed": task["seed"]}).json()
    assert wait_task(client, auth[0], again["task_id"])[-1]["status"] == "completed"
    repeat = client.get(f"/v1/result/{again['task_id']}", headers=auth[0]).json()
    assert client.get(repeat["video_url"]).content == video.content


@pytest.mark.parametrize("field, value, named", [
    ("duration_seconds", 0.5, "duration_seconds"), ("duration_seconds", 61, "duration_seconds"),
    ("fps", 11, "fps"), ("fps", 61, "fps"), ("resolution", "5k", "resolution"), ("aspect_ratio", "2:1", "aspect_ratio"),
    ("prompt", "", "prompt"), ("prompt", "x" * 2001, "prompt"), ("prompt", "   ", "prompt"),
    ("guidance_scale", 0.5, "guidance_scale"), ("guidance_scale", 21, "guidance_scale"),
    ("num_inference_steps", 9, "num_inference_steps"), ("num_inference_steps", 151, "num_inference_steps"),
    ("seed", -1, "seed"), ("seed", "seven", "seed"), ("surprise", 1, "surprise"),
    ("webhook_url", "file:///etc/passwd", "webhook_url"), ("resolution", "8k", "procedural"),
])
def test_bad_requests_get_400_in_the_reference_error_body(client, auth, field, value, named):
    response = client.post("/v1/generate", headers=auth[0], json={"prompt": "neon city", **SMALL, field: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "Validation error" and body["type"] == "ValueError" and named in body["detail"]
    assert body["request_id"] == response.headers["Request-Id"]


def test_reference_routes_answer_401_404_and_409_in_its_error_body(client, auth):
    unauthorized = client.post("/v1/generate", json={"prompt": "x"})
    assert unauthorized.status_code == 401 and unauthorized.json()["type"] == "AuthenticationError"
    for path in ("/v1/status/gen_missing", "/v1/result/gen_missing", "/v1/status/..%2F..%2Fetc"):
        missing = client.get(path, headers=auth[0])
        assert missing.status_code == 404 and missing.json()["error"] == "Not found", missing.text
    # another project's task is as missing as none
    task = client.post("/v1/generate", headers=auth[0], json={"prompt": "long city drive", "duration_seconds": 60,
                                                              "resolution": "1080p"}).json()
    assert client.get(f"/v1/status/{task['task_id']}", headers=auth[1]).status_code == 404
    # a task that is not completed has no result; a cancelled one says so
    assert client.post(f"/v1/renders/{task['render']}/cancel", headers=auth[0]).status_code == 200
    assert client.get(f"/v1/status/{task['task_id']}", headers=auth[0]).json()["status"] == "cancelled"
    early = client.get(f"/v1/result/{task['task_id']}", headers=auth[0])
    assert early.status_code == 409 and "cancelled" in early.json()["detail"]
    # beatframe's own routes keep their error shape
    assert client.get("/v1/renders/rnd_missing", headers=auth[0]).json()["error"]["code"] == "resource_missing"


class TaskReceiver(http.server.BaseHTTPRequestHandler):
    secret = ""
    events: list = []
    bad_signatures = 0

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = verify_reference_signature(body, self.headers.get("X-Webhook-Signature", ""), TaskReceiver.secret)
        if signed and verify_signature(body, self.headers["Beatframe-Signature"], TaskReceiver.secret):
            TaskReceiver.events.append(json.loads(body))
            self.send_response(204)
        else:
            TaskReceiver.bad_signatures += 1
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def loopback_receiver(client):
    settings = client.app.state.settings
    saved = settings.fetch_allowed_networks
    settings.fetch_allowed_networks = "127.0.0.1/32"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), TaskReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/hook"
    server.shutdown()
    settings.fetch_allowed_networks = saved


def test_task_webhooks_arrive_signed_in_the_reference_shape(client, auth, loopback_receiver):
    TaskReceiver.events, TaskReceiver.bad_signatures = [], 0
    task = client.post("/v1/generate", headers=auth[0],
                       json={"prompt": "stars over misty mountains", **SMALL, "webhook_url": loopback_receiver}).json()
    assert task["webhook_secret"].startswith("whsec_")
    TaskReceiver.secret = task["webhook_secret"]
    assert wait_task(client, auth[0], task["task_id"])[-1]["status"] == "completed"
    deadline = time.monotonic() + 30
    while not any(e["event"] == "task.completed" for e in TaskReceiver.events):
        assert time.monotonic() < deadline, TaskReceiver.events
        time.sleep(0.1)
    time.sleep(1.0)  # anything else in flight
    kinds = [e["event"] for e in sorted(TaskReceiver.events, key=lambda e: e["timestamp"])]
    assert set(kinds) == {"task.created", "task.started", "task.progress", "task.completed"}, kinds
    assert Counter(e["id"] for e in TaskReceiver.events).most_common(1)[0][1] == 1
    assert TaskReceiver.bad_signatures == 0
    completed = next(e for e in TaskReceiver.events if e["event"] == "task.completed")
    assert completed["task_id"] == task["task_id"] and completed["timestamp"].endswith("Z")
    assert completed["data"]["status"] == "completed" and completed["data"]["duration_seconds"] == 2.0
    assert completed["data"]["result_url"] == f"/v1/result/{task['task_id']}"
    # the task's endpoint hears this task only
    other = client.post("/v1/generate", headers=auth[0], json={"prompt": "a second task", **SMALL}).json()
    wait_task(client, auth[0], other["task_id"])
    time.sleep(1.0)
    assert {e["task_id"] for e in TaskReceiver.events} == {task["task_id"]}


def test_the_task_websocket_speaks_the_reference_events(client, auth):
    task = client.post("/v1/generate", headers=auth[0], json={"prompt": "neon tunnel", **SMALL}).json()
    events = []
    with client.websocket_connect(f"/ws/{task['task_id']}", headers=auth[0]) as ws:
        try:
            while not events or events[-1]["type"] not in ("complete", "error"):
                events.append(ws.receive_json())
        except WebSocketDisconnect:
            pass
    assert events[-1]["type"] == "complete" and events[-1]["video_url"], events[-3:]
    assert client.get(events[-1]["video_url"]).status_code == 200
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["progress"] for e in progress] == sorted(e["progress"] for e in progress)
    assert all("step" in e and e["task_id"] == task["task_id"] for e in progress)
    frames = [e for e in events if e["type"] == "frame_available"]
    assert frames and all(f["frame_index"] == 0 for f in frames) and frames[0]["quality"] == "draft"
    with client.websocket_connect(f"/v1/ws/{task['task_id']}", headers=auth[1]) as ws:
        refused = ws.receive_json()
        assert refused["type"] == "error" and "no task" in refused["error"]


def test_genius_routes_wired_to_real_features(client, auth):
    choice = client.post("/v1/genius/orchestrator/select-model", headers=auth[0],
                         json={"prompt": "a dragon over misty mountains", "duration_seconds": 10,
                               "target_resolution": "1080p", "max_vram_gb": 24}).json()
    assert choice["recommended_model"] == "procedural" and "GPU" in choice["reason"]  # this machine has none
    assert client.post("/v1/genius/orchestrator/select-model", headers=auth[0],
                       json={"prompt": "x", "target_resolution": "16k"}).status_code == 400
    stats = client.get("/v1/genius/decoder/stats", headers=auth[0]).json()
    assert stats["renders"] == 0 and stats["acceptance_rate"] is None  # only procedural renders here
    transitions = client.get("/v1/genius/scene/transitions", headers=auth[0]).json()["transitions"]
    assert [t["type"] for t in transitions] == ["cut", "crossfade", "wipe", "zoom", "blur", "morph"]
    sla = client.get("/v1/genius/sla/status", headers=auth[0]).json()
    assert sla.keys() == client.get("/v1/sla/status", headers=auth[0]).json().keys() and "meets_sla" in sla

    batch = client.post("/v1/genius/batch/submit", headers=auth[0],
                        json={"prompts": ["retro grid at dusk", "retro grid at dusk"], "vram_budget_gb": 12,
                              **SMALL}).json()
    assert batch["total"] == 2 and len(set(batch["task_ids"])) == 2 and batch["batch_id"].startswith("bat_")
    results = []
    for task_id in batch["task_ids"]:
        assert wait_task(client, auth[0], task_id)[-1]["status"] == "completed"
        results.append(client.get(f"/v1/result/{task_id}", headers=auth[0]).json())
    assert results[0]["metadata"]["seed"] == results[1]["metadata"]["seed"]  # the repeat came from the cache
    refused = client.post("/v1/genius/batch/submit", headers=auth[0], json={"prompts": ["x"], "priority": "high"})
    assert refused.status_code == 501 and "priority" in refused.json()["detail"]
    refused = client.post("/v1/genius/batch/submit", headers=auth[0], json={"prompts": ["x"], "max_concurrent": 2})
    assert refused.status_code == 501 and "max_concurrent" in refused.json()["detail"]

    session = client.post("/v1/genius/stream/start", headers=auth[0], json={"task_id": batch["task_ids"][0]}).json()
    assert session["ws_url"].endswith(f"/genius/stream/ws/{batch['task_ids'][0]}")
    with client.websocket_connect(f"/genius/stream/ws/{session['session_id']}", headers=auth[0]) as ws:
        events = []
        while not events or events[-1]["type"] != "complete":
            events.append(ws.receive_json())
    assert events[-1]["video_url"]


def test_decoder_stats_come_from_the_diffusion_renders_manifests(client, auth):
    from conftest import bearer_for_new_project
    from psycopg.types.json import Jsonb

    from beatframe.infra import db

    headers = bearer_for_new_project("decoder")
    task = client.post("/v1/generate", headers=headers, json={"prompt": "a quiet sea", **SMALL}).json()
    assert wait_task(client, headers, task["task_id"])[-1]["status"] == "completed"
    assert client.get("/v1/genius/decoder/stats", headers=headers).json()["renders"] == 0
    # as a Wan render with a step cache records itself (beatframe.models.wan's stats, in the manifest)
    stats = {"steps": 30, "it_per_s": 4.0, "cache": "first-block", "cache_reuse_rate": 0.6}
    with db.get_pool().connection() as conn:
        conn.execute("UPDATE generations SET manifest = jsonb_set(manifest, '{generator,params,stats}', %s)"
                     " WHERE id = %s", (Jsonb(stats), task["task_id"]))
    decoder = client.get("/v1/genius/decoder/stats", headers=headers).json()
    assert decoder == {**decoder, "renders": 1, "total_steps": 30, "average_step_ms": 250.0,
                       "cache_reuse_rate": 0.6, "acceptance_rate": 0.6, "speedup_factor": 2.5}


def test_canvases_and_videos_take_a_generator_choice(client, auth, track):
    bad = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "generator": {"name": "dalle"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "generator"
    bad = client.post("/v1/videos", headers=auth[0], json={"track": track["id"], "generator": '{"name": "wan-t2v",'
                                                                                            ' "steps": 1}'})
    assert bad.status_code == 400 and "steps" in bad.json()["error"]["message"]


def test_a_scene_edit_is_a_task_end_to_end(client, auth, track):
    body = {"scenes": [{"prompt": "misty mountains at dawn", "duration": 2},
                       {"template": "neon-pulse", "duration": 2, "transition": "zoom"},
                       {"prompt": "waves at sunset", "duration": 2}],
            "transition_duration_seconds": 0.5, "size": "512x288", "seed": 4}
    accepted = client.post("/v1/genius/scene/edit", headers=auth[0], json=body)
    assert accepted.status_code == 202, accepted.text
    edit = accepted.json()
    assert edit["total_scenes"] == 3 and edit["total_duration_seconds"] == 6.0
    assert [(t["from_scene"], t["to_scene"], t["type"], t["duration"]) for t in edit["transitions"]] == [
        (0, 1, "zoom", 0.5), (1, 2, "crossfade", 0.5)]
    assert wait_task(client, auth[0], edit["task_id"])[-1]["status"] == "completed"
    result = client.get(f"/v1/result/{edit['task_id']}", headers=auth[0]).json()
    assert result["duration_seconds"] == 6.0 and (result["width"], result["height"]) == (512, 288)
    assert result["metadata"]["prompt"] == "misty mountains at dawn | waves at sunset"
    assert client.get(result["video_url"]).status_code == 200
    # on a track: the scenes end with it, and a track not yet analysed is a clear 409
    on_track = client.post("/v1/genius/scene/edit", headers=auth[0], json={**body, "track": track["id"]})
    if on_track.status_code == 409:
        assert on_track.json()["code"] == "track_not_analyzed"
    else:
        assert on_track.status_code == 202 and on_track.json()["total_duration_seconds"] > 6.0, on_track.text
    refused = client.post("/v1/genius/scene/edit", headers=auth[0], json={"scenes": [{"duration": 1}]})
    assert refused.status_code == 400 and "scene 0" in refused.json()["detail"]


def test_post_production_and_tracking_on_a_tasks_video(client, auth):
    import base64

    import cv2
    import numpy as np

    task = client.post("/v1/generate", headers=auth[0], json={"prompt": "neon tunnel", **SMALL, "seed": 9}).json()
    assert client.post("/v1/genius/v2v/transform", headers=auth[0], json={
        "source_task_id": task["task_id"], "mode": "upscale"}).json()["code"] == "task_not_completed"
    assert wait_task(client, auth[0], task["task_id"])[-1]["status"] == "completed"

    post = client.post("/v1/genius/v2v/transform", headers=auth[0],
                       json={"source_task_id": task["task_id"], "mode": "interpolation", "strength": 1.0})
    assert post.status_code == 202, post.text
    assert wait_task(client, auth[0], post.json()["task_id"])[-1]["status"] == "completed"
    result = client.get(f"/v1/result/{post.json()['task_id']}", headers=auth[0]).json()
    assert result["fps"] == 24 and result["metadata"]["model"] == "post:v2v"
    by_url = client.post("/v1/genius/v2v/transform", headers=auth[0], json={
        "source_task_id": task["task_id"], "mode": "style_transfer", "style_reference_url": "https://x.example/a.jpg"})
    assert by_url.status_code == 501 and "style_reference_asset" in by_url.json()["detail"]

    # an entity registered from a frame of the video itself is found in it
    frame = client.get(result["thumbnail_url"]).content
    image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)[200:400, 100:300]
    encoded = base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()
    entity = client.post("/v1/genius/consistency/register-entity", headers=auth[0],
                         json={"name": "glow", "entity_type": "object", "reference_image_base64": encoded})
    assert entity.status_code == 201, entity.text
    report = client.post(f"/v1/genius/consistency/track/{task['task_id']}", headers=auth[0],
                         json={"entity_ids": [entity.json()["entity_id"]]}).json()
    assert report["frames_analyzed"] == 24 and report["entities_tracked"] == 1
    assert report["entity_timelines"]["glow"][0]["frame"] == 0 and 0 < report["consistency_score"] <= 1
    bad = client.post("/v1/genius/consistency/register-entity", headers=auth[0],
                      json={"name": "x", "reference_image_base64": "bm90IGFuIGltYWdl"})
    assert bad.status_code == 400 and "reference_image_base64" in bad.json()["detail"]


def test_usage_per_flow_and_per_stage(client, auth):
    from conftest import bearer_for_new_project

    headers = bearer_for_new_project("usage-per-flow")
    task = client.post("/v1/generate", headers=headers, json={"prompt": "a quiet sea", **SMALL}).json()
    assert wait_task(client, headers, task["task_id"])[-1]["status"] == "completed"
    per_flow = client.get("/v1/usage?group_by=flow", headers=headers).json()
    assert [row["key"] for row in per_flow["data"]] == ["generate_video"] and per_flow["total"] > 0
    per_stage = {row["key"] for row in client.get("/v1/usage?group_by=stage", headers=headers).json()["data"]}
    assert {"plan", "generate", "check", "upload"} <= per_stage


def test_lipsync_on_a_tasks_video_follows_a_track(client, auth, track):
    task = client.post("/v1/generate", headers=auth[0], json={"prompt": "a warm face", "duration_seconds": 2, "fps": 12,
                                                             "resolution": "480p", "seed": 2}).json()
    assert wait_task(client, auth[0], task["task_id"])[-1]["status"] == "completed"
    sync = client.post("/v1/genius/lipsync/generate", headers=auth[0], json={
        "task_id": task["task_id"], "track": track["id"], "face_region": [300, 100, 560, 400], "expression": "happy"})
    assert sync.status_code == 202, sync.text
    assert wait_task(client, auth[0], sync.json()["task_id"])[-1]["status"] == "completed"
    result = client.get(f"/v1/result/{sync.json()['task_id']}", headers=auth[0]).json()
    assert result["metadata"]["model"] == "post:lipsync" and client.get(result["video_url"]).status_code == 200
    by_url = client.post("/v1/genius/lipsync/generate", headers=auth[0], json={
        "task_id": task["task_id"], "audio_url": "https://x.example/a.wav", "face_region": [0, 0, 10, 10]})
    assert by_url.status_code == 501 and "track" in by_url.json()["detail"]
