"""The analysis flow: one track's analysis JSON, sharing the render flows' cache.

    hash inputs -> analyze
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from beatframe.errors import BadInputError
from tasks.analyze import analyze_audio
from tasks.inputs import fetch_inputs, hash_inputs


@flow(name="analyze_track")
def analyze_track(audio: str) -> dict:
    """The analysis (schema ``beatframe.analysis/1``) of ``audio``, cached by its sha256."""
    path = Path(fetch_inputs(audio)[0])
    if not path.is_file():
        raise BadInputError(f"audio file {audio} does not exist or is not a file")
    inputs = hash_inputs(str(path.resolve()))
    return analyze_audio(str(path.resolve()), inputs["audio"])
