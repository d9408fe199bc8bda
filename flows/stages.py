"""The stages every render flow starts with, composed once: a run's cost log and progress
artifact, then the inputs' hashes and the track's analysis."""

from __future__ import annotations

from dataclasses import dataclass

from beatframe.cost import CostLog, PriceTable
from beatframe.settings import get_settings
from flows.progress import StageProgress
from tasks.analyze import analyze_audio
from tasks.inputs import hash_inputs


@dataclass
class RenderStart:
    costs: CostLog
    progress: StageProgress
    audio_path: str
    cover_path: str | None
    inputs: dict
    analysis: dict


def start_render(request, *, weights: dict[str, float], progress_key: str) -> RenderStart:
    """Open the run's cost log and progress artifact, hash the inputs and analyse the audio."""
    costs = CostLog(PriceTable.load(get_settings().prices))
    progress = StageProgress(weights, key=progress_key)
    audio_path = str(request.audio.resolve())
    cover_path = str(request.cover.resolve()) if request.cover else None
    with progress.stage("hash"), costs.stage("hash"):
        inputs = hash_inputs(audio_path, cover_path)
    with progress.stage("analyze"), costs.stage("analyze"):
        analysis = analyze_audio(audio_path, inputs["audio"])
    return RenderStart(costs, progress, audio_path, cover_path, inputs, analysis)
