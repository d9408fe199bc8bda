"""Stage 5: check the output against the Canvas spec; a failing output fails the run."""

from __future__ import annotations

from prefect import task

from pathlib import Path

import beatframe.music
from beatframe.infra.cachekeys import cache_key, sha256_file, source_revision
from beatframe.infra.errors import SpecError

_CHECK_SOURCES = tuple(str(Path(beatframe.music.__file__).parent / name) for name in ("check.py", "flash.py"))


def _check_key(context, parameters) -> str:
    return cache_key("check", video=sha256_file(Path(parameters["video"])), size=list(parameters["size"]),
                     loop_mode=parameters["loop_mode"], code=source_revision(*_CHECK_SOURCES))


@task(name="check-canvas", cache_key_fn=_check_key)
def check_output(video: str, size: tuple[int, int], loop_mode: str) -> dict:
    """Probe and measure the Canvas; raises SpecError naming every problem if it fails."""
    # Imported here: PyAV, OpenCV and SciPy cost a second of start-up that a cached rerun skips.
    from beatframe.music.check import CanvasSpec, check_canvas

    checks = check_canvas(video, spec=CanvasSpec(width=size[0], height=size[1]), loop_mode=loop_mode)
    if not checks["spec_ok"]:
        raise SpecError("the Canvas fails its spec: " + "; ".join(checks["problems"]))
    return checks


@task(name="check-video")
def check_video_output(video: str, size: tuple[int, int], track_seconds: float, luminance: list) -> dict:
    """Probe the video against its spec; raises SpecError naming every problem if it fails."""
    import numpy as np

    from beatframe.music.check import check_video

    checks = check_video(video, width=size[0], height=size[1], track_seconds=track_seconds,
                         luminance=np.asarray(luminance, dtype=float).reshape(-1, 5))
    if not checks["spec_ok"]:
        raise SpecError("the video fails its spec: " + "; ".join(checks["problems"]))
    return checks


def _generation_check_key(context, parameters) -> str:
    return cache_key("check-generation", video=sha256_file(Path(parameters["video"])), size=list(parameters["size"]),
                     fps=parameters["fps"], seconds=parameters["seconds"], code=source_revision(*_CHECK_SOURCES))


@task(name="check-generation", cache_key_fn=_generation_check_key)
def check_generation_output(video: str, size: tuple[int, int], fps: int, seconds: float) -> dict:
    """Probe a prompt's clip against its spec; raises SpecError naming every problem if it fails."""
    from beatframe.music.check import check_generation

    checks = check_generation(video, width=size[0], height=size[1], fps=fps, seconds=seconds)
    if not checks["spec_ok"]:
        raise SpecError("the generated clip fails its spec: " + "; ".join(checks["problems"]))
    return checks
