"""How long a render will take: the one time estimate, for the orchestrator and every API answer.

:func:`estimate_time` prices a catalog model (:mod:`beatframe.models.model_catalog`) for a length,
an output size and how it runs (resident or offloaded, on a GPU or on the CPU, how many denoising
steps); :func:`estimate_backend_time` does it for a resolved backend
(:func:`beatframe.models.backend.resolve_backend`), which is what the API's 202 answers report. The
orchestrator (:mod:`beatframe.models.orchestrator`) plans with the same function, so a figure it
recommends by and a figure a task reports are the same number.

Every figure here is an estimate from the catalog's planning figures, never a measurement, and
:attr:`TimeEstimate.based_on` says which figures it rests on. A render's measured times are in its
manifest and cost log once it has run.

No environment variables are read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from beatframe.models.backend import WAN_GENERATORS
from beatframe.models.model_catalog import (
    CATALOG,
    DEFAULT_WAN_FOLDERS,
    OFFLOAD_SLOWDOWN,
    ModelSpec,
    NativeMode,
    get_model,
)
from beatframe.music.limits import DEFAULT_STEPS

#: What a task costs besides drawing its frames (planning, stitching, checking, uploading, the
#: manifest, the flow run's start). A planning figure, not measured as such: the canvas benchmark's
#: flow spends about 1.5 s outside its generate stage (benchmarks/RESULTS.md), and a busy machine
#: or a Prefect worker picking the run up adds to it.
TASK_OVERHEAD_SECONDS = 5.0
#: How much slower a diffusion model denoises on the CPU than on the GPU its catalog figure is for.
#: An assumption, not measured: two orders of magnitude, about the ratio of dense matrix throughput
#: between a desktop CPU (about 1 TFLOP/s) and an RTX 4090 (about 80 TFLOP/s in bf16 with fp32
#: accumulation).
CPU_SLOWDOWN = 100.0


@dataclass(frozen=True)
class TimeEstimate:
    """How long a render will take, and what that figure rests on.

    Attributes
    ----------
    seconds : float
        The whole task: :attr:`generate_seconds` plus :data:`TASK_OVERHEAD_SECONDS`, to 0.1 s.
    generate_seconds : float
        Drawing (and encoding) the frames alone; model loading excluded.
    model : str
        The catalog id priced.
    compute : {'cpu', 'cuda'}
        Where it runs.
    frames, clips : int
        Frames the model draws (at its native rate, or the output's for a generator that draws
        at the output size) and the clips they take.
    mode : NativeMode
        The catalog mode the figure is taken from.
    based_on : str
        One sentence: the figures and the scaling behind :attr:`seconds`.
    """

    seconds: float
    generate_seconds: float
    model: str
    compute: str
    frames: int
    clips: int
    mode: NativeMode
    based_on: str


def native_mode(spec: ModelSpec, short_side: int) -> NativeMode:
    """The smallest native mode of ``spec`` that reaches ``short_side``, else its largest one."""
    for mode in spec.modes:
        if mode.height >= short_side - 16:  # Wan's 704-row 720p counts as 720p
            return mode
    return spec.modes[-1]


def estimate_time(*, model: str, seconds: float, size: tuple[int, int], fps: int | None = None,
                  offload: bool = False, compute: str | None = None, steps: int | None = None) -> TimeEstimate:
    """Estimate how long ``model`` takes to render ``seconds`` of video of ``size``.

    Parameters
    ----------
    model : str
        Catalog id (``procedural``, ``wan2.1-t2v-1.3b`` ...).
    seconds : float
        Length of the video.
    size : tuple of int
        The output frame, ``(width, height)``, either orientation.
    fps : int, optional
        The output frame rate. A generator that draws at the output size (``procedural``,
        ``cover-art``) draws that many frames a second; a diffusion model draws its native rate
        whatever it is (its footage is retimed afterwards). Default: the model's native rate.
    offload : bool
        Whether the model runs with CPU offload (:data:`OFFLOAD_SLOWDOWN`).
    compute : {'cpu', 'cuda'}, optional
        Where it runs; default: ``cuda`` for a diffusion model, ``cpu`` for a CPU generator. A
        diffusion model on the CPU is :data:`CPU_SLOWDOWN` times slower.
    steps : int, optional
        Denoising steps of a diffusion model, default ``DEFAULT_STEPS`` (50). The catalog's
        figures are for a model's default step count, which is 50 for every Wan model but the
        A14B ones (40); the figure is scaled by ``steps / 50`` either way.

    Returns
    -------
    TimeEstimate
        The catalog's seconds per frame for the native mode that covers the output's short side,
        times the frames, scaled for offloading, the CPU, the steps and (for a generator that
        draws at the output size) the pixels above the mode's; plus the task's fixed overhead.

    Raises
    ------
    BadInputError
        For a model the catalog does not know.
    """
    spec = get_model(model)
    compute = compute or ("cuda" if spec.is_gpu else "cpu")
    mode = native_mode(spec, min(size))
    rate = fps if fps and spec.renders_at_target else spec.fps
    frames = max(1, math.ceil(seconds * rate))
    clips = 1 if spec.max_frames is None else math.ceil(frames / spec.max_frames)
    per_frame, scaled = mode.seconds_per_frame, []
    if spec.renders_at_target:
        pixels = max(1.0, size[0] * size[1] / (mode.width * mode.height))
        per_frame *= pixels
        if pixels > 1.0:
            scaled.append(f"x{pixels:.2g} for the pixels above {mode.width}x{mode.height}")
    if spec.is_gpu:
        per_frame *= (steps or DEFAULT_STEPS) / DEFAULT_STEPS
        if steps and steps != DEFAULT_STEPS:
            scaled.append(f"x{steps}/{DEFAULT_STEPS} steps")
        if offload:
            per_frame *= OFFLOAD_SLOWDOWN
            scaled.append(f"x{OFFLOAD_SLOWDOWN:g} with CPU offload")
        if compute == "cpu":
            per_frame *= CPU_SLOWDOWN
            scaled.append(f"x{CPU_SLOWDOWN:g} on the CPU (an assumption)")
    generate = frames * per_frame
    where = "on the CPU" if compute == "cpu" else "on the GPU"
    based_on = (f"estimate from the model catalog's planning figure for {spec.id} {where}: "
                f"{mode.seconds_per_frame:g} s a frame at {mode.resolution}"
                + (f" ({', '.join(scaled)})" if scaled else "")
                + f", {frames} frames, plus {TASK_OVERHEAD_SECONDS:g} s for the other stages; not measured")
    return TimeEstimate(seconds=round(TASK_OVERHEAD_SECONDS + generate, 1), generate_seconds=generate, model=spec.id,
                        compute=compute, frames=frames, clips=clips, mode=mode, based_on=based_on)


def estimate_backend_time(*, backend: dict, seconds: float, size: tuple[int, int], fps: int) -> TimeEstimate:
    """:func:`estimate_time` for a resolved backend (:func:`beatframe.models.backend.resolve_backend`).

    A Wan backend is priced by its catalog entry with its offload, device and steps; one whose
    folder is not in the catalog by the catalog's default model for its task (``based_on`` says
    so). A CPU generator is priced by its own entry.
    """
    name = backend["generator"]
    if name not in WAN_GENERATORS:
        return estimate_time(model=name, seconds=seconds, size=size, fps=fps, compute="cpu")
    model, stand_in = backend.get("catalog_id"), None
    if model is None:
        folder = DEFAULT_WAN_FOLDERS[name.removeprefix("wan-")]
        model = next(spec.id for spec in CATALOG if spec.folder == folder)
        stand_in = f"{backend.get('model')} is not in the model catalog; {model} stands in for it. "
    estimate = estimate_time(model=model, seconds=seconds, size=size, fps=fps, offload=bool(backend.get("offload")),
                             compute=backend.get("compute"), steps=backend.get("steps"))
    if stand_in is None:
        return estimate
    return replace(estimate, based_on=stand_in + estimate.based_on)
