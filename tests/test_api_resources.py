"""Videos, project templates, assets and their licensing, usage, expand[], progress, cancelling,
tracks fetched from URLs (with the SSRF guard) and idempotent uploads, over HTTP.

Real servers: embedded PostgreSQL, the local object store, the session's Prefect server, and a
plain HTTP server on loopback for track URLs.
"""

from __future__ import annotations

import http.server
import threading
import time

import numpy as np
import pytest

from beatframe.infra import db

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cover_png(tmp_path_factory):
    import cv2

    y, x = np.mgrid[0:512, 0:512]
    image = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("asset") / "cover.png"
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture(scope="module")
def asset(client, auth, cover_png):
    with open(cover_png, "rb") as f:
        response = client.post("/v1/assets", headers=auth[0], files={"file": ("cover.png", f, "image/png")},
                               data={"license": "CC-BY-4.0", "attribution": "Photo by Ada", "rights_holder": "Ada L."})
    assert response.status_code == 201, response.text
    return response.json()


def test_render_progress_is_monotonic_and_staged(client, auth, track, wait_render):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 31}).json()
    render = wait_render(client, auth[0], canvas["render"]["id"])
    assert render["status"] == "succeeded", render["error"]
    progress = [s["progress"] for s in wait_render.snapshots]
    assert progress == sorted(progress) and progress[-1] == 1
    running = [s for s in wait_render.snapshots if s["status"] == "running" and s["stage"]]
    assert running, "no snapshot showed a running stage"
    for snapshot in running:
        statuses = {s["name"]: s["status"] for s in snapshot["stages"]}
        assert statuses[snapshot["stage"]] == "running" and statuses["hash"] in ("running", "succeeded")


def test_expand_replaces_ids_by_objects(client, auth, track, wait_render):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 31}).json()
    got = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0],
                     params=[("expand[]", "render"), ("expand[]", "track")]).json()
    assert got["render"]["object"] == "render" and got["track"]["id"] == track["id"]
    listed = client.get("/v1/canvases", headers=auth[0], params={"expand[]": "render", "limit": 1}).json()
    assert listed["data"][0]["render"]["object"] == "render"
    bad = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0], params={"expand[]": "secrets"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expand[]"
    wait_render(client, auth[0], canvas["render"]["id"])


def test_project_templates_are_validated_and_versioned(client, auth, track, wait_render):
    body = {"name": "house-style", "title": "House style", "scene": "plasma",
            "palette": ["#000000", "#ff0000", "#ffffff"]}
    created = client.post("/v1/templates", headers=auth[0], json=body)
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["id"].startswith("tpl_") and template["version"] == "1" and not template["builtin"]
    assert client.post("/v1/templates", headers=auth[0], json=body).json()["error"]["code"] == "template_name_taken"
    builtin_name = client.post("/v1/templates", headers=auth[0], json={**body, "name": "neon-pulse"})
    assert builtin_name.status_code == 400
    bad_colour = client.post("/v1/templates", headers=auth[0], json={**body, "name": "x", "palette": ["red", "blue"]})
    assert bad_colour.status_code == 400 and "palette" in bad_colour.json()["error"]["message"]

    updated = client.post(f"/v1/templates/{template['id']}", headers=auth[0], json={"palette": ["#101010", "#00ff00"]})
    assert updated.status_code == 200 and updated.json()["version"] == "2"
    first = client.get(f"/v1/templates/{template['id']}", headers=auth[0], params={"version": 1}).json()
    assert first["palette"] == ["#000000", "#ff0000", "#ffffff"] and first["version"] == "1"
    names = [t["name"] for t in client.get("/v1/templates", headers=auth[0], params={"limit": 100}).json()["data"]]
    assert names[0] == "house-style" and "neon-pulse" in names
    assert client.get(f"/v1/templates/{template['id']}", headers=auth[1]).status_code == 404
    assert client.post("/v1/templates/tpl_neon-pulse", headers=auth[0], json={"title": "x"}).status_code == 400

    canvas = client.post("/v1/canvases", headers=auth[0],
                         json={"track": track["id"], "template": "house-style", "seconds": 4}).json()
    assert wait_render(client, auth[0], canvas["render"]["id"])["status"] == "succeeded"
    manifest = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0]).json()["manifest"]
    assert manifest["template"] == {"name": "house-style", "version": "2"}

    assert client.delete(f"/v1/templates/{template['id']}", headers=auth[0]).json()["deleted"] is True
    gone = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "template": "house-style"})
    assert gone.status_code == 400 and gone.json()["error"]["param"] == "template"


def test_asset_licensing_flows_into_canvas_and_video(client, auth, track, asset, wait_render, cover_png):
    assert asset["kind"] == "image" and asset["rights_holder"] == "Ada L."
    with open(cover_png, "rb") as f:
        missing = client.post("/v1/assets", headers=auth[0], files={"file": ("cover.png", f)},
                              data={"license": "CC0-1.0", "attribution": "me"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "rights_holder"
    broken = client.post("/v1/assets", headers=auth[0], files={"file": ("cover.png", b"not a png")},
                         data={"license": "CC0-1.0", "attribution": "me", "rights_holder": "me"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "bad_input"
    assert client.get(f"/v1/assets/{asset['id']}", headers=auth[1]).status_code == 404

    canvas = client.post("/v1/canvases", headers=auth[0],
                         json={"track": track["id"], "seconds": 4, "cover_asset": asset["id"]}).json()
    assert canvas["cover_asset"] == asset["id"]
    assert wait_render(client, auth[0], canvas["render"]["id"])["status"] == "succeeded"
    licensing = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0]).json()["manifest"]["licensing"]
    [cover] = [a for a in licensing["assets"] if a["role"] == "cover"]
    assert cover["asset"] == asset["id"] and cover["license"] == "CC-BY-4.0"
    assert cover["attribution"] == "Photo by Ada" and cover["rights_holder"] == "Ada L."

    video = client.post("/v1/videos", headers=auth[0], json={"canvas": canvas["id"], "size": "1920x1080"})
    assert video.status_code == 202, video.text
    video = video.json()
    assert video["size"] == "640x360" and video["canvas"] == canvas["id"]  # test mode: a cheap preview
    assert wait_render(client, auth[0], video["render"]["id"])["status"] == "succeeded"
    done = client.get(f"/v1/videos/{video['id']}", headers=auth[0], params={"expand[]": "canvas"}).json()
    assert done["canvas"]["id"] == canvas["id"]
    main = done["outputs"][0]
    assert (main["width"], main["height"]) == (640, 360) and main["has_audio"]
    [video_cover] = [a for a in done["manifest"]["licensing"]["assets"] if a["role"] == "cover"]
    assert video_cover["rights_holder"] == "Ada L." and video_cover["asset"] == asset["id"]


@pytest.mark.parametrize("body, param", [
    ({}, None), ({"track": "trk_x", "canvas": "cnv_y"}, None), ({"track": None, "size": "100x100"}, "size"),
    ({"track": None, "template": "nope"}, "template"), ({"canvas": "cnv_missing"}, "id"),
])
def test_bad_video_requests_are_400_or_404(client, auth, track, body, param):
    if "track" in body and body["track"] is None:
        body = {**body, "track": track["id"]}
    response = client.post("/v1/videos", headers=auth[0], json=body)
    assert response.status_code in (400, 404), response.text
    if param:
        assert response.json()["error"]["param"] == param


def test_usage_aggregates_cost_lines_and_bills_only_live(client, auth, song, wait_render):
    from conftest import bearer_for_new_project

    project = db.create_project(db.get_pool(), f"usage {db.new_id('t')}")
    keys = {env: bearer_for_new_project("usage", env, project) for env in ("test", "live")}
    canvases = {}
    for env, headers in keys.items():
        with open(song, "rb") as f:
            track = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)}).json()
        canvases[env] = client.post("/v1/canvases", headers=headers, json={"track": track["id"], "seconds": 4}).json()
        assert wait_render(client, headers, canvases[env]["render"]["id"])["status"] == "succeeded"
    assert canvases["live"]["livemode"] and not canvases["test"]["livemode"]

    by_env = client.get("/v1/usage", headers=keys["test"], params={"group_by": "env"}).json()
    rows = {r["key"]: r for r in by_env["data"]}
    assert set(rows) == {"test", "live"} and rows["test"]["amount"] > 0 and rows["test"]["billed_amount"] == 0
    assert rows["live"]["billed_amount"] == pytest.approx(rows["live"]["amount"]) and by_env["billed_total"] > 0
    by_object = client.get("/v1/usage", headers=keys["live"], params={"group_by": "object"}).json()
    assert {r["key"] for r in by_object["data"]} == {canvases["test"]["id"], canvases["live"]["id"]}
    by_day = client.get("/v1/usage", headers=keys["live"]).json()
    assert by_day["group_by"] == "day" and len(by_day["data"]) in (2, 4)  # one day (two at midnight), two envs
    assert by_day["total"] == pytest.approx(by_env["total"])
    empty = client.get("/v1/usage", headers=keys["live"], params={"start": "2000-01-01", "end": "2000-01-02"}).json()
    assert empty["data"] == [] and empty["total"] == 0
    assert client.get("/v1/usage", headers=keys["live"], params={"group_by": "week"}).status_code == 400


def test_cancel_stops_a_running_render(client, auth, track, wait_render):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 8, "seed": 77}).json()
    render_id = canvas["render"]["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/renders/{render_id}", headers=auth[0]).json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    canceled = client.post(f"/v1/renders/{render_id}/cancel", headers=auth[0])
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    time.sleep(3)  # the render stops at its next stage report and stays canceled
    render = client.get(f"/v1/renders/{render_id}", headers=auth[0]).json()
    assert render["status"] == "canceled"
    assert client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0]).json()["manifest"] is None


def test_uploads_and_cancels_honour_idempotency_keys(client, auth, song, cover_png):
    headers = {**auth[0], "Idempotency-Key": f"upload-{db.new_id('k')}"}
    with open(song, "rb") as f:
        first = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)})
    with open(song, "rb") as f:
        again = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    with open(cover_png, "rb") as f:
        other = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)})
    assert other.status_code == 409


class _Files(http.server.BaseHTTPRequestHandler):
    audio = b""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(self.audio)))
        self.end_headers()
        self.wfile.write(self.audio)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def file_server(song):
    _Files.audio = song.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("url", [
    "{server}/song.wav",                                 # loopback, not allowed by default
    "http://[::1]/song.wav",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:{port}/song.wav",                  # a name resolving to loopback
    "http://10.0.0.8/song.wav",
])
def test_track_urls_to_private_addresses_are_refused(client, auth, file_server, url):
    url = url.format(server=file_server, port=file_server.rsplit(":", 1)[1])
    response = client.post("/v1/tracks", headers=auth[0], json={"url": url})
    assert response.status_code == 400, response.text
    assert response.json()["error"] | {"message": None, "request_id": None} == {
        "type": "invalid_request_error", "code": "url_forbidden", "param": "url", "message": None, "request_id": None}


@pytest.mark.parametrize("url, code", [("ftp://example.com/a.wav", "url_invalid"), ("file:///etc/passwd", "url_invalid"),
                                       ("not a url", "url_invalid")])
def test_track_urls_must_be_http(client, auth, url, code):
    response = client.post("/v1/tracks", headers=auth[0], json={"url": url})
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_track_from_an_allowed_url_and_redirects_rechecked(client, auth, file_server, monkeypatch, song):
    monkeypatch.setattr(client.app.state.settings, "fetch_allowed_networks", "127.0.0.1/32")
    created = client.post("/v1/tracks", headers=auth[0], json={"url": f"{file_server}/music/song.wav"})
    assert created.status_code == 201, created.text
    track = created.json()
    assert track["source_url"] == f"{file_server}/music/song.wav" and track["bytes"] == song.stat().st_size
    redirected = client.post("/v1/tracks", headers=auth[0], json={"url": f"{file_server}/redirect"})
    assert redirected.status_code == 400 and redirected.json()["error"]["code"] == "url_forbidden"
    wrong_type = client.post("/v1/tracks", headers={**auth[0], "Content-Type": "text/plain"}, content=b"x")
    assert wrong_type.status_code == 415
