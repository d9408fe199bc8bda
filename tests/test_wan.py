"""The Wan generators (beatframe.models.wan, beatframe.models.wan_loader) on tiny seeded random models, on the CPU.

The tiny pipelines are built by :func:`tiny_wan.build_tiny_wan_models` the way diffusers' own
Wan tests build theirs (a 2-layer WanTransformer3DModel, a 3-channel AutoencoderKLWan, a 1-layer
UMT5 encoder from a config, a word-level tokenizer made offline with the ``tokenizers`` library, a
tiny CLIP vision encoder), saved with ``save_pretrained`` into a models folder, and loaded back
through our loader: nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from beatframe.infra.errors import BadInputError  # noqa: E402
from beatframe.models.motion import grid_timeline  # noqa: E402
from beatframe.models.registry import get_generator  # noqa: E402
from beatframe.models.wan import WanGenerator, plan_retime  # noqa: E402
from beatframe.models.wan_loader import (  # noqa: E402
    DEFAULT_MODELS,
    WanOptions,
    check_model_folder,
    is_out_of_memory,
    load_pipeline,
    oom_step_down,
    render_size,
    resolve_model_folder,
)
from tiny_wan import build_tiny_wan_models  # noqa: E402

VIDCHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "vidcheck.py"
TINY = dict(num_inference_steps=2, min_steps=1, max_sequence_length=16,
            options=WanOptions(device="cpu", max_area=32 * 32))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A BEATFRAME_MODELS_DIR with ``tiny-t2v`` (WanPipeline) and ``tiny-i2v``
    (WanImageToVideoPipeline) folders of tiny random weights."""
    root = build_tiny_wan_models(tmp_path_factory.mktemp("models"))
    for kind in ("t2v", "i2v"):
        (root / DEFAULT_MODELS[kind]).rename(root / f"tiny-{kind}")
    return root


@pytest.fixture(scope="module")
def cover(tmp_path_factory) -> Path:
    """A 320x320 test picture (cover images must be at least 300 px a side)."""
    yy, xx = np.mgrid[0:320, 0:320]
    img = np.stack([(xx * 255 // 319), (yy * 255 // 319), ((xx + yy) * 255 // 638)], -1)
    img = np.ascontiguousarray(img, dtype=np.uint8)
    cv2.circle(img, (160, 160), 80, (250, 240, 40), -1)
    path = tmp_path_factory.mktemp("cover") / "cover.png"
    cv2.imwrite(str(path), img[..., ::-1])
    return path


def _t2v(models_dir, **kwargs) -> WanGenerator:
    args = dict(model="tiny-t2v", models_dir=models_dir, prompt="w1 w2 w3", negative_prompt="w4",
                **TINY)
    return WanGenerator(kind="t2v", **{**args, **kwargs})


def _render(gen, timeline, size=(32, 32), seed=0, cut=False) -> np.ndarray:
    return np.stack(list(gen.render(timeline=timeline, template="neon-pulse", size=size,
                                    seed=seed, cut_on_downbeats=cut)))


# ------------------------------------------------------------------------------- rendering
def test_t2v_frames_shapes_counts_and_stats(models_dir):
    gen = _t2v(models_dir)
    tl = grid_timeline(bpm=120, bars=1, periodic=False)  # 2 s: 60 frames at 30 fps
    frames = _render(gen, tl, size=(32, 48))
    assert frames.shape == (60, 48, 32, 3) and frames.dtype == np.uint8
    s = gen.stats
    # 2 s at 16 fps: 33 native frames (k*4+1), rendered at the output's aspect within 32x32 px
    assert s["native_frames"] == 33 and s["native_fps"] == 16
    assert s["render_size"] == [16, 32]
    assert s["steps"] == 2 and s["it_per_s"] > 0 and s["generate_seconds"] > 0
    assert s["device"] == "cpu" and s["dtype"] == "float32" and s["attention"] == "sdpa"
    assert s["cache"] is None and s["cache_reuse_rate"] is None
    assert s["seconds"] >= s["generate_seconds"]
    assert gen.name == "wan-t2v" and gen.params["model"] == "tiny-t2v"


def test_same_seed_same_frames(models_dir):
    gen = _t2v(models_dir)
    tl = grid_timeline(bpm=120, bars=1)
    a, b = _render(gen, tl, seed=7), _render(gen, tl, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _render(gen, tl, seed=8))


def test_long_clips_play_the_footage_slower(models_dir):
    gen = _t2v(models_dir, max_native_frames=9)
    tl = grid_timeline(bpm=120, bars=1, periodic=False)
    assert len(_render(gen, tl)) == 60
    assert gen.stats["native_frames"] == 9 and gen.stats["native_fps"] == pytest.approx(4.0)


def test_i2v_starts_from_the_image(models_dir, cover, tmp_path):
    gen = get_generator("wan-i2v", image_path=cover, model="tiny-i2v", models_dir=models_dir,
                        prompt="w5", **TINY)
    assert gen.name == "wan-i2v" and gen.params["image_sha256"]
    tl = grid_timeline(bpm=120, bars=1, periodic=False)
    frames = _render(gen, tl)
    assert frames.shape == (60, 32, 32, 3)
    flipped = tmp_path / "flipped.png"
    cv2.imwrite(str(flipped), cv2.imread(str(cover))[:, ::-1])
    other = get_generator("wan-i2v", image_path=flipped, model="tiny-i2v",
                          models_dir=models_dir, prompt="w5", **TINY)
    assert not np.array_equal(frames, _render(other, tl))


def test_cut_on_downbeats_changes_the_framing(models_dir):
    gen = _t2v(models_dir)
    tl = grid_timeline(bpm=120, bars=2)
    plain, cut = _render(gen, tl), _render(gen, tl, cut=True)
    assert plain.shape == cut.shape
    j = int(round(tl.downbeats[1] * tl.fps))  # the second bar starts at frame j + 1
    assert np.array_equal(plain[j - 3], cut[j - 3])  # first shot: the plain framing
    assert not np.array_equal(plain[j + 3], cut[j + 3])


# -------------------------------------------------------------------------- music and loop
def _vidcheck():
    if not VIDCHECK.is_file():
        pytest.skip(f"the judge {VIDCHECK} is not available")
    spec = importlib.util.spec_from_file_location("vidcheck", VIDCHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _judge(vidcheck, path: Path, timeline) -> tuple[dict, dict, dict]:
    grey, _ = vidcheck.frames(str(path))
    assert len(grey) == timeline.n_frames
    seam, diffs = vidcheck.loop_seam(grey, timeline.fps)
    beats = vidcheck.beat_alignment(diffs, timeline.fps, list(timeline.beats), 0.0,
                                    timeline.duration)
    return seam, beats, vidcheck.tempo_lock(diffs, timeline.fps, timeline.bpm)


def test_loop_seam_passes_the_judge(models_dir, tmp_path):
    from beatframe.music.canvas import render_loop_clip

    vidcheck = _vidcheck()
    tl = grid_timeline(bpm=120, bars=2, offset=0.1)  # 4 s, starting 0.1 s before a downbeat
    out = tmp_path / "loop.mp4"
    render_loop_clip(generator=_t2v(models_dir), timeline=tl, template="neon-pulse",
                     size=(64, 64), seed=3, loop_mode="continuous", out_path=out)
    seam, _, _ = _judge(vidcheck, out, tl)
    assert seam["seam_ratio"] <= 1.5, seam


def test_beat_accents_on_moving_footage_pass_the_judge(models_dir, tmp_path, monkeypatch):
    """A random tiny model's footage flickers like noise; a real model's moves coherently. With
    coherent stand-in footage (a drifting texture) the judge sees the accents on the beats."""
    from beatframe.music.canvas import render_loop_clip

    vidcheck = _vidcheck()
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur((rng.random((256, 512, 3)) * 255).astype(np.uint8), (0, 0), 4)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)

    def drifting(*, width, height, num_frames, seed, prompt):
        return np.stack([cv2.warpAffine(texture, np.float32([[1, 0, -20 - 2 * k],
                                                              [0, 1, -40 - k / 2]]),
                                        (width, height)) for k in range(num_frames)])

    gen = _t2v(models_dir, options=WanOptions(device="cpu", max_area=64 * 64))
    monkeypatch.setattr(gen, "generate_native", drifting)
    tl = grid_timeline(bpm=120, bars=2, offset=0.1)
    out = tmp_path / "canvas.mp4"
    render_loop_clip(generator=gen, timeline=tl, template="neon-pulse", size=(72, 128), seed=3,
                     loop_mode="continuous", out_path=out)
    seam, beats, tempo = _judge(vidcheck, out, tl)
    assert seam["seam_ratio"] <= 1.5, seam
    assert beats["beat_f"] >= 0.9, beats
    assert tempo["locked"], tempo


def test_plan_retime_closes_the_loop():
    tl = grid_timeline(bpm=120, bars=2)  # 4 s, 120 frames; one beat = 0.5 s
    plan = plan_retime(timeline=tl)
    assert plan.native_frames == 73  # 4.5 s at 16 fps, k*4+1
    assert plan.positions[0] == pytest.approx(8.0)  # the loop shows the footage from one beat on
    assert np.all(np.diff(plan.positions) > 0)
    tail = plan.weight > 0
    assert tail.sum() == 14 and tail[-14:].all()  # the last beat (15 frames) morphs ...
    # ... into the footage's first beat, reaching the first frame's footage one frame later
    step = 16 / 30
    assert plan.partner[-1] + step == pytest.approx(plan.positions[0])
    assert plan.weight[-1] + 1 / 15 == pytest.approx(1.0)
    one_shot = plan_retime(timeline=grid_timeline(bpm=120, bars=2, periodic=False))
    assert one_shot.native_frames == 65 and one_shot.positions[0] == 0.0
    assert not (one_shot.weight > 0).any()


# ---------------------------------------------------------------------- acceleration hooks
@pytest.mark.parametrize("cache", ["first-block", "pyramid"])
def test_step_cache_reports_its_reuse(models_dir, cache):
    gen = _t2v(models_dir, num_inference_steps=6,
               options=WanOptions(device="cpu", max_area=32 * 32, cache=cache, cache_threshold=0.3))
    frames = _render(gen, grid_timeline(bpm=120, bars=1))
    assert frames.shape == (60, 32, 32, 3)
    assert gen.stats["cache"] == cache
    assert 0.0 < gen.stats["cache_reuse_rate"] < 1.0


def test_vae_tiling_option(models_dir):
    loaded = load_pipeline(folder=models_dir / "tiny-t2v", kind="t2v",
                           options=WanOptions(device="cpu", vae_tiling=True))
    assert loaded.pipe.vae.use_tiling
    assert loaded.size_multiple == 16 and loaded.frames_multiple == 4


def test_pipelines_are_shared_and_released(models_dir):
    a = _t2v(models_dir)
    b = _t2v(models_dir, options=WanOptions(device="cpu", max_area=64 * 64))
    assert a.pipeline() is b.pipeline()  # the pixel budget does not change the weights
    first = a.pipeline()
    a.close()
    assert first.pipe is None  # b's handle is stale too: it reloads on next use
    assert b.pipeline() is not first and b.pipeline().pipe is not None
    assert len(_render(a, grid_timeline(bpm=120, bars=1))) == 60


# ------------------------------------------------------------------------- loading offline
def test_loading_never_touches_the_network(models_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for kind in ("t2v", "i2v"):
        loaded = load_pipeline(folder=models_dir / f"tiny-{kind}", kind=kind,
                               options=WanOptions(device="cpu"))
        assert loaded.device.type == "cpu" and loaded.dtype == torch.float32


def test_models_dir_comes_from_the_environment_through_the_generate_task(models_dir, monkeypatch):
    from beatframe.infra.settings import get_settings
    from beatframe.models.backend import resolve_backend
    from beatframe.tasks.generate import make_generator

    backend = resolve_backend({"name": "wan-t2v", "model": "tiny-t2v", "device": "cpu"}, task="t2v", size=(32, 32),
                              seconds=1.0, models_dir=models_dir)
    clip = dict(template="neon-pulse", section="chorus", energy=0.5)
    monkeypatch.setenv("BEATFRAME_MODELS_DIR", str(models_dir))
    get_settings.cache_clear()
    try:
        assert make_generator(backend, None, **clip).folder == models_dir / "tiny-t2v"
        monkeypatch.delenv("BEATFRAME_MODELS_DIR")
        get_settings.cache_clear()
        with pytest.raises(BadInputError, match="BEATFRAME_MODELS_DIR is not set"):
            make_generator(backend, None, **clip)
        with pytest.raises(BadInputError, match="BEATFRAME_MODELS_DIR is not set"):
            get_generator("wan-t2v", model="tiny-t2v", **TINY)  # the models never read it themselves
    finally:
        get_settings.cache_clear()


def test_missing_or_incomplete_model_folders_are_named(models_dir, tmp_path):
    with pytest.raises(BadInputError, match=r"nope does not exist"):
        _t2v(models_dir, model="nope")
    with pytest.raises(BadInputError, match="no absolute paths"):
        resolve_model_folder(model="../tiny-t2v", models_dir=models_dir)
    with pytest.raises(BadInputError, match="no absolute paths"):
        resolve_model_folder(model=str(models_dir / "tiny-t2v"), models_dir=models_dir)
    with pytest.raises(BadInputError, match="not the WanImageToVideoPipeline"):
        check_model_folder(folder=models_dir / "tiny-t2v", kind="i2v")

    broken = tmp_path / "broken"
    shutil.copytree(models_dir / "tiny-t2v", broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(BadInputError) as err:
        check_model_folder(folder=broken, kind="t2v")
    msg = str(err.value)
    assert str(broken) in msg and "tokenizer/" in msg and "transformer/ weights" in msg

    # a sharded checkpoint with a shard missing (a half-finished copy)
    (broken / "tokenizer").mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(models_dir / "tiny-t2v" / "tokenizer" / f, broken / "tokenizer" / f)
    (broken / "transformer" / "diffusion_pytorch_model-00001-of-00002.safetensors").write_bytes(b"")
    (broken / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
                        "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}}))
    with pytest.raises(BadInputError, match="00002-of-00002.safetensors"):
        check_model_folder(folder=broken, kind="t2v")

    (broken / "model_index.json").unlink()
    with pytest.raises(BadInputError, match="model_index.json is missing"):
        check_model_folder(folder=broken, kind="t2v")


def test_bad_parameters_are_refused(models_dir, cover):
    with pytest.raises(BadInputError, match="guidance_scale"):
        _t2v(models_dir, guidance_scale=25)
    with pytest.raises(BadInputError, match="num_inference_steps"):
        WanGenerator(kind="t2v", model="tiny-t2v", models_dir=models_dir, num_inference_steps=5)
    with pytest.raises(BadInputError, match="num_inference_steps"):
        _t2v(models_dir, num_inference_steps=151)
    with pytest.raises(BadInputError, match="prompt is empty"):
        _t2v(models_dir, prompt="  ")
    with pytest.raises(BadInputError, match="needs an image"):
        get_generator("wan-i2v", model="tiny-i2v", models_dir=models_dir)
    with pytest.raises(BadInputError, match="takes no image"):
        _t2v(models_dir, image_path=cover)
    with pytest.raises(BadInputError, match="seed"):
        _render(_t2v(models_dir), grid_timeline(bpm=120, bars=1), seed=-1)
    with pytest.raises(ValueError, match="xformers"):
        load_pipeline(folder=models_dir / "tiny-t2v", kind="t2v",
                      options=WanOptions(device="cpu", attention="xformers"))
    with pytest.raises(ValueError, match="offload"):
        WanOptions(device="cpu", offload=True)
    with pytest.raises(ValueError, match="cache"):
        WanOptions(cache="teacache")


def test_template_prompt_by_default(models_dir):
    gen = WanGenerator(kind="t2v", model="tiny-t2v", models_dir=models_dir, **TINY)
    assert gen.prompt_for(template="neon-pulse").startswith("A neon tunnel in magenta and cyan")


# ---------------------------------------------------------------------------- out of memory
def test_oom_steps_down_offload_then_resolution():
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_out_of_memory(error=oom)
    assert is_out_of_memory(error=RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(error=ValueError("out of memory"))
    opts = WanOptions(device="cuda", max_area=480 * 832)
    first = oom_step_down(error=oom, options=opts)
    assert first.offload and first.vae_tiling and first.max_area == opts.max_area
    second = oom_step_down(error=oom, options=first)
    assert second.offload and second.max_area == opts.max_area // 2
    areas = [second.max_area]
    while (nxt := oom_step_down(error=oom, options=WanOptions(
            device="cuda", offload=True, vae_tiling=True, max_area=areas[-1]))) is not None:
        areas.append(nxt.max_area)
    assert areas[-1] >= 128 * 128 and areas[-1] // 2 < 128 * 128
    with pytest.raises(ValueError, match="not an out-of-memory error"):
        oom_step_down(error=KeyError("x"), options=opts)


def test_render_size_keeps_the_aspect_within_the_budget():
    assert render_size(size=(720, 1280), max_area=480 * 832, multiple=16) == (464, 832)
    assert render_size(size=(1920, 1080), max_area=480 * 832, multiple=16) == (832, 464)
    assert render_size(size=(32, 32), max_area=32 * 32, multiple=16) == (32, 32)
    w, h = render_size(size=(1080, 1080), max_area=480 * 832 // 2, multiple=16)
    assert w == h and w % 16 == 0 and w * h <= 480 * 832 // 2
