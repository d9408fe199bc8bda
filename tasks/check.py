"""Stage 5: check the output against the Canvas spec; a failing output fails the run."""

from __future__ import annotations

from prefect import task

from beatframe.cachekeys import cache_key, sha256_file
from beatframe.check import CanvasSpec, check_canvas
from beatframe.errors import SpecError


def _check_key(context, parameters) -> str:
    from pathlib import Path

    return cache_key("check", video=sha256_file(Path(parameters["video"])), size=list(parameters["size"]),
                     loop_mode=parameters["loop_mode"])


@task(name="check", cache_key_fn=_check_key)
def check_output(video: str, size: tuple[int, int], loop_mode: str) -> dict:
    """Probe and measure the Canvas; raises SpecError naming every problem if it fails."""
    checks = check_canvas(video, spec=CanvasSpec(width=size[0], height=size[1]), loop_mode=loop_mode)
    if not checks["spec_ok"]:
        raise SpecError("the Canvas fails its spec: " + "; ".join(checks["problems"]))
    return checks
