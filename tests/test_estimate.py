"""Time estimates and the labels of estimated figures: :mod:`beatframe.models.estimate` prices the
generator a render would run, every 202 answer that reports an estimate takes it from there, and
the OpenAPI document says which figures are estimates, heuristics or relabels (so the labels
cannot disappear silently).

The route tests use the session's servers (embedded PostgreSQL, Prefect) but run no render: the
API's runner is replaced by a recorder.
"""

from __future__ import annotations

import math

import pytest

from beatframe.models import estimate
from beatframe.models.backend import resolve_backend
from beatframe.models.estimate import TASK_OVERHEAD_SECONDS, estimate_backend_time, estimate_time
from beatframe.models.model_catalog import get_model

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

SMALL = {"duration_seconds": 2, "fps": 12, "resolution": "480p", "aspect_ratio": "9:16"}


# --- the estimate


def test_a_wan_backend_is_priced_apart_from_the_procedural_one_for_the_same_request():
    request = dict(seconds=4.0, size=(1280, 720), fps=24)
    procedural = estimate_backend_time(backend=resolve_backend("procedural", task="t2v", size=(1280, 720),
                                                               seconds=4.0, models_dir=None), **request)
    wan = estimate_backend_time(backend={"generator": "wan-t2v", "catalog_id": "wan2.1-t2v-1.3b", "offload": False,
                                         "compute": "cuda", "steps": 50}, **request)
    assert (procedural.model, procedural.compute, wan.model, wan.compute) == ("procedural", "cpu",
                                                                               "wan2.1-t2v-1.3b", "cuda")
    assert wan.seconds != procedural.seconds and wan.seconds > procedural.seconds
    # procedural draws the output's 24 fps; Wan its native 16 fps at 2.4 s a frame (the catalog's figure)
    assert (procedural.frames, wan.frames) == (96, 64)
    assert wan.generate_seconds == pytest.approx(64 * 2.4)
    assert wan.seconds == round(TASK_OVERHEAD_SECONDS + 64 * 2.4, 1)
    for est in (procedural, wan):
        assert "model catalog" in est.based_on and est.model in est.based_on and "not measured" in est.based_on


def test_how_the_wan_backend_runs_changes_its_estimate():
    base = dict(model="wan2.1-t2v-1.3b", seconds=5.0, size=(832, 480))
    gpu = estimate_time(**base)
    assert estimate_time(**base, offload=True).generate_seconds > gpu.generate_seconds
    assert estimate_time(**base, steps=25).generate_seconds == pytest.approx(gpu.generate_seconds / 2)
    on_cpu = estimate_time(**base, compute="cpu")
    assert on_cpu.generate_seconds == pytest.approx(gpu.generate_seconds * estimate.CPU_SLOWDOWN)
    assert "on the CPU" in on_cpu.based_on and "assumption" in on_cpu.based_on
    # a Wan backend by name resolves here to the CPU (no CUDA on the test machine) and is priced so
    backend = resolve_backend({"name": "wan-t2v", "device": "cpu"}, task="t2v", size=(832, 480), seconds=5.0,
                              models_dir=None)
    assert estimate_backend_time(backend=backend, seconds=5.0, size=(832, 480), fps=30) == on_cpu
    custom = estimate_backend_time(backend={**backend, "catalog_id": None, "model": "my-finetune"},
                                   seconds=5.0, size=(832, 480), fps=30)
    assert custom.seconds == on_cpu.seconds and custom.based_on.startswith("my-finetune is not in the model catalog")


def test_the_estimate_grows_with_the_length_and_the_size():
    short = estimate_time(model="procedural", seconds=4.0, size=(1920, 1080), fps=30)
    assert estimate_time(model="procedural", seconds=8.0, size=(1920, 1080), fps=30).generate_seconds == \
        pytest.approx(2 * short.generate_seconds)
    assert estimate_time(model="procedural", seconds=4.0, size=(3840, 2160), fps=30).generate_seconds == \
        pytest.approx(4 * short.generate_seconds)
    # a Wan model renders its native mode, so a larger output picks a larger (slower) mode
    assert estimate_time(model="wan2.1-t2v-14b", seconds=4.0, size=(1280, 720)).generate_seconds > \
        estimate_time(model="wan2.1-t2v-14b", seconds=4.0, size=(854, 480)).generate_seconds


def test_the_orchestrator_recommends_by_the_same_estimate():
    from beatframe.models.orchestrator import select_model

    rec = select_model(prompt="waves", duration_seconds=5, resolution="480p", free_vram_gb=20.0,
                       available=["wan2.1-t2v-1.3b"])
    same = estimate_time(model=rec.recommended_model, seconds=5, size=(854, 480), offload=rec.offload)
    assert rec.estimated_time_seconds == max(1, math.ceil(same.generate_seconds))
    assert rec.frames == same.frames and rec.clips == same.clips


# --- every 202 answer with an estimate takes it from estimate_backend_time


PATCHED = estimate.TimeEstimate(seconds=4321.5, generate_seconds=4316.5, model="patched", compute="cpu", frames=1,
                                clips=1, mode=get_model("procedural").modes[0], based_on="the patched estimate")


@pytest.fixture()
def patched(client, monkeypatch) -> list[dict]:
    """Every call of the estimate (its keyword arguments); it answers :data:`PATCHED`. The API's
    runner records renders instead of running them."""
    calls: list[dict] = []

    def fake(**kwargs):
        calls.append(kwargs)
        return PATCHED

    monkeypatch.setattr(estimate, "estimate_backend_time", fake)
    monkeypatch.setattr(client.app.state.runner, "submit", lambda *, render_id, kind, flow_params: None)
    return calls


@pytest.mark.parametrize("route, body, tasks", [
    ("/v1/generate", {"prompt": "a quiet sea", **SMALL}, 1),
    ("/v1/genius/batch/submit", {"prompts": ["a quiet sea", "neon city"], **SMALL}, 2),
    ("/v1/genius/scene/edit", {"scenes": [{"prompt": "misty dawn", "duration": 2}], "size": "512x288"}, 1),
])
def test_every_202_estimate_comes_from_the_estimate_function(client, auth, patched, route, body, tasks):
    accepted = client.post(route, headers=auth[0], json=body)
    assert accepted.status_code == 202, accepted.text
    assert len(patched) == tasks
    assert accepted.json()["estimated_time_seconds"] == round(tasks * PATCHED.seconds, 1)
    assert accepted.json()["estimate_basis"] == PATCHED.based_on


def test_the_generate_answer_prices_the_backend_its_flow_would_choose(client, auth, monkeypatch):
    from beatframe.api.routes import generate

    monkeypatch.setattr(client.app.state.runner, "submit", lambda *, render_id, kind, flow_params: None)
    body = {"prompt": "a quiet sea", **SMALL, "num_inference_steps": 20}
    procedural = client.post("/v1/generate", headers=auth[0], json=body).json()
    assert procedural["estimated_time_seconds"] == estimate_time(model="procedural", seconds=2.0, size=(480, 854),
                                                                 fps=12).seconds
    assert "procedural on the CPU" in procedural["estimate_basis"]

    # a deployment whose auto choice is Wan (weights and a GPU): the answer prices Wan, with the steps asked for
    chosen = []

    def wan_here(choice, **kwargs):
        chosen.append(choice)
        return resolve_backend({**choice, "name": "wan-t2v"}, **kwargs)

    monkeypatch.setattr(generate, "resolve_backend", wan_here)
    wan = client.post("/v1/generate", headers=auth[0], json=body).json()
    assert chosen == [{"name": "auto", "guidance_scale": 7.5, "steps": 20}]
    assert wan["estimated_time_seconds"] != procedural["estimated_time_seconds"]
    assert "wan2.1-t2v-1.3b" in wan["estimate_basis"] and "x20/50 steps" in wan["estimate_basis"]


# --- what the OpenAPI document says of estimated and relabelled figures


@pytest.fixture(scope="module")
def schemas() -> dict:
    from fastapi.testclient import TestClient

    from beatframe.api.app import create_app
    from beatframe.infra.settings import Settings

    # not entered, so no lifespan: serving the document needs no database
    document = TestClient(create_app(Settings())).get("/v1/openapi.json")
    document.raise_for_status()
    return document.json()["components"]["schemas"]


@pytest.mark.parametrize("schema, field, words", [
    ("GenerateAccepted", "estimated_time_seconds", ["estimate", "not a measurement", "catalog"]),
    ("BatchAccepted", "estimated_time_seconds", ["estimate", "not a measurement", "catalog"]),
    ("SceneEditAccepted", "estimated_time_seconds", ["estimate", "not a measurement"]),
    ("TaskStatus", "eta_seconds", ["estimate"]),
    ("TaskStatus", "elapsed_seconds", ["measured"]),
    ("TaskResult", "generation_time_seconds", ["measured"]),
    ("ModelChoice", "confidence", ["heuristic", "not a calibrated probability"]),
    ("ModelChoice", "complexity", ["heuristic"]),
    ("ModelChoice", "estimated_time_seconds", ["catalog heuristic", "not measured"]),
    ("ModelChoice", "vram_required_gb", ["catalog heuristic"]),
    ("ModelAlternative", "speed_factor", ["catalog heuristic", "not measured"]),
    ("DecoderStats", "acceptance_rate", ["relabel", "step-cache reuse", "not speculative decoding"]),
    ("DecoderStats", "speedup_factor", ["step-cache reuse", "not speculative decoding", "theoretical",
                                        "1 / (1 - r)", "not a measured speed-up"]),
    ("DecoderStats", "speedup_basis", ["measured", "theoretical"]),
    ("DecoderStats", "average_step_ms", ["measured"]),
    ("SceneEditCreate", "enable_character_consistency", ["seed", "palette"]),
])
def test_the_openapi_document_labels_estimates_heuristics_and_relabels(schemas, schema, field, words):
    description = schemas[schema]["properties"][field].get("description", "")
    for word in words:
        assert word in description, f"{schema}.{field}: {description!r} does not say {word!r}"


def test_the_decoder_speedup_is_measured_where_renders_alike_ran_with_and_without_the_cache():
    from beatframe.api.routes.genius.decoder import measured_speedup

    shape = {"render_size": [832, 480], "native_frames": 81, "batch_size": 1, "device": "cuda:0"}
    plain = {"model": "Wan2.1-T2V-1.3B-Diffusers", "stats": {**shape, "cache": None, "it_per_s": 1.0}}
    cached = {"model": "Wan2.1-T2V-1.3B-Diffusers", "stats": {**shape, "cache": "first-block", "it_per_s": 1.6,
                                                              "cache_reuse_rate": 0.5}}
    assert measured_speedup([plain, cached]) == 1.6  # step time 1 s without the cache, 0.625 s with it
    # a cached render with no uncached one of its shape measures nothing: the theoretical figure stands
    other = {**cached, "stats": {**cached["stats"], "render_size": [1280, 720]}}
    assert measured_speedup([cached, other]) is None
    assert measured_speedup([plain, cached, other]) == 1.6
