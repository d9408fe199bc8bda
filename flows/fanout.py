"""Rendering several outputs in one flow: each render is a subflow run by a task, so they fan out
on the flow's bounded thread pool and each one's failure stays its own. The track is analysed
once before they fan out, so audio none of them could use fails the run once, before anything
is written."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait

from beatframe.infra.errors import BadInputError
from beatframe.tasks.analyze import analyze_audio
from beatframe.tasks.inputs import hash_inputs


def analyze_first(audio: str, analysis_hints: dict | None = None) -> None:
    """Hash and analyse the local file ``audio`` (with the canonical corrections ``analysis_hints``,
    as every render then asks for it) before the renders fan out.

    Raises
    ------
    BadInputError
        When the audio is missing, empty, not audio, too short, too long or silent: once for the
        run rather than once per render. Each render then reads this analysis from the cache.
    """
    path = str(Path(audio).resolve())
    analyze_audio(path, hash_inputs(path)["audio"], hints=analysis_hints)


@task(name="render", cache_policy=NO_CACHE, task_run_name="render-{kind}-{label}")
def render_one(kind: str, label: str, params: dict) -> dict:
    """Run the ``render_canvas`` or ``render_video`` flow with ``params``; returns its manifest."""
    if kind == "canvas":
        from beatframe.flows.canvas import render_canvas

        return render_canvas(**params)
    from beatframe.flows.video import render_video

    return render_video(**params)


def outcomes(futures: list[PrefectFuture]) -> list[dict | BaseException]:
    """Each future's result, or the exception it failed with."""
    wait(futures)
    return [future.result(raise_on_failure=False) for future in futures]


def failure_reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, BadInputError) else f"{type(exc).__name__}: {exc}"
