"""Live progress over a WebSocket: monotonic progress, stages, preview frames (draft, then full)
before ``complete``, all relayed through PostgreSQL LISTEN/NOTIFY; authentication and isolation.

Real servers: embedded PostgreSQL, the local object store and the session's Prefect server.
"""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


def _events(client, path: str, **kwargs) -> list[dict]:
    events = []
    with client.websocket_connect(path, **kwargs) as ws:
        try:
            while True:
                events.append(ws.receive_json())
                if events[-1]["type"] in ("complete", "error"):
                    break
        except WebSocketDisconnect:
            pass
    return events


def test_a_stream_shows_monotonic_progress_and_previews_before_complete(client, auth, track):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 404}).json()
    events = _events(client, f"/v1/renders/{canvas['render']['id']}/stream", headers=auth[0])
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "complete" and events[-1]["status"] == "succeeded", events[-3:]
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(set(progress)) > 2
    assert {"plan", "generate", "stitch"} <= {e["stage"] for e in events if e["type"] == "stage"}
    frames = [e for e in events if e["type"] == "frame_available"]
    assert [f["quality"] for f in frames] == ["draft", "full"]
    assert kinds.index("frame_available") < kinds.index("complete")
    for frame in frames:
        image = client.get(frame["url"])
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"  # a JPEG
    draft, full = (client.get(f["url"]).content for f in frames)
    assert len(draft) < len(full)


def test_a_finished_render_streams_its_end_at_once(client, auth, track, wait_render):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 404}).json()
    wait_render(client, auth[0], canvas["render"]["id"])
    events = _events(client, f"/v1/renders/{canvas['render']['id']}/stream?api_key={auth[0]['Authorization'][7:]}")
    assert [e["type"] for e in events] == ["progress", "frame_available", "frame_available", "progress", "complete"]


@pytest.mark.parametrize("who, code", [(None, 4401), (1, 4404)])
def test_streams_need_the_renders_own_key(client, auth, track, who, code):
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 404}).json()
    headers = auth[who] if who is not None else {"Authorization": "Bearer bf_test_nope"}
    with client.websocket_connect(f"/v1/renders/{canvas['render']['id']}/stream", headers=headers) as ws:
        assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code
