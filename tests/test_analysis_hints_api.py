"""Corrections of a track's analysis over HTTP and the SDK: ``PATCH /v1/tracks/{id}/analysis`` makes
a new analysis version that later canvases and videos use, and ``analysis_hints`` on a canvas or
video replace the track's corrections for that render.

Real servers (embedded PostgreSQL, the local store, the session's Prefect server) and a
synthesized 12 s track (4/4 at 120 BPM, first beat at 0.5 s). One canvas is rendered for real, to
see a correction reach ``analyze(..., hints=...)`` and the manifest; the other renders are only
handed to a stand-in runner (their flow parameters are what is checked) and then canceled.
"""

from __future__ import annotations

import time

import pytest

from beatframe.music.schemas import Analysis as AnalysisSchema

# slow: runs real servers and renders a Canvas (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_song(tmp_path_factory):
    from beatframe.music.synth import synthesize_track, write_wav

    track = synthesize_track(bpm=120.0, meter=4, seed=5, sections=[("verse", 2, 0.5), ("chorus", 3, 0.9)])
    return write_wav(tmp_path_factory.mktemp("hints-api-audio") / "short.wav", track)


def upload(client, headers, path) -> dict:
    with open(path, "rb") as f:
        response = client.post("/v1/tracks", headers=headers, files={"file": ("short.wav", f, "audio/wav")})
    assert response.status_code == 201, response.text
    return response.json()


def wait_analysis(client, headers, track_id, timeout=120) -> dict:
    """Poll the track's analysis until it is no longer pending; returns the 200 answer's body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/tracks/{track_id}/analysis", headers=headers)
        if response.status_code != 202:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"the analysis of {track_id} is still pending after {timeout} s")


def patch(client, headers, track_id, body) -> dict:
    response = client.patch(f"/v1/tracks/{track_id}/analysis", headers=headers, json=body)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def track(client, auth, short_song) -> dict:
    """A track of this module's project, its first analysis (the estimate) finished."""
    created = upload(client, auth[0], short_song)
    wait_analysis(client, auth[0], created["id"])
    return created


@pytest.fixture()
def submitted(client, auth, monkeypatch) -> list[tuple[str, dict]]:
    """``(kind, flow_params)`` of every render the API hands to its runner, which no longer runs them;
    the renders are canceled afterwards."""
    handed: list[tuple[str, dict]] = []
    renders: list[str] = []

    def submit(*, render_id, kind, flow_params):
        handed.append((kind, flow_params))
        renders.append(render_id)

    monkeypatch.setattr(client.app.state.runner, "submit", submit)
    yield handed
    for render_id in renders:
        client.post(f"/v1/renders/{render_id}/cancel", headers=auth[0])


def test_the_first_analysis_is_version_1_uncorrected(client, auth, track):
    assert track["analysis_version"] == 1
    analysis = wait_analysis(client, auth[0], track["id"])
    assert analysis["version"] == 1 and analysis["hints"] is None and analysis["corrected"] == []
    assert analysis["meter"] == 4 and abs(analysis["bpm"] - 120) < 1
    AnalysisSchema.model_validate({k: v for k, v in analysis.items()
                                   if k not in ("object", "track", "status", "version", "hints")})


def test_patch_makes_a_new_version_and_each_replaces_the_last(client, auth, short_song):
    track = upload(client, auth[0], short_song)
    estimate = wait_analysis(client, auth[0], track["id"])

    pending = patch(client, auth[0], track["id"], {"meter": 3})
    assert pending == {**pending, "object": "analysis", "track": track["id"], "status": "pending", "version": 2,
                       "hints": {"meter": 3}}
    corrected = wait_analysis(client, auth[0], track["id"])
    assert corrected["version"] == 2 and corrected["hints"] == {"meter": 3}
    assert corrected["meter"] == 3 and corrected["corrected"] == ["meter"]
    assert corrected["beats"] == estimate["beats"] and corrected["downbeats"] != estimate["downbeats"]
    assert client.get(f"/v1/tracks/{track['id']}", headers=auth[0]).json()["analysis_version"] == 2

    # a tempo re-tracks the beats at that tempo; the meter given before is gone (the body replaces it)
    assert patch(client, auth[0], track["id"], {"bpm": 60})["version"] == 3
    half = wait_analysis(client, auth[0], track["id"])
    assert half["hints"] == {"bpm": 60.0} and half["corrected"] == ["bpm"] and half["meter"] == 4
    assert abs(half["bpm"] - 60) < 1 and len(half["beats"]) < 0.6 * len(estimate["beats"])

    # a beat list with bar positions, as a .beats file gives it
    times = [0.5 + i for i in range(11)]
    grid = patch(client, auth[0], track["id"], {"beats": times, "beat_positions": [i % 3 + 1 for i in range(11)]})
    assert grid["version"] == 4
    gridded = wait_analysis(client, auth[0], track["id"])
    assert gridded["beats"] == times and gridded["downbeats"] == times[::3] and gridded["meter"] == 3

    # {} goes back to the estimate, as a new version
    assert patch(client, auth[0], track["id"], {})["version"] == 5
    back = wait_analysis(client, auth[0], track["id"])
    assert back["hints"] is None and back["corrected"] == [] and back["beats"] == estimate["beats"]

    events = client.get("/v1/events?limit=100", headers=auth[0]).json()["data"]
    analyzed = [e for e in events if e["type"] == "track.analyzed" and e["data"]["object"]["id"] == track["id"]]
    assert {e["data"]["object"]["analysis_version"] for e in analyzed} == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("body, param, problem", [
    ({"bpm": 10}, "bpm", "greater than or equal to 30"),
    ({"bpm": "fast"}, "bpm", "valid number"),
    ({"meter": 1}, "meter", "greater than or equal to 2"),
    ({"meter": 3.5}, "meter", "valid integer"),
    ({"downbeat": -0.5}, "downbeat", "greater than or equal to 0"),
    ({"downbeat": 30.0}, "downbeat", "past the end of the track"),
    ({"beats": [1.0, 0.5]}, None, "strictly increasing"),
    ({"beats": [0.5]}, None, "at least two"),
    ({"beats": [0.5, 20.0, 21.0]}, "beats", "fewer than two of them fall within the track"),
    ({"bpm": 120, "beats": [0.5, 1.0]}, None, "give either bpm or beats"),
    ({"beat_positions": [1, 2]}, None, "beat_positions needs beats"),
    ({"beats": [0.5, 1.0], "beat_positions": [1]}, None, "one position per beat"),
    ({"tempo": 120}, "tempo", "Extra inputs are not permitted"),
    ([120], None, "valid dictionary"),
])
def test_bad_corrections_are_400s_and_change_nothing(client, auth, track, body, param, problem):
    response = client.patch(f"/v1/tracks/{track['id']}/analysis", headers=auth[0], json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "parameter_invalid"
    assert error["param"] == param and problem in error["message"], error
    assert client.get(f"/v1/tracks/{track['id']}", headers=auth[0]).json()["analysis_version"] == 1


def test_patch_needs_the_callers_live_track(client, auth, track, short_song):
    assert client.patch(f"/v1/tracks/{track['id']}/analysis", headers=auth[1], json={"meter": 3}).status_code == 404
    assert client.patch("/v1/tracks/trk_missing/analysis", headers=auth[0], json={"meter": 3}).status_code == 404
    gone = upload(client, auth[0], short_song)
    assert client.delete(f"/v1/tracks/{gone['id']}", headers=auth[0]).status_code == 200
    assert client.patch(f"/v1/tracks/{gone['id']}/analysis", headers=auth[0], json={"meter": 3}).status_code == 404
    response = client.patch(f"/v1/tracks/{track['id']}/analysis", headers=auth[0], content=b"meter=3")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parameter_invalid"


def test_a_late_analysis_never_overwrites_a_newer_version(client, auth, short_song):
    from beatframe.infra.storage import store_ref

    track = upload(client, auth[0], short_song)
    wait_analysis(client, auth[0], track["id"])
    patch(client, auth[0], track["id"], {"meter": 3})
    assert wait_analysis(client, auth[0], track["id"])["meter"] == 3
    with client.app.state.pool.connection() as conn:
        key = conn.execute("SELECT object_key FROM tracks WHERE id = %s", (track["id"],)).fetchone()["object_key"]
    # the first analysis (version 1) finishing only now, after the correction: dropped
    client.app.state.runner._run_analysis(track["id"], store_ref(key), None, 1)
    latest = wait_analysis(client, auth[0], track["id"])
    assert latest["version"] == 2 and latest["meter"] == 3 and latest["corrected"] == ["meter"]


def test_the_same_patch_with_an_idempotency_key_is_one_version(client, auth, short_song):
    track = upload(client, auth[0], short_song)
    headers = {**auth[0], "Idempotency-Key": f"correct-{track['id']}"}
    first = client.patch(f"/v1/tracks/{track['id']}/analysis", headers=headers, json={"meter": 2})
    again = client.patch(f"/v1/tracks/{track['id']}/analysis", headers=headers, json={"meter": 2})
    assert first.status_code == again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == again.json() and first.json()["version"] == 2
    other = client.patch(f"/v1/tracks/{track['id']}/analysis", headers=headers, json={"meter": 3})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_renders_use_the_tracks_latest_corrections_unless_the_request_gives_its_own(client, auth, short_song,
                                                                                   submitted):
    track = upload(client, auth[0], short_song)
    wait_analysis(client, auth[0], track["id"])

    plain = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 3}).json()
    assert plain["analysis_version"] == 1 and plain["analysis_hints"] is None
    assert "analysis_hints" not in submitted[-1][1]

    patch(client, auth[0], track["id"], {"meter": 3, "downbeat": 1.0})
    stored = {"meter": 3, "downbeat": 1.0}
    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 3})
    assert canvas.status_code == 202, canvas.text
    assert canvas.json()["analysis_version"] == 2 and canvas.json()["analysis_hints"] is None
    assert submitted[-1] == ("canvas", {**submitted[-1][1], "analysis_hints": stored})

    video = client.post("/v1/videos", headers=auth[0], json={"track": track["id"]}).json()
    assert video["analysis_version"] == 2 and submitted[-1][1]["analysis_hints"] == stored

    # the request's own corrections replace the track's; {} is the estimate
    own = client.post("/v1/canvases", headers=auth[0],
                      json={"track": track["id"], "seconds": 3, "analysis_hints": {"bpm": 60}}).json()
    assert own["analysis_hints"] == {"bpm": 60.0} and own["analysis_version"] is None
    assert submitted[-1][1]["analysis_hints"] == {"bpm": 60.0}
    estimate = client.post("/v1/canvases", headers=auth[0],
                           json={"track": track["id"], "seconds": 3, "analysis_hints": {}}).json()
    assert estimate["analysis_hints"] == {} and "analysis_hints" not in submitted[-1][1]

    # a video of a canvas takes the canvas's corrections, unless it gives its own
    from_canvas = client.post("/v1/videos", headers=auth[0], json={"canvas": own["id"]}).json()
    assert from_canvas["analysis_hints"] == {"bpm": 60.0} and submitted[-1][1]["analysis_hints"] == {"bpm": 60.0}
    overridden = client.post("/v1/videos", headers=auth[0],
                             json={"canvas": own["id"], "analysis_hints": {"meter": 2}}).json()
    assert overridden["analysis_hints"] == {"meter": 2} and submitted[-1][1]["analysis_hints"] == {"meter": 2}
    latest = client.post("/v1/videos", headers=auth[0], json={"canvas": canvas.json()["id"]}).json()
    assert latest["analysis_version"] == 2 and submitted[-1][1]["analysis_hints"] == stored

    retrieved = client.get(f"/v1/canvases/{own['id']}", headers=auth[0]).json()
    assert retrieved["analysis_hints"] == {"bpm": 60.0}


@pytest.mark.parametrize("route", ["/v1/canvases", "/v1/videos"])
@pytest.mark.parametrize("hints, param", [
    ({"bpm": 400}, "analysis_hints.bpm"),
    ({"meter": 0}, "analysis_hints.meter"),
    ({"beats": [2.0, 1.0]}, "analysis_hints"),
    ({"downbeat": 99.0}, "analysis_hints.downbeat"),
    ({"swing": 0.2}, "analysis_hints.swing"),
])
def test_bad_analysis_hints_on_renders_are_400s(client, auth, track, submitted, route, hints, param):
    response = client.post(route, headers=auth[0], json={"track": track["id"], "analysis_hints": hints})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert submitted == []


def test_a_canvas_with_corrections_renders_on_the_corrected_analysis(client, auth, track, wait_render, monkeypatch):
    """The contract end to end: the request's hint reaches analyze(..., hints=...), and the plan and
    manifest are made from the corrected analysis."""
    import beatframe.music.analysis as analysis_module

    seen = []
    real = analysis_module.analyze

    def spy(path, **kwargs):
        seen.append(kwargs.get("hints"))
        return real(path, **kwargs)

    monkeypatch.setattr(analysis_module, "analyze", spy)
    hints = {"meter": 3, "downbeat": 1.5}  # asked for nowhere else: no cached analysis of it yet
    created = client.post("/v1/canvases", headers=auth[0],
                          json={"track": track["id"], "seconds": 3, "seed": 4, "analysis_hints": hints})
    assert created.status_code == 202, created.text
    render = wait_render(client, auth[0], created.json()["render"]["id"])
    assert render["status"] == "succeeded", render["error"]
    # (an earlier test's correction may still be analysing in the background: only ours is asserted)
    assert hints in [h.model_dump(exclude_none=True) for h in seen if h is not None]
    manifest = client.get(f"/v1/canvases/{created.json()['id']}", headers=auth[0]).json()["manifest"]
    assert manifest["analysis"]["meter"] == 3 and manifest["analysis"]["corrected"] == ["downbeat", "meter"]
    assert manifest["loop"]["bars"] * 3 * 0.5 == pytest.approx(manifest["loop"]["seconds"], abs=0.05)


def test_openapi_documents_the_route_and_the_fields(client):
    document = client.get("/v1/openapi.json").json()
    operation = document["paths"]["/v1/tracks/{track_id}/analysis"]["patch"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnalysisHints"}
    assert "202" in operation["responses"]
    schemas = document["components"]["schemas"]
    assert set(schemas["AnalysisHints"]["properties"]) == {"bpm", "downbeat", "meter", "beats", "beat_positions"}
    for body in ("CanvasCreate", "VideoCreate"):
        assert "analysis_hints" in schemas[body]["properties"], body


# --- the SDK, over a real socket ---------------------------------------------------------------------

def test_sdk_update_analysis_and_render_options(server_url, auth, short_song, submitted, tmp_path):
    from pydantic import ValidationError

    from beatframe.client import Client, NotFoundError
    from beatframe.music.analysis.hints import read_beat_file
    from beatframe.music.schemas import AnalysisHints

    key = auth[0]["Authorization"].removeprefix("Bearer ")
    with Client(server_url, key) as sdk:
        track = sdk.tracks.create(file=short_song)
        sdk.tracks.analysis(track.id, wait=True)
        corrected = sdk.tracks.update_analysis(track.id, meter=3, wait=True, timeout=120)
        assert corrected.status == "succeeded" and corrected.version == 2 and corrected.meter == 3
        assert corrected.hints == {"meter": 3} and corrected.corrected == ["meter"]
        assert corrected.to_schema().meter == 3
        assert sdk.tracks.retrieve(track.id).analysis_version == 2

        (tmp_path / "grid.beats").write_text("".join(f"{0.5 + i}\t{i % 2 + 1}\n" for i in range(11)))
        pending = sdk.tracks.update_analysis(track.id, read_beat_file(tmp_path / "grid.beats"))
        assert pending.status == "pending" and pending.version == 3 and pending.hints["beat_positions"][:2] == [1, 2]
        assert sdk.tracks.analysis(track.id, wait=True, timeout=120).meter == 2

        canvas = sdk.canvases.create(track, seconds=3, analysis_hints=AnalysisHints(bpm=60))
        assert canvas.analysis_hints == {"bpm": 60.0} and submitted[-1][1]["analysis_hints"] == {"bpm": 60.0}
        video = sdk.videos.create(track=track, analysis_hints={"downbeat": 1.0})
        assert video.analysis_hints == {"downbeat": 1.0} and video.analysis_version is None

        with pytest.raises(ValidationError):  # checked before any request
            sdk.canvases.create(track, analysis_hints={"bpm": 500})
        with pytest.raises(ValueError, match="not both"):
            sdk.tracks.update_analysis(track.id, {"meter": 3}, bpm=120)
        with pytest.raises(NotFoundError):
            sdk.tracks.update_analysis("trk_missing", meter=3)
