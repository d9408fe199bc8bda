"""The stages every render flow starts with, composed once: a run's cost log and progress
artifact, then the inputs' hashes and the track's analysis (with the user's corrections, if any)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beatframe.infra.cost import CostLog, PriceTable
from beatframe.infra.settings import get_settings
from beatframe.flows.progress import StageProgress
from beatframe.tasks.analyze import analyze_audio
from beatframe.tasks.inputs import hash_inputs


@dataclass
class RenderStart:
    costs: CostLog
    progress: StageProgress
    audio_path: str
    cover_path: str | None
    inputs: dict
    analysis: dict


def start_render(request, *, weights: dict[str, float], progress_key: str,
                 analysis_hints: dict | None = None) -> RenderStart:
    """Open the run's cost log and progress artifact, hash the inputs and analyse the audio,
    applying ``analysis_hints`` (canonical corrections: :func:`beatframe.tasks.analyze.check_hints`)."""
    costs = CostLog(PriceTable.load(get_settings().prices))
    progress = StageProgress(weights, key=progress_key)
    audio_path = str(request.audio.resolve())
    cover_path = str(request.cover.resolve()) if request.cover else None
    with progress.stage("hash"), costs.stage("hash"):
        inputs = hash_inputs(audio_path, cover_path)
    with progress.stage("analyze"), costs.stage("analyze"):
        analysis = analyze_audio(audio_path, inputs["audio"], hints=analysis_hints)
    return RenderStart(costs, progress, audio_path, cover_path, inputs, analysis)


def files_exist(result: dict) -> bool:
    """Whether every file a task's result names (``path``, ``video``, ``poster``) is still there."""
    paths = [v for k, v in result.items() if k in ("path", "video", "poster")]
    return all(Path(p).is_file() for p in paths)


def run_with_files(task, *args, **kwargs) -> dict:
    """Run a cached task whose result names files; if a cached result's files were cleaned away,
    run it again past the cache so its files are made anew."""
    result = task(*args, **kwargs)
    if files_exist(result):
        return result
    return task.with_options(refresh_cache=True)(*args, **kwargs)
