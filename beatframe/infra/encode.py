"""Encoding frames to H.264 MP4 through the ffmpeg binary shipped by ``imageio-ffmpeg``.

``imageio_ffmpeg.write_frames`` pipes raw RGB frames to ffmpeg while the caller keeps generating,
so generation and encoding overlap on separate cores. Every file is written to a temporary name
beside its destination and moved into place only when ffmpeg exits cleanly, so a failed or
interrupted encode never leaves a half-written video behind.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from beatframe.infra.fsutil import atomic_path

# imageio-ffmpeg starts ffmpeg with a preexec_fn (to shield it from Ctrl-C), and a preexec_fn can
# deadlock fork() while other threads run native code: shots render in parallel threads. Without
# it, Ctrl-C reaches ffmpeg too, which only ends an encode that is being abandoned anyway.
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")


@dataclass(frozen=True)
class H264Settings:
    """libx264 settings shared by every render and by the bare-encoder benchmark."""

    preset: str = "medium"
    crf: int = 18
    profile: str = "high"

    def output_params(self) -> list[str]:
        return [
            "-preset", self.preset,
            "-crf", str(self.crf),
            "-profile:v", self.profile,
            "-movflags", "+faststart",
            # BT.709 tags so players do not guess the colour matrix of an HD frame.
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-an",
        ]


CANVAS_H264 = H264Settings()


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_frames(
    frames: Iterable[np.ndarray],
    out_path: Path,
    *,
    size: tuple[int, int],
    fps: int,
    h264: H264Settings = CANVAS_H264,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Encode RGB uint8 frames of ``size`` (width, height) to a silent H.264 MP4.

    Returns the number of frames written. ``on_frame(i)`` is called after each frame (progress).
    The file appears at ``out_path`` only once ffmpeg has finished successfully.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")
    with atomic_path(Path(out_path)) as tmp:
        return _pipe_to_ffmpeg(frames, tmp, size=size, fps=fps, h264=h264, on_frame=on_frame)


def _pipe_to_ffmpeg(frames, tmp: Path, *, size, fps, h264, on_frame) -> int:
    width, height = size
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (width, height),
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        fps=fps,
        quality=None,
        codec="libx264",
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=h264.output_params(),
    )
    count = 0
    try:
        writer.send(None)
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(
                    f"frame {count} is {frame.shape} {frame.dtype}, expected ({height}, {width}, 3) uint8"
                )
            writer.send(np.ascontiguousarray(frame))
            count += 1
            if on_frame is not None:
                on_frame(count)
    finally:
        writer.close()
    if count == 0:
        raise ValueError("no frames to encode")
    return count


def remux_faststart(src: Path, dest: Path) -> None:
    """Copy ``src``'s streams into ``dest`` with the index (moov) first, without re-encoding."""
    with atomic_path(dest) as tmp:
        run_ffmpeg(["-i", str(src), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(tmp)],
                    what=f"remux {src}")


def extract_poster(video: Path, dest: Path, *, at_seconds: float = 0.0, quality: int = 3,
                   width: int | None = None) -> None:
    """Write one frame of ``video`` as a JPEG poster (atomically), scaled to ``width`` if given."""
    scale = ["-vf", f"scale={width}:-2"] if width else []
    with atomic_path(dest) as tmp:
        run_ffmpeg(["-ss", f"{at_seconds:.3f}", "-i", str(video), "-frames:v", "1", *scale,
                     "-q:v", str(quality), str(tmp)], what=f"extract a poster from {video}")
        if tmp.stat().st_size == 0:
            raise RuntimeError(f"ffmpeg wrote an empty poster for {video}")


def run_ffmpeg(args: list[str], *, what: str) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not {what}: {proc.stderr.strip()[-500:]}")


#: The most frame data a post-production step holds in memory (frames x height x width x 3 bytes).
MAX_CLIP_BYTES = 3 * 10**9


def decode_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video as RGB uint8, and its frame rate (for post-production steps, which
    need the whole clip: optical flow looks both ways). Refuses clips over :data:`MAX_CLIP_BYTES`
    of frames and files that are not videos, with a BadInputError naming the file."""
    import av

    from beatframe.infra.errors import BadInputError

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInputError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            width, height = stream.codec_context.width, stream.codec_context.height
            fps = float(stream.average_rate or stream.guessed_rate or 30)
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) * width * height * 3 > MAX_CLIP_BYTES:
                    raise BadInputError(f"{path.name} is too long to post-process at {width}x{height}"
                                        f" (over {MAX_CLIP_BYTES / 1e9:g} GB of frames); cut it first")
    except (av.error.FFmpegError, OSError) as exc:
        raise BadInputError(f"{path.name} is not a readable video ({exc})") from None
    if len(frames) < 2:
        raise BadInputError(f"{path.name} has {len(frames)} frame(s); post-production needs a clip")
    return frames, fps
