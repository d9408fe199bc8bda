"""Benchmark: Wan generation per model: seconds per clip, it/s, peak memory, step-cache speed-up.

Run by hand from the repository root, on a machine with a GPU and the weights in
``BEATFRAME_MODELS_DIR``::

    BEATFRAME_MODELS_DIR=/models .venv/bin/python benchmarks/gpu.py --models installed \\
        [--seconds 2] [--size 480p|WxH] [--steps 50] [--repeats 1] \\
        [--cache first-block|pyramid] [--compile] [--offload] [--batch N] [--out benchmarks/RESULTS.md]

or, anywhere, ``benchmarks/gpu.py --tiny`` (see below).

Each model (``--models``: catalog ids of :mod:`beatframe.models.model_catalog`, or ``installed`` for every
Wan model whose folder is under ``BEATFRAME_MODELS_DIR``) renders a one-shot clip of
``--seconds`` (its text-to-video task; an image-to-video model starts from a synthesized
picture) at its native mode (``--size``: a mode name such as ``720p`` or ``WxH``; default its
smallest native mode, 480p for the Wan 2.1 models) through :class:`beatframe.models.wan.WanGenerator`, in
rows measured in the same run:

* ``no cache``: the baseline, eager, no step cache;
* the step cache (``--cache``, First Block Cache by default);
* with ``--compile``: regional ``torch.compile`` of the transformer blocks, without and with the
  cache;
* with ``--batch N``: N clips rendered at once by N threads through one pipeline, which
  :mod:`beatframe.models.batching` denoises in batched calls (``max_batch`` N); ``clip s`` is then the
  batch's wall time divided by N, and ``batch`` shows the calls' sizes.

Every row loads its own pipeline (load seconds reported apart, then released), renders one clip
whose wall time is reported as ``1st clip s`` (CUDA start-up and compilation land there), then
``--repeats`` more clips, of which the best is ``clip s``: the wall seconds per clip, every
output frame made (text encoding, denoising, VAE decoding, retiming and framing). Beside it:
denoising it/s (``WanGenerator.stats``; one iteration is one step, two transformer calls with
guidance), peak VRAM (``torch.cuda.max_memory_allocated``, reset before each clip; ``n/a`` on the
CPU), peak RSS of this process (Linux ``VmHWM``, reset before each clip through
``/proc/self/clear_refs``), the share of transformer-block work the cache reused (not measurable
in compiled blocks) and the speed-up over the ``no cache`` row. Memory is in decimal GB, as the
catalog's figures. A row that runs out of GPU memory says so and the run goes on.

``--tiny`` builds the tests' tiny random Wan models (``tests/tiny_wan.py``) into a temporary
models directory and benchmarks them on whatever device there is, by default at 416x240 (the
tiny models take at most 512 px a side): a smoke run proving the script works, labelled as such
in its output, never a real model's performance.

A requested model whose folder is missing or incomplete stops the run before anything loads,
with a one-line error and exit status 2. ``--out FILE`` appends the table, with the date, the
device and the command, to ``FILE``.

Environment: ``BEATFRAME_MODELS_DIR`` (through :mod:`beatframe.infra.settings`; not read with
``--tiny``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beatframe.infra.errors import BadInputError  # noqa: E402
from beatframe.models.model_catalog import ModelSpec, NativeMode, get_model  # noqa: E402

#: the default frame of ``--tiny`` runs: half of Wan's 480p frame on each side
TINY_SIZE = (416, 240)
#: the tiny models' rotary embedding covers 32 patches of 16 px a side
TINY_MAX_SIDE = 512
TEMPLATE = "neon-pulse"
SEED = 0
GUIDANCE = 5.0


@dataclass
class Row:
    """One configuration of one model, measured.

    Attributes
    ----------
    label : str
        ``no cache``, the cache's name, ``compile`` or both.
    cache : str or None
        The step cache (None in the baseline).
    load_seconds : float or None
        Loading the pipeline (None when it ran out of memory while loading).
    clip_seconds : list of float
        Wall seconds of every clip, the first (warm-up) included.
    best : dict
        ``WanGenerator.stats`` of the fastest timed clip.
    vram : float or None
        Peak GPU memory over the timed clips, bytes (None on the CPU).
    rss : float or None
        Peak resident memory over the timed clips, bytes (None where ``/proc`` lacks it).
    out_of_memory : bool
        The row stopped on a CUDA out-of-memory error.
    """

    label: str
    cache: str | None
    load_seconds: float | None = None
    clip_seconds: list[float] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    vram: float | None = None
    rss: float | None = None
    out_of_memory: bool = False


@dataclass(frozen=True)
class Target:
    """A model to benchmark: its catalog entry, task, folder and frame."""

    spec: ModelSpec
    task: str
    folder: Path
    size: tuple[int, int]
    mode: str


# ------------------------------------------------------------------------------------ arguments
def parse_size(value: str, spec: ModelSpec) -> tuple[tuple[int, int], str]:
    """``--size`` for ``spec``: one of its native modes by name, or ``WxH``.

    Parameters
    ----------
    value : str
        ``480p``, ``720p`` ... (a mode ``spec`` has) or ``WIDTHxHEIGHT``.
    spec : ModelSpec

    Returns
    -------
    tuple
        ``((width, height), label)``.

    Raises
    ------
    BadInputError
        An unknown mode for this model or a malformed size.
    """
    modes = {m.resolution: m for m in spec.modes}
    if value in modes:
        return _mode_size(modes[value])
    match = re.fullmatch(r"(\d+)x(\d+)", value.strip())
    if not match or int(match[1]) < 16 or int(match[2]) < 16:
        raise BadInputError(f"--size {value!r} is neither a native mode of {spec.id} "
                            f"({', '.join(modes)}) nor WIDTHxHEIGHT (16 px a side at least)")
    w, h = int(match[1]), int(match[2])
    return (w, h), f"{w}x{h}"


def _mode_size(mode: NativeMode) -> tuple[tuple[int, int], str]:
    return (mode.width, mode.height), f"{mode.resolution} {mode.width}x{mode.height}"


def resolve_targets(ids: list[str], *, models_dir: Path | None, size: str | None,
                    tiny: bool) -> list[Target]:
    """The models to benchmark, each folder checked complete before anything loads.

    Parameters
    ----------
    ids : list of str
        Catalog ids, or ``installed``.
    models_dir : pathlib.Path or None
        Where the folders are (``BEATFRAME_MODELS_DIR``).
    size : str or None
        ``--size`` (None: the model's smallest native mode, or :data:`TINY_SIZE` with ``tiny``).
    tiny : bool
        The tiny random models are benchmarked (their frames are limited to 512 px a side).

    Returns
    -------
    list of Target

    Raises
    ------
    BadInputError
        No models directory, an unknown id, a CPU generator, a missing or incomplete folder
        (naming the Hub repository to download it from), or a bad ``--size``.
    """
    from beatframe.models.orchestrator import installed_models
    from beatframe.models.wan_loader import check_model_folder, resolve_model_folder

    if models_dir is None:
        raise BadInputError("BEATFRAME_MODELS_DIR is not set: point it at the folder holding the "
                            "Wan weights (or run with --tiny)")
    wanted: list[str] = []
    for model_id in ids:
        if model_id == "installed":
            found = [i for i in installed_models(models_dir) if get_model(i).folder is not None]
            if not found:
                raise BadInputError(f"no Wan model folders under {models_dir}")
            wanted += found
        else:
            wanted.append(model_id)
    targets = []
    for model_id in dict.fromkeys(wanted):
        spec = get_model(model_id)
        if spec.folder is None:
            raise BadInputError(f"{model_id} is a CPU generator; this benchmark measures the "
                                "generative (Wan) models")
        task = spec.tasks[0]
        folder = resolve_model_folder(model=spec.folder, models_dir=models_dir)
        try:
            check_model_folder(folder=folder, kind=task)
        except BadInputError as e:
            raise BadInputError(f"{model_id}: {e}; get it with `huggingface-cli download "
                                f"{spec.hub_repo} --local-dir {folder}`") from None
        if size is not None:
            frame, mode = parse_size(size, spec)
        elif tiny:
            frame, mode = TINY_SIZE, f"{TINY_SIZE[0]}x{TINY_SIZE[1]}"
        else:
            frame, mode = _mode_size(spec.modes[0])
        if tiny and max(frame) > TINY_MAX_SIDE:
            raise BadInputError(f"--size {mode}: the tiny models take at most {TINY_MAX_SIDE} px "
                                "a side")
        targets.append(Target(spec=spec, task=task, folder=folder, size=frame, mode=mode))
    return targets


# ------------------------------------------------------------------------------------- measuring
def device_name(device) -> str:
    """The GPU's name, or the CPU's model and how many cores this process may use."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores (CPU)"


def reset_peaks(device) -> None:
    """Start the peak-memory counters afresh (GPU allocator; this process's VmHWM)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # VmHWM then stays the process's peak so far: still an upper bound


def peak_vram(device) -> float | None:
    """Peak bytes the CUDA allocator held since :func:`reset_peaks` (None on the CPU)."""
    import torch

    return float(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def peak_rss() -> float | None:
    """This process's peak resident bytes since :func:`reset_peaks` (None without ``/proc``)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return float(match[1]) * 1024 if match else None


def synthesized_picture(path: Path) -> Path:
    """A 640x640 picture (gradients and a disc) for image-to-video models."""
    import cv2
    import numpy as np

    yy, xx = np.mgrid[0:640, 0:640]
    img = np.stack([xx * 255 // 639, yy * 255 // 639, (xx + yy) * 255 // 1278], -1).astype(np.uint8)
    img = np.ascontiguousarray(img)
    cv2.circle(img, (320, 320), 160, (250, 240, 40), -1)
    cv2.imwrite(str(path), img[..., ::-1])
    return path


def measure(target: Target, *, label: str, cache: str | None, compile_: bool, models_dir: Path,
            args: argparse.Namespace, image: Path, batch: int = 1) -> Row:
    """Load ``target`` with one configuration, render ``1 + args.repeats`` clips, release it.

    Parameters
    ----------
    target : Target
    label : str
        The row's name.
    cache : str or None
        The step cache, or none.
    compile_ : bool
        Regional ``torch.compile`` of the transformer blocks.
    models_dir : pathlib.Path
    args : argparse.Namespace
        ``seconds``, ``steps``, ``repeats``, ``cache_threshold`` and ``offload``.
    image : pathlib.Path
        The first frame for image-to-video models.
    batch : int
        Clips rendered at once (by as many threads), sharing batched denoising calls.

    Returns
    -------
    Row
    """
    from beatframe.models.motion import grid_timeline
    from beatframe.models.registry import get_generator
    from beatframe.models.wan import DEFAULT_MAX_NATIVE_FRAMES
    from beatframe.models.wan_loader import WanOptions, is_out_of_memory

    spec = target.spec
    options = WanOptions(offload=args.offload, cache=cache, cache_threshold=args.cache_threshold,
                         compile=compile_, max_area=target.size[0] * target.size[1], max_batch=batch)
    extra = {"image_path": image} if target.task == "i2v" else {}
    gens = [get_generator(spec.generator_for(target.task), model=spec.folder, models_dir=models_dir,
                          guidance_scale=GUIDANCE, num_inference_steps=args.steps, min_steps=1,
                          native_fps=spec.fps,
                          max_native_frames=spec.max_frames or DEFAULT_MAX_NATIVE_FRAMES,
                          options=options, **extra) for _ in range(batch)]
    gen = gens[0]
    # one 4/4 bar lasting the clip: a one-shot clip (a video shot), no loop tail
    timeline = grid_timeline(bpm=240.0 / args.seconds, bars=1, meter=4, periodic=False)
    row = Row(label=label, cache=cache)

    def one_clip(index: int) -> None:
        for _ in gens[index].render(timeline=timeline, template=TEMPLATE, size=target.size, seed=SEED + index):
            pass

    try:
        t0 = time.perf_counter()
        loaded = gen.pipeline()
        row.load_seconds = time.perf_counter() - t0
        for i in range(1 + args.repeats):
            reset_peaks(loaded.device)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(batch) as pool:
                list(pool.map(one_clip, range(batch)))
            seconds = (time.perf_counter() - t0) / batch
            row.clip_seconds.append(seconds)
            if i == 0:
                continue
            vram, rss = peak_vram(loaded.device), peak_rss()
            row.vram = vram if row.vram is None else max(row.vram, vram)
            row.rss = rss if row.rss is None else max(row.rss, rss)
            if seconds <= min(row.clip_seconds[1:]):
                row.best = dict(gen.stats)
    except Exception as e:  # noqa: BLE001 - only out-of-memory is recorded, the rest re-raised
        if not is_out_of_memory(error=e):
            raise
        row.out_of_memory = True
    finally:
        gen.close()
    return row


# ------------------------------------------------------------------------------------ the table
def _gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e9:.2f}"


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(results: list[tuple[Target, list[Row]]], *, tiny: bool) -> str:
    """The markdown table: one line per row, the speed-up against each model's ``no cache``."""
    head = ["model", "frame", "run", "load s", "1st clip s", "clip s", "it/s", "batch", "peak VRAM GB",
            "peak RSS GB", "reuse", "speed-up"]
    lines = []
    for target, rows in results:
        name = f"{target.spec.id} (tiny random)" if tiny else target.spec.id
        baseline = rows[0]
        for row in rows:
            if row.out_of_memory:
                lines.append([name, target.mode, row.label, _fmt(row.load_seconds, 1),
                              "out of memory"] + [""] * 7)
                continue
            best = min(row.clip_seconds[1:])
            stats = row.best
            frame = f"{target.mode} -> {stats['render_size'][0]}x{stats['render_size'][1]}, " \
                    f"{stats['native_frames']} fr"
            if row.cache is None:
                reuse = "-"
            elif stats["cache_reuse_rate"] is None:
                reuse = "n/a (compiled)"
            else:
                reuse = f"{stats['cache_reuse_rate']:.0%}"
            if row is baseline:
                speedup = "1.00x (baseline)"
            elif baseline.out_of_memory:
                speedup = "n/a"
            else:
                speedup = f"{min(baseline.clip_seconds[1:]) / best:.2f}x"
            lines.append([name, frame, row.label, _fmt(row.load_seconds, 1),
                          _fmt(row.clip_seconds[0], 2), _fmt(best, 2), _fmt(stats["it_per_s"], 2),
                          str(stats.get("batch_size", 1)), _gb(row.vram), _gb(row.rss), reuse, speedup])
    widths = [max(len(head[k]), *(len(line[k]) for line in lines)) for k in range(len(head))]
    numeric = set(range(3, len(head)))

    def cells(values):
        return "| " + " | ".join(v.rjust(w) if k in numeric else v.ljust(w)
                                 for k, (v, w) in enumerate(zip(values, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if k in numeric else "-" * (w + 2)
                          for k, w in enumerate(widths)) + "|"
    return "\n".join([cells(head), rule] + [cells(line) for line in lines])


# ----------------------------------------------------------------------------------------- main
def quiet_progress_bars() -> None:
    """Silence diffusers' and transformers' loading and saving progress bars."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def run(args: argparse.Namespace, models_dir: Path, work: Path) -> tuple[str, str]:
    """Benchmark every requested model.

    Returns
    -------
    tuple of str
        The setup lines (device, versions, clip) and the markdown table.

    Raises
    ------
    BadInputError
        Before anything loads: a model that cannot be benchmarked (see
        :func:`resolve_targets`), or options this machine cannot run (offload without CUDA) or
        out of range.
    """
    targets = resolve_targets(args.models, models_dir=models_dir, size=args.size, tiny=args.tiny)
    import diffusers
    import torch

    from beatframe.models.wan_loader import WanOptions, resolve_device

    quiet_progress_bars()

    try:
        device, dtype = resolve_device(options=WanOptions(
            offload=args.offload, cache=args.cache, cache_threshold=args.cache_threshold))
    except ValueError as e:
        raise BadInputError(str(e)) from None
    configs = [("no cache", None, False, 1), (args.cache, args.cache, False, 1)]
    if args.compile:
        configs += [("compile", None, True, 1), (f"{args.cache} + compile", args.cache, True, 1)]
    if args.batch > 1:
        configs.append((f"batch x{args.batch}", None, False, args.batch))
    image = synthesized_picture(work / "picture.png")
    setup = [f"device: {device_name(device)}; {str(dtype).removeprefix('torch.')}"
             f"{', model CPU offload' if args.offload else ''}; torch {torch.__version__}, "
             f"diffusers {diffusers.__version__}",
             f"clip: {args.seconds:g} s one-shot, {args.steps} steps, guidance {GUIDANCE:g}, "
             f"seed {SEED}; cache {args.cache}"
             f"{f' (threshold {args.cache_threshold:g})' if args.cache == 'first-block' else ''}; "
             f"1 warm-up clip + best of {args.repeats}"]
    if args.tiny:
        setup.insert(0, "TINY RANDOM MODELS (tests/tiny_wan.py): a smoke run of this script, "
                        "not a real model's performance")
    print("\n".join(setup), flush=True)
    results = []
    for target in targets:
        rows = []
        for label, cache, compile_, batch in configs:
            print(f"  {target.spec.id}: {label} ...", flush=True)
            rows.append(measure(target, label=label, cache=cache, compile_=compile_,
                                models_dir=models_dir, args=args, image=image, batch=batch))
        results.append((target, rows))
    return "\n".join(setup), format_table(results, tiny=args.tiny)


def main() -> int:
    from beatframe.models.wan_loader import CACHES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["installed"],
                        help="catalog ids, or 'installed' (every Wan folder in the models dir)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length (default 2)")
    parser.add_argument("--size", help="a native mode (480p, 720p) or WIDTHxHEIGHT; default the "
                                       "model's smallest native mode (416x240 with --tiny)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed clips per row after the warm-up clip (default 1)")
    parser.add_argument("--cache", choices=CACHES, default="first-block")
    parser.add_argument("--cache-threshold", type=float, default=0.05,
                        help="First Block Cache threshold (default 0.05)")
    parser.add_argument("--compile", action="store_true",
                        help="add rows with torch.compile of the transformer blocks")
    parser.add_argument("--offload", action="store_true", help="model CPU offload (CUDA only)")
    parser.add_argument("--batch", type=int, default=1, choices=range(1, 9), metavar="N",
                        help="also render N clips at once in batched calls (1-8; default 1: no such row)")
    parser.add_argument("--tiny", action="store_true",
                        help="benchmark the tests' tiny random models (a smoke run)")
    parser.add_argument("--out", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()
    if not 0 < args.seconds <= 60:
        parser.error("--seconds must be within (0, 60]")
    if not 0 < args.cache_threshold < 1:
        parser.error("--cache-threshold must be within (0, 1)")
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")

    with tempfile.TemporaryDirectory(prefix="beatframe-gpu-bench-") as tmp:
        work = Path(tmp)
        try:
            if args.tiny:
                sys.path.insert(0, str(ROOT / "tests"))
                from tiny_wan import build_tiny_wan_models

                quiet_progress_bars()
                models_dir = build_tiny_wan_models(work / "models")
            else:
                from beatframe.infra.settings import get_settings

                models_dir = get_settings().models_dir
            setup, table = run(args, models_dir, work)
        except BadInputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print("\n" + table)
    if args.out is not None:
        when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        command = shlex.join(["benchmarks/gpu.py"] + sys.argv[1:])
        with args.out.open("a") as f:
            bullets = "\n".join(f"- {line}" for line in setup.splitlines())
            f.write(f"\n### `{command}`, {when}\n\n{bullets}\n\n{table}\n")
        print(f"\nappended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
