"""Benchmark: a full-length 1080p music video of a synthesized 3-minute track.

Run by hand from the repository root::

    .venv/bin/python benchmarks/video.py [--template NAME] [--size 1920x1080] [--seconds 180]

Prints the ``render_video`` flow's seconds by stage (its cost log) in a warm process with cold
caches, the real-time factor (render seconds / track seconds; target <= 1 on 2 cores), peak
memory (this process and, separately, the largest child process, i.e. an ffmpeg encoder;
target < 2 GB), and beside them the bare encoder: raw frames from the same generator, already
in memory, piped to libx264 with the same preset. A whole 1080p video does not fit in memory as
raw frames, so the bare encoder runs afterwards on a sample of frames and is scaled to the video's length (peak
memory is read before the sample is made).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--template", default="neon-pulse")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=180.0, help="approximate track length")
    parser.add_argument("--sample-frames", type=int, default=240)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="beatframe-video-bench-"))
    os.environ["BEATFRAME_DATA_DIR"] = str(work / "data")
    os.environ.pop("BEATFRAME_S3_ENDPOINT", None)

    from beatframe.music.analysis import analyze
    from beatframe.infra.encode import encode_frames
    from beatframe.infra.prefect_local import ensure_api, stop_server
    from beatframe.infra.settings import get_settings
    from beatframe.music.synth import DEFAULT_SECTIONS, synthesize_track, write_wav
    from beatframe.music.templates import load_template
    from beatframe.music.video import VIDEO_H264, parse_video_size, shot_frames
    from beatframe.music.video_planning import plan_video
    from beatframe.models.registry import get_generator

    size = parse_video_size(args.size)
    bars_wanted = args.seconds / 2.0  # 120 BPM, 4/4
    total_bars = sum(b for _, b, _ in DEFAULT_SECTIONS)
    sections = [(label, max(1, round(bars * bars_wanted / total_bars)), energy) for label, bars, energy in DEFAULT_SECTIONS]
    track = synthesize_track(seed=21, sections=sections)
    audio = write_wav(work / "track.wav", track)
    seconds = len(track.y) / track.sample_rate
    print(f"track: synthesized, {seconds:.1f} s at {track.bpm:g} BPM; template {args.template}, "
          f"{size[0]}x{size[1]}, libx264 preset {VIDEO_H264.preset} crf {VIDEO_H264.crf}; {os.cpu_count()} CPUs\n")

    analyze(audio)  # warm-up: librosa and numba compile on first use (the flow still analyses afresh)
    ensure_api(get_settings())
    try:
        from beatframe.flows.video import render_video

        t0 = time.perf_counter()
        manifest = render_video(audio=str(audio), out_dir=str(work / "out"), template=args.template, size=args.size)
        elapsed = time.perf_counter() - t0
    finally:
        stop_server(get_settings())

    own_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    # Bare encoder on a sample of the same generator's frames, held in memory.
    analysis = analyze(audio)
    shots = plan_video(analysis)
    template = load_template(args.template)
    generator = get_generator("procedural")
    sample = []
    for i, shot in enumerate(shots):
        for frame in shot_frames(generator=generator, analysis=analysis, shot=shot,
                                 previous=shots[i - 1] if i else None, template=template, size=size, seed=0):
            sample.append(frame)
            if len(sample) >= args.sample_frames:
                break
        if len(sample) >= args.sample_frames:
            break
    t0 = time.perf_counter()
    encode_frames(iter(sample), work / "bare.mp4", size=size, fps=30, h264=VIDEO_H264)
    bare_fps = len(sample) / (time.perf_counter() - t0)
    del sample
    total_frames = round(seconds * 30)
    bare_seconds = total_frames / bare_fps

    print(f"render_video flow, warm process, cold caches ({len(manifest['plan']['shots'])} shots, {total_frames} frames):")
    print(f"| {'stage':<32} | {'seconds':>8} |")
    print(f"|{'-' * 34}|{'-' * 10}|")
    for line in manifest["cost"]["lines"]:
        print(f"| {line['stage']:<32} | {line['seconds']:8.2f} |")
    print(f"| {'flow total':<32} | {elapsed:8.2f} |")
    print(f"| {'bare encoder, same frames (est.)':<32} | {bare_seconds:8.2f} |")
    print(f"\nreal-time factor: {elapsed / seconds:.2f} (target <= 1.0); render / bare encoder {elapsed / bare_seconds:.2f}x; "
          f"bare encoder {bare_fps:.1f} fps on a {args.sample_frames}-frame sample")
    print(f"peak memory during the flow: this process {own_peak_mb:.0f} MB, "
          f"largest child process {child_peak_mb:.0f} MB (target < 2048 MB)")
    print(f"checks: {manifest['checks']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
