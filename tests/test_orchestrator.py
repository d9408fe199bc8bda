import json
import math
import sys
import types

import pytest

from beatframe.infra.errors import BadInputError
from beatframe.models.model_catalog import CATALOG, CPU_FALLBACK, MAX_OUTPUT_SIDE, RESOLUTIONS, get_model
from beatframe.models.orchestrator import (
    free_vram_gb,
    installed_models,
    score_prompt,
    select_model,
)

ALL = [spec.id for spec in CATALOG]
SIMPLE = "slow neon waves"
MODERATE = "A dancer spins in a neon tunnel while the camera slowly orbits around her"
COMPLEX = ("A knight and a dragon fight above a burning city; the camera tracks them in a low aerial shot, "
           "then cuts to a crowd cheering in the streets below")


# (free VRAM GB, resolution, seconds, prefer_quality, installed, task, prompt, max_vram_gb) -> model
CASES = [
    # no GPU: the CPU generator of the task
    (0.0, "720p", 7, True, ALL, "t2v", MODERATE, None, "procedural"),
    (0.0, "720p", 7, True, ALL, "i2v", MODERATE, None, "cover-art"),
    # too little memory for any Wan model (the 1.3B needs 8.2 GB offloaded)
    (4.0, "480p", 7, True, ALL, "t2v", SIMPLE, None, "procedural"),
    # a 10-12 GB card: only the 1.3B fits (offloaded)
    (10.0, "480p", 7, True, ALL, "t2v", SIMPLE, None, "wan2.1-t2v-1.3b"),
    # a 24 GB card: the 5B (offloaded) is the best picture; the 1.3B (resident) the fastest
    (24.0, "720p", 7, True, ALL, "t2v", MODERATE, None, "wan2.2-ti2v-5b"),
    (24.0, "720p", 7, False, ALL, "t2v", SIMPLE, None, "wan2.1-t2v-1.3b"),
    # speed first but a complex prompt: no rank-2 model fits, so the best that fits
    (24.0, "720p", 7, False, ALL, "t2v", COMPLEX, None, "wan2.2-ti2v-5b"),
    # a 40-48 GB card: the 2.1 14B offloaded
    (48.0, "720p", 7, True, ALL, "t2v", MODERATE, None, "wan2.1-t2v-14b"),
    # an 80 GB card: a 14B
    (80.0, "720p", 7, True, ALL, "t2v", MODERATE, None, "wan2.2-t2v-a14b"),
    (80.0, "1080p", 30, True, ALL, "t2v", COMPLEX, None, "wan2.2-t2v-a14b"),
    (80.0, "720p", 7, False, ALL, "t2v", COMPLEX, None, "wan2.1-t2v-14b"),
    (80.0, "480p", 7, False, ALL, "t2v", SIMPLE, None, "wan2.1-t2v-1.3b"),
    (80.0, "480p", 7, False, ALL, "t2v", MODERATE, None, "wan2.2-ti2v-5b"),
    # max_vram_gb caps the budget below what is free
    (80.0, "720p", 7, True, ALL, "t2v", MODERATE, 24.0, "wan2.2-ti2v-5b"),
    (80.0, "720p", 7, True, ALL, "t2v", MODERATE, 0.0, "procedural"),
    # only what is installed counts
    (80.0, "720p", 7, True, [], "t2v", MODERATE, None, "procedural"),
    (80.0, "720p", 7, True, ["wan2.1-t2v-1.3b"], "t2v", MODERATE, None, "wan2.1-t2v-1.3b"),
    (30.0, "720p", 7, True, ["wan2.1-t2v-14b"], "t2v", MODERATE, None, "procedural"),
    # image to video
    (80.0, "720p", 7, True, ALL, "i2v", MODERATE, None, "wan2.2-i2v-a14b"),
    (40.0, "720p", 7, True, ALL, "i2v", MODERATE, None, "wan2.1-i2v-14b-720p"),
    (40.0, "480p", 7, True, ALL, "i2v", MODERATE, None, "wan2.1-i2v-14b-480p"),
    (24.0, "720p", 7, True, ALL, "i2v", MODERATE, None, "wan2.2-ti2v-5b"),
    # 4k: generative models render 720p and are scaled; the CPU draws it directly
    (24.0, "4k", 7, True, ALL, "t2v", SIMPLE, None, "wan2.2-ti2v-5b"),
    (0.0, "4k", 7, True, ALL, "t2v", SIMPLE, None, "procedural"),
]


@pytest.mark.parametrize("free,resolution,seconds,prefer_quality,installed,task,prompt,cap,expected", CASES)
def test_selection_table(free, resolution, seconds, prefer_quality, installed, task, prompt, cap, expected):
    rec = select_model(prompt=prompt, duration_seconds=seconds, resolution=resolution, free_vram_gb=free,
                       max_vram_gb=cap, prefer_quality=prefer_quality, task=task, available=installed)
    assert rec.recommended_model == expected, rec.reason
    spec = get_model(expected)
    assert rec.generator == spec.generator_for(task)
    assert rec.vram_required_gb <= rec.vram_budget_gb or rec.vram_required_gb == 0.0
    assert rec.vram_required_gb == (spec.vram_offload_gb if rec.offload else spec.vram_gb)
    assert rec.fps == spec.fps
    assert rec.frames == math.ceil(seconds * spec.fps)
    assert rec.reason.startswith(expected)


def test_reasons_say_why_there_is_no_generative_model():
    no_gpu = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", free_vram_gb=0.0, available=ALL)
    assert "no usable GPU" in no_gpu.reason and no_gpu.alternatives == ()
    capped = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", free_vram_gb=40.0, max_vram_gb=0,
                          available=ALL)
    assert "cap is 0 GB" in capped.reason
    none_installed = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", free_vram_gb=80.0,
                                  available=["procedural"])
    assert "no t2v model is installed" in none_installed.reason
    assert "Wan2.1-T2V-1.3B-Diffusers" in none_installed.reason
    too_small = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", free_vram_gb=30.0,
                             available=["wan2.1-t2v-14b"])
    assert "less than the smallest installed t2v model needs" in too_small.reason
    assert "wan2.1-t2v-14b: 35 GB" in too_small.reason
    for rec in (no_gpu, capped, none_installed, too_small):
        assert rec.recommended_model == "procedural" and rec.vram_required_gb == 0.0
        assert "not from the prompt" in rec.reason


def test_as_reference_has_exactly_the_reference_shape():
    rec = select_model(prompt=COMPLEX, duration_seconds=10, resolution="1080p", free_vram_gb=80.0, available=ALL)
    ref = rec.as_reference()
    assert list(ref) == ["recommended_model", "complexity", "confidence", "estimated_time_seconds",
                         "vram_required_gb", "alternatives"]
    assert isinstance(ref["recommended_model"], str)
    assert ref["complexity"] in {"simple", "moderate", "complex"}
    assert isinstance(ref["confidence"], float) and 0.0 < ref["confidence"] < 1.0
    assert isinstance(ref["estimated_time_seconds"], int) and ref["estimated_time_seconds"] > 0
    assert isinstance(ref["vram_required_gb"], float)
    assert ref["alternatives"], "other models fit in 80 GB"
    for alt in ref["alternatives"]:
        assert list(alt) == ["model", "vram_gb", "speed_factor"]
        assert isinstance(alt["vram_gb"], float) and isinstance(alt["speed_factor"], float)
    assert ref["alternatives"][-1] == {"model": "procedural", "vram_gb": 0.0,
                                       "speed_factor": ref["alternatives"][-1]["speed_factor"]}
    assert ref["recommended_model"] not in [a["model"] for a in ref["alternatives"]]
    assert json.loads(json.dumps(ref)) == ref


def test_alternatives_speed_factor_is_relative_to_the_pick():
    rec = select_model(prompt=MODERATE, duration_seconds=7, resolution="720p", free_vram_gb=80.0, available=ALL)
    by_model = {a.model: a for a in rec.alternatives}
    # the 1.3B is much faster than the A14B; the CPU generator faster still
    assert by_model["wan2.1-t2v-1.3b"].speed_factor > 2
    assert by_model["procedural"].speed_factor > by_model["wan2.1-t2v-1.3b"].speed_factor


def test_time_grows_with_duration_and_clips_follow_max_frames():
    kw = dict(prompt=SIMPLE, resolution="480p", free_vram_gb=10.0, available=ALL)
    short = select_model(duration_seconds=5, **kw)
    long = select_model(duration_seconds=50, **kw)
    assert short.recommended_model == long.recommended_model == "wan2.1-t2v-1.3b"
    assert short.clips == 1 and short.frames == 80
    assert long.frames == 800 and long.clips == math.ceil(800 / 81)
    assert long.estimated_time_seconds == pytest.approx(10 * short.estimated_time_seconds, rel=0.01)
    assert long.confidence < short.confidence  # more clips to join


def test_offload_costs_time_and_upscaling_costs_confidence():
    resident = select_model(prompt=SIMPLE, duration_seconds=5, resolution="480p", free_vram_gb=20.0,
                            available=["wan2.1-t2v-1.3b"])
    offloaded = select_model(prompt=SIMPLE, duration_seconds=5, resolution="480p", free_vram_gb=10.0,
                             available=["wan2.1-t2v-1.3b"])
    assert not resident.offload and offloaded.offload
    assert offloaded.estimated_time_seconds > resident.estimated_time_seconds
    upscaled = select_model(prompt=SIMPLE, duration_seconds=5, resolution="1080p", free_vram_gb=20.0,
                            available=["wan2.1-t2v-1.3b"])
    assert upscaled.upscale == pytest.approx(1080 / 480)
    assert upscaled.confidence < resident.confidence
    assert upscaled.render_size == (832, 480)


def test_cpu_fallback_renders_at_the_target_size():
    rec = select_model(prompt=SIMPLE, duration_seconds=4, resolution="4k", free_vram_gb=0.0, available=ALL)
    assert rec.render_size == RESOLUTIONS["4k"] and rec.upscale == 1.0
    assert rec.fps == 30 and rec.frames == 120
    small = select_model(prompt=SIMPLE, duration_seconds=4, resolution="720p", free_vram_gb=0.0, available=ALL)
    assert rec.estimated_time_seconds > small.estimated_time_seconds


def test_8k_is_refused_clearly():
    # 7680 px is more than any generator delivers (MAX_OUTPUT_SIDE): a clear BadInputError, not a silent downgrade
    with pytest.raises(BadInputError, match=r"8k \(7680x4320\).*4096 px"):
        select_model(prompt=SIMPLE, duration_seconds=4, resolution="8k", free_vram_gb=80.0, available=ALL)


@pytest.mark.parametrize("kwargs,match", [
    (dict(resolution="900p"), "resolution must be one of"),
    (dict(resolution=720), "resolution must be one of"),
    (dict(duration_seconds=0), "duration_seconds"),
    (dict(duration_seconds=-3), "duration_seconds"),
    (dict(duration_seconds=float("nan")), "duration_seconds"),
    (dict(duration_seconds="5"), "duration_seconds"),
    (dict(prompt=""), "prompt"),
    (dict(prompt="   \n"), "prompt"),
    (dict(task="v2v"), "task"),
    (dict(free_vram_gb=-1.0), "free_vram_gb"),
    (dict(max_vram_gb=float("inf")), "max_vram_gb"),
    (dict(available=["wan9-t2v"]), "unknown model"),
])
def test_bad_input_is_loud(kwargs, match):
    args = dict(prompt=SIMPLE, duration_seconds=5, resolution="720p", free_vram_gb=24.0, available=ALL)
    args.update(kwargs)
    with pytest.raises(BadInputError, match=match):
        select_model(**args)


def test_resolution_names_are_case_insensitive():
    rec = select_model(prompt=SIMPLE, duration_seconds=5, resolution=" 4K ", free_vram_gb=0.0, available=ALL)
    assert rec.render_size == (3840, 2160)


@pytest.mark.parametrize("prompt,expected", [
    ("neon tunnel", "simple"),
    (SIMPLE, "simple"),
    ("warm gradient waves, purple dusk to orange and gold", "simple"),
    ("a cat and a dog", "simple"),
    ("A cat chases a dog around the kitchen", "moderate"),
    (MODERATE, "moderate"),
    ("Taylor walks through Tokyo at night", "simple"),
    ("Taylor and Selena dance through Tokyo at night", "moderate"),
    ("Complex cinematic scene with multiple characters", "moderate"),
    (COMPLEX, "complex"),
    ("A car chase through the desert. Then a helicopter flies over the canyon.", "complex"),
    ("two astronauts float past a spaceship while the camera pans, followed by a slow-motion explosion "
     "that fills the frame with light", "complex"),
])
def test_prompt_complexity(prompt, expected):
    assert score_prompt(prompt).complexity == expected


def test_prompt_score_counts():
    score = score_prompt(COMPLEX)
    assert score.scenes == 3  # ";" and "then cuts to" (one break, not two)
    assert score.subjects >= 3  # knight, dragon, a crowd
    assert score.movements >= 2
    assert score_prompt("two cats").subjects == 2
    assert score_prompt("a crowd").subjects == 3
    assert score_prompt("multiple characters").subjects == 3
    assert score_prompt("Meet Alice in Paris").subjects == 2  # proper nouns, not the sentence's first word


def test_complexity_changes_the_speed_first_pick():
    picks = {c: select_model(prompt=p, duration_seconds=7, resolution="720p", free_vram_gb=80.0,
                             prefer_quality=False, available=ALL).recommended_model
             for c, p in (("simple", SIMPLE), ("moderate", MODERATE), ("complex", COMPLEX))}
    ranks = {c: get_model(m).quality_rank for c, m in picks.items()}
    assert ranks["simple"] >= ranks["moderate"] >= ranks["complex"]
    assert ranks["simple"] > ranks["complex"]


# -- free VRAM --------------------------------------------------------------------------------

def test_free_vram_is_zero_without_cuda():
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert free_vram_gb() == 0.0


def _fake_torch(available: bool, free_bytes: int = 0):
    cuda = types.SimpleNamespace(is_available=lambda: available,
                                 mem_get_info=lambda: (free_bytes, 85_000_000_000))
    return types.SimpleNamespace(cuda=cuda)


def test_free_vram_reads_cuda_in_decimal_gb(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(True, 25_300_000_000))
    assert free_vram_gb() == pytest.approx(25.3)
    rec = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", available=ALL)  # measured
    assert rec.vram_budget_gb == pytest.approx(25.3)
    assert rec.recommended_model == "wan2.2-ti2v-5b"
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(False))
    assert free_vram_gb() == 0.0


def test_free_vram_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" raises ImportError
    assert free_vram_gb() == 0.0
    rec = select_model(prompt=SIMPLE, duration_seconds=5, resolution="720p", available=ALL)
    assert rec.recommended_model == "procedural" and "no usable GPU" in rec.reason


# -- installed weights --------------------------------------------------------------------------

def _install(root, folder):
    (root / folder).mkdir(parents=True)
    (root / folder / "model_index.json").write_text("{}")


def test_installed_models_finds_diffusers_folders(tmp_path):
    _install(tmp_path, "Wan2.1-T2V-1.3B-Diffusers")
    (tmp_path / "Wan2.1-T2V-14B-Diffusers").mkdir()  # empty: a download that never happened
    assert installed_models(tmp_path) == ["wan2.1-t2v-1.3b", "procedural", "cover-art"]
    assert installed_models(None) == ["procedural", "cover-art"]
    assert installed_models(tmp_path / "missing") == ["procedural", "cover-art"]


def test_the_installed_models_are_the_candidates(tmp_path):
    kw = dict(prompt=SIMPLE, duration_seconds=5, resolution="480p", free_vram_gb=10.0)
    rec = select_model(**kw, available=installed_models(tmp_path))
    assert rec.recommended_model == "procedural" and "no t2v model is installed" in rec.reason
    _install(tmp_path, "Wan2.1-T2V-1.3B-Diffusers")
    assert select_model(**kw, available=installed_models(tmp_path)).recommended_model == "wan2.1-t2v-1.3b"


# -- the catalog ---------------------------------------------------------------------------------

def test_catalog_is_consistent():
    from beatframe.models.procedural import MAX_SIDE
    from beatframe.models.registry import GENERATORS

    assert MAX_OUTPUT_SIDE == MAX_SIDE
    assert len({s.id for s in CATALOG}) == len(CATALOG)
    for spec in CATALOG:
        assert spec.license == "Apache-2.0"
        assert set(spec.tasks) <= {"t2v", "i2v"} and {t for t, _ in spec.generators} == set(spec.tasks)
        assert [m.height for m in spec.modes] == sorted(m.height for m in spec.modes)
        assert all(m.resolution in RESOLUTIONS and m.seconds_per_frame > 0 for m in spec.modes)
        assert spec.relative_speed > 0
        if spec.is_gpu:
            assert spec.folder.endswith("-Diffusers") and spec.hub_repo == f"Wan-AI/{spec.folder}"
            assert 0 < spec.vram_offload_gb <= spec.vram_gb
            assert spec.max_frames in (81, 121)
            assert spec.fps == (24 if spec.id == "wan2.2-ti2v-5b" else 16)
            assert all(name in ("wan-t2v", "wan-i2v") for _, name in spec.generators)
        else:
            assert spec.folder is None and spec.vram_gb == 0.0 and spec.fps == 30
            assert all(name in GENERATORS for _, name in spec.generators)
    assert set(CPU_FALLBACK.values()) == {s.id for s in CATALOG if not s.is_gpu}
    assert get_model("wan2.1-t2v-1.3b").relative_speed > get_model("wan2.1-t2v-14b").relative_speed
    with pytest.raises(BadInputError, match="unknown model"):
        get_model("sora")
    with pytest.raises(BadInputError, match="does not do"):
        get_model("wan2.1-t2v-14b").generator_for("i2v")
