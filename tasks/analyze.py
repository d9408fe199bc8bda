"""Stage 1: audio analysis, cached by the audio's sha256 and the analysis code's revision."""

from __future__ import annotations

from pathlib import Path

from prefect import task

import beatframe.music
from beatframe.infra import progress
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

_MUSIC = Path(beatframe.music.__file__).parent


def analysis_revision() -> str:
    """Changes whenever the analysis code (or audio decoding) changes."""
    return source_revision(str(_MUSIC / "analysis"), str(_MUSIC / "audio.py"))


def _analysis_key(context, parameters) -> str:
    return cache_key("analysis", audio=parameters["audio_sha256"], revision=analysis_revision())


@task(name="analyze", cache_key_fn=_analysis_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def analyze_audio(audio: str, audio_sha256: str) -> dict:
    """The analysis JSON (schema ``beatframe.analysis/1``) of ``audio``."""
    # Imported here: librosa takes seconds to import and a cached run never needs it.
    from beatframe.music.analysis import analyze

    result = analyze(Path(audio), progress=lambda _step, f: progress.report("analyze", f))
    if result.audio.sha256 != audio_sha256:
        raise RuntimeError(f"{audio} changed while it was analysed")
    return result.to_json_dict()


def _visemes_key(context, parameters) -> str:
    return cache_key("visemes", audio=parameters["audio_sha256"], revision=analysis_revision())


@task(name="visemes", cache_key_fn=_visemes_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def viseme_timeline(audio: str, audio_sha256: str) -> list[dict]:
    """The mouth shapes of the voice in ``audio`` (``[{"start", "end", "viseme"}]``, the lip-sync stage's input)."""
    from beatframe.music.analysis.visemes import visemes_json

    return visemes_json(Path(audio))
