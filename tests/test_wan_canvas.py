"""Generative backends in the render flows: a tiny seeded random Wan model renders a Canvas end to
end through ``render_canvas`` on the CPU (judged by shared/tools/vidcheck.py), inside its device
slot; ``auto`` picks the CPU generator without a GPU; an out-of-memory render steps down.

Real servers: the session's Prefect test server (the device slot is a Prefect global concurrency
limit). The tiny models are built by tests/tiny_wan.py into a temporary BEATFRAME_MODELS_DIR.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beatframe.infra.errors import BadInputError
from beatframe.models.backend import parse_choice, resolve_backend

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]
VIDCHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "vidcheck.py"
#: A tiny frame budget (the footage is scaled up to the Canvas), and the reference API's fewest steps.
TINY = {"name": "wan-t2v", "steps": 10, "max_area": 48 * 80, "device": "cpu"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from beatframe.infra.settings import get_settings
    from tiny_wan import build_tiny_wan_models

    root = build_tiny_wan_models(tmp_path_factory.mktemp("models"))
    settings = get_settings()
    saved, settings.models_dir = settings.models_dir, root
    yield root
    settings.models_dir = saved


def test_a_tiny_wan_canvas_renders_through_the_flow_and_passes_the_judge(models_dir, song, tmp_path):
    from prefect import get_client

    from beatframe.flows.canvas import render_canvas

    from beatframe.infra.storage import get_store

    manifest = render_canvas(audio=str(song), out_dir=str(tmp_path), seconds=4.0, seed=3, previews="test/wan-previews",
                             generator=json.dumps({**TINY, "prompt": "w1 w2 w3", "steps": 12}))
    assert manifest["checks"]["spec_ok"] and manifest["checks"]["loop"]["seam_ratio"] <= 1.5
    generator = manifest["generator"]
    assert generator["name"] == "wan-t2v" and generator["model"] == "wan2.1-t2v-1.3b"
    assert generator["params"]["num_inference_steps"] == 12 and generator["params"]["prompt"].startswith("w1 w2 w3")
    assert generator["params"]["stats"]["steps"] == 12
    # draft then final: a 10-step draft preview was published before the final frame
    store = get_store()
    assert store.exists("test/wan-previews/draft.jpg") and store.exists("test/wan-previews/full.jpg")
    assert manifest["licensing"]["models"] == [{"model": "wan2.1-t2v-1.3b", "license": "Apache-2.0"}]
    assert [line["device"] for line in manifest["cost"]["lines"] if line["stage"] == "generate"] == ["cpu"]
    with get_client(sync_client=True) as client:  # rendered inside this host's device slot
        assert client.read_global_concurrency_limit_by_name(f"cpu:{socket.gethostname()}").limit == 1

    if not VIDCHECK.is_file() or shutil.which("ffprobe") is None:
        pytest.skip("the judge (shared/tools/vidcheck.py, with ffprobe) is not here")
    judged = subprocess.run([sys.executable, str(VIDCHECK), str(tmp_path / "canvas.mp4"), "--bpm",
                             str(manifest["analysis"]["bpm"])], capture_output=True, text=True, check=True)
    report = json.loads(judged.stdout)
    probe = report["probe"]
    assert (probe["width"], probe["height"], round(probe["fps"])) == (720, 1280, 30), probe
    assert report["loop"]["seam_ratio"] <= 1.5, report["loop"]
    assert report["flash"]["flash_safe"], report["flash"]


def test_auto_picks_the_cpu_generator_without_a_gpu(models_dir):
    backend = resolve_backend("auto", task="t2v", size=(720, 1280), seconds=4.0, models_dir=models_dir)
    assert backend["generator"] == "procedural" and "GPU" in backend["reason"]
    assert resolve_backend(None, task="i2v", size=(720, 1280), seconds=4.0, models_dir=models_dir / "none")[
        "generator"] == "cover-art"
    explicit = resolve_backend(TINY, task="t2v", size=(720, 1280), seconds=4.0, models_dir=models_dir)
    assert (explicit["generator"], explicit["model"], explicit["compute"]) == (
        "wan-t2v", "Wan2.1-T2V-1.3B-Diffusers", "cpu")


def test_batch_packing_options_reach_the_generator_but_not_the_cache_keys(models_dir):
    from beatframe.models.backend import frames_fields
    from beatframe.tasks.generate import make_generator

    plain = resolve_backend(TINY, task="t2v", size=(720, 1280), seconds=4.0, models_dir=models_dir)
    packed = resolve_backend({**TINY, "max_batch": 4, "vram_budget_gb": 20}, task="t2v", size=(720, 1280),
                             seconds=4.0, models_dir=models_dir)
    assert (packed["max_batch"], packed["vram_budget_gb"]) == (4, 20)
    assert frames_fields(packed) == frames_fields(plain)  # the same clips: the same cache entries
    options = make_generator(packed, None, template="neon-pulse", section="chorus", energy=0.8).options
    assert (options.max_batch, options.vram_budget_gb) == (4, 20)


@pytest.mark.parametrize("choice, says", [
    ("nope", "unknown generator 'nope'"), ('{"name": "wan-t2v", "steps": 5}', "steps must be within 10-150"),
    ('{"name": "wan-t2v", "max_batch": 9}', "max_batch must be within 1-8"),
    ('{"name": "wan-t2v", "vram_budget_gb": 0}', "vram_budget_gb must be within 0.5-1024"),
    ('{"name": "wan-t2v", "guidance_scale": 30}', "guidance_scale must be within 1-20"),
    ('{"name": "wan-t2v", "colour": "red"}', "unknown generator options ['colour']"), ("{nope", "not valid JSON"),
])
def test_bad_generator_choices_are_named(choice, says):
    with pytest.raises(BadInputError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_choice(choice)


def test_a_wan_generator_for_the_other_task_is_refused(models_dir):
    with pytest.raises(BadInputError, match="starts from an image"):
        resolve_backend("wan-i2v", task="t2v", size=(720, 1280), seconds=4.0, models_dir=models_dir)


def test_out_of_memory_steps_down_instead_of_retrying_the_same(models_dir, monkeypatch):
    import torch

    import beatframe.tasks.generate as generate
    from beatframe.models.wan_loader import WanOptions

    made = []

    class FakeWan:
        name, revision, params, stats = "wan-t2v", "1", {}, {}

        def __init__(self, options):
            self.options = options or WanOptions(device="auto", max_area=480 * 832)
            made.append(self.options)

        def close(self):
            pass

        def prompt_for(self, *, template):
            return "p"

    monkeypatch.setattr(generate, "make_generator", lambda backend, options=None, **make: FakeWan(options))
    calls = []

    def render(generator):
        calls.append(generator.options)
        if len(calls) < 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "frames"

    backend = resolve_backend(TINY, task="t2v", size=(720, 1280), seconds=4.0, models_dir=models_dir)
    result, record = generate._render_with_backend(backend, render, template="neon-pulse")
    assert result == "frames" and len(made) == 3
    assert made[1].offload and made[2].max_area < made[1].max_area  # offload first, then a smaller frame
    assert record["oom_steps"] == [{"offload": True, "max_area": made[1].max_area},
                                   {"offload": True, "max_area": made[2].max_area}]
