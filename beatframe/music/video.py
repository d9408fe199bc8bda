"""Full-length music videos: the request, shot rendering, joining with the audio, and checks.

A video is rendered shot by shot (each shot its own H.264 clip, so shots render in parallel and a
rerun redoes only missing shots), then the clips are joined without re-encoding and the track's
audio is muxed in as AAC. Memory stays bounded whatever the track's length: frames stream from the
generator through the flash guard into ffmpeg.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beatframe.infra.encode import H264Settings, encode_frames, run_ffmpeg
from beatframe.infra.errors import BadInputError
from beatframe.music.flash import FlashGuard
from beatframe.infra.fsutil import atomic_path
from beatframe.music.schemas import Analysis
from beatframe.music.video_planning import VIDEO_FPS, VideoShot, shot_timeline

#: Faster than the Canvas preset: a video has 20-60x more frames and must render in real time.
VIDEO_H264 = H264Settings(preset="superfast", crf=20)


def parse_video_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (16:9), ``"1080x1920"`` (9:16) or ``"1080x1080"`` (1:1), or smaller sizes of those shapes."""
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX]\s*(\d{2,5})\s*", str(text))
    if not match:
        raise BadInputError(f"size must look like 1920x1080, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    shapes = {(16, 9), (9, 16), (1, 1)}
    from math import gcd

    g = gcd(width, height)
    if (width // g, height // g) not in shapes:
        raise BadInputError(f"a video is 16:9, 9:16 or 1:1; {width}x{height} is none of them")
    if not 256 <= min(width, height) <= 2160 or width % 2 or height % 2:
        raise BadInputError(f"video sides must be even and between 256 and 3840 px, got {width}x{height}")
    return width, height


def section_look(template, *, section: str, energy: float, seed: int):
    """The template and seed for a section: the same label looks the same every time it returns,
    louder sections move faster, hit harder and are denser (the chorus gets the most intense), and
    sections other than the chorus or drop swap the palette's two accent colours, so a section
    change reads as a change of scene."""
    import zlib

    motion = template.motion
    level = float(np.clip(energy, 0.0, 1.0))
    scale = 0.6 + 0.8 * level
    palette = list(template.palette)
    if section not in ("chorus", "drop") and len(palette) >= 4:
        palette[-3], palette[-2] = palette[-2], palette[-3]
    varied = template.model_copy(update={
        "palette": tuple(palette),
        "motion": motion.model_copy(update={
            "speed": min(4.0, motion.speed * scale),
            "zoom_kick": min(1.0, motion.zoom_kick * scale),
            "phase_kick": min(1.0, motion.phase_kick * scale),
            "detail": float(np.clip(motion.detail * (0.7 + 0.6 * level), 0.0, 1.0)),
        }),
    })
    return varied, (seed + zlib.crc32(section.encode())) % (2**31)


@dataclass(frozen=True)
class ShotResult:
    frames: int
    softened_frames: int
    luminance: np.ndarray  # (frames, 5) region luminance of the frames as encoded


def shot_frames(*, generator, analysis: Analysis, shot: VideoShot, previous: VideoShot | None, template,
                size: tuple[int, int], seed: int, fps: int = VIDEO_FPS) -> Iterator[np.ndarray]:
    """The shot's frames; its first ``transition_frames`` blend in from the previous shot's look."""
    # Each shot gets its own seed within its section's look, so a cut inside a section shows a
    # new camera on the same scene rather than the same frames again.
    look, look_seed = section_look(template, section=shot.section, energy=shot.energy, seed=seed + shot.index)
    timeline = shot_timeline(analysis, first_frame=shot.first_frame, frames=shot.frames, section=shot.section,
                             energy=shot.energy, fps=fps)
    frames = generator.render(timeline=timeline, template=look, size=size, seed=look_seed)
    blend = shot.transition_frames if previous is not None and shot.transition_in != "cut" else 0
    if not blend:
        yield from frames
        return
    from beatframe.music.transitions import transition_frame

    prev_look, prev_seed = section_look(template, section=previous.section, energy=previous.energy,
                                        seed=seed + previous.index)
    # The previous shot's scene carries on through the transition, at the same track times.
    outgoing = generator.render(
        timeline=shot_timeline(analysis, first_frame=shot.first_frame, frames=max(2, blend),
                               section=previous.section, energy=previous.energy, fps=fps),
        template=prev_look, size=size, seed=prev_seed)
    for i in range(blend):
        yield transition_frame(shot.transition_in, next(outgoing), next(frames), (i + 1) / (blend + 1))
    yield from frames


def render_shot(*, generator, analysis: Analysis, shot: VideoShot, previous: VideoShot | None, template,
                size: tuple[int, int], seed: int, out_path: Path,
                on_progress: Callable[[float], None] | None = None) -> ShotResult:
    """Render one shot to an H.264 clip at ``out_path`` (atomically), flash-guarded."""
    guard = FlashGuard(fps=VIDEO_FPS)
    step = max(1, shot.frames // 10)

    def progress(i: int) -> None:
        if on_progress is not None and (i % step == 0 or i == shot.frames):
            on_progress(i / shot.frames)

    frames = shot_frames(generator=generator, analysis=analysis, shot=shot, previous=previous,
                         template=template, size=size, seed=seed)
    count = encode_frames(guard.apply(frames), out_path, size=size, fps=VIDEO_FPS, h264=VIDEO_H264,
                          on_frame=progress)
    if count != shot.frames:
        raise RuntimeError(f"shot {shot.index} rendered {count} frames, expected {shot.frames}")
    return ShotResult(frames=count, softened_frames=guard.softened, luminance=np.array(guard.luminance))


def join_with_audio(clips: list[Path], audio: Path, dest: Path) -> None:
    """Join shot clips without re-encoding and mux the track's audio as AAC (atomically)."""
    listing = dest.parent / f".{dest.stem}.concat.txt"
    try:
        with atomic_path(dest) as tmp:
            # Paths are ours (cache keys), but quote them the way the concat demuxer expects anyway.
            listing.write_text("".join("file '{}'\n".format(str(Path(c).resolve()).replace("'", "'\\''"))
                                       for c in clips))
            run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(audio),
                        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k",
                        "-movflags", "+faststart", str(tmp)], what=f"join {len(clips)} shots with {audio.name}")
    finally:
        listing.unlink(missing_ok=True)
