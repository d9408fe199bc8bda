"""Video-to-video transforms (beatframe.models.v2v): each mode changes a synthesized clip the way it says."""

from __future__ import annotations

import functools
import socket

import cv2
import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.models.interpolation import optical_flow
from beatframe.models.v2v import DEFAULT_IMG2IMG_MODEL, MODES, PALETTES, transform
from tiny_sd import build_tiny_sd, build_tiny_upscaler


def _texture(h: int, w: int, *, seed: int = 0, tint=(1.0, 1.0, 1.0), edges: bool = True
             ) -> np.ndarray:
    """A colourful random texture with a few hard-edged shapes on it."""
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 2.0) + 0.5 * cv2.GaussianBlur(img, (0, 0), 0.8)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    if edges:
        for _ in range(6):
            x, y = rng.integers(0, w - 20), rng.integers(0, h - 20)
            colour = tuple(float(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(img, (int(x), int(y)), (int(x) + 18, int(y) + 12), colour, -1)
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), 7, colour, 2)
    return np.clip(img * np.float32(tint), 0, 255).astype(np.uint8)


def _pan(tex: np.ndarray, n: int, *, dx: float, dy: float = 0.0, size=(96, 128)) -> list:
    """``n`` frames of a window on ``tex`` whose content moves ``dx``, ``dy`` px per frame."""
    h, w = size
    cy, cx = (tex.shape[0] - h) / 2, (tex.shape[1] - w) / 2
    return [cv2.warpAffine(tex, np.float32([[1, 0, i * dx - cx], [0, 1, i * dy - cy]]), (w, h),
                           flags=cv2.INTER_LINEAR) for i in range(n)]


def _median_flow(frames) -> np.ndarray:
    """Median content motion (dx, dy) per frame over the middle of the clip's frames."""
    moves = []
    for a, b in zip(frames[:-1], frames[1:]):
        f = optical_flow(source=a, target=b)
        moves.append(np.median(f[16:-16, 16:-16].reshape(-1, 2), axis=0))
    return np.median(moves, axis=0)


def _lab_stats(frames) -> np.ndarray:
    lab = np.concatenate([cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3)
                          for f in frames])
    return np.concatenate([lab.mean(axis=0), lab.std(axis=0)])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


@pytest.fixture(scope="module")
def clip() -> list:
    return _pan(_texture(160, 200, seed=1, tint=(0.6, 0.8, 1.0)), 8, dx=2.0)


def test_style_transfer_moves_colours_to_the_reference(clip):
    ref = _texture(120, 120, seed=7, tint=(1.0, 0.55, 0.2))
    target = _lab_stats([ref])
    before = np.linalg.norm(_lab_stats(clip) - target)
    for strength, most in ((1.0, 0.15), (0.7, 0.45)):
        out, info = transform(clip, mode="style_transfer", reference_image=ref, strength=strength)
        assert len(out) == len(clip) and out[0].shape == clip[0].shape
        after = np.linalg.norm(_lab_stats(out) - target)
        print(f"style strength {strength}: Lab stats distance {before:.1f} -> {after:.1f}")
        assert after < most * before
    assert info["backend"] == "opencv" and info["mode"] == "style_transfer"
    # the motion of the source is kept
    assert _median_flow(out)[0] == pytest.approx(2.0, abs=0.5)


def test_motion_transfer_gives_the_source_the_reference_pan():
    still = [_texture(96, 128, seed=3)] * 8
    reference = _pan(_texture(200, 260, seed=4), 8, dx=-3.0, dy=1.0, size=(150, 200))
    out, info = transform(still, mode="motion_transfer", reference_frames=reference, strength=1.0)
    # the reference's 200 px wide frames pan -3 px a frame: -3 * 128 / 200 on the source
    want = np.array([-3.0 * 128 / 200, 1.0 * 96 / 150])
    got = _median_flow(out)
    print(f"motion transfer: reference pan {want.round(2)}, output pan {got.round(2)}, "
          f"zoom {info['details']['zoom']}")
    assert got == pytest.approx(want, abs=0.3)
    assert 1.0 < info["details"]["zoom"] <= 1.5
    # the source's own pan is kept on top, or replaced
    moving = _pan(_texture(160, 200, seed=3), 8, dx=0.0, dy=2.0)
    kept, info = transform(moving, mode="motion_transfer", reference_frames=reference,
                           strength=1.0)
    replaced, _ = transform(moving, mode="motion_transfer", reference_frames=reference,
                            strength=1.0, preserve_motion=False)
    # the zoom that hides the borders enlarges the source's own motion with everything else
    zoom = info["details"]["zoom"]
    assert _median_flow(kept) == pytest.approx(want + [0.0, 2.0 * zoom], abs=0.3)
    assert _median_flow(replaced) == pytest.approx(want, abs=0.3)


def test_enhancement_sharpens_without_raising_noise():
    rng = np.random.default_rng(0)
    clean = _texture(96, 128, seed=5)
    clean = cv2.GaussianBlur(clean, (0, 0), 1.2)
    clean = (clean.astype(np.float32) * 0.4 + 80).astype(np.float32)   # soft and flat
    clean[:, 80:] = 120.0                                               # a flat area
    frames = [np.clip(clean + rng.normal(0, 5, clean.shape), 0, 255).astype(np.uint8)
              for _ in range(4)]
    out, info = transform(frames, mode="enhancement", strength=1.0, temporal_consistency=0.0)

    def local_contrast(img):
        g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1)
        mean = cv2.blur(g, (7, 7))
        return float(np.sqrt(np.maximum(cv2.blur(g * g, (7, 7)) - mean ** 2, 0))[8:-8, 8:72].mean())

    def noise(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)[8:-8, 88:-8]
        return float((g - cv2.GaussianBlur(g, (0, 0), 3)).std())

    c_in = np.mean([local_contrast(f) for f in frames])
    c_out = np.mean([local_contrast(f) for f in out])
    n_in, n_out = np.mean([noise(f) for f in frames]), np.mean([noise(f) for f in out])
    print(f"enhancement: local contrast {c_in:.2f} -> {c_out:.2f}, flat-area noise "
          f"{n_in:.2f} -> {n_out:.2f}, estimated sigma {info['details']['noise_sigma']}")
    assert c_out > 1.3 * c_in
    assert n_out < n_in
    assert info["details"]["noise_sigma"] == pytest.approx(5.0, rel=0.3)


def test_upscale_doubles_and_beats_bicubic():
    truth = [f for f in _pan(_texture(240, 300, seed=6), 3, dx=1.5, size=(192, 256))]
    low = [cv2.resize(f, (128, 96), interpolation=cv2.INTER_AREA) for f in truth]
    out, info = transform(low, mode="upscale", strength=1.0)
    assert info["size_out"] == [256, 192] and out[0].shape == truth[0].shape
    ours = np.mean([_psnr(o, t) for o, t in zip(out, truth)])
    bicubic = np.mean([_psnr(cv2.resize(f, (256, 192), interpolation=cv2.INTER_CUBIC), t)
                       for f, t in zip(low, truth)])
    print(f"upscale PSNR: ours {ours:.2f} dB, bicubic {bicubic:.2f} dB")
    assert ours > bicubic + 0.5


def _object_clip(n: int) -> list:
    """A textured disc crossing a textured background, 3 px per frame."""
    bg, obj = _texture(96, 128, seed=8, edges=False), _texture(40, 40, seed=9)
    mask = np.zeros((40, 40), np.float32)
    cv2.circle(mask, (20, 20), 16, 1.0, -1)
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, 10 + 3.0 * i], [0, 1, 28 + 1.0 * i]])
        layer = cv2.warpAffine(obj, m, (128, 96), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, m, (128, 96), flags=cv2.INTER_LINEAR)[..., None]
        frames.append((bg * (1 - alpha) + layer * alpha).astype(np.uint8))
    return frames


def test_interpolation_doubles_the_rate_with_true_in_betweens():
    truth = _object_clip(16)
    source = truth[::2]
    fade = np.mean([_mse(cv2.addWeighted(source[k], 0.5, source[k + 1], 0.5, 0),
                         truth[2 * k + 1]) for k in range(len(source) - 1)])
    for tc in (0.0, 0.8):
        out, info = transform(source, mode="interpolation", strength=1.0, fps=15,
                              temporal_consistency=tc)
        assert len(out) == 2 * len(source) and info["fps"] == 30.0
        if tc == 0.0:
            assert all(np.array_equal(out[2 * k], source[k]) for k in range(len(source)))
        ours = np.mean([_mse(out[2 * k + 1], truth[2 * k + 1]) for k in range(len(source) - 1)])
        print(f"interpolation MSE (temporal_consistency {tc}): flow {ours:.1f}, "
              f"cross-fade {fade:.1f}")
        assert ours < 0.5 * fade


def test_colorization_adds_colour_and_keeps_lightness():
    grey = [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            for f in _pan(_texture(160, 200, seed=2), 4, dx=1.0)]
    ref = _texture(80, 80, seed=7, tint=(0.3, 0.7, 1.0))
    for kwargs in ({}, {"palette": "sunset"}, {"reference_image": ref}):
        out, info = transform(grey, mode="colorization", strength=1.0, **kwargs)
        lab_in = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2Lab) for f in grey]).astype(np.float32)
        lab_out = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2Lab) for f in out]).astype(np.float32)
        chroma = np.hypot(lab_out[..., 1] - 128, lab_out[..., 2] - 128).mean()
        dl = np.abs(lab_out[..., 0] - lab_in[..., 0])
        print(f"colorization {info['details']['palette']}: chroma {chroma:.1f}, "
              f"|dL| mean {dl.mean():.2f} max {dl.max():.0f}")
        assert chroma > 8.0
        assert dl.mean() < 1.0 and dl.max() <= 4
    # the reference's blue shows: b* below neutral on average
    assert lab_out[..., 2].mean() < 128 - 5


@pytest.mark.parametrize("mode", [m for m in MODES if m not in ("upscale", "interpolation")])
def test_strength_zero_returns_the_input(mode, clip):
    extra = {"style_transfer": {"reference_image": _texture(64, 64, seed=7)},
             "motion_transfer": {"reference_frames": clip[::-1]}}.get(mode, {})
    out, info = transform(clip, mode=mode, strength=0.0, **extra)
    assert len(out) == len(clip) and all(np.array_equal(a, b) for a, b in zip(out, clip))
    assert info["frames_out"] == len(clip)


def test_strength_zero_keeps_the_output_geometry(clip):
    up, _ = transform(clip, mode="upscale", strength=0.0)
    assert all(np.array_equal(u, cv2.resize(f, (256, 192), interpolation=cv2.INTER_CUBIC))
               for u, f in zip(up, clip))
    more, _ = transform(clip, mode="interpolation", strength=0.0)
    assert len(more) == 2 * len(clip) and np.array_equal(more[2], clip[1])
    assert np.array_equal(more[1], cv2.addWeighted(clip[0], 0.5, clip[1], 0.5, 0))


def test_motion_strength_scales_the_camera_move():
    still = [_texture(96, 128, seed=3)] * 6
    reference = _pan(_texture(200, 260, seed=4), 6, dx=-4.0, size=(96, 128))
    half, info = transform(still, mode="motion_transfer", reference_frames=reference,
                           strength=0.5)
    assert _median_flow(half) == pytest.approx([-2.0, 0.0], abs=0.3)
    assert info["details"]["pan_px_per_frame"] == pytest.approx([-2.0, 0.0], abs=0.2)


@pytest.mark.parametrize("mode, preserve_motion", [("enhancement", True),
                                                   ("style_transfer", True),
                                                   ("style_transfer", False)])
def test_temporal_consistency_reduces_flicker(mode, preserve_motion):
    rng = np.random.default_rng(1)
    base = _pan(_texture(160, 200, seed=1), 12, dx=1.0)
    gains = 1.0 + rng.uniform(-0.15, 0.15, len(base))
    flickery = [np.clip(f.astype(np.float32) * g, 0, 255).astype(np.uint8)
                for f, g in zip(base, gains)]
    extra = {"reference_image": _texture(64, 64, seed=7)} if mode == "style_transfer" else {}

    def flicker(frames):
        means = np.array([f.astype(np.float32).mean() for f in frames])
        return float(np.abs(np.diff(means)).mean())

    def sharpness(frames):
        return float(np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()
                              for f in frames]))

    raw, _ = transform(flickery, mode=mode, strength=1.0, temporal_consistency=0.0,
                       preserve_motion=preserve_motion, **extra)
    steady, _ = transform(flickery, mode=mode, strength=1.0, temporal_consistency=0.8,
                          preserve_motion=preserve_motion, **extra)
    print(f"{mode} (preserve_motion {preserve_motion}) flicker: input {flicker(flickery):.2f}, "
          f"temporal_consistency 0 {flicker(raw):.2f}, 0.8 {flicker(steady):.2f}; "
          f"sharpness {sharpness(raw):.0f} -> {sharpness(steady):.0f}")
    assert flicker(steady) < 0.3 * flicker(raw)
    # only low frequencies are pulled: the detail stays
    assert sharpness(steady) > 0.95 * sharpness(raw)


def test_info_describes_the_run(clip):
    out, info = transform(clip, mode="upscale", fps=24)
    assert info["frames_in"] == info["frames_out"] == len(clip)
    assert info["size_in"] == [128, 96] and info["size_out"] == [256, 192]
    assert info["fps"] == 24.0 and info["strength"] == 0.7 and info["temporal_consistency"] == 0.8
    assert out[0].shape == (192, 256, 3)


@pytest.fixture
def models_dir(tmp_path):
    """An empty models folder for one test, given to ``transform`` as the post task gives it the settings' one."""
    return tmp_path


def test_style_transfer_without_a_model_folder_runs_on_the_cpu(clip, models_dir):
    with_models = functools.partial(transform, models_dir=models_dir)
    ref = _texture(64, 64, seed=7)
    out, info = with_models(clip[:3], mode="style_transfer", reference_image=ref)
    assert info["backend"] == "opencv" and info["model"] is None
    assert info["reason"] == (f"no image-to-image model in BEATFRAME_MODELS_DIR/{DEFAULT_IMG2IMG_MODEL} "
                              "(model_index.json missing); the CPU path ran")
    assert str(models_dir) not in info["reason"]  # no server path
    cpu, _ = with_models(clip[:3], mode="style_transfer", reference_image=ref, prompt="a cat")
    assert all(np.array_equal(a, b) for a, b in zip(out, cpu))  # the prompt needs a model
    _, info = with_models(clip[:2], mode="enhancement")
    assert info["backend"] == "opencv" and info["reason"].endswith("the CPU path ran")
    _, info = with_models(clip[:2], mode="interpolation")  # no diffusion path: nothing to explain
    assert info["backend"] == "opencv" and info["reason"] is None
    with pytest.raises(BadInputError, match="image-to-image model 'mine': no image-to-image model in BEATFRAME_MODELS_DIR/mine"):
        with_models(clip[:2], mode="style_transfer", reference_image=ref, model="mine")


def test_style_transfer_uses_a_local_diffusion_model(models_dir, monkeypatch):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    with_models = functools.partial(transform, models_dir=models_dir)
    build_tiny_sd(models_dir / DEFAULT_IMG2IMG_MODEL)
    build_tiny_sd(models_dir / "other", seed=1)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    frames = _pan(_texture(120, 120, seed=1), 4, dx=2.0, size=(64, 64))
    ref = _texture(64, 64, seed=7, tint=(1.0, 0.55, 0.2))
    run = dict(mode="style_transfer", reference_image=ref, prompt="a neon cat", steps=2)
    out, info = with_models(frames, seed=3, **run)
    assert info["backend"] == "diffusers" and info["model"] == DEFAULT_IMG2IMG_MODEL
    assert info["reason"] is None
    assert info["details"]["prompt"] == "a neon cat" and info["details"]["seed"] == 3
    assert len(out) == len(frames) and all(f.shape == (64, 64, 3) and f.dtype == np.uint8
                                           for f in out)
    assert not np.array_equal(out[0], frames[0])
    again, _ = with_models(frames, seed=3, **run)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    other, _ = with_models(frames[:2], seed=4, **run)
    assert not np.array_equal(out[0], other[0])
    _, info = with_models(frames[:2], model="other", **run)
    assert info["backend"] == "diffusers" and info["model"] == "other"


def test_enhancement_and_colorization_finish_with_a_local_diffusion_model(models_dir):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    with_models = functools.partial(transform, models_dir=models_dir)
    from beatframe.models.v2v import _to_lab

    build_tiny_sd(models_dir / DEFAULT_IMG2IMG_MODEL)
    frames = _pan(_texture(120, 120, seed=1), 3, dx=2.0, size=(64, 64))
    enhanced, info = with_models(frames, mode="enhancement", seed=2, steps=2)
    assert info["backend"] == "diffusers" and info["model"] == DEFAULT_IMG2IMG_MODEL
    assert info["details"]["denoising_strength"] == 0.35  # the default 0.7, capped: no invented content
    assert "noise_sigma" in info["details"] and info["details"]["prompt"].startswith("a sharp")
    assert all(f.shape == (64, 64, 3) for f in enhanced) and not np.array_equal(enhanced[0], frames[0])
    again, _ = with_models(frames, mode="enhancement", seed=2, steps=2)
    assert all(np.array_equal(a, b) for a, b in zip(enhanced, again))

    grey = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) for f in frames]
    coloured, info = with_models(grey, mode="colorization", palette="sunset", strength=1.0, seed=2, steps=2,
                                 temporal_consistency=0.0, prompt="a warm sunset")
    assert info["backend"] == "diffusers" and info["details"]["denoising_strength"] == 0.6
    assert info["details"]["palette"] == "sunset" and info["details"]["prompt"] == "a warm sunset"
    for source, out in zip(grey, coloured):
        lab = _to_lab(out)
        # the model's colours on the source's own lightness: structure unchanged, colour added
        assert np.abs(lab[..., 0] - _to_lab(source)[..., 0]).mean() < 1.5
        assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 5


def test_upscale_uses_a_local_super_resolution_model(models_dir):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    with_models = functools.partial(transform, models_dir=models_dir)
    from beatframe.models.v2v import DEFAULT_UPSCALE_MODEL

    frames = _pan(_texture(120, 120, seed=1), 2, dx=2.0, size=(28, 36))  # sides not multiples of 8
    _, info = with_models(frames, mode="upscale")
    assert info["backend"] == "opencv" and DEFAULT_UPSCALE_MODEL in info["reason"]
    build_tiny_upscaler(models_dir / DEFAULT_UPSCALE_MODEL)
    out, info = with_models(frames, mode="upscale", factor=3, seed=5, steps=2, temporal_consistency=0.0)
    assert info["backend"] == "diffusers" and info["model"] == DEFAULT_UPSCALE_MODEL and info["reason"] is None
    assert info["size_out"] == [108, 84] and all(f.shape == (84, 108, 3) for f in out)
    assert info["details"]["factor"] == 3 and info["details"]["seed"] == 5
    again, _ = with_models(frames, mode="upscale", factor=3, seed=5, steps=2, temporal_consistency=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    plain, _ = with_models(frames, mode="upscale", factor=3, strength=0.0)
    assert not np.array_equal(out[0], plain[0])
    big = _pan(_texture(700, 700, seed=1), 1, dx=0.0, size=(600, 520))
    _, info = with_models(big, mode="upscale", temporal_consistency=0.0)  # over the model's 512 px: the CPU path
    assert info["backend"] == "opencv" and "512" in info["reason"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="cartoon"), "unknown v2v mode"),
    (dict(mode="style_transfer"), "reference_image is required"),
    (dict(mode="motion_transfer"), "reference_frames is required"),
    (dict(mode="enhancement", strength=1.5), "strength"),
    (dict(mode="enhancement", strength=True), "strength"),
    (dict(mode="enhancement", temporal_consistency=-0.1), "temporal_consistency"),
    (dict(mode="enhancement", preserve_motion="yes"), "preserve_motion"),
    (dict(mode="enhancement", fps=0), "fps"),
    (dict(mode="upscale", factor=8), "factor"),
    (dict(mode="enhancement", reference_image=np.zeros((32, 32, 3), np.uint8)), "does not apply"),
    (dict(mode="upscale", reference_frames=[np.zeros((32, 32, 3), np.uint8)] * 2), "does not apply"),
    (dict(mode="colorization", palette="rainbow"), "unknown palette"),
    (dict(mode="enhancement", palette="sepia"), "does not apply"),
    (dict(mode="colorization", palette="sepia", reference_image=np.zeros((32, 32, 3), np.uint8)),
     "palette cannot be given with reference_image"),
    (dict(mode="interpolation", prompt="a cat"), "prompt is not used by interpolation"),
    (dict(mode="motion_transfer", reference_frames=[np.zeros((32, 32, 3), np.uint8)] * 2, model="sd"),
     "model is not used by motion_transfer"),
    (dict(mode="upscale", model="mine"), "super-resolution model 'mine'"),
    (dict(mode="style_transfer", reference_image=np.zeros((32, 32, 3), np.uint8), steps=0),
     "steps"),
    (dict(mode="style_transfer", reference_image=np.zeros((32, 32, 3), np.uint8), seed=-1),
     "seed"),
    (dict(mode="style_transfer", reference_image=np.zeros((32, 32, 3), np.uint8),
          model="../x"), "folder name under BEATFRAME_MODELS_DIR"),
    (dict(mode="style_transfer", reference_image=np.zeros((4, 4, 3), np.uint8)), "too small"),
    (dict(mode="motion_transfer", reference_frames=[np.zeros((32, 32, 3), np.uint8)]),
     "at least 2"),
])
def test_bad_requests_raise(kwargs, match, clip):
    with pytest.raises(BadInputError, match=match):
        transform(clip[:2], **kwargs)


def test_bad_frames_raise(clip):
    with pytest.raises(BadInputError, match="empty"):
        transform([], mode="enhancement")
    with pytest.raises(BadInputError, match="shape"):
        transform([clip[0], clip[1][:50]], mode="enhancement")
    with pytest.raises(BadInputError, match="RGB uint8"):
        transform([clip[0].astype(np.float32)], mode="enhancement")
    with pytest.raises(BadInputError, match="at least 2 frames"):
        transform(clip[:1], mode="interpolation")
    with pytest.raises(BadInputError, match="exceeds"):
        transform([np.zeros((16, 3000, 3), np.uint8)], mode="upscale", factor=3)
    assert set(PALETTES) >= {"sepia"}
