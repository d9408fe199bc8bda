"""Pydantic models of the analysis JSON (``beatframe analyze --json``) and the render manifest.

``Analysis`` is schema ``beatframe.analysis/2`` (``/1`` plus ``confidence`` and ``corrected``;
``/1`` documents still validate); ``AnalysisHints`` are a user's corrections of it (tempo, a
downbeat, the meter, a beat list). ``Manifest`` is ``beatframe.manifest/1``. The
manifest's cost block is the cost log's own model (:class:`beatframe.infra.cost.Cost`).
Both validate their invariants loudly so a broken stage fails where it breaks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from beatframe.infra.cost import Cost, CostLine

SectionLabel = Literal[
    "intro", "verse", "pre-chorus", "chorus", "bridge", "breakdown", "drop", "outro", "silence"
]
LoopMode = Literal["continuous", "rebound", "hard_cut"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudioInfo(_Strict):
    sha256: str
    duration: float = Field(gt=0)
    sample_rate: int = Field(gt=0)
    channels: int = Field(ge=1)


class Section(_Strict):
    start: float = Field(ge=0)
    end: float
    label: SectionLabel
    energy: float = Field(ge=0, le=1)


class EnergyCurve(_Strict):
    rate: float = Field(gt=0, description="values per second")
    values: list[float]


class Span(_Strict):
    start: float = Field(ge=0)
    end: float


#: Longest beat list a user may give (a 20-minute track at 300 BPM has 6,000 beats).
MAX_HINT_BEATS = 20_000
ANALYSIS_SCHEMA = "beatframe.analysis/2"
#: Below this a confidence is reported as low (the CLI says so in one line; renders go on).
LOW_CONFIDENCE = 0.4
CorrectableField = Literal["bpm", "downbeat", "meter", "beats"]


class Confidence(_Strict):
    """How far each estimate can be trusted, 0-1 (calibrated on annotated recordings: see
    ``benchmarks/analysis.py``). A value the user gave has confidence 1."""

    tempo: float = Field(ge=0, le=1)
    beats: float = Field(ge=0, le=1)
    downbeats: float = Field(ge=0, le=1)
    sections: float = Field(ge=0, le=1)

    def low(self, threshold: float = LOW_CONFIDENCE) -> dict[str, float]:
        """The estimates whose confidence is below ``threshold`` (the ones worth checking)."""
        return {k: v for k, v in self.model_dump().items() if v < threshold}


class AnalysisHints(_Strict):
    """A user's corrections of the analysis, the way an editor fixes a beat grid.

    ``bpm`` re-tracks the beats at that tempo (it does not just relabel the number); ``downbeat``
    is the time of one downbeat (the bar phase follows from it); ``meter`` is the beats per bar;
    ``beats`` replaces the beat grid (with ``beat_positions``, each beat's place in its bar,
    1 = downbeat, as in a ``.beats`` file).
    """

    bpm: float | None = Field(None, ge=30, le=300, description="tempo in beats per minute")
    downbeat: float | None = Field(None, ge=0, le=7200,
                                   description="the time (s) of one downbeat")
    meter: int | None = Field(None, ge=2, le=12, description="beats per bar")
    beats: list[float] | None = Field(None, max_length=MAX_HINT_BEATS,
                                      description="beat times (s), increasing")
    beat_positions: list[int] | None = Field(
        None, max_length=MAX_HINT_BEATS,
        description="each beat's position in its bar (1 = downbeat); needs beats")

    @model_validator(mode="after")
    def _check(self) -> "AnalysisHints":
        if self.beats is not None:
            if len(self.beats) < 2:
                raise ValueError("beats needs at least two beat times")
            if any(b < 0 for b in self.beats):
                raise ValueError("beats must be times in seconds, not negative")
            if any(b2 <= b1 for b1, b2 in zip(self.beats, self.beats[1:])):
                raise ValueError("beats must be strictly increasing")
        if self.beat_positions is not None:
            if self.beats is None:
                raise ValueError("beat_positions needs beats")
            if len(self.beat_positions) != len(self.beats):
                raise ValueError("beat_positions must give one position per beat")
            if any(not 1 <= p <= 12 for p in self.beat_positions):
                raise ValueError("beat_positions must be between 1 and 12")
        if self.beats is not None and self.bpm is not None:
            raise ValueError("give either bpm or beats (a beat list sets the tempo)")
        return self

    def given(self) -> list[str]:
        """Names of the corrections given, in a fixed order."""
        return [k for k in ("bpm", "downbeat", "meter", "beats") if getattr(self, k) is not None]

    def is_empty(self) -> bool:
        return not self.given()


class Analysis(_Strict):
    schema_: Literal["beatframe.analysis/1", "beatframe.analysis/2"] = Field(
        ANALYSIS_SCHEMA, alias="schema")
    audio: AudioInfo
    bpm: float = Field(ge=0)
    meter: int = Field(ge=1, le=12)
    beats: list[float]
    downbeats: list[float]
    sections: list[Section]
    energy: EnergyCurve
    onsets: list[float]
    vocals: list[Span]
    confidence: Confidence | None = Field(
        None, description="how far each estimate can be trusted (absent in /1 documents)")
    corrected: list[CorrectableField] = Field(
        default_factory=list, description="the values the user gave rather than estimated")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_invariants(self) -> "Analysis":
        beat_set = {round(b, 4) for b in self.beats}
        missing = [d for d in self.downbeats if round(d, 4) not in beat_set]
        if missing:
            raise ValueError(f"downbeats must be a subset of beats; not beats: {missing[:3]}")
        if any(b2 <= b1 for b1, b2 in zip(self.beats, self.beats[1:])):
            raise ValueError("beats must be strictly increasing")
        if not self.sections:
            raise ValueError("sections must cover the whole track")
        if abs(self.sections[0].start) > 1e-6 or abs(self.sections[-1].end - self.audio.duration) > 1e-3:
            raise ValueError("sections must start at 0 and end at the track's duration")
        for a, b in zip(self.sections, self.sections[1:]):
            if abs(a.end - b.start) > 1e-6:
                raise ValueError(f"sections must be contiguous: {a.end} != {b.start}")
        if any(not 0.0 <= v <= 1.0 for v in self.energy.values):
            raise ValueError("energy values must be normalized to 0-1")
        return self

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


class Source(_Strict):
    uri: str
    sha256: str
    duration: float


class ShotPlan(_Strict):
    start: float
    end: float
    section: SectionLabel
    scene: str
    transition_in: str = "cut"


class Plan(_Strict):
    shots: list[ShotPlan]


class LoopInfo(_Strict):
    mode: LoopMode
    bars: int = Field(ge=1)
    seconds: float = Field(gt=0)


class OutputRecord(_Strict):
    role: str
    uri: str
    sha256: str
    bytes: int
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    codec: str | None = None
    has_audio: bool | None = None


class TemplateRef(_Strict):
    name: str
    version: str


class GeneratorInfo(_Strict):
    name: str
    model: str | None = None
    revision: str
    seed: int
    params: dict = Field(default_factory=dict)


class Licensing(_Strict):
    license: str
    assets: list[dict] = Field(default_factory=list)
    models: list[dict] = Field(default_factory=list)


class Provenance(_Strict):
    software: str
    prefect_flow_run_id: str | None
    inputs_sha256: str


class Manifest(_Strict):
    schema_: Literal["beatframe.manifest/1"] = Field("beatframe.manifest/1", alias="schema")
    id: str
    kind: Literal["canvas", "video", "generation", "edit"]
    created_at: str
    source: Source
    segment: Span
    analysis: dict
    template: TemplateRef
    generator: GeneratorInfo
    plan: Plan
    loop: LoopInfo | None = None
    outputs: list[OutputRecord]
    checks: dict
    cost: Cost
    licensing: Licensing
    provenance: Provenance

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)
