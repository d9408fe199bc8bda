"""Contracts of the ``/genius/*`` post-production routes: every documented option of ``POST
/v1/genius/v2v/transform``, ``/inpaint/process``, ``/lipsync/generate`` and ``/scene/edit`` reaches
an argument of the function it feeds, the inpainting and video-to-video routes accept exactly what
:func:`beatframe.models.inpaint.inpaint_frames` and :func:`beatframe.models.v2v.transform` accept for
each mode, and the licence of every asset a task uses reaches its record.

- Statically: each request model's fields map onto parameters of the model function
  (``inspect.signature``), or are listed with where they go instead (a 501, the task's webhook).
- End to end: requests giving every option are answered 202; the render the API hands to its
  runner is captured (``runner.submit`` patched) and its ``post_video`` flow run for real with the
  model function swapped for a recorder, which checks the keyword arguments it receives. Scene
  edits stop at the flow parameters (``render_scene_edit``'s signature and scene model). The records
  and flow parameters carry the licence of the source task and of every asset used.
- The inpainting and video-to-video routes' per-mode checks against ``inpaint_frames`` and
  ``transform`` themselves, every mode with every combination of its options, on tiny frames.

Real servers, as in tests/test_api_generate.py: embedded PostgreSQL, the local object store and the
session's Prefect server.
"""

from __future__ import annotations

import inspect
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from test_api_generate import SMALL, wait_task

from beatframe.api.errors import ApiError
from beatframe.api.routes.genius.common import check_mode_options
from beatframe.api.routes.genius.inpaint import MODES as INPAINT_MODES
from beatframe.api.routes.genius.inpaint import InpaintProcess
from beatframe.api.routes.genius.lipsync import LipsyncGenerate
from beatframe.api.routes.genius.scene import EditScene, SceneEditCreate
from beatframe.api.routes.genius.v2v import MODE_FIELDS, V2VTransform
from beatframe.flows.scene_edit import render_scene_edit
from beatframe.infra.errors import BadInputError
from beatframe.infra.modes import options_of
from beatframe.models import inpaint, lipsync, v2v
from beatframe.music.scenes import Scene, check_scenes
from beatframe.music.transitions import TRANSITIONS

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

#: Each route's request model, the function its options feed, the parameter each option reaches, and
#: where the options that reach none go instead.
ROUTES = {
    "v2v/transform": (V2VTransform, v2v.transform, {
        "source_task_id": "frames", "mode": "mode", "strength": "strength", "style_reference_asset": "reference_image",
        "reference_task_id": "reference_frames", "preserve_motion": "preserve_motion",
        "temporal_consistency": "temporal_consistency", "factor": "factor", "palette": "palette"},
        {"style_reference_url": "a 501: not built", "webhook_url": "the task's own webhook endpoint"}),
    "inpaint/process": (InpaintProcess, inpaint.inpaint_frames, {
        "task_id": "frames", "mode": "mode", "bbox": "box", "feather_radius": "feather_radius",
        "replacement_asset": "replacement", "target_aspect": "target_aspect"},
        {"webhook_url": "the task's own webhook endpoint"}),
    "lipsync/generate": (LipsyncGenerate, lipsync.lipsync_frames, {
        "task_id": "frames", "track": "visemes", "face_region": "face_region", "expression": "expression",
        "intensity": "intensity", "start": "start", "follow": "follow"},
        {"audio_url": "a 501: not built", "force": "post_video's Canvas refusal, before the model runs",
         "webhook_url": "the task's own webhook endpoint"}),
    "scene/edit": (SceneEditCreate, render_scene_edit.fn, {
        "scenes": "scenes", "enable_auto_transitions": "scenes", "transition_duration_seconds": "transition_seconds",
        "enable_character_consistency": "consistency", "track": "audio", "reference_asset": "reference_image",
        "size": "size", "seed": "seed"},
        {"webhook_url": "the task's own webhook endpoint"}),
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_option_maps_onto_a_parameter_of_the_function_it_feeds(route):
    model, function, reaches, elsewhere = ROUTES[route]
    assert set(reaches) | set(elsewhere) == set(model.model_fields), "an option with no known destination"
    assert not set(reaches) & set(elsewhere)
    parameters = inspect.signature(function).parameters
    assert {name: target for name, target in reaches.items() if target not in parameters} == {}


def test_edit_scenes_are_the_flows_scenes_and_transitions_are_the_stitchers():
    assert set(EditScene.model_fields) <= set(Scene.model_fields)
    assert EditScene.model_json_schema()["properties"]["transition"]["enum"] == ["auto", *TRANSITIONS]


def _inpaint_kwargs(body: InpaintProcess, frames: np.ndarray) -> dict:
    """The keyword arguments ``inpaint_frames`` gets for ``body``, as the route and the post task pass them."""
    return {"mode": body.mode, "feather_radius": body.feather_radius, "box": body.bbox,
            "target_aspect": body.target_aspect, "replacement": frames[0] if body.replacement_asset else None}


def _v2v_kwargs(body: V2VTransform, frames: np.ndarray) -> dict:
    """The keyword arguments ``transform`` gets for ``body``, as the route and the post task pass them."""
    return {"mode": body.mode, "strength": body.strength, "preserve_motion": body.preserve_motion,
            "temporal_consistency": body.temporal_consistency, "factor": body.factor,
            **({"palette": body.palette} if body.palette else {}),
            "reference_image": frames[0] if body.style_reference_asset else None,
            "reference_frames": frames if body.reference_task_id else None}


#: The routes that check options per mode: the request model, the route's table of modes, the request
#: field of each option where it is not the option's name, a request's other fields and a value for each
#: option field, the model function and the keyword arguments it gets for a request.
MODE_ROUTES = {
    "inpaint/process": (InpaintProcess, INPAINT_MODES, {}, {"task_id": "gen_x"},
                        {"bbox": [8, 6, 30, 24], "replacement_asset": "ast_x", "target_aspect": "9:16"},
                        inpaint.inpaint_frames, _inpaint_kwargs),
    "v2v/transform": (V2VTransform, v2v.MODE_INPUTS, MODE_FIELDS, {"source_task_id": "gen_x"},
                      {"style_reference_asset": "ast_x", "reference_task_id": "gen_y", "palette": "ocean"},
                      v2v.transform, _v2v_kwargs),
}


@pytest.mark.parametrize("route, mode", [(route, mode) for route, entry in MODE_ROUTES.items() for mode in entry[1]])
def test_the_route_accepts_what_its_model_function_accepts_for_each_mode(route, mode):
    request, modes, fields, base, values, function, kwargs_of = MODE_ROUTES[route]
    frames = np.random.default_rng(5).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)
    options = [fields.get(option, option) for option in options_of(modes)]
    assert sorted(options) == sorted(values)
    for count in range(len(options) + 1):
        for given in combinations(options, count):
            body = request(**base, mode=mode, **{name: values[name] for name in given})
            try:
                check_mode_options(body, modes, fields=fields)
                route_error = None
            except ApiError as exc:
                assert exc.status == 400 and exc.param in options, (given, exc.message)
                route_error = exc.message
            try:
                out, _ = function(frames, **kwargs_of(body, frames))
                list(out)
                model_error = None
            except BadInputError as exc:
                model_error = str(exc)
            assert (route_error is None) == (model_error is None), (given, route_error, model_error)


# --- end to end: the API's flow parameters, the flow, the model function


@pytest.fixture(scope="module")
def source_task(client, auth) -> str:
    """A completed task: a silent clip of 2 s at 12 fps, 24 frames of 480x854."""
    task = client.post("/v1/generate", headers=auth[0], json={"prompt": "neon city", **SMALL, "seed": 3}).json()
    assert wait_task(client, auth[0], task["task_id"])[-1]["status"] == "completed"
    return task["task_id"]


@pytest.fixture(scope="module")
def image_png(tmp_path_factory) -> Path:
    import cv2

    y, x = np.mgrid[0:320, 0:400]  # image assets are at least 300 px a side
    path = tmp_path_factory.mktemp("asset") / "style.png"
    cv2.imwrite(str(path), np.stack([x * 2 % 256, y * 2 % 256, (x + y) % 256], axis=-1).astype(np.uint8))
    return path


#: The licence fields the ``image_asset`` fixture is uploaded with.
ASSET_LICENCE = {"license": "CC0-1.0", "attribution": "test", "rights_holder": "test"}


@pytest.fixture(scope="module")
def image_asset(client, auth, image_png) -> str:
    with open(image_png, "rb") as f:
        response = client.post("/v1/assets", headers=auth[0], files={"file": ("style.png", f, "image/png")},
                               data=ASSET_LICENCE)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture()
def submitted(client, monkeypatch) -> list[tuple[str, dict]]:
    """``(kind, flow_params)`` of every render the API hands to its runner, which no longer runs them."""
    handed: list[tuple[str, dict]] = []
    monkeypatch.setattr(client.app.state.runner, "submit",
                        lambda *, render_id, kind, flow_params: handed.append((kind, flow_params)))
    return handed


@pytest.fixture()
def received(monkeypatch) -> dict[str, list[dict]]:
    """The keyword arguments each post-production model function was called with, each call checked
    against the real function's signature; they return their input frames unchanged."""
    from beatframe.flows import post

    # a recorder's result must neither come from the render cache nor go into it
    monkeypatch.setattr(post, "post_process", post.post_process.with_options(persist_result=False))
    calls: dict[str, list[dict]] = {"v2v": [], "inpaint": [], "lipsync": []}

    def recorder(step: str, real):
        def record(frames, **kwargs):
            inspect.signature(real).bind(frames, **kwargs)
            calls[step].append({"frames": frames, **kwargs})
            return list(frames), {"fps": kwargs.get("fps")}
        return record

    monkeypatch.setattr(v2v, "transform", recorder("v2v", v2v.transform))
    monkeypatch.setattr(inpaint, "inpaint_frames", recorder("inpaint", inpaint.inpaint_frames))
    monkeypatch.setattr(lipsync, "lipsync_frames", recorder("lipsync", lipsync.lipsync_frames))
    return calls


def _run_post(client, auth, submitted, route: str, body: dict) -> dict:
    """Send ``body`` to ``route``, then run the post_video flow the API handed to its runner: its record."""
    from beatframe.flows.post import post_video

    accepted = client.post(f"/v1/genius/{route}", headers=auth[0], json=body)
    assert accepted.status_code == 202, accepted.text
    kind, flow_params = submitted.pop()
    assert kind == "post"
    return post_video(**flow_params)


def _licences(record: dict) -> dict[str, dict]:
    """The record's licensing entries by role (one each)."""
    entries = record["licensing"]["assets"]
    assert len({e["role"] for e in entries}) == len(entries)
    return {e["role"]: e for e in entries}


def _covers_every_option(route: str, bodies: list[dict]) -> None:
    assert set(ROUTES[route][2]) <= set().union(*bodies), "a request option no end-to-end request gives"


def _assert_source_clip(call: dict) -> None:
    assert len(call["frames"]) == 24 and call["frames"][0].shape == (854, 480, 3)


def test_every_v2v_option_reaches_transform(client, auth, source_task, image_asset, image_png, submitted, received):
    from beatframe.music.images import load_image

    bodies = [{"source_task_id": source_task, "mode": "colorization", "strength": 0.6, "preserve_motion": False,
               "temporal_consistency": 0.5, "factor": 3, "palette": "ocean"},
              {"source_task_id": source_task, "mode": "style_transfer", "style_reference_asset": image_asset},
              {"source_task_id": source_task, "mode": "motion_transfer", "reference_task_id": source_task}]
    _covers_every_option("v2v/transform", bodies)
    records = [_run_post(client, auth, submitted, "v2v/transform", body) for body in bodies]
    colorize, style, motion = received["v2v"]
    for call in (colorize, style, motion):
        _assert_source_clip(call)
    assert colorize == {**colorize, "mode": "colorization", "strength": 0.6, "preserve_motion": False,
                        "temporal_consistency": 0.5, "factor": 3, "palette": "ocean"}
    assert np.array_equal(style["reference_image"], load_image(image_png, what="style image"))
    assert style["mode"] == "style_transfer" and style["strength"] == 0.7  # the route's defaults also arrive
    assert len(motion["reference_frames"]) == 24 and motion["mode"] == "motion_transfer"
    # the source task's licensing and the style asset's licence reach the records
    colorize_licences, style_licences, motion_licences = map(_licences, records)
    assert set(colorize_licences) == {"source"}
    source = style_licences["source"]
    assert source["task"] == source_task and source["license"] == "CC0-1.0" and "models" in source
    assert style_licences["style_reference"] == {**style_licences["style_reference"], **ASSET_LICENCE,
                                                 "asset": image_asset}
    assert motion_licences["motion_reference"]["task"] == source_task


def test_every_inpaint_option_reaches_inpaint_frames(client, auth, source_task, image_asset, image_png, submitted,
                                                     received):
    from beatframe.music.images import load_image

    bodies = [{"task_id": source_task, "mode": "replace", "bbox": [10, 20, 200, 300], "feather_radius": 7,
               "replacement_asset": image_asset},
              {"task_id": source_task, "mode": "extend", "target_aspect": "1:1", "feather_radius": 3}]
    _covers_every_option("inpaint/process", bodies)
    records = [_run_post(client, auth, submitted, "inpaint/process", body) for body in bodies]
    replace, extend = received["inpaint"]
    _assert_source_clip(replace)
    assert replace == {**replace, "mode": "replace", "box": [10, 20, 200, 300], "feather_radius": 7}
    assert np.array_equal(replace["replacement"], load_image(image_png, what="replacement"))
    assert extend == {**extend, "mode": "extend", "target_aspect": "1:1", "feather_radius": 3, "replacement": None}
    assert "box" not in extend
    replaced = _licences(records[0])["replacement"]
    assert replaced == {**replaced, **ASSET_LICENCE, "asset": image_asset} and len(replaced["sha256"]) == 64


def test_options_a_mode_cannot_use_are_refused_before_a_task_is_queued(client, auth, image_asset, submitted):
    for route, body, param in [
            ("inpaint/process", {"mode": "background", "bbox": [0, 0, 8, 8], "replacement_asset": image_asset},
             "replacement_asset"),
            ("inpaint/process", {"mode": "replace", "bbox": [0, 0, 8, 8]}, "replacement_asset"),
            ("inpaint/process", {"mode": "remove"}, "bbox"),
            ("inpaint/process", {"mode": "extend", "target_aspect": "9:16", "bbox": [0, 0, 8, 8]}, "bbox"),
            ("inpaint/process", {"mode": "extend"}, "target_aspect"),
            ("v2v/transform", {"mode": "enhancement", "palette": "sepia"}, "palette"),
            ("v2v/transform", {"mode": "upscale", "style_reference_asset": image_asset}, "style_reference_asset"),
            ("v2v/transform", {"mode": "colorization", "reference_task_id": "gen_none"}, "reference_task_id"),
            ("v2v/transform", {"mode": "style_transfer"}, "style_reference_asset"),
            ("v2v/transform", {"mode": "motion_transfer"}, "reference_task_id"),
            ("v2v/transform", {"mode": "colorization", "palette": "neon", "style_reference_asset": image_asset},
             "palette")]:
        task = {"task_id" if route == "inpaint/process" else "source_task_id": "gen_none"}
        refused = client.post(f"/v1/genius/{route}", headers=auth[0], json={**task, **body})
        assert refused.status_code == 400, refused.text
        error = refused.json()
        assert error["type"] == "ValueError" and error["detail"].startswith(f"{param} "), error
        assert body["mode"] in error["detail"] and error["code"].startswith("parameter_")
    assert submitted == []


def test_a_region_outside_the_source_video_is_refused_before_a_task_is_queued(client, auth, source_task,
                                                                             submitted):
    refused = client.post("/v1/genius/inpaint/process", headers=auth[0],
                          json={"task_id": source_task, "mode": "remove", "bbox": [400, 10, 520, 60]})
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["detail"].startswith("bbox ") and "480x854" in error["detail"], error
    assert submitted == []


def test_every_lipsync_option_reaches_lipsync_frames(client, auth, source_task, track, song, submitted, received,
                                                     monkeypatch):
    from beatframe.flows import post
    from beatframe.music.analysis.visemes import visemes_json

    def refuse(video: Path) -> None:
        raise BadInputError(f"{video.name} is taken for a Canvas")

    body = {"task_id": source_task, "track": track["id"], "face_region": [100, 200, 380, 600],
            "expression": "surprised", "intensity": 1.5, "start": 2.0, "follow": True, "force": True}
    _covers_every_option("lipsync/generate", [body])
    accepted = client.post("/v1/genius/lipsync/generate", headers=auth[0], json=body)
    assert accepted.status_code == 202, accepted.text
    _, flow_params = submitted.pop()
    # force is the flow's: only it gets a clip taken for a Canvas past the flow's refusal
    monkeypatch.setattr(post, "_refuse_canvas", refuse)
    with pytest.raises(BadInputError, match="Canvas"):
        post.post_video(**{**flow_params, "options": {**flow_params["options"], "force": False}})
    assert received["lipsync"] == []
    post.post_video(**flow_params)
    (call,) = received["lipsync"]
    _assert_source_clip(call)
    assert call == {**call, "face_region": [100, 200, 380, 600], "expression": "surprised", "intensity": 1.5,
                    "start": 2.0, "follow": True, "fps": 12.0}
    assert call["visemes"] == visemes_json(song) and "force" not in call


def test_every_scene_edit_option_reaches_the_edit_flow(client, auth, track, image_asset, submitted):
    import time

    deadline = time.monotonic() + 120
    while client.get(f"/v1/tracks/{track['id']}/analysis", headers=auth[0]).status_code != 200:
        assert time.monotonic() < deadline, "the track's analysis did not finish"
        time.sleep(0.2)
    body = {"scenes": [{"prompt": "misty hills", "duration": 2},
                       {"template": "neon-pulse", "duration": 2, "transition": "wipe"},
                       {"asset": image_asset, "duration": 1, "transition": "auto"}],
            "enable_auto_transitions": False, "transition_duration_seconds": 0.3,
            "enable_character_consistency": False, "track": track["id"], "reference_asset": image_asset,
            "size": "1280x720", "seed": 7}
    _covers_every_option("scene/edit", [body])
    accepted = client.post("/v1/genius/scene/edit", headers=auth[0], json=body)
    assert accepted.status_code == 202, accepted.text
    (kind, flow_params), = submitted
    assert kind == "edit"
    inspect.signature(render_scene_edit.fn).bind(**flow_params)
    scenes = [scene.model_dump() for scene in check_scenes(flow_params["scenes"])]
    assert [s["transition"] for s in scenes] == ["cut", "wipe", "cut"]  # no auto transitions: auto is a cut
    assert [(s["prompt"], s["template"], s["duration"]) for s in scenes] == [
        ("misty hills", None, 2), (None, "neon-pulse", 2), (None, None, 1)]
    assert scenes[2]["asset"].startswith("store:") and flow_params["reference_image"] == scenes[2]["asset"]
    # an image scene carries its asset's licence to the edit's manifest, as the reference image does
    assert scenes[2] == {**scenes[2], **ASSET_LICENCE} and scenes[0]["license"] is None
    assert json.loads(flow_params["reference_license"]) == {**ASSET_LICENCE, "asset": image_asset}
    assert flow_params["audio"].startswith("store:")
    assert flow_params == {**flow_params, "transition_seconds": 0.3, "consistency": False, "size": "1280x720",
                           "seed": 7}
