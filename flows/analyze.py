"""The analysis flows: one track's analysis JSON (sharing the render flows' cache), optionally with
the user's corrections, and the viseme timeline of its voice (lip-sync's input).

    hash inputs -> analyze | visemes
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from beatframe.infra.errors import BadInputError
from beatframe.tasks.analyze import analyze_audio, check_hints, viseme_timeline
from beatframe.tasks.inputs import fetch_inputs, hash_inputs


def _local_audio(audio: str) -> tuple[str, str]:
    path = Path(fetch_inputs(audio)[0])
    if not path.is_file():
        raise BadInputError(f"audio file {audio} does not exist or is not a file")
    return str(path.resolve()), hash_inputs(str(path.resolve()))["audio"]


@flow(name="analyze_track")
def analyze_track(audio: str, analysis_hints: dict | None = None) -> dict:
    """The analysis (schema ``beatframe.analysis/2``) of ``audio``, cached by its sha256 and the
    corrections ``analysis_hints`` (:class:`beatframe.music.schemas.AnalysisHints` as JSON: ``bpm``,
    ``downbeat``, ``meter``, ``beats``, ``beat_positions``), which override the estimates."""
    hints = check_hints(analysis_hints)  # bad corrections fail before the audio is fetched
    return analyze_audio(*_local_audio(audio), hints=hints)


@flow(name="track_visemes")
def track_visemes(audio: str) -> list[dict]:
    """The viseme timeline of ``audio``'s voice: ``[{"start", "end", "viseme"}]``, contiguous, with
    ``rest`` for silence (:mod:`beatframe.music.analysis.visemes`)."""
    return viseme_timeline(*_local_audio(audio))
