"""Wan text-to-video (``wan-t2v``) and image-to-video (``wan-i2v``) as frame generators.

The diffusers pipelines (loaded by :mod:`beatframe.models.wan_loader` from local folders under
``BEATFRAME_MODELS_DIR``; nothing is downloaded) generate the footage; this module makes it
music-first and loop-native:

* **Native rate, then retimed.** Wan generates at its native 16 fps (``k * 4 + 1`` frames; at
  most ``max_native_frames``, 81 by default as Wan was trained on 5 s clips, so a longer shot
  plays its footage slower rather than asking the model for more than it does well). Output
  frames at the timeline's 30 fps are interpolated along optical flow
  (:func:`beatframe.models.interpolation.retime`).
* **Accents on the beats.** The footage is framed into the output size by one affine warp per
  frame, and that warp carries the beat envelopes of :mod:`beatframe.models.motion`: a zoom kick (a push
  in) on every beat, stronger on downbeats, sized by the template's ``motion.zoom_kick``, plus a
  brightness lift of a few percent (never a flash). With ``cut_on_downbeats`` each downbeat
  starts a new framing (zoomed-in crop, offset, mirrored), so the footage cuts on the bar.
* **Loop-native.** For a periodic timeline Wan generates one beat more than the loop lasts;
  the loop shows the footage from that beat on, and over its last beat morphs (optical-flow
  morph, :class:`beatframe.music.transitions.Morph`) into the footage's first beat, which is exactly
  where the loop's first frame continues. The beat envelopes wrap around, so the accents are
  seamless too.

The same arguments and seed give the same frames on the same device (the initial noise comes
from a seeded CPU ``torch.Generator``). :attr:`WanGenerator.stats` records the last render's
timings (seconds, steps, it/s), the size of the batch it ran in and, with a step cache, how much
transformer work it reused.

**Batched.** Generators that share a pipeline (one per process) and ask for footage of the same
size, length and settings at the same time (a video's shots, a catalog's renders) are denoised in
one call (:mod:`beatframe.models.batching`): on CUDA as many as fit the free memory, or
``WanOptions.vram_budget_gb``, at the cost measured for that shape; ``WanOptions.max_batch`` caps
it (on the CPU batches are off unless it is set). Each keeps its own seeded noise.

Plain Python: no Prefect, no HTTP; reads no environment variables (the caller passes the models
directory, ``models_dir``).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.music.limits import DEFAULT_GUIDANCE, DEFAULT_STEPS, GUIDANCE_RANGE, MAX_PROMPT_CHARS, STEPS_RANGE
from beatframe.music.timeline import LoopTimeline
from beatframe.models.interpolation import retime
from beatframe.models.motion import Envelopes, envelopes
from beatframe.models.procedural import _resolve_template, check_size, seed_rng
from beatframe.music.transitions import Morph
from beatframe.models.batching import Batcher, items_that_fit
from beatframe.models.wan_loader import (
    DEFAULT_MODELS,
    MAX_BATCH,
    Kind,
    LoadedPipeline,
    WanOptions,
    check_model_folder,
    is_out_of_memory,
    release_pipeline,
    render_size,
    resolve_model_folder,
    shared_pipeline,
)

NATIVE_FPS = 16
DEFAULT_MAX_NATIVE_FRAMES = 81

#: Wan's usual negative prompt, plus what a Spotify Canvas must not show (text, logos, singing
#: faces) or do (strobe)
DEFAULT_NEGATIVE_PROMPT = (
    "text, letters, subtitles, captions, watermark, logo, faces, people singing, lip sync, "
    "flashing lights, strobe, static, still picture, overexposed, overall gray, blurred details, "
    "worst quality, low quality, JPEG compression residue, deformed, disfigured, messy background"
)

#: zoom kick on a downbeat per unit of the template's ``motion.zoom_kick``
ZOOM_KICK = 0.12
#: brightness lift on a downbeat (a few percent reads as a pulse, never as a flash)
BEAT_GAIN = 0.03


@dataclass(frozen=True)
class RetimePlan:
    """Where each output frame comes from in the generated (native) footage.

    Attributes
    ----------
    native_frames : int
        How many frames Wan generates (``k * frames_multiple + 1``).
    rate : float
        Native frames per second of clip time (the native fps, or less when the clip needs more
        frames than ``max_native_frames`` and the footage plays slower).
    positions : numpy.ndarray
        ``(n_frames,)`` fractional native frame shown by each output frame.
    partner : numpy.ndarray
        ``(n_frames,)`` the native frame the loop's tail morphs into (NaN outside the blend).
    weight : numpy.ndarray
        ``(n_frames,)`` the morph's progress toward ``partner``, 0 outside the blend.
    """

    native_frames: int
    rate: float
    positions: np.ndarray
    partner: np.ndarray
    weight: np.ndarray


def plan_retime(*, timeline: LoopTimeline, native_fps: float = NATIVE_FPS,
                max_native_frames: int = DEFAULT_MAX_NATIVE_FRAMES,
                frames_multiple: int = 4) -> RetimePlan:
    """Plan the native footage for ``timeline`` and map every output frame into it.

    A periodic clip of ``D`` seconds with blend length ``L`` (one beat, at most half the clip)
    needs footage ``S`` over ``[0, D + L]``; output time ``t`` shows ``S(t + L)``, and over the
    last ``L`` seconds morphs toward ``S(t + L - D)``, reaching ``S(L)`` (the first output
    frame) as ``t`` reaches ``D``. A one-shot clip shows ``S(t)``.

    Parameters
    ----------
    timeline : LoopTimeline
        The clip.
    native_fps : float
        The model's frame rate.
    max_native_frames : int
        The most frames to generate; rounded down to ``k * frames_multiple + 1``.
    frames_multiple : int
        The VAE's temporal downscale (4 for Wan).

    Returns
    -------
    RetimePlan
    """
    if native_fps <= 0 or frames_multiple < 1:
        raise ValueError(f"native_fps and frames_multiple must be positive, got {native_fps!r}, "
                         f"{frames_multiple!r}")
    cap = (int(max_native_frames) - 1) // frames_multiple * frames_multiple + 1
    if cap < frames_multiple + 1:
        raise ValueError(f"max_native_frames must be at least {frames_multiple + 1}, "
                         f"got {max_native_frames!r}")
    n, fps = timeline.n_frames, timeline.fps
    dur = timeline.duration
    t = np.arange(n, dtype=np.float64) / fps
    blend = 0.0
    if timeline.periodic:
        beat = 60.0 / timeline.bpm if timeline.bpm > 0 else 0.5
        blend = min(beat, dur / 2.0)
    span = dur + blend
    need = math.ceil(span * native_fps - 1e-9) + 1
    native = min(cap, math.ceil((need - 1) / frames_multiple) * frames_multiple + 1)
    rate = min(float(native_fps), (native - 1) / span)
    last = float(native - 1)
    positions = np.clip((t + blend) * rate, 0.0, last)
    partner = np.full(n, np.nan)
    weight = np.zeros(n)
    if blend > 0:
        tail = t > dur - blend
        partner[tail] = np.clip((t[tail] + blend - dur) * rate, 0.0, last)
        weight[tail] = (t[tail] - (dur - blend)) / blend
    return RetimePlan(native_frames=native, rate=rate, positions=positions, partner=partner,
                      weight=weight)


def _cover_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` cropped to the aspect ratio of ``size`` (centred) and resized to it."""
    w, h = size
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    cw, ch = min(iw, round(w / s)), min(ih, round(h / s))
    x0, y0 = (iw - cw) // 2, (ih - ch) // 2
    crop = image[y0:y0 + ch, x0:x0 + cw]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


class WanGenerator:
    """Wan footage, retimed to the music, with beat accents and loop-native ends.

    Parameters
    ----------
    kind : {"t2v", "i2v"}
        Text-to-video, or image-to-video from ``image_path``.
    prompt : str, optional
        What to show; by default the template's description as an abstract music visual.
    negative_prompt : str
        What to avoid (default :data:`DEFAULT_NEGATIVE_PROMPT`).
    image_path : path, optional
        The first frame for ``i2v`` (required there, refused for ``t2v``); checked like a cover
        image (:func:`beatframe.music.images.load_cover`).
    model : str, optional
        The model's folder under ``BEATFRAME_MODELS_DIR`` (see
        :data:`beatframe.models.wan_loader.DEFAULT_MODELS`).
    models_dir : path, optional
        The models directory (the settings' ``BEATFRAME_MODELS_DIR``, passed by the caller); without
        it the model cannot be found (BadInputError).
    guidance_scale : float
        Classifier-free guidance, 1-20 (1 turns the negative prompt off and halves the work);
        the reference API's 7.5 by default.
    num_inference_steps : int
        Denoising steps, ``min_steps``-150 (default 50).
    min_steps : int
        The fewest steps accepted (10; tests with tiny random models lower it).
    native_fps : int
        The model's frame rate (16 for Wan 2.1).
    max_native_frames : int
        The most frames generated per clip (see the module docstring).
    max_sequence_length : int
        Prompt tokens the text encoder reads (Wan: 512).
    options : WanOptions
        Device, offload, tiling, attention, step cache, compile and the pixel budget.

    Raises
    ------
    BadInputError
        A bad prompt, guidance, step count or image, or a missing or incomplete model folder.
    """

    revision = "1"

    def __init__(self, *, kind: Kind = "t2v", prompt: str | None = None,
                 negative_prompt: str = DEFAULT_NEGATIVE_PROMPT, image_path=None,
                 model: str | None = None, models_dir=None, guidance_scale: float = DEFAULT_GUIDANCE,
                 num_inference_steps: int = DEFAULT_STEPS, min_steps: int = STEPS_RANGE[0],
                 native_fps: int = NATIVE_FPS,
                 max_native_frames: int = DEFAULT_MAX_NATIVE_FRAMES,
                 max_sequence_length: int = 512, options: WanOptions | None = None) -> None:
        if kind not in DEFAULT_MODELS:
            raise ValueError(f"kind must be 't2v' or 'i2v', got {kind!r}")
        self.kind = kind
        self.name = f"wan-{kind}"
        self.prompt = self._check_prompt(prompt, "prompt", optional=True)
        self.negative_prompt = self._check_prompt(negative_prompt, "negative_prompt", optional=False,
                                                  empty_ok=True)
        lo, hi = GUIDANCE_RANGE
        try:
            self.guidance_scale = float(guidance_scale)
        except (TypeError, ValueError):
            raise BadInputError(f"guidance_scale must be a number, got {guidance_scale!r}") from None
        if not lo <= self.guidance_scale <= hi:
            raise BadInputError(f"guidance_scale must be within {lo:g}-{hi:g}, got {guidance_scale!r}")
        steps_max = STEPS_RANGE[1]
        if not 1 <= int(min_steps) <= steps_max:
            raise ValueError(f"min_steps must be within 1-{steps_max}, got {min_steps!r}")
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) \
                or not int(min_steps) <= num_inference_steps <= steps_max:
            raise BadInputError(f"num_inference_steps must be a whole number within "
                                f"{int(min_steps)}-{steps_max}, got {num_inference_steps!r}")
        self.num_inference_steps = num_inference_steps
        if not 1 <= int(native_fps) <= 60:
            raise ValueError(f"native_fps must be within 1-60, got {native_fps!r}")
        self.native_fps = int(native_fps)
        if int(max_native_frames) < 5:
            raise ValueError(f"max_native_frames must be at least 5, got {max_native_frames!r}")
        self.max_native_frames = int(max_native_frames)
        if not 1 <= int(max_sequence_length) <= 4096:
            raise ValueError(f"max_sequence_length must be within 1-4096, got {max_sequence_length!r}")
        self.max_sequence_length = int(max_sequence_length)
        self.options = options or WanOptions()
        if kind == "i2v":
            if image_path is None:
                raise BadInputError("wan-i2v needs an image (image_path=)")
            from beatframe.music.images import load_cover

            self.image_path = os.fspath(image_path)
            self.image = load_cover(self.image_path)
            self.image_sha256 = hashlib.sha256(self.image.tobytes()).hexdigest()
        else:
            if image_path is not None:
                raise BadInputError("wan-t2v takes no image; use wan-i2v to start from one")
            self.image_path = self.image = self.image_sha256 = None
        self.model = model or DEFAULT_MODELS[kind]
        self.folder = resolve_model_folder(model=self.model, models_dir=models_dir)
        check_model_folder(folder=self.folder, kind=kind)
        self._loaded: LoadedPipeline | None = None
        #: timings and counters of the last render (see the module docstring)
        self.stats: dict = {}

    @staticmethod
    def _check_prompt(value, what: str, *, optional: bool, empty_ok: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise BadInputError(f"{what} must be text, got {type(value).__name__}")
        value = value.strip()
        if not value and not empty_ok:
            raise BadInputError(f"{what} is empty")
        if len(value) > MAX_PROMPT_CHARS:
            raise BadInputError(f"{what} is {len(value)} characters long; the limit is "
                                f"{MAX_PROMPT_CHARS}")
        return value

    # ------------------------------------------------------------------------- identity
    @property
    def params(self) -> dict:
        """Everything besides the timeline, template, size and seed that shapes the frames
        (for manifests and cache keys)."""
        return {"model": self.model, "prompt": self.prompt, "negative_prompt": self.negative_prompt,
                "image_sha256": self.image_sha256, "guidance_scale": self.guidance_scale,
                "num_inference_steps": self.num_inference_steps, "native_fps": self.native_fps,
                "max_native_frames": self.max_native_frames,
                "max_sequence_length": self.max_sequence_length,
                "max_area": self.options.max_area, "vae_tiling": self.options.vae_tiling,
                "cache": self.options.cache,
                "cache_threshold": self.options.cache_threshold if self.options.cache else None}

    def prompt_for(self, *, template) -> str:
        """The prompt used with ``template``: the given one, or the template's description."""
        if self.prompt is not None:
            return self.prompt
        tpl = _resolve_template(template)
        return (f"{tpl.description.rstrip('.')}. Abstract music visual, smooth continuous camera "
                "motion, rich detail, cinematic lighting.")

    # ------------------------------------------------------------------------- pipeline
    def pipeline(self) -> LoadedPipeline:
        """The loaded pipeline (loaded on first use, shared within the process)."""
        if self._loaded is None or self._loaded.pipe is None:
            t0 = time.perf_counter()
            self._loaded = shared_pipeline(folder=self.folder, kind=self.kind, options=self.options)
            self.stats["load_seconds"] = time.perf_counter() - t0
        return self._loaded

    def close(self) -> None:
        """Drop the pipeline and free its GPU memory (before retrying with cheaper options)."""
        if self._loaded is not None:
            release_pipeline(loaded=self._loaded)
            self._loaded = None

    def generate_native(self, *, width: int, height: int, num_frames: int, seed: int,
                        prompt: str) -> np.ndarray:
        """Run Wan: ``num_frames`` RGB uint8 frames ``(num_frames, height, width, 3)``, in one
        denoising call with whatever other calls of the same shape wait for the pipeline.

        Parameters
        ----------
        width, height : int
            Multiples of :attr:`LoadedPipeline.size_multiple`.
        num_frames : int
            ``k * frames_multiple + 1``.
        seed : int
            Seeds the initial noise (a CPU ``torch.Generator``, the same on every device).
        prompt : str

        Returns
        -------
        numpy.ndarray
        """
        loaded = self.pipeline()
        m = loaded.size_multiple
        if width % m or height % m:
            raise ValueError(f"Wan frames need sides that are multiples of {m}, got {width}x{height}")
        if (num_frames - 1) % loaded.frames_multiple:
            raise ValueError(f"Wan generates k*{loaded.frames_multiple}+1 frames, got {num_frames}")
        shape = _CallShape(width, height, num_frames, self.negative_prompt, self.num_inference_steps,
                           self.guidance_scale, self.max_sequence_length, self.image_sha256,
                           self.options.max_batch, self.options.vram_budget_gb)
        common = dict(negative_prompt=self.negative_prompt or None, height=height, width=width,
                      num_frames=num_frames, num_inference_steps=self.num_inference_steps,
                      guidance_scale=self.guidance_scale, max_sequence_length=self.max_sequence_length)
        if self.kind == "i2v":
            from PIL import Image

            common["image"] = Image.fromarray(_cover_crop(self.image, (width, height)))
        video, call = _batcher(loaded).submit(shape, {"prompt": prompt, "seed": int(seed), "common": common})
        if video.shape != (num_frames, height, width, 3):
            raise RuntimeError(f"Wan returned frames of shape {video.shape}, expected "
                               f"({num_frames}, {height}, {width}, 3)")
        self.stats.update({
            "device": str(loaded.device), "dtype": str(loaded.dtype).removeprefix("torch."),
            "attention": loaded.attention, "render_size": [width, height], "native_frames": num_frames,
            "cache": self.options.cache, **call,
        })
        return video

    # ------------------------------------------------------------------------- render
    def render(self, *, timeline: LoopTimeline, template, size, seed: int,
               cut_on_downbeats: bool = False) -> Iterator[np.ndarray]:
        """Yield ``timeline.n_frames`` RGB uint8 frames of ``size`` (width, height).

        Wan runs here, before the first frame is yielded (so an out-of-memory error surfaces
        from this call); the frames are then interpolated, framed and accented one by one.
        """
        t0 = time.perf_counter()
        tpl = _resolve_template(template)
        w, h = check_size(size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
            raise BadInputError(f"seed must be a whole number within 0..2**63-1, got {seed!r}")
        self.stats = {}
        loaded = self.pipeline()
        plan = plan_retime(timeline=timeline, native_fps=self.native_fps,
                           max_native_frames=self.max_native_frames,
                           frames_multiple=loaded.frames_multiple)
        rw, rh = render_size(size=(w, h), max_area=self.options.max_area,
                             multiple=loaded.size_multiple)
        native = self.generate_native(width=rw, height=rh, num_frames=plan.native_frames,
                                      seed=int(seed), prompt=self.prompt_for(template=tpl))
        self.stats["native_fps"] = plan.rate
        k = tpl.intensity
        beat_w = float(np.clip(k.beat_pulse / max(k.downbeat_pulse, 1e-3), 0.6, 1.0))
        env = envelopes(timeline, beat_weight=beat_w, downbeat_weight=1.0,
                        cut_on_downbeats=cut_on_downbeats)
        return self._frames(native, plan, env, tpl, (w, h), int(seed), t0)

    def _frames(self, native: np.ndarray, plan: RetimePlan, env: Envelopes, tpl, size,
                seed: int, t0: float) -> Iterator[np.ndarray]:
        t_post = time.perf_counter()
        main = retime(frames=native, positions=plan.positions)
        tail = np.flatnonzero(plan.weight > 0)
        partners = retime(frames=native, positions=plan.partner[tail])
        morph = Morph(method="dis")
        framing = _Framing(size=size, native_size=native.shape[2:0:-1], env=env, tpl=tpl, seed=seed)
        for i, frame in enumerate(main):
            if plan.weight[i] > 0:
                frame = morph.frame(frame, next(partners), float(plan.weight[i]))
            yield framing.frame(i, frame)
        self.stats["postprocess_seconds"] = time.perf_counter() - t_post
        self.stats["seconds"] = time.perf_counter() - t0


class _CallShape(NamedTuple):
    """Everything of a Wan call but the prompt and the seed: calls alike in it can share a batch
    (the packing options included, so each call is packed by its own)."""

    width: int
    height: int
    num_frames: int
    negative_prompt: str | None
    steps: int
    guidance_scale: float
    max_sequence_length: int
    image_sha256: str | None
    max_batch: int | None
    vram_budget_gb: float | None


_BATCHER_LOCK = threading.Lock()


def _batcher(loaded: LoadedPipeline) -> Batcher:
    """The pipeline's batcher (made on first use)."""
    with _BATCHER_LOCK:
        if loaded.batcher is None:
            loaded.batcher = Batcher(
                lambda shape, items: _run_batch(loaded, shape, items),
                capacity=lambda shape: _batch_capacity(loaded, shape),
                is_out_of_memory=lambda error: is_out_of_memory(error=error),
                on_out_of_memory=lambda shape, size: loaded.shape_limits.__setitem__(shape, max(1, size // 2)))
        return loaded.batcher


def _batch_capacity(loaded: LoadedPipeline, shape: _CallShape) -> int:
    """How many calls of ``shape`` one batch may take now: ``max_batch`` when set; else on CUDA as
    many as the free memory (or the budget) holds at their measured cost, on the CPU one."""
    cuda = loaded.device.type == "cuda"
    limit = min(shape.max_batch or (MAX_BATCH if cuda else 1), loaded.shape_limits.get(shape, MAX_BATCH))
    if limit == 1 or not cuda:
        return limit
    import torch

    free, _ = torch.cuda.mem_get_info(loaded.device)
    if shape.vram_budget_gb is not None:
        free = min(free, shape.vram_budget_gb * 1e9 - torch.cuda.memory_allocated(loaded.device))
    return items_that_fit(budget_bytes=free, per_item_bytes=loaded.item_bytes.get(shape), limit=limit)


def _run_batch(loaded: LoadedPipeline, shape: _CallShape, items: list[dict]) -> list[tuple[np.ndarray, dict]]:
    """One denoising call for ``items`` (alike in ``shape``): each item's frames, with the call's
    timings; on CUDA it also measures the peak memory one video of this shape costs."""
    import torch

    steps: list[float] = []

    def on_step(pipe, i, t, callback_kwargs):
        steps.append(time.perf_counter())
        return {}

    common = dict(items[0]["common"])
    negative = common.pop("negative_prompt")
    n = len(items)
    cuda = loaded.device.type == "cuda"
    with loaded.lock:
        if loaded.pipe is None:  # released after an out-of-memory error elsewhere
            raise RuntimeError("the Wan pipeline was released; load it again")
        if loaded.counter is not None:
            loaded.counter.reset()
        if cuda:
            torch.cuda.reset_peak_memory_stats(loaded.device)
            before = torch.cuda.memory_allocated(loaded.device)
        t0 = time.perf_counter()
        videos = loaded.pipe(
            **common, prompt=[item["prompt"] for item in items],
            negative_prompt=[negative] * n if negative else None,
            # one seeded CPU generator per video: its noise is its own, whatever it is batched with
            generator=[torch.Generator(device="cpu").manual_seed(item["seed"]) for item in items],
            output_type="pt", callback_on_step_end=on_step).frames  # (n, frames, 3, height, width) in 0..1
        # to uint8 where the frames are: a float32 copy on the host would be 4x larger
        videos = (videos.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        seconds = time.perf_counter() - t0
        if cuda:
            per_item = (torch.cuda.max_memory_allocated(loaded.device) - before) / n
            loaded.item_bytes[shape] = max(loaded.item_bytes.get(shape, 0.0), per_item)
        reuse = loaded.counter.reuse_rate() if loaded.counter is not None else None
    per_step = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else None
    call = {"steps": len(steps), "generate_seconds": seconds, "batch_size": n,
            # one iteration is one denoising step of the whole batch (two transformer calls with guidance > 1)
            "it_per_s": (1.0 / per_step) if per_step else None, "cache_reuse_rate": reuse}
    return [(np.ascontiguousarray(video), call) for video in videos]


class _Framing:
    """Fits generated frames into the output size, with the beat's zoom kick and the shot's
    framing in one affine warp, plus the beat's small brightness lift."""

    def __init__(self, *, size, native_size, env: Envelopes, tpl, seed: int) -> None:
        self.w, self.h = size
        self.nw, self.nh = int(native_size[0]), int(native_size[1])
        self.fit = max(self.w / self.nw, self.h / self.nh)  # cover: no borders at rest
        # frames much larger than the output shrink once with area averaging (no aliasing)
        self.pre = (max(1, round(self.nw * self.fit)), max(1, round(self.nh * self.fit))) \
            if self.fit < 0.75 else None
        self.env = env
        self.zoom = 1.0 + ZOOM_KICK * tpl.motion.zoom_kick * env.kick
        self.gain = (1.0 + BEAT_GAIN * env.kick
                     + 0.05 * tpl.intensity.energy_brightness * (env.energy - 0.5))
        self.shots = [self._shot(seed_rng(seed, "wan-shot", s), s)
                      for s in range(int(env.shot.max()) + 1)]

    @staticmethod
    def _shot(rng: np.random.Generator, shot: int) -> tuple[float, float, float, bool]:
        if shot == 0:
            return 1.0, 0.0, 0.0, False
        z = float(rng.uniform(1.12, 1.35))
        lim = 0.5 - 0.5 / z  # stay inside the footage
        return z, float(rng.uniform(-lim, lim)), float(rng.uniform(-lim, lim)), bool(shot % 2)

    def frame(self, i: int, src: np.ndarray) -> np.ndarray:
        if self.pre is not None:
            src = cv2.resize(src, self.pre, interpolation=cv2.INTER_AREA)
        sh, sw = src.shape[:2]
        fit = max(self.w / sw, self.h / sh)
        z, ox, oy, flip = self.shots[int(self.env.shot[i])]
        s = fit * z * float(self.zoom[i])
        sx = -s if flip else s
        # the footage point (centre + shot offset) lands on the output's centre
        cx, cy = (sw - 1) / 2 + ox * sw, (sh - 1) / 2 + oy * sh
        m = np.float32([[sx, 0, (self.w - 1) / 2 - sx * cx], [0, s, (self.h - 1) / 2 - s * cy]])
        out = cv2.warpAffine(src, m, (self.w, self.h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)
        g = float(self.gain[i])
        if abs(g - 1.0) > 1e-3:
            out = cv2.convertScaleAbs(out, alpha=g)
        return np.ascontiguousarray(out, dtype=np.uint8)
