"""The Python SDK (``beatframe.client``) and the CLI's remote mode against the real API over HTTP.

The module's API app (conftest's ``api_client``: embedded PostgreSQL, the local store, the session's
Prefect server) is also served by uvicorn on a loopback port, with its lifespan left to the test
client: one app, one render runner, one database, reached through real sockets, real multipart
uploads and real signed download links. Every render here asks for the same 3 s Canvas of the
same song, so after the first one Prefect's cache serves them in a few seconds.

Tests of endpoints the server does not have yet skip (checked in the app's OpenAPI paths at
collection) and run once the routes land.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from beatframe.client import (APIConnectionError, AsyncClient, AuthenticationError, Canvas, Client, ConflictError,
                              IdempotencyError, InvalidRequestError, NotFoundError, RateLimitError, Render,
                              RenderFailed, Track, WaitTimeoutError)
from beatframe.client import _core

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

CANVAS = {"seconds": 3, "seed": 1}  # one render request for the whole module: cached after the first


def _paths() -> dict:
    from beatframe.api.app import create_app

    return create_app().openapi()["paths"]


ROUTES = _paths()


def needs(method: str, path: str):
    """Skip until the server has ``method path`` (it is in the contract, the route may not be yet)."""
    return pytest.mark.skipif(method.lower() not in ROUTES.get(path, {}), reason=f"{method} {path} is not served yet")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def keys(project_keys):
    """The two projects' secrets: (mine, another project's)."""
    return tuple(h["Authorization"].removeprefix("Bearer ") for h in project_keys)


@pytest.fixture(scope="module")
def client(server_url, keys):
    with Client(server_url, keys[0]) as client:
        yield client


@pytest.fixture(scope="module")
def track(client, song) -> Track:
    return client.tracks.create(file=song)


@pytest.fixture(scope="module")
def canvas(client, track) -> Canvas:
    """The module's Canvas, rendered and retrieved again with its outputs."""
    created = client.canvases.create(track, **CANVAS)
    return client.canvases.wait(created.id, timeout=240)


class DropFirstAnswer(httpx.BaseTransport):
    """A real transport that loses the first answer to ``POST path`` after the server handled it,
    as a connection that breaks on the way back would; records every request's idempotency key."""

    def __init__(self, path: str) -> None:
        self.inner, self.path = httpx.HTTPTransport(), path
        self.keys: list[str] = []
        self.replayed: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "POST" or request.url.path != self.path:
            return response
        response.read()
        response.close()
        self.keys.append(request.headers.get("idempotency-key"))
        self.replayed.append(response.headers.get("idempotent-replayed"))
        if len(self.keys) == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_upload_analysis_canvas_wait_download(client, track, song, tmp_path):
    assert track.id.startswith("trk_") and track.sha256 == _sha256(song) and track.filename == "song.wav"
    analysis = client.tracks.analysis(track.id, wait=True, timeout=180, poll=0.3)
    assert analysis.status == "succeeded" and abs(analysis.bpm - 120) < 2
    assert analysis.to_schema().downbeats and analysis.onsets  # an extra field, kept

    created = client.canvases.create(track, **CANVAS)
    assert isinstance(created.render, Render) and created.render.status == "queued" and created.outputs == []
    seen: list[Render] = []
    done = client.canvases.wait(created.id, timeout=240, poll=0.3, on_progress=seen.append)
    assert seen[-1].status == "succeeded" and seen[-1].progress == 1 and seen[-1].cost.total > 0
    assert done.id == created.id and done.manifest["checks"]["spec_ok"] and done.segment is not None
    names = []
    for output in done.outputs:
        path = client.download(output, tmp_path)  # a folder: the name comes from the signed URL
        assert _sha256(path) == output.sha256 and path.stat().st_size == output.bytes
        names.append(path.name)
    assert sorted(names) == sorted(p.name for p in tmp_path.iterdir()) == ["canvas.jpg", "canvas.mp4"]
    again = client.download(done.outputs[0].url, tmp_path / "copy.mp4")  # a bare URL to a file name
    assert _sha256(again) == done.outputs[0].sha256

    expanded = client.canvases.retrieve(done.id, expand=["render", "track"])
    assert isinstance(expanded.render, Render) and isinstance(expanded.track, Track)
    assert expanded.render_id == done.render_id and expanded.track_id == track.id
    assert client.renders.retrieve(done.render_id).status == "succeeded"
    with pytest.raises(ConflictError) as refused:
        client.renders.cancel(done.render_id)
    assert refused.value.code == "render_not_cancelable" and not isinstance(refused.value, IdempotencyError)


def test_list_pagination_and_list_all(client, song):
    ids = [client.tracks.create(file=song, filename=f"page-{i}.wav").id for i in range(3)]
    first = client.tracks.list(limit=2)
    assert [t.id for t in first.data] == ids[::-1][:2] and first.has_more
    second = client.tracks.list(limit=2, starting_after=first.data[-1].id)
    assert second.data[0].id == ids[0]
    everything = [t.id for t in client.tracks.list_all(page_size=2)]
    assert everything[:3] == ids[::-1] and len(everything) == len(set(everything)) >= 4
    assert [t.id for t in client.tracks.list(limit=2, ending_before=ids[0]).data] == ids[::-1][:2]
    assert all(isinstance(c, Canvas) for c in client.canvases.list_all(expand=["render"]))
    deleted = client.tracks.delete(ids[1])
    assert deleted.deleted and deleted.id == ids[1]
    assert ids[1] not in [t.id for t in client.tracks.list_all()]


def test_errors_carry_status_code_and_request_id(client, track, server_url, keys, monkeypatch):
    with Client(server_url, keys[1]) as other:
        with pytest.raises(NotFoundError) as missing:
            other.tracks.retrieve(track.id)  # another project's track does not exist for them
        with pytest.raises(NotFoundError):
            other.canvases.create(track, **CANVAS)
    error = missing.value
    assert (error.status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.request_id.startswith("req_") and track.id in str(error)

    with pytest.raises(InvalidRequestError) as bad:
        client.canvases.create(track, seconds=12)
    assert (bad.value.status, bad.value.param) == (400, "seconds")
    with pytest.raises(InvalidRequestError) as media:
        client.tracks.create(file=io.BytesIO(b"MZ" * 100), filename="virus.exe")
    assert (media.value.status, media.value.code) == (415, "unsupported_media")
    with Client(server_url, "bf_test_nope") as stranger, pytest.raises(AuthenticationError) as auth:
        stranger.tracks.list()
    assert auth.value.status == 401 and auth.value.type == "authentication_error"

    for name in ("BEATFRAME_API_URL", "BEATFRAME_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="BEATFRAME_API_URL"):
        Client()
    monkeypatch.setenv("BEATFRAME_API_URL", server_url + "/v1/")
    with pytest.raises(ValueError, match="BEATFRAME_API_KEY"):
        Client()
    monkeypatch.setenv("BEATFRAME_API_KEY", keys[0])
    with Client() as from_env:
        assert from_env.base_url == server_url and from_env.tracks.retrieve(track.id).id == track.id


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(server_url, keys, track, song):
    """The server created the canvas but its answer was lost: the retry replays it, no second canvas."""
    with Client(server_url, keys[0]) as plain:
        before = {c.id for c in plain.canvases.list_all()}
    lossy = DropFirstAnswer("/v1/canvases")
    with Client(server_url, keys[0], transport=lossy) as client:
        created = client.canvases.create(track, **CANVAS)
        after = {c.id for c in client.canvases.list_all()}
        client.canvases.wait(created.id, timeout=240, poll=0.3)
    assert len(lossy.keys) == 2 and lossy.keys[0] == lossy.keys[1] and len(lossy.keys[0]) == 36
    assert lossy.replayed == [None, "true"]
    assert after - before == {created.id}

    lossy = DropFirstAnswer("/v1/tracks")  # a multipart upload is sent whole again on the retry
    with Client(server_url, keys[0], transport=lossy) as client:
        again = client.tracks.create(file=song, idempotency_key="upload-once")
    assert lossy.keys == ["upload-once", "upload-once"] and lossy.replayed == [None, "true"]
    assert again.sha256 == _sha256(song)


def test_retry_policy(monkeypatch):
    """Connection errors, 429 and 5xx are retried with one key and honour Retry-After; other 4xx never."""
    monkeypatch.setattr(_core, "INITIAL_BACKOFF", 0.01)
    seen: list[httpx.Request] = []
    answers: list = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    track = {"id": "trk_x", "object": "track", "filename": None, "source_url": "https://example.org/a.wav",
             "sha256": "0" * 64, "bytes": 1, "duration": 1.0, "status": "ready", "analysis_status": "pending",
             "livemode": False, "created": 1}
    client = Client("http://api.invalid", "bf_test_x", transport=httpx.MockTransport(handler), max_retries=3)
    answers[:] = [httpx.ConnectError("refused"), httpx.Response(503, headers={"Retry-After": "0"}),
                  httpx.Response(429, headers={"Retry-After": "0.01"}), httpx.Response(201, json=track)]
    assert client.tracks.create(url="https://example.org/a.wav").id == "trk_x"
    assert len(seen) == 4 and len({r.headers["idempotency-key"] for r in seen}) == 1
    assert all(json.loads(r.content) == {"url": "https://example.org/a.wav"} for r in seen)

    seen.clear()
    answers[:] = [httpx.Response(400, json={"error": {"type": "invalid_request_error", "code": "url_forbidden",
                                                      "message": "loopback", "param": "url"}})]
    with pytest.raises(InvalidRequestError, match="loopback"):
        client.tracks.create(url="http://127.0.0.1/a.wav")
    assert len(seen) == 1
    answers[:] = [httpx.Response(429)] * 4
    with pytest.raises(RateLimitError):
        client.tracks.list()
    answers[:] = [httpx.ConnectError("refused")] * 4
    with pytest.raises(APIConnectionError, match="4 attempts"):
        client.tracks.list()
    answers[:] = [httpx.Response(502, text="<html>bad gateway</html>")]
    with Client("http://api.invalid", "k", transport=httpx.MockTransport(handler), max_retries=0) as once:
        with pytest.raises(Exception, match="HTTP 502: <html>bad gateway") as gateway:
            once.tracks.list()
    assert gateway.value.status == 502 and not answers
    assert _core.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _core.parse_retry_after("nonsense") is None


def test_wait_raises_on_failure_and_timeout():
    """``wait`` polls until a final status: a failed render raises with its error, a slow one times out."""
    statuses = ["queued", "running", "failed"]

    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        error = {"type": "api_error", "code": "render_failed", "message": "encoder crashed"} if status == "failed" else None
        return httpx.Response(200, json={
            "id": "rnd_1", "object": "render", "kind": "canvas", "status": status, "progress": 0.5, "stage": "generate",
            "stages": [{"name": "generate", "status": "running"}], "canvas": "cnv_1", "video": None,
            "flow_run_id": None, "cost": None, "error": error, "livemode": False, "created": 1, "started": None,
            "finished": None})

    seen: list[str] = []
    with Client("http://api.invalid", "bf_test_x", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(RenderFailed, match="encoder crashed") as failed:
            client.renders.wait("rnd_1", poll=0.01, on_progress=lambda r: seen.append(r.status))
        assert seen == ["queued", "running", "failed"] and failed.value.render.error.code == "render_failed"
        statuses[:] = ["running"]
        with pytest.raises(WaitTimeoutError) as late:
            client.renders.wait("rnd_1", timeout=0.05, poll=0.01)
        assert isinstance(late.value, TimeoutError) and late.value.last.status == "running"


def test_async_client(server_url, keys, song, tmp_path):
    async def flow():
        async with AsyncClient(server_url, keys[0]) as client:
            with open(song, "rb") as f:
                track = await client.tracks.create(file=f)
            assert (await client.tracks.retrieve(track.id)).sha256 == _sha256(song)
            assert track.id in [t.id async for t in client.tracks.list_all(page_size=2)]
            created = await client.canvases.create(track.id, **CANVAS)
            done = await client.canvases.wait(created.id, timeout=240, poll=0.3)
            path = await client.download(done.outputs[0], tmp_path / "async.mp4")
            with pytest.raises(NotFoundError):
                await client.renders.retrieve("rnd_missing")
            return done, path

    done, path = asyncio.run(flow())
    assert _sha256(path) == done.outputs[0].sha256


def test_cli_remote_mode_end_to_end(server_url, keys, song, tmp_path):
    out = tmp_path / "remote"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEATFRAME_API", "PREFECT_API_URL"))}
    env.update(BEATFRAME_API_URL=server_url, BEATFRAME_API_KEY=keys[0])
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "beatframe.cli", "canvas", str(song), "--out", str(out),
                             "--seconds", str(CANVAS["seconds"]), "--seed", str(CANVAS["seed"])],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["canvas.jpg", "canvas.mp4", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    video = next(o for o in manifest["outputs"] if o["role"] == "canvas")
    assert _sha256(out / "canvas.mp4") == video["sha256"] and manifest["checks"]["spec_ok"]
    assert result.stdout.startswith(f"{out}/canvas.mp4  ") and "BPM" in result.stdout and "cost" in result.stdout
    assert "prefect" not in result.stderr.lower(), "remote mode must not start Prefect"
    print(f"remote canvas through the CLI: {time.monotonic() - started:.1f} s")


def _cli_main(*argv: str) -> int:
    """``beatframe ARGV`` in this process, with the settings read afresh from the environment."""
    from beatframe.cli import main
    from beatframe.infra.settings import get_settings

    get_settings.cache_clear()
    try:
        return main(list(argv))
    finally:
        get_settings.cache_clear()


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = _cli_main(*argv)
    return code, capsys.readouterr().err.strip()


def test_cli_remote_mode_errors(server_url, keys, song, tmp_path, capsys, monkeypatch):
    """Bad input and refusals exit 2, an unreachable server 1, each with one line and no traceback."""
    for name in ("BEATFRAME_API_URL", "BEATFRAME_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_core, "INITIAL_BACKOFF", 0.01)
    base = ["canvas", str(song), "--out", str(tmp_path / "x"), "--api-url", server_url]
    code, err = _cli(capsys, *base)
    assert code == 2 and err.count("\n") == 0 and "BEATFRAME_API_KEY" in err
    code, err = _cli(capsys, *base, "--api-key", "bf_test_nope")
    assert code == 2 and err.count("\n") == 0 and "401" in err and "invalid or revoked" in err
    code, err = _cli(capsys, *base, "--api-key", keys[0], "--seconds", "12")
    assert code == 2 and err.count("\n") == 0 and "seconds" in err
    code, err = _cli(capsys, *base, "--api-key", keys[0], "--start", "4")
    assert code == 2 and "--start" in err
    code, err = _cli(capsys, "canvas", str(tmp_path / "missing.wav"), "--api-url", server_url, "--api-key", "k")
    assert code == 2 and "no such file" in err
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    code, err = _cli(capsys, "canvas", str(song), "--api-url", dead, "--api-key", keys[0])
    assert code == 1 and err.count("\n") == 0 and "could not reach" in err and "Traceback" not in err
    code, err = _cli(capsys, "canvas", str(song), "--api-url", "ftp://example.org", "--api-key", keys[0])
    assert code == 2 and "http(s)" in err
    assert not (tmp_path / "x").exists()


@needs("POST", "/v1/videos")
def test_videos(client, canvas, tmp_path):
    created = client.videos.create(canvas=canvas, size="1080x1080")  # a 640 px preview in test mode
    assert created.canvas_id == canvas.id and created.track_id == canvas.track_id
    assert isinstance(created.render, Render) and created.render.kind == "video"
    done = client.videos.wait(created.id, timeout=240, poll=0.3)
    video = next(o for o in done.outputs if o.role == "video")
    assert video.has_audio and video.width == video.height and done.seed == canvas.seed
    assert _sha256(client.download(video, tmp_path)) == video.sha256
    expanded = client.videos.retrieve(created.id, expand=["canvas", "render"])
    assert isinstance(expanded.canvas, Canvas) and expanded.canvas.id == canvas.id
    assert expanded.render.video == created.id and expanded.render.status == "succeeded"
    assert created.id in [v.id for v in client.videos.list_all()]
    with pytest.raises(ValueError):
        client.videos.create(track=canvas.track_id, canvas=canvas)


@needs("POST", "/v1/videos")
def test_cli_remote_video(server_url, keys, song, tmp_path, capsys, monkeypatch, canvas):
    """``beatframe video --api-url``: the same video as test_videos (served from Prefect's cache)."""
    monkeypatch.setenv("BEATFRAME_API_KEY", keys[0])
    monkeypatch.delenv("BEATFRAME_API_URL", raising=False)
    out = tmp_path / "video"
    code = _cli_main("video", str(song), "--api-url", server_url, "--out", str(out), "--size", "1080x1080",
                     "--seed", str(canvas.seed))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "video.jpg", "video.mp4"]
    assert printed.out.startswith(f"{out}/video.mp4  640x640, ") and "shots" in printed.out
    code = _cli_main("video", str(song), "--api-url", server_url, "--cuts-only")
    assert code == 2 and "--cuts-only" in capsys.readouterr().err


@needs("POST", "/v1/assets")
def test_assets(client, tmp_path):
    import cv2
    import numpy as np

    image = tmp_path / "cover.png"
    cv2.imwrite(str(image), np.full((600, 600, 3), 90, np.uint8))
    asset = client.assets.create(image, license="CC-BY-4.0", attribution="Jane Doe", rights_holder="Jane Doe")
    assert asset.kind == "image" and asset.sha256 == _sha256(image) and asset.filename == "cover.png"
    assert client.assets.retrieve(asset.id).license == "CC-BY-4.0"
    assert asset.id in [a.id for a in client.assets.list_all()]
    with pytest.raises(InvalidRequestError):
        client.assets.create(io.BytesIO(b"not an image"), filename="x.png", license="a", attribution="b",
                             rights_holder="c")
    assert client.assets.delete(asset.id).deleted
    with pytest.raises(NotFoundError):
        client.assets.retrieve(asset.id)


@needs("POST", "/v1/templates")
def test_templates(client):
    builtin = client.templates.retrieve("tpl_neon-pulse")
    assert builtin.builtin and builtin.definition and "neon-pulse" in [t.name for t in client.templates.list_all()]
    mine = client.templates.create(name=f"sdk-{os.getpid()}", title="SDK test", palette=["#101010", "#f0f0f0"],
                                   scene=builtin.scene)
    assert not mine.builtin and mine.version == "1"
    changed = client.templates.update(mine.id, title="SDK test 2")
    assert (changed.version, changed.title) == ("2", "SDK test 2")
    assert client.templates.retrieve(mine.id, version=1).title == "SDK test"
    assert client.templates.delete(mine.id).deleted


@needs("GET", "/v1/usage")
def test_usage(client, canvas):
    usage = client.usage.retrieve(group_by="object")
    assert usage.object == "usage" and usage.billed_total == 0  # test mode is never billed
    assert canvas.render_id in {row.key for row in usage.data} or canvas.id in {row.key for row in usage.data}
    by_day = client.usage.retrieve(group_by="day", start="2020-01-01", end=time.strftime("%Y-%m-%d"))
    assert by_day.total == pytest.approx(usage.total)


def test_webhook_endpoints_events_and_deliveries(client, canvas):
    endpoint = client.webhook_endpoints.create("https://hooks.example.com/beatframe", events=["render.succeeded"])
    assert endpoint.secret.startswith("whsec_") and client.webhook_endpoints.retrieve(endpoint.id).secret is None
    events = client.events.list(limit=100).data
    assert any(e.type == "render.succeeded" and e.data["object"]["id"] == canvas.render_id for e in events)
    assert client.webhook_deliveries.list().object == "list"
    assert client.webhook_endpoints.delete(endpoint.id).deleted


def test_generate_tasks_and_sla(client, tmp_path):
    accepted = client.tasks.create("neon tunnel", duration_seconds=1, fps=12, resolution="480p", seed=3)
    assert accepted.task_id.startswith("gen_") and accepted.status == "pending"
    seen = []
    result = client.tasks.wait(accepted.task_id, poll=0.2, on_progress=seen.append)
    assert seen[-1].status == "completed" and result.metadata.seed == 3 and result.duration_seconds == 1.0
    assert client.download(result.video_url, tmp_path / "generated.mp4").stat().st_size > 0
    with pytest.raises(InvalidRequestError) as bad:
        client.tasks.create("x", fps=5)
    assert "fps" in str(bad.value) and bad.value.status == 400  # the reference body, read by the SDK
    with pytest.raises(NotFoundError):
        client.tasks.status("gen_missing")
    sla = client.sla.retrieve(level="best_effort")
    assert sla.target_level == "best_effort" and sla.requests >= 1
