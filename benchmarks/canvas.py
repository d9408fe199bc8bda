"""Benchmark: a Canvas of a synthesized 3-minute track, stage by stage, against the bare encoder.

Run by hand from the repository root::

    .venv/bin/python benchmarks/canvas.py [--template NAME] [--size 720x1280] [--repeat 3]

It prints two tables:

1. Stages run as plain functions (analysis, planning, generation alone, the flash guard, the
   encode of the generated frames, checks) with frames per second, next to the *bare encoder*:
   the same raw frames, already in memory, piped to libx264 with the same preset and settings.
2. The whole ``render_canvas`` Prefect flow in a warm process (interpreter start, imports and
   the local Prefect server's start excluded; every cache cold), its seconds by stage from the
   run's cost log, and its ratio to the bare encoder (target: <= 2x).

Everything runs in a temporary data folder; the local Prefect server it starts is stopped at
the end. Times are best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--template", default="neon-pulse")
    parser.add_argument("--size", default="720x1280")
    parser.add_argument("--seconds", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="beatframe-bench-"))
    os.environ["BEATFRAME_DATA_DIR"] = str(work / "data")
    os.environ.pop("BEATFRAME_S3_ENDPOINT", None)

    from beatframe.music.analysis import analyze
    from beatframe.music.canvas import loop_frames
    from beatframe.music.render_requests import parse_canvas_size
    from beatframe.music.check import CanvasSpec, check_canvas
    from beatframe.infra.encode import CANVAS_H264, encode_frames
    from beatframe.music.flash import FlashGuard
    from beatframe.music.planning import loop_timeline, plan_canvas
    from beatframe.infra.settings import get_settings
    from beatframe.music.synth import synthesize_track, write_wav
    from beatframe.music.templates import load_template
    from beatframe.models.registry import get_generator

    size = parse_canvas_size(args.size)
    template = load_template(args.template)
    track = synthesize_track(seed=11)
    audio = write_wav(work / "track.wav", track)
    print(f"track: synthesized, {len(track.y) / track.sample_rate:.0f} s at {track.bpm:g} BPM; "
          f"template {template.name}, {size[0]}x{size[1]}, libx264 preset {CANVAS_H264.preset} crf {CANVAS_H264.crf}; "
          f"{os.cpu_count()} CPUs; best of {args.repeat}\n")

    analyze(audio)  # warm-up: numba and librosa compile on first use
    t_analyze, analysis = best_of(args.repeat, lambda: analyze(audio))
    t_plan, plan = best_of(args.repeat, lambda: plan_canvas(analysis, seconds=args.seconds,
                                                            loop_mode=template.default_loop, scene=template.scene))
    timeline = loop_timeline(analysis, plan)
    generator = get_generator("procedural")

    def generate():
        return list(loop_frames(generator.render(timeline=timeline, template=template, size=size, seed=0,
                                                 cut_on_downbeats=plan.loop_mode == "hard_cut"),
                                plan.loop_mode))

    t_generate, frames = best_of(args.repeat, generate)
    t_guard, _ = best_of(args.repeat, lambda: list(FlashGuard(fps=timeline.fps).apply(frames)))
    bare = work / "bare.mp4"
    t_bare, _ = best_of(args.repeat, lambda: encode_frames(iter(frames), bare, size=size, fps=timeline.fps))
    t_check, _ = best_of(args.repeat, lambda: check_canvas(bare, spec=CanvasSpec(width=size[0], height=size[1]),
                                                           loop_mode=plan.loop_mode))
    n = len(frames)
    rows = [
        ("analyze (3-min track)", t_analyze, None),
        ("plan", t_plan, None),
        ("generate frames", t_generate, n / t_generate),
        ("flash guard", t_guard, n / t_guard),
        ("bare encoder (frames in memory)", t_bare, n / t_bare),
        ("check (decode, seam, flash)", t_check, n / t_check),
    ]
    print(f"Stages as plain functions, {n} frames ({plan.bars} bars, {plan.loop_mode}):")
    print(f"| {'stage':<34} | {'seconds':>8} | {'frames/s':>8} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 10}|")
    for name, seconds, fps in rows:
        print(f"| {name:<34} | {seconds:8.3f} | {(f'{fps:8.1f}' if fps else ''):>8} |")

    # The whole flow, warm: Prefect on a local server started before timing. Each timed run gets
    # an empty data folder (cold caches, analysis included) and renders the very frames above.
    from beatframe.infra.prefect_local import ensure_api, stop_server

    ensure_api(get_settings())
    server_settings = get_settings()
    try:
        from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

        from beatframe.flows.canvas import render_canvas

        def flow_run(data_dir: Path, out: Path, seed: int) -> dict:
            os.environ["BEATFRAME_DATA_DIR"] = str(data_dir)
            get_settings.cache_clear()
            with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: data_dir / "results"}):
                return render_canvas(audio=str(audio), out_dir=str(out), template=args.template,
                                     seconds=args.seconds, seed=seed, size=args.size)

        flow_run(work / "warmup", work / "warmup-out", 999)  # warms Prefect's client paths
        cold, manifests = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            manifests.append(flow_run(work / f"cold{i}", work / f"out{i}", 0))
            cold.append(time.perf_counter() - t0)
        t_rerun, _ = best_of(args.repeat, lambda: flow_run(work / "cold0", work / "rerun", 0))
    finally:
        stop_server(server_settings)

    manifest = manifests[cold.index(min(cold))]
    print("\nWhole render_canvas flow in a warm process, cold caches (its cost log, best run):")
    print(f"| {'stage':<34} | {'seconds':>8} |")
    print(f"|{'-' * 36}|{'-' * 10}|")
    for line in manifest["cost"]["lines"]:
        print(f"| {line['stage']:<34} | {line['seconds']:8.3f} |")
    print(f"| {'flow total (cold caches)':<34} | {min(cold):8.3f} |")
    print(f"| {'flow total, rerun (all cached)':<34} | {t_rerun:8.3f} |")
    print(f"| {'bare encoder, same frames':<34} | {t_bare:8.3f} |")
    print(f"\nwarm render / bare encoder: {min(cold) / t_bare:.2f}x (target <= 2x); "
          f"rerun speed-up {min(cold) / t_rerun:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
