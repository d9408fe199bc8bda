"""Checks on a rendered file: container facts, the Canvas spec, loop seam and flash safety.

The output is probed with PyAV (codec, pixel format, size, frame rate, duration, audio streams),
its MP4 box order is read to confirm faststart, and its decoded frames are measured for the loop
seam (the same metric as the independent judge, ``shared/tools/vidcheck.py``) and for
photosensitive flashes (:mod:`beatframe.music.flash`).
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from beatframe.music.flash import MAX_FLASHES_PER_SECOND, max_flashes_per_second, region_luminance

SEAM_RATIO_LIMIT = 1.5


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    fps: float
    duration: float
    frames: int
    codec: str
    pix_fmt: str
    audio_streams: int
    bytes: int
    faststart: bool


def moov_before_mdat(path: Path) -> bool:
    """True when the MP4's index (moov box) precedes its media data, so playback starts at once."""
    with open(path, "rb") as f:
        while True:
            header = f.read(8)
            if len(header) < 8:
                return False
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:
                return False
            f.seek(size - 8, 1)


def probe(path: Path) -> VideoFacts:
    """Container and stream facts of a video file."""
    path = Path(path)
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path.name} has no video stream")
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        return VideoFacts(
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=float(rate) if rate else 0.0,
            duration=duration,
            frames=video.frames,
            codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt or "",
            audio_streams=len(container.streams.audio),
            bytes=path.stat().st_size,
            faststart=moov_before_mdat(path),
        )


def decode_small(path: Path, *, size: tuple[int, int] = (180, 320)) -> tuple[np.ndarray, np.ndarray]:
    """Decode every frame at ``size``: grey levels ``(n, h, w)`` and region luminance ``(n, 5)``."""
    grey, lum = [], []
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for frame in container.decode(video=0):
            small = frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")
            grey.append(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32))
            lum.append(region_luminance(small))
    return np.array(grey), np.array(lum)


def seam_ratio(grey: np.ndarray, fps: float) -> float:
    """The step from the last frame back to the first, against the clip's own steps.

    Frames are normalized to zero mean and unit variance so brightness pulses do not count; the
    yardstick is the larger of the median step and the 90th percentile of accent steps (a loop
    that restarts on a beat may jump there as it does on every beat). A seamless loop is <= 1.5.
    """
    if len(grey) < 3:
        return float("inf")
    z = (grey - grey.mean(axis=(1, 2), keepdims=True)) / (grey.std(axis=(1, 2), keepdims=True) + 1e-6)
    z_steps = np.abs(np.diff(z, axis=0)).mean(axis=(1, 2))
    steps = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    seam = float(np.abs(z[0] - z[-1]).mean())
    median = float(np.median(z_steps))
    accents = accent_frames(steps, fps) if len(steps) > 3 else np.array([], dtype=int)
    accent_p90 = float(np.percentile(z_steps[accents], 90)) if len(accents) >= 2 else 0.0
    reference = max(median, accent_p90)
    if reference <= 1e-6:
        return 0.0 if seam < 1e-6 else float("inf")
    return seam / reference


def accent_frames(steps: np.ndarray, fps: float) -> np.ndarray:
    """Indices where frame-to-frame change peaks: the clip's visual hits."""
    from scipy.signal import find_peaks  # scipy.signal takes a second to import; only checks need it

    prominence = 0.25 * (np.percentile(steps, 99) - np.percentile(steps, 10))
    peaks, _ = find_peaks(steps, prominence=max(prominence, 1e-6), distance=max(1, int(fps * 0.15)))
    return peaks


def stream_problems(facts: VideoFacts, *, width: int, height: int, fps: float) -> list[str]:
    """What every output must be: H.264 yuv420p at the asked size and frame rate, index first."""
    problems = []
    if facts.codec != "h264":
        problems.append(f"codec is {facts.codec}, not h264")
    if facts.pix_fmt != "yuv420p":
        problems.append(f"pixel format is {facts.pix_fmt}, not yuv420p")
    if (facts.width, facts.height) != (width, height):
        problems.append(f"size is {facts.width}x{facts.height}, not {width}x{height}")
    if abs(facts.fps - fps) > 0.01:
        problems.append(f"frame rate is {facts.fps:.3f}, not {fps:g}")
    if not facts.faststart:
        problems.append("the MP4 index is not at the front (faststart)")
    return problems


@dataclass(frozen=True)
class CanvasSpec:
    width: int = 720
    height: int = 1280
    fps: int = 30
    min_seconds: float = 3.0
    max_seconds: float = 8.0


def check_canvas(path: Path, *, spec: CanvasSpec, loop_mode: str) -> dict:
    """Probe and measure a Canvas; ``spec_ok`` is False with ``problems`` when it fails the spec.

    The loop seam is required only for the seamless modes (``continuous`` and ``rebound``);
    a ``hard_cut`` loop restarts on a downbeat cut by design, so its seam is reported, not judged.
    """
    facts = probe(path)
    grey, lum = decode_small(path)
    problems = stream_problems(facts, width=spec.width, height=spec.height, fps=spec.fps)
    if facts.width * 16 != facts.height * 9:
        problems.append(f"{facts.width}x{facts.height} is not 9:16")
    if not spec.min_seconds - 0.05 <= facts.duration <= spec.max_seconds + 0.05:
        problems.append(f"duration {facts.duration:.2f} s is outside {spec.min_seconds:g}-{spec.max_seconds:g} s")
    if facts.audio_streams:
        problems.append(f"has {facts.audio_streams} audio stream(s); a Canvas is silent")
    flashes = max_flashes_per_second(lum, facts.fps or spec.fps)
    flash_safe = flashes <= MAX_FLASHES_PER_SECOND
    if not flash_safe:
        problems.append(f"{flashes} flashes in one second (at most {MAX_FLASHES_PER_SECOND})")
    ratio = seam_ratio(grey, facts.fps or spec.fps)
    seam_required = loop_mode != "hard_cut"
    if seam_required and ratio > SEAM_RATIO_LIMIT:
        problems.append(f"visible loop seam (seam ratio {ratio:.2f} > {SEAM_RATIO_LIMIT})")
    return {
        "spec_ok": not problems,
        "problems": problems,
        "probe": asdict(facts),
        "flash": {"max_flashes_per_s": flashes, "safe": flash_safe},
        "loop": {"mode": loop_mode, "seam_ratio": round(ratio, 3), "seamless_required": seam_required},
    }


def audio_codecs(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.codec_context.name for stream in container.streams.audio]


def check_video(path: Path, *, width: int, height: int, track_seconds: float, luminance: np.ndarray,
                fps: int = 30) -> dict:
    """Probe a music video against its spec: H.264 yuv420p at the asked size and frame rate, as long
    as the track (±0.1 s), with one AAC audio stream, faststart; flashes counted on ``luminance``,
    the region luminance of every frame as it went to the encoder (decoding a full-length video
    again would cost as much as rendering it)."""
    facts = probe(path)
    problems = stream_problems(facts, width=width, height=height, fps=fps)
    if abs(facts.duration - track_seconds) > 0.1:
        problems.append(f"lasts {facts.duration:.2f} s but the track lasts {track_seconds:.2f} s")
    codecs = audio_codecs(path)
    if codecs != ["aac"]:
        problems.append(f"audio streams are {codecs or 'missing'}, not one AAC stream")
    flashes = max_flashes_per_second(luminance, fps) if len(luminance) else 0
    return _verdict(facts, problems, flashes, audio=codecs)


def check_generation(path: Path, *, width: int, height: int, fps: int, seconds: float) -> dict:
    """Probe a prompt's generated clip: the stream spec, silent, ``seconds`` long (within a frame),
    flash-safe on its decoded frames."""
    facts = probe(path)
    _, lum = decode_small(path)
    problems = stream_problems(facts, width=width, height=height, fps=fps)
    if abs(facts.duration - seconds) > 1.0 / fps + 1e-3:
        problems.append(f"lasts {facts.duration:.3f} s, not {seconds:.3f} s")
    if facts.audio_streams:
        problems.append(f"has {facts.audio_streams} audio stream(s); a generated clip is silent")
    return _verdict(facts, problems, max_flashes_per_second(lum, fps))


def _verdict(facts: VideoFacts, problems: list[str], flashes: int, **extra) -> dict:
    """A check's result: the problems found, with too many flashes per second among them."""
    if flashes > MAX_FLASHES_PER_SECOND:
        problems.append(f"{flashes} flashes in one second (at most {MAX_FLASHES_PER_SECOND})")
    return {"spec_ok": not problems, "problems": problems, "probe": asdict(facts), **extra,
            "flash": {"max_flashes_per_s": flashes, "safe": flashes <= MAX_FLASHES_PER_SECOND}}
