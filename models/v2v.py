"""Video-to-video transforms: restyle, re-move, clean up, enlarge, retime or colour a clip.

The reference API's *V2V Pipeline* takes a finished clip and a mode; :func:`transform` runs it on
the CPU with classical vision (OpenCV and numpy): every mode below has a deterministic, measurable
result, and ``info["backend"]`` says ``"opencv"``. ``style_transfer``, ``enhancement``,
``colorization`` and ``upscale`` use a diffusion model instead when one is installed (see
*Diffusion* below).

Modes
-----
``style_transfer`` (needs ``reference_image``)
    Each frame is stylized (edge-preserving smoothing, ``cv2.edgePreservingFilter``, with its
    strong edges inked in dark), then its colours are moved to the reference's by Reinhard et al.'s
    colour transfer in CIE Lab ("Color transfer between images", 2001): every channel is shifted
    and scaled to the reference's mean and standard deviation. The source statistics are pooled
    over the whole clip, so every frame gets the same colour mapping and none flickers.
``motion_transfer`` (needs ``reference_frames``)
    The reference clip's global (camera) motion is measured frame to frame: dense optical flow
    (:func:`beatframe.models.interpolation.optical_flow`) sampled on a grid and fitted with a similarity
    transform (pan, zoom, roll) by RANSAC. The chained camera path, in relative coordinates, is
    applied to the source clip frame for frame; the source is zoomed in just enough (at most
    1.5x) that the moving frame never shows a border. A reference shorter than the source holds
    its last pose.
``enhancement``
    The clip's noise level is estimated (Immerkaer, "Fast noise variance estimation", 1996), an
    edge-preserving bilateral filter tuned to it removes the noise, CLAHE raises local contrast of
    the lightness channel where there is structure above the noise, and an unsharp mask sharpens
    only detail that stands above the noise (so flat areas do not turn grainy).
``upscale``
    ``factor`` times the size: Lanczos resampling followed by iterative back-projection (Irani &
    Peleg, 1991): the enlarged frame is repeatedly corrected until shrinking it again (pixel-area
    averaging, what a camera sensor and most resizers do) reproduces the input.
``interpolation``
    ``factor`` times the frame rate: in-between frames are synthesized along the optical flow of
    their neighbours (:func:`beatframe.models.interpolation.retime`); the clip keeps its duration (the last
    source frame is held for the final ``factor - 1`` outputs).
``colorization``
    A gradient map: each pixel gets a colour chosen by its lightness (CIE L*) from a palette,
    learnt from ``reference_image`` (the mean chroma of the reference's pixels at each
    lightness) or one of :data:`PALETTES`. Only chroma is added: the L* of every pixel is kept
    (chroma is reduced where the palette colour falls out of the RGB gamut at that lightness).

Common controls
---------------
``strength`` blends from the *plain* version of the input toward the transformed result: the
input itself for the modes that keep the frame geometry (so 0 returns the input unchanged), a
plain bicubic resize for ``upscale`` and a plain cross-fade for ``interpolation`` (so the output
has the mode's size and frame count at every strength). ``motion_transfer`` is the exception: a
blend of a moving and a still clip would show double images, so there ``strength`` is the
fraction of the reference's camera move applied (of its pan, zoom and roll; 0 is the input).

``temporal_consistency`` stabilizes each transformed frame toward the previous output, warped
along the optical flow to the current frame. The flow is measured on the source clip, which
per-frame processing cannot disturb (on the output itself for ``motion_transfer`` and
``interpolation``, which move pixels but add no flicker of their own). Only the low spatial
frequencies are pulled (a Gaussian of about 2 % of the frame width), where brightness and colour
flicker lives; detail always comes from the current frame, so stabilization never blurs. Pixels
whose forward and backward flows disagree, or whose detail does not match once warped
(occlusions, flow errors, a cut), are left alone.

Diffusion (optional)
-------------------
When an image-to-image model folder exists, ``style_transfer`` restyles with it instead of the
edge-preserving filter, and ``enhancement`` and ``colorization`` finish their CPU result with it:
a diffusers pipeline (``AutoPipelineForImage2Image``, e.g. Stable
Diffusion) loaded with ``local_files_only=True`` from ``$BEATFRAME_MODELS_DIR/<model>`` (default
:data:`DEFAULT_IMG2IMG_MODEL`; ``huggingface-cli download stable-diffusion-v1-5/stable-diffusion-
v1-5 --local-dir $BEATFRAME_MODELS_DIR/stable-diffusion-img2img`` puts one there) redraws every
frame from a ``prompt`` (default :data:`DEFAULT_STYLE_PROMPT`). ``strength`` is the denoising
strength (how much of each frame is redrawn) rather than a blend, and every frame starts from
the same noise (one ``seed`` for the clip), so unchanged content is redrawn the same way; the
reference's colours are then moved onto the result and ``temporal_consistency`` stabilizes it
along the source's flow, as on the CPU path. ``enhancement`` redraws its denoised, sharpened
frames at a low strength (at most :data:`DIFFUSION_MAX_STRENGTH`, 0.35: more would invent content)
from :data:`DEFAULT_ENHANCE_PROMPT`; ``colorization`` redraws its palette-coloured frames (at most
0.6) from :data:`DEFAULT_COLOUR_PROMPT` and keeps only the model's colours: every output pixel has
the source's lightness (CIELAB L*), so the picture's structure cannot change. Frames larger than
the model's working size (768 px a side) get their own finest detail back on top of the redraw.
``upscale`` uses a super-resolution model instead (``StableDiffusionUpscalePipeline``, folder
:data:`DEFAULT_UPSCALE_MODEL`: ``huggingface-cli download stabilityai/stable-diffusion-x4-upscaler
--local-dir $BEATFRAME_MODELS_DIR/stable-diffusion-x4-upscaler``): every frame is enlarged by the
model (x4, from :data:`DEFAULT_UPSCALE_PROMPT` and the same seeded noise) and brought to ``factor``
times its size by pixel-area averaging; ``strength`` blends from the bicubic enlargement as on the
CPU path. Frames over :data:`UPSCALE_MODEL_MAX_SIDE` px a side take the CPU path (the model's
memory grows with its x4 output), and ``info["reason"]`` says so.
``info["backend"]`` says ``"diffusers"`` and ``info["model"]`` the folder. Without the folder the
CPU path runs and ``info["reason"]`` says why.

``preserve_motion`` keeps the source's own motion: stabilization follows the optical flow (off:
it blends in place, cheaper but it drags the low frequencies of moving areas), and
``motion_transfer`` adds the reference's camera motion to the source's (off: the source's own
camera motion is measured and removed, so the reference's replaces it).

Plain numpy/OpenCV (torch and diffusers only for the optional diffusion path); no Prefect, no
I/O beyond loading that model; reads no environment variables (the caller passes ``models_dir``,
the settings' ``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.infra.modes import ModeOptions, check_mode
from beatframe.models.diffusion import model_folder
from beatframe.models.frames import check_clip, check_rgb
from beatframe.models.interpolation import optical_flow, retime, warp
from beatframe.models.model_catalog import IMG2IMG_FOLDER, UPSCALER_FOLDER

#: What each mode does with :func:`transform`'s optional inputs: those it needs, those it may take
#: (at most one of them); it refuses the rest. The API route and the CLI refuse by this table
#: before any work, as :func:`transform` does.
MODE_INPUTS = {
    "style_transfer": ModeOptions("restyles the clip after a style image", needs=("reference_image",)),
    "motion_transfer": ModeOptions("gives the clip the camera motion of a reference clip",
                                   needs=("reference_frames",)),
    "enhancement": ModeOptions("denoises and sharpens the clip"),
    "upscale": ModeOptions("enlarges every frame"),
    "interpolation": ModeOptions("puts frames between the clip's frames"),
    "colorization": ModeOptions("colours the clip from a colour image or a named palette (one of them; neither:"
                                " sepia)", either=("reference_image", "palette")),
}
MODES = tuple(MODE_INPUTS)

#: named gradient maps for ``colorization``: RGB colours from the darkest to the lightest tone
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "sepia": ((40, 26, 13), (112, 66, 20), (196, 150, 96), (255, 240, 214)),
    "sunset": ((40, 10, 60), (170, 40, 70), (240, 120, 50), (255, 230, 150)),
    "ocean": ((5, 20, 50), (20, 80, 140), (60, 170, 190), (220, 250, 245)),
    "forest": ((15, 30, 15), (40, 90, 40), (150, 170, 80), (240, 240, 200)),
    "neon": ((20, 0, 40), (120, 20, 200), (240, 40, 160), (255, 240, 120)),
}
DEFAULT_PALETTE = "sepia"

#: the folder under BEATFRAME_MODELS_DIR holding the image-to-image pipeline when ``model`` is not
#: given
DEFAULT_IMG2IMG_MODEL = IMG2IMG_FOLDER
#: what the image-to-image model is asked for when ``prompt`` is not given
DEFAULT_STYLE_PROMPT = "a stylized painting, bold brush strokes, flat vivid colours, ink lines"
DEFAULT_ENHANCE_PROMPT = "a sharp, clean, detailed, high quality photograph, natural texture, no noise"
DEFAULT_COLOUR_PROMPT = "a colour photograph, natural vivid colours, realistic skin, sky and foliage tones"
DEFAULT_UPSCALE_PROMPT = "a sharp, detailed, high resolution picture"
#: the folder under BEATFRAME_MODELS_DIR holding the x4 super-resolution pipeline of ``upscale``
DEFAULT_UPSCALE_MODEL = UPSCALER_FOLDER
#: the modes a diffusion model serves, with the prompt each uses by default
DIFFUSION_PROMPTS = {"style_transfer": DEFAULT_STYLE_PROMPT, "enhancement": DEFAULT_ENHANCE_PROMPT,
                     "colorization": DEFAULT_COLOUR_PROMPT, "upscale": DEFAULT_UPSCALE_PROMPT}
#: the most denoising strength each image-to-image mode asks of the model (``strength`` is capped at it)
DIFFUSION_MAX_STRENGTH = {"style_transfer": 1.0, "enhancement": 0.35, "colorization": 0.6}
#: frames larger than this (px a side) are upscaled on the CPU path
UPSCALE_MODEL_MAX_SIDE = 512

#: the smallest frame side the flow and filters work on
MIN_SIDE = 16
#: upscaled frames may not exceed this many pixels on a side
MAX_SIDE = 8192
#: the most ``motion_transfer`` zooms in to hide the borders the camera move reveals
MAX_ZOOM = 1.5
#: iterations of back-projection in ``upscale``
_BACK_PROJECTIONS = 8
#: frames are redrawn by the diffusion model at most this many pixels a side (at least 64), then
#: scaled back to the frame
_GEN_MAX_SIDE = 768


# --------------------------------------------------------------------------------------------
# input checks


def _check_fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:  # also rejects NaN
        raise BadInputError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# colour helpers


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """float32 CIE Lab (L 0-100, a and b about -128..127) of an RGB uint8 image."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _lab_stats(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of L, a, b over the pixels of ``images`` (subsampled)."""
    pixels = []
    for img in images:
        step = max(1, int(math.sqrt(img.shape[0] * img.shape[1] / 20000)))
        pixels.append(_to_lab(np.ascontiguousarray(img[::step, ::step])).reshape(-1, 3))
    lab = np.concatenate(pixels)
    return lab.mean(axis=0), np.maximum(lab.std(axis=0), 1e-3)


# --------------------------------------------------------------------------------------------
# per-frame transforms


def _stylize(rgb: np.ndarray) -> np.ndarray:
    """Edge-preserving flattening with the strongest edges inked in."""
    w = rgb.shape[1]
    smooth = cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER,
                                      sigma_s=float(min(200.0, max(10.0, 0.06 * w))), sigma_r=0.35)
    grey = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    # a Sobel magnitude of 0.4 is a clear edge (a 10 % step); fixed thresholds, not per-frame
    # percentiles, so the ink does not flicker with the content
    ink = np.clip((np.sqrt(gx * gx + gy * gy) - 0.4) / 0.8, 0.0, 1.0)
    return (smooth.astype(np.float32) * (1.0 - 0.6 * ink)[..., None] + 0.5).astype(np.uint8)


def _colour_transfer(rgb: np.ndarray, src: tuple[np.ndarray, np.ndarray],
                     ref: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lab = _to_lab(rgb)
    lab = (lab - src[0]) * (ref[1] / src[1]) + ref[0]
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    return _from_lab(lab)


def _noise_sigma(rgb: np.ndarray) -> float:
    """Standard deviation of white noise per colour channel (Immerkaer's Laplacian difference)."""
    kernel = np.float32([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])
    sigmas = []
    for c in range(3):
        response = cv2.filter2D(rgb[..., c].astype(np.float32), cv2.CV_32F, kernel)[1:-1, 1:-1]
        # the median response rather than the mean keeps edges and texture from counting as
        # noise; Gaussian noise of sigma s gives a response of sigma 6 s, median |x| 0.6745 of it
        sigmas.append(float(np.median(np.abs(response))) / (6.0 * 0.6745))
    return float(np.mean(sigmas))


def _enhance(rgb: np.ndarray, sigma: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    if sigma >= 0.5:
        rgb = cv2.bilateralFilter(rgb, d=5, sigmaColor=4.0 * sigma, sigmaSpace=2.0)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    light = lab[..., 0].astype(np.float32)
    # tiles of about 96 px: local enough to lift shadows and highlights apart, large enough
    # that a tile is rarely all one flat tone
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(max(2, round(w / 96)),
                                                         max(2, round(h / 96))))
    lifted = clahe.apply(lab[..., 0]).astype(np.float32)
    # CLAHE steepens the tone curve, which would also steepen what noise is left in flat areas:
    # it applies only where the local spread clearly exceeds that noise (about 0.3 sigma after
    # this filter, measured on white noise; at least half a level for clean input)
    residual = max(0.5, 0.3 * sigma)
    mean = cv2.blur(light, (7, 7))
    spread = np.sqrt(np.maximum(cv2.blur(light * light, (7, 7)) - mean * mean, 0.0))
    structure = np.clip((spread - 1.5 * residual) / (1.5 * residual), 0.0, 1.0)
    light += structure * (lifted - light)
    # unsharp mask on detail clearly above the residual noise only
    detail = light - cv2.GaussianBlur(light, (0, 0), 1.2)
    gate = np.clip((np.abs(detail) - 1.5 * residual) / (1.5 * residual), 0.0, 1.0)
    lab[..., 0] = np.clip(light + 1.2 * gate * detail + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def _upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    low = rgb.astype(np.float32)
    big = cv2.resize(low, (w * factor, h * factor), interpolation=cv2.INTER_LANCZOS4)
    for _ in range(_BACK_PROJECTIONS):
        error = low - cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        big += cv2.resize(error, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return np.clip(big + 0.5, 0, 255).astype(np.uint8)


def _palette_lut(*, reference: np.ndarray | None, palette: str) -> tuple[np.ndarray, list]:
    """RGB colour for each 8-bit lightness (OpenCV's L*255/100) and the palette's stops.

    The chroma (a, b) of each lightness comes from the reference (its pixels' mean chroma per
    lightness band, gaps filled and smoothed) or from the named palette (each stop's chroma at
    the stop's own lightness, interpolated between stops). Each colour is then put back at its
    own lightness, its chroma scaled down until it fits the RGB gamut, so converting it back
    gives that lightness again.
    """
    lightness = np.linspace(0.0, 100.0, 256)
    if reference is not None:
        lab = _to_lab(reference).reshape(-1, 3)
        bands = np.clip((lab[:, 0] / 100.0 * 63).round().astype(int), 0, 63)
        counts = np.bincount(bands, minlength=64).astype(np.float64)
        centres = np.linspace(0.0, 100.0, 64)
        have = counts > 0
        chroma = []
        for c in (1, 2):
            sums = np.bincount(bands, weights=lab[:, c], minlength=64)
            curve = np.interp(centres, centres[have], sums[have] / counts[have])
            chroma.append(np.interp(lightness, centres, cv2.GaussianBlur(
                curve.reshape(-1, 1), (1, 0), 2.0, borderType=cv2.BORDER_REPLICATE).ravel()))
        stops: list = []
    else:
        colours = np.array(PALETTES[palette], np.uint8).reshape(1, -1, 3)
        stop_lab = _to_lab(colours).reshape(-1, 3)
        order = np.argsort(stop_lab[:, 0])
        chroma = [np.interp(lightness, stop_lab[order, 0], stop_lab[order, c]) for c in (1, 2)]
        stops = [list(map(int, c)) for c in PALETTES[palette]]
    lab = np.stack([lightness, chroma[0], chroma[1]], axis=1).astype(np.float32)
    # the largest chroma scale, in steps of 5 %, up to which every smaller scale fits the gamut
    keep = np.zeros(256, np.float32)
    fitting = np.ones(256, bool)
    for k in np.linspace(0.0, 1.0, 21):
        trial = lab.copy()
        trial[:, 1:] *= k
        rgb = cv2.cvtColor(trial.reshape(1, -1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3)
        fitting &= np.all((rgb >= -1e-3) & (rgb <= 1.0 + 1e-3), axis=1)
        keep = np.where(fitting, k, keep).astype(np.float32)
    lab[:, 1:] *= keep[:, None]
    return _from_lab(lab.reshape(1, -1, 3)).reshape(256, 3), stops


def _colorize(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    lightness = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 0]
    return lut[lightness]


# --------------------------------------------------------------------------------------------
# motion


def _global_motion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 similarity taking content at ``p`` in ``a`` to its place in ``b``.

    The identity when fewer than 30 % of the flow samples agree on one similarity (no dominant
    camera motion to speak of).
    """
    flow = optical_flow(source=a, target=b)
    h, w = a.shape[:2]
    step = max(4, min(h, w) // 24)
    margin = max(step, min(h, w) // 16)
    ys, xs = np.mgrid[margin:h - margin:step, margin:w - margin:step]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    mat = None
    if len(src) >= 8:
        mat, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=1.0)
        if inliers is None or inliers.sum() < 0.3 * len(src):
            mat = None
    out = np.eye(3)
    if mat is not None:
        out[:2] = mat
    return out


def _camera_path(clip: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Pose of every frame relative to the first: ``path[k]`` takes frame 0 content to frame k."""
    path = [np.eye(3)]
    for a, b in zip(clip[:-1], clip[1:]):
        path.append(_global_motion(a, b) @ path[-1])
    return path


def _rescaled(mat: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """``mat`` measured in one frame size, expressed in another ``sx``, ``sy`` times as large."""
    s = np.diag([sx, sy, 1.0])
    return s @ mat @ np.linalg.inv(s)


def _zoom_about_centre(z: float, w: int, h: int) -> np.ndarray:
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    return np.array([[z, 0, cx - z * cx], [0, z, cy - z * cy], [0, 0, 1.0]])


def _covering_zoom(moves: Sequence[np.ndarray], steadies: Sequence[np.ndarray], w: int,
                   h: int) -> float:
    """The least zoom (<= MAX_ZOOM) for which every moved frame still covers the whole output.

    Frame ``k`` is placed by ``moves[k] @ zoom @ steadies[k]``: steadied, zoomed about the
    centre, then moved.
    """
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], np.float64).T
    for z in np.linspace(1.0, MAX_ZOOM, 51):
        zoom = _zoom_about_centre(float(z), w, h)
        ok = True
        for m, st in zip(moves, steadies):
            back = np.linalg.inv(m @ zoom @ st) @ corners
            xs, ys = back[0] / back[2], back[1] / back[2]
            if xs.min() < -1e-6 or ys.min() < -1e-6 or xs.max() > w - 1 + 1e-6 \
                    or ys.max() > h - 1 + 1e-6:
                ok = False
                break
        if ok:
            return float(z)
    return MAX_ZOOM


def _partial(mat: np.ndarray, amount: float, w: int, h: int) -> np.ndarray:
    """The fraction ``amount`` of a similarity move: its zoom, roll and shift about the centre."""
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    scale = math.hypot(mat[0, 0], mat[1, 0]) ** amount
    angle = math.atan2(mat[1, 0], mat[0, 0]) * amount
    shift = (mat[:2, :2] @ c + mat[:2, 2] - c) * amount
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)],
                            [math.sin(angle), math.cos(angle)]])
    out = np.eye(3)
    out[:2, :2] = rot
    out[:2, 2] = c + shift - rot @ c
    return out


def _motion_transfer(clip: list[np.ndarray], reference: list[np.ndarray], *, amount: float,
                     preserve_motion: bool) -> tuple[list[np.ndarray], dict]:
    h, w = clip[0].shape[:2]
    rh, rw = reference[0].shape[:2]
    ref_path = _camera_path(reference[:len(clip)])
    ref_path += [ref_path[-1]] * (len(clip) - len(ref_path))
    moves = [_partial(_rescaled(m, w / rw, h / rh), amount, w, h) for m in ref_path]
    # without preserve_motion the source is first steadied (its own camera path undone); the
    # zoom comes after that, so it does not turn the undone motion into a residual drift
    steadies = [np.eye(3)] * len(clip) if preserve_motion else \
        [np.linalg.inv(_partial(p, amount, w, h)) for p in _camera_path(clip)]
    zoom = _covering_zoom(moves, steadies, w, h)
    z = _zoom_about_centre(zoom, w, h)
    out = [cv2.warpAffine(f, (m @ z @ st)[:2], (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT) for f, m, st in zip(clip, moves, steadies)]
    # the reference's mean camera step, in the source's pixels
    steps = [b @ np.linalg.inv(a) for a, b in zip(moves[:-1], moves[1:])]
    pan = np.mean([s[:2, 2] for s in steps], axis=0)
    scale = np.mean([math.sqrt(abs(np.linalg.det(s[:2, :2]))) for s in steps])
    detail = {"zoom": round(zoom, 4),
              "pan_px_per_frame": [round(float(v), 3) for v in pan],
              "scale_per_frame": round(float(scale), 5),
              "reference_frames_used": min(len(reference), len(clip))}
    return out, detail


# --------------------------------------------------------------------------------------------
# diffusion


class _Diffusion(NamedTuple):
    """An image-to-image model found for ``style_transfer`` and how to run it."""

    folder: Path
    name: str
    prompt: str
    seed: int
    steps: int


def check_upscale(*, width: int, height: int, factor: int) -> None:
    """A BadInputError if upscaling a ``width`` x ``height`` clip by ``factor`` exceeds
    :data:`MAX_SIDE` (callers check it before any frame is decoded)."""
    if max(width, height) * factor > MAX_SIDE:
        raise BadInputError(f"upscaling {width}x{height} by {factor} exceeds {MAX_SIDE} px a side")


def _model_folder(model: str | None, default: str,
                  models_dir: str | Path | None) -> tuple[Path | None, str | None]:
    """The model folder under ``models_dir`` (``model``, else ``default``), or None and why there
    is none.

    A missing default folder is no error (the CPU path runs); a missing named ``model`` is.
    """
    kind = "super-resolution" if default == DEFAULT_UPSCALE_MODEL else "image-to-image"
    folder, where = model_folder(default if model is None else model, models_dir=models_dir,
                                 kind=kind)
    if folder is not None:
        return folder, None
    if model is not None:
        raise BadInputError(f"{kind} model {model!r}: {where}")
    return None, f"{where}; the CPU path ran"


def _load_pipeline(folder: str):
    """The diffusers image-to-image pipeline in ``folder`` and its lock (:func:`beatframe.models.diffusion.load_local_pipeline`)."""
    from beatframe.models.diffusion import load_local_pipeline

    return load_local_pipeline(folder, "AutoPipelineForImage2Image")


def _redraw(clip: list[np.ndarray], diffusion: _Diffusion, strength: float, *,
            keep_fine_detail: bool = False) -> list[np.ndarray]:
    """Every frame redrawn by the image-to-image model, from the same noise, at the frame's size.

    ``strength`` is the denoising strength; the schedule is stretched so that about
    ``diffusion.steps`` denoising steps run at any strength. With ``keep_fine_detail``, a frame
    larger than the model's working size gets back its own detail finer than that size (which
    the model never saw) on top of the redraw.
    """
    import torch
    from PIL import Image

    pipe, lock = _load_pipeline(str(diffusion.folder))
    h, w = clip[0].shape[:2]
    s = min(1.0, _GEN_MAX_SIDE / max(h, w))
    gw, gh = max(64, round(w * s / 8) * 8), max(64, round(h * s / 8) * 8)
    schedule = math.ceil(diffusion.steps / strength)
    out = []
    for frame in clip:
        image = Image.fromarray(cv2.resize(frame, (gw, gh), interpolation=cv2.INTER_AREA))
        with lock:
            result = pipe(prompt=diffusion.prompt, image=image, strength=strength,
                          num_inference_steps=schedule, output_type="np",
                          generator=torch.Generator("cpu").manual_seed(diffusion.seed)).images[0]
        result = cv2.resize(np.clip(np.asarray(result, np.float32), 0, 1) * 255, (w, h),
                            interpolation=cv2.INTER_CUBIC)
        if keep_fine_detail and (gw, gh) != (w, h):
            seen = cv2.resize(cv2.resize(frame, (gw, gh), interpolation=cv2.INTER_AREA), (w, h),
                              interpolation=cv2.INTER_CUBIC)
            result += frame.astype(np.float32) - seen.astype(np.float32)
        out.append(np.clip(result + 0.5, 0, 255).astype(np.uint8))
    return out


def _upscale_with_model(clip: list[np.ndarray], diffusion: _Diffusion, factor: int) -> list[np.ndarray]:
    """Every frame enlarged by the super-resolution model from the same noise, then brought to
    ``factor`` times its size (pixel-area averaging; the model's own scale is usually 4)."""
    import torch
    from PIL import Image

    from beatframe.models.diffusion import load_local_pipeline

    pipe, lock = load_local_pipeline(str(diffusion.folder), "StableDiffusionUpscalePipeline")
    h, w = clip[0].shape[:2]
    # the model's latents are the frame's own size: sides padded (edge pixels) to a multiple of 8
    ph, pw = -h % 8, -w % 8
    out = []
    for frame in clip:
        padded = cv2.copyMakeBorder(frame, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
        with lock:
            big = pipe(prompt=diffusion.prompt, image=Image.fromarray(padded), num_inference_steps=diffusion.steps,
                       output_type="np", generator=torch.Generator("cpu").manual_seed(diffusion.seed)).images[0]
        scale = big.shape[0] / padded.shape[0]
        big = np.clip(np.asarray(big, np.float32), 0, 1)[:round(h * scale), :round(w * scale)] * 255
        out.append(np.clip(cv2.resize(big, (w * factor, h * factor), interpolation=cv2.INTER_AREA) + 0.5,
                           0, 255).astype(np.uint8))
    return out


# --------------------------------------------------------------------------------------------
# temporal stabilization


def _sample(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """A float field sampled along ``flow`` (as :func:`warp` does for images)."""
    h, w = flow.shape[:2]
    grid = np.empty((h, w, 2), np.float32)
    grid[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    grid[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    grid += flow
    return cv2.remap(field, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _detail(grey: np.ndarray) -> np.ndarray:
    """The high-pass part of a grey float image (what a brightness flicker barely changes)."""
    return grey - cv2.GaussianBlur(grey, (0, 0), 2.0)


def _trust(back: np.ndarray, fwd: np.ndarray, current: np.ndarray, previous: np.ndarray
           ) -> np.ndarray:
    """0-1 per pixel: how far the previous guide frame, warped by ``back``, can be trusted.

    Trusted where following ``back`` then ``fwd`` returns to the start (no occlusion, no
    ambiguous match) and where the warped previous guide's detail matches the current's (no
    flow error); comparing detail, not brightness, lets a brightness flicker be trusted, which
    is the point.
    """
    h, w = back.shape[:2]
    roundtrip = back + _sample(fwd, back)
    trust = np.clip(1.5 - np.sqrt((roundtrip ** 2).sum(axis=2)), 0.0, 1.0)
    grey_now = cv2.cvtColor(current, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_before = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mismatch = np.abs(_detail(grey_now) - _detail(grey_before))
    trust *= np.clip(2.0 - mismatch / 6.0, 0.0, 1.0)
    # pixels whose match lies outside the previous frame have nothing to be stabilized toward
    xs = np.arange(w, dtype=np.float32)[None, :] + back[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + back[..., 1]
    trust[(xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)] = 0.0
    # the pull is blurred, so a pixel next to an untrusted one is not trusted either
    return cv2.erode(trust, np.ones((5, 5), np.uint8))


def _stabilize(frames: list[np.ndarray], guides: list[np.ndarray], amount: float, *,
               follow_flow: bool) -> list[np.ndarray]:
    """Pull each frame's low frequencies toward the previous output, warped to it."""
    out = [frames[0]]
    h, w = frames[0].shape[:2]
    sigma = max(2.0, 0.02 * w)
    for t in range(1, len(frames)):
        current = frames[t].astype(np.float32)
        if follow_flow:
            back = optical_flow(source=guides[t], target=guides[t - 1])
            fwd = optical_flow(source=guides[t - 1], target=guides[t])
            trust = _trust(back, fwd, guides[t], warp(frame=guides[t - 1], flow=back))
            if back.shape[:2] != (h, w):
                back = _resize_flow(back, w, h)
                trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_LINEAR)
            previous = warp(frame=out[-1], flow=back).astype(np.float32)
        else:
            previous = out[-1].astype(np.float32)
            trust = np.ones((h, w), np.float32)
        pull = _low_pass((previous - current) * trust[..., None], sigma)
        out.append(np.clip(current + amount * pull + 0.5, 0, 255).astype(np.uint8))
    return out


def _low_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` px, done at a reduced size when that is large.

    The result is smooth anyway, so blurring a copy shrunk until the blur is 3 px and enlarging
    it again gives the same picture at a fraction of the cost of a wide full-size kernel.
    """
    h, w = image.shape[:2]
    shrink = min(1.0, 3.0 / sigma)
    if shrink > 0.5:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    small = cv2.resize(image, (max(1, round(w * shrink)), max(1, round(h * shrink))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _resize_flow(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    fh, fw = flow.shape[:2]
    big = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    big[..., 0] *= w / fw
    big[..., 1] *= h / fh
    return big


# --------------------------------------------------------------------------------------------
# the entry point


def transform(frames: Sequence[np.ndarray], *, mode: str, strength: float = 0.7,
              reference_image: np.ndarray | None = None,
              reference_frames: Sequence[np.ndarray] | None = None, preserve_motion: bool = True,
              temporal_consistency: float = 0.8, fps: float | None = None, factor: int = 2,
              palette: str | None = None, prompt: str | None = None, model: str | None = None,
              models_dir: str | Path | None = None, seed: int = 0,
              steps: int = 20) -> tuple[list[np.ndarray], dict]:
    """Transform a clip in one of :data:`MODES` (see the module docstring for each).

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        The source clip: RGB uint8 frames of one shape ``(height, width, 3)`` (or one
        ``(n, height, width, 3)`` array), at least 16 px a side.
    mode : str
        One of :data:`MODES`.
    strength : float
        0-1: how far to blend from the plain input toward the result (for ``motion_transfer``:
        the fraction of the camera move applied; with a diffusion model: the denoising strength,
        capped per mode by :data:`DIFFUSION_MAX_STRENGTH`; see the module docstring). 0 returns the input unchanged,
        resized (bicubic) by ``upscale`` and cross-faded to the higher rate by
        ``interpolation``.
    reference_image : numpy.ndarray, optional
        RGB uint8: the style of ``style_transfer`` (required there), or the colours of
        ``colorization`` (instead of a palette). Rejected by the other modes.
    reference_frames : sequence of numpy.ndarray, optional
        The clip whose camera motion ``motion_transfer`` applies (required there, at least 2
        frames of one shape; any size). Rejected by the other modes.
    preserve_motion : bool
        Keep the source's own motion (see the module docstring).
    temporal_consistency : float
        0-1: how strongly each output frame's low frequencies are pulled toward the flow-warped
        previous output (0: frames are processed independently).
    fps : float, optional
        The source's frame rate; only reported (``info["fps"]``, multiplied by ``factor`` for
        ``interpolation``).
    factor : int
        2-4: size multiplier of ``upscale``, frame-rate multiplier of ``interpolation``.
    palette : str, optional
        A name from :data:`PALETTES` for ``colorization`` (default ``sepia`` when there is no
        ``reference_image``). Rejected by the other modes.
    prompt : str, optional
        ``style_transfer``, ``enhancement`` and ``colorization`` with a diffusion model: what to
        redraw the frames as (default :data:`DIFFUSION_PROMPTS`); unused on the CPU path.
        Rejected by the other modes.
    model : str, optional
        Those modes: the image-to-image model's folder under ``BEATFRAME_MODELS_DIR``; default
        :data:`DEFAULT_IMG2IMG_MODEL` (a missing default runs the CPU path, a missing named model
        is an error). Rejected by the other modes.
    models_dir : path, optional
        The models directory (the settings' ``BEATFRAME_MODELS_DIR``); without it the modes that
        can use a diffusion model run on the CPU.
    seed : int
        The diffusion noise's seed, one for the whole clip.
    steps : int
        1-1000: denoising steps per frame of the diffusion model.

    Returns
    -------
    frames : list of numpy.ndarray
        RGB uint8 frames: as many and as large as the input, except ``upscale`` (``factor``
        times the size) and ``interpolation`` (``factor`` times as many).
    info : dict
        ``mode``, ``backend`` (``"opencv"``, or ``"diffusers"`` when a diffusion model ran),
        ``model`` (that model's folder name, else None), ``reason`` (why a mode that can use one
        ran on the CPU, else None), ``strength``, ``preserve_motion``,
        ``temporal_consistency``, ``frames_in``, ``frames_out``,
        ``size_in`` and ``size_out`` (``[width, height]``), ``fps`` (of the output, or None),
        ``seconds`` (time taken) and ``details`` (what the mode measured or chose).

    Raises
    ------
    BadInputError
        An unknown mode, frames that are not a non-empty sequence of equally shaped RGB uint8
        frames, an input the mode lacks or refuses (:data:`MODE_INPUTS`; a
        :class:`~beatframe.infra.modes.ModeOptionError`), a control outside its range, an unknown
        palette, fewer than 2 frames for ``interpolation``, an upscale beyond 8192 px, or a
        named ``model`` that is not installed.
    """
    started = time.perf_counter()
    if not isinstance(mode, str) or mode not in MODES:
        raise BadInputError(f"unknown v2v mode {mode!r}; use one of {', '.join(MODES)}")
    clip = check_clip(frames, what="frames", min_side=MIN_SIDE)
    s = _check_fraction(strength, "strength")
    tc = _check_fraction(temporal_consistency, "temporal_consistency")
    if not isinstance(preserve_motion, (bool, np.bool_)):
        raise BadInputError(f"preserve_motion must be true or false, got {preserve_motion!r}")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                            or not 0 < float(fps) <= 1000):  # also rejects NaN
        raise BadInputError(f"fps must be a positive number of frames per second, got {fps!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) \
            or not 2 <= factor <= 4:
        raise BadInputError(f"factor must be a whole number from 2 to 4, got {factor!r}")
    factor = int(factor)
    inputs = {"reference_image": reference_image, "reference_frames": reference_frames, "palette": palette}
    check_mode(mode, {name for name, value in inputs.items() if value is not None}, MODE_INPUTS)
    ref_image = None
    if reference_image is not None:
        ref_image = check_rgb(reference_image, what="reference_image", min_side=MIN_SIDE)
    ref_clip = None
    if reference_frames is not None:
        ref_clip = check_clip(reference_frames, what="reference_frames", min_side=MIN_SIDE)
        if len(ref_clip) < 2:
            raise BadInputError("reference_frames needs at least 2 frames to have any motion")
    if palette is not None and palette not in PALETTES:
        raise BadInputError(f"unknown palette {palette!r}; use one of {', '.join(PALETTES)}")
    if mode == "interpolation" and len(clip) < 2:
        raise BadInputError("interpolation needs at least 2 frames to put frames between")
    h, w = clip[0].shape[:2]
    if mode == "upscale":
        check_upscale(width=w, height=h, factor=factor)
    diffusion, reason = _diffusion(mode, prompt=prompt, model=model, models_dir=models_dir, seed=seed, steps=steps,
                                   frame_side=max(h, w))

    detail: dict = {}
    if s == 0.0:
        plain = _plain(clip, mode=mode, factor=factor)
        out = [f.copy() for f in plain] if plain is clip else plain
    else:
        out, guides, detail = _transformed(clip, mode=mode, strength=s, ref_image=ref_image,
                                           ref_clip=ref_clip,
                                           preserve_motion=bool(preserve_motion), factor=factor,
                                           palette=palette, diffusion=diffusion)
        if tc > 0.0 and len(out) > 1:
            out = _stabilize(out, guides, tc, follow_flow=bool(preserve_motion))
        # an image-to-image model's strength is its denoising strength, already applied
        if s < 1.0 and mode != "motion_transfer" and (diffusion is None or mode == "upscale"):
            out = [cv2.addWeighted(p, 1.0 - s, d, s, 0.0)
                   for p, d in zip(_plain(clip, mode=mode, factor=factor), out)]
    oh, ow = out[0].shape[:2]
    rate = None if fps is None else float(fps) * (factor if mode == "interpolation" else 1)
    info = {
        "mode": mode,
        "backend": "opencv" if diffusion is None else "diffusers",
        "model": None if diffusion is None else diffusion.name,
        "reason": reason,
        "strength": s,
        "preserve_motion": bool(preserve_motion),
        "temporal_consistency": tc,
        "frames_in": len(clip),
        "frames_out": len(out),
        "size_in": [w, h],
        "size_out": [ow, oh],
        "fps": rate,
        "seconds": round(time.perf_counter() - started, 3),
        "details": detail,
    }
    return out, info


def _diffusion(mode: str, *, prompt: str | None, model: str | None, models_dir: str | Path | None, seed: int,
               steps: int, frame_side: int) -> tuple[_Diffusion | None, str | None]:
    """The diffusion model the mode uses, or None and why not (None for modes without one)."""
    if mode not in DIFFUSION_PROMPTS:
        for name, value in (("prompt", prompt), ("model", model)):
            if value is not None:
                raise BadInputError(f"{name} is not used by {mode}; only by {', '.join(DIFFUSION_PROMPTS)}")
        return None, None
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise BadInputError(f"prompt must be a non-empty string, got {prompt!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed < 2 ** 63:
        raise BadInputError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) \
            or not 1 <= steps <= 1000:
        raise BadInputError(f"steps must be a whole number from 1 to 1000, got {steps!r}")
    default = DEFAULT_UPSCALE_MODEL if mode == "upscale" else DEFAULT_IMG2IMG_MODEL
    folder, reason = _model_folder(model, default, models_dir)
    if folder is None:
        return None, reason
    if mode == "upscale" and frame_side > UPSCALE_MODEL_MAX_SIDE:
        return None, (f"frames of {frame_side} px a side are over the super-resolution model's "
                      f"{UPSCALE_MODEL_MAX_SIDE}; the CPU path ran")
    return _Diffusion(folder=folder, name=default if model is None else model,
                      prompt=DIFFUSION_PROMPTS[mode] if prompt is None else prompt, seed=int(seed),
                      steps=int(steps)), None


def _positions(n: int, factor: int) -> list[float]:
    """Source positions of the frames of ``n`` frames at ``factor`` times the rate."""
    return [min(k / factor, n - 1) for k in range(n * factor)]


def _plain(clip: list[np.ndarray], *, mode: str, factor: int) -> list[np.ndarray]:
    """The input at the output's geometry, with nothing added: what ``strength`` blends from."""
    if mode == "upscale":
        h, w = clip[0].shape[:2]
        return [cv2.resize(f, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
                for f in clip]
    if mode == "interpolation":
        n = len(clip)
        out = []
        for p in _positions(n, factor):
            i = min(int(p), n - 2)
            out.append(cv2.addWeighted(clip[i], 1.0 - (p - i), clip[i + 1], p - i, 0.0))
        return out
    return clip


def _transformed(clip: list[np.ndarray], *, mode: str, strength: float,
                 ref_image: np.ndarray | None, ref_clip: list[np.ndarray] | None,
                 preserve_motion: bool, factor: int, palette: str | None,
                 diffusion: _Diffusion | None
                 ) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """The mode's full result, the frames whose flow guides its stabilization, and details."""
    if mode == "style_transfer":
        if diffusion is None:
            styled = [_stylize(f) for f in clip]
            generated: dict = {}
        else:
            styled = _redraw(clip, diffusion, strength)
            generated = _generated(diffusion, strength)
        src_stats, ref_stats = _lab_stats(styled), _lab_stats([ref_image])
        done = [_colour_transfer(f, src_stats, ref_stats) for f in styled]
        return done, clip, {**generated,
                            "reference_lab_mean": [round(float(v), 2) for v in ref_stats[0]],
                            "reference_lab_std": [round(float(v), 2) for v in ref_stats[1]]}
    if mode == "motion_transfer":
        # strength scales the camera move itself: a pixel blend of a moved and an unmoved clip
        # would show double images
        done, detail = _motion_transfer(clip, ref_clip, amount=strength,
                                        preserve_motion=preserve_motion)
        # a pure warp adds no flicker of its own: its output is the best guide to its motion
        return done, done, detail
    if mode == "enhancement":
        sigma = float(np.median([_noise_sigma(f) for f in clip[::max(1, len(clip) // 8)]]))
        done = [_enhance(f, sigma) for f in clip]
        detail = {"noise_sigma": round(sigma, 3)}
        if diffusion is not None:
            done = _redraw(done, diffusion, min(strength, DIFFUSION_MAX_STRENGTH[mode]), keep_fine_detail=True)
            detail.update(_generated(diffusion, min(strength, DIFFUSION_MAX_STRENGTH[mode])))
        return done, clip, detail
    if mode == "upscale":
        if diffusion is not None:
            return _upscale_with_model(clip, diffusion, factor), clip, \
                {"factor": factor, "prompt": diffusion.prompt, "seed": diffusion.seed, "steps": diffusion.steps}
        return [_upscale(f, factor) for f in clip], clip, \
            {"factor": factor, "back_projections": _BACK_PROJECTIONS}
    if mode == "interpolation":
        done = list(retime(frames=clip, positions=_positions(len(clip), factor)))
        return done, done, {"factor": factor, "held_at_end": factor - 1}
    name = "reference" if ref_image is not None else (palette or DEFAULT_PALETTE)
    lut, stops = _palette_lut(reference=ref_image, palette=palette or DEFAULT_PALETTE)
    detail: dict = {"palette": name}
    if stops:
        detail["palette_stops"] = stops
    done = [_colorize(f, lut) for f in clip]
    if diffusion is not None:
        amount = min(strength, DIFFUSION_MAX_STRENGTH[mode])
        # the model's colours on the source's lightness: the structure stays the source's
        done = [_with_lightness(redrawn, source)
                for redrawn, source in zip(_redraw(done, diffusion, amount), clip)]
        detail.update(_generated(diffusion, amount))
    return done, clip, detail


def _generated(diffusion: _Diffusion, strength: float) -> dict:
    """What a diffusion model was asked (for ``info["details"]``)."""
    return {"prompt": diffusion.prompt, "seed": diffusion.seed, "steps": diffusion.steps,
            "denoising_strength": round(strength, 3)}


def _with_lightness(colours: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """``colours``' CIELAB a*, b* with ``lightness``' L*."""
    lab = _to_lab(colours)
    lab[..., 0] = _to_lab(lightness)[..., 0]
    return _from_lab(lab)
