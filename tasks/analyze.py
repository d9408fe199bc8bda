"""Stage 1: audio analysis, cached by the audio's sha256, the analysis code's revision and the
user's corrections (:class:`beatframe.music.schemas.AnalysisHints`), if any.

Flows and tasks pass corrections as their JSON (``analysis_hints``, a dict: what a Prefect
deployment's parameters can carry); :func:`check_hints` validates one and gives its canonical
form. Cache keys never hold the corrections themselves (a beat list can be 20,000 numbers), only
:func:`hints_digest`, and an analysis the user corrected adds :func:`corrected_key` to the keys of
every stage that reads it, so a corrected analysis never reuses a plan or clip of the estimate.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import task
from pydantic import ValidationError

import beatframe.music
from beatframe.infra import progress
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import AnalysisHints
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

_MUSIC = Path(beatframe.music.__file__).parent


def analysis_revision() -> str:
    """Changes whenever the analysis code (or audio decoding) changes."""
    return source_revision(str(_MUSIC / "analysis"), str(_MUSIC / "audio.py"))


def check_hints(hints: dict | AnalysisHints | None) -> dict | None:
    """The corrections as canonical JSON (only the values given), or None when there are none.

    Raises
    ------
    BadInputError
        One line naming the first problem (``analysis_hints.bpm: …``).
    """
    if hints is None:
        return None
    if not isinstance(hints, AnalysisHints):
        try:
            hints = AnalysisHints.model_validate(hints)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("analysis_hints", *first.get("loc", ())[:1]))
            message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            raise BadInputError(f"{where}: {message}") from None
    return None if hints.is_empty() else hints.model_dump(mode="json", exclude_none=True)


def hints_digest(hints: dict | None) -> str | None:
    """A short hash of canonical corrections (:func:`check_hints`); None for none."""
    return _digest(hints) if hints else None


def corrected_key(analysis: dict) -> dict:
    """Cache-key parts that tell a corrected analysis from the estimate: ``{}`` for an analysis
    nobody corrected (so those keys stay as they were), else a hash of its corrected grid."""
    if not analysis.get("corrected"):
        return {}
    return {"corrected": _digest({k: analysis[k] for k in ("bpm", "meter", "beats", "downbeats", "corrected")})}


def _digest(value: dict) -> str:
    """24 hex digits of the sha256 of ``value``'s canonical JSON."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _analysis_key(context, parameters) -> str:
    digest = hints_digest(parameters.get("hints"))
    return cache_key("analysis", audio=parameters["audio_sha256"], revision=analysis_revision(),
                     **({"hints": digest} if digest else {}))


@task(name="analyze", cache_key_fn=_analysis_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def analyze_audio(audio: str, audio_sha256: str, hints: dict | None = None) -> dict:
    """The analysis JSON (schema ``beatframe.analysis/2``) of ``audio``, with the user's
    corrections ``hints`` (canonical, from :func:`check_hints`) applied."""
    # Imported here: librosa takes seconds to import and a cached run never needs it.
    from beatframe.music.analysis import analyze

    given = AnalysisHints.model_validate(hints) if hints else None
    result = analyze(Path(audio), progress=lambda _step, f: progress.report("analyze", f), hints=given)
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
