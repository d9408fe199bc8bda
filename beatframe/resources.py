"""Typed models of the HTTP API's objects (API version 2026-11-21), shared by server and SDK.

The same classes serve two roles:

- **Server:** the API's routes use them as ``response_model``s, so the OpenAPI document and what
  the server sends follow the API contract. Field types are the contract's; a field it marks
  ``|null`` is ``X | None`` with a ``None`` default (a serialized response still always carries
  it, and the serialization schema lists it as required).
- **SDK:** :mod:`beatframe.client` parses every answer into them, so callers get attributes
  and types instead of dicts.

Every model allows extra fields (``extra="allow"``): a newer server may add fields, and an older
client must keep working; the extras stay reachable as attributes and in ``model_dump()``. The
analysis object relies on this for its ``beatframe.analysis/1`` fields. Expandable references
(``track``, ``render``, ``canvas``) are an id, or the whole object when asked for with
``expand[]``; ``*_id`` properties give the id either way.

This module imports nothing from FastAPI or the server, only pydantic and the analysis schema.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Analysis", "ApiErrorBody", "ApiErrorDetail", "Asset", "BeatframeObject", "Canvas", "Cost", "CostLine",
    "Deleted", "ListObject", "LoopMode", "Output", "Render", "RenderError", "RenderStage", "Segment", "Template",
    "Track", "Usage", "UsageRow", "Video", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "Event",
    "id_of",
]

LoopMode = Literal["continuous", "rebound", "hard_cut"]
RenderStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
ErrorType = Literal["invalid_request_error", "authentication_error", "permission_error", "idempotency_error",
                    "rate_limit_error", "api_error"]
#: Render statuses after which nothing changes any more.
FINISHED_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})

T = TypeVar("T")


def id_of(value: str | BaseModel | dict | None) -> str | None:
    """The id of an expandable reference: the string itself, or the expanded object's ``id``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("id")
    return getattr(value, "id", None)


class BeatframeObject(BaseModel):
    """Base of every API object: unknown fields from newer servers are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_serialization_defaults_required=True)


class Deleted(BeatframeObject):
    id: str
    object: str = Field(description="the deleted object's type, e.g. track")
    deleted: Literal[True] = True


class ApiErrorDetail(BeatframeObject):
    type: ErrorType
    code: str
    message: str
    param: str | None = None
    request_id: str | None = None


class ApiErrorBody(BeatframeObject):
    """The one error shape of every 4xx and 5xx answer."""

    error: ApiErrorDetail


class ListObject(BeatframeObject, Generic[T]):
    """One page of a listing, newest first; page on with ``starting_after=data[-1].id``."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool


class Track(BeatframeObject):
    id: str = Field(description="trk_…")
    object: Literal["track"] = "track"
    filename: str | None = None
    source_url: str | None = None
    sha256: str
    bytes: int
    duration: float = Field(description="seconds")
    status: Literal["ready"]
    analysis_status: Literal["pending", "succeeded", "failed"]
    analysis_version: int = Field(1, description="1: the estimate made after upload; each correction"
                                                 " (PATCH /v1/tracks/{id}/analysis) makes the next")
    livemode: bool
    created: int = Field(description="unix seconds")


#: The description of every ``analysis_hints`` field (the request bodies take AnalysisHints itself).
ANALYSIS_HINTS = ("corrections of the analysis that override the estimate: bpm (the beats are tracked again at"
                  " this tempo), downbeat (the time of one downbeat, s), meter (beats per bar), beats (the beat"
                  " times, s, increasing) with optional beat_positions (each beat's place in its bar, 1 = downbeat)")


class Analysis(BeatframeObject):
    """``GET /v1/tracks/{id}/analysis``: ``pending`` (202) or ``succeeded`` with the analysis fields.

    The ``beatframe.analysis/2`` fields (``audio``, ``bpm``, ``meter``, ``beats``, ``downbeats``,
    ``sections``, ``energy``, ``onsets``, ``vocals``, ``confidence``, ``corrected``) are present once
    it succeeded; those not declared here stay reachable as extra fields. ``version`` and ``hints``
    say which analysis it is: the estimate (version 1, no hints) or a correction
    (``PATCH /v1/tracks/{id}/analysis``). :meth:`to_schema` validates the analysis fields strictly.
    """

    object: Literal["analysis"] = "analysis"
    track: str
    status: Literal["pending", "succeeded"]
    version: int | None = Field(None, description="the track's analysis version this is (1: the estimate)")
    hints: dict[str, Any] | None = Field(None, description="the corrections this version applies (the body of"
                                                           " its PATCH); null for the estimate")
    schema_: str | None = Field(None, alias="schema", description="beatframe.analysis/2")
    audio: dict[str, Any] | None = None
    bpm: float | None = None
    meter: int | None = None
    beats: list[float] | None = None
    downbeats: list[float] | None = None
    sections: list[dict[str, Any]] | None = None
    energy: dict[str, Any] | None = None
    corrected: list[str] | None = Field(None, description="the analysis values the user gave rather than estimated")

    def to_schema(self):
        """The analysis as a strict :class:`beatframe.music.schemas.Analysis` (only once ``succeeded``)."""
        from beatframe.music.schemas import Analysis as AnalysisSchema

        if self.status != "succeeded":
            raise ValueError(f"the analysis of {self.track} is {self.status}")
        fields = self.model_dump(mode="json", by_alias=True,
                                 exclude={"object", "track", "status", "version", "hints"})
        if fields.get("corrected") is None:  # a beatframe.analysis/1 document has none
            fields.pop("corrected", None)
        return AnalysisSchema.model_validate(fields)


class RenderStage(BeatframeObject):
    name: str
    status: Literal["pending", "running", "succeeded", "failed"]


class CostLine(BeatframeObject):
    stage: str
    seconds: float
    device: str
    amount: float


class Cost(BeatframeObject):
    currency: str
    total: float
    lines: list[CostLine]


class RenderError(BeatframeObject):
    type: str
    code: str
    message: str


class Render(BeatframeObject):
    id: str = Field(description="rnd_…")
    object: Literal["render"] = "render"
    kind: Literal["canvas", "video", "generation", "edit", "post"]
    status: RenderStatus
    progress: float = Field(ge=0.0, le=1.0)
    stage: str | None = Field(None, description="the stage running now")
    stages: list[RenderStage]
    canvas: str | None = None
    video: str | None = None
    generation: str | None = Field(None, description="the task it makes (gen_…: a POST /v1/generate or a scene"
                                                     " edit's task_id)")
    flow_run_id: str | None = None
    cost: Cost | None = None
    error: RenderError | None = None
    livemode: bool
    created: int
    started: int | None = None
    finished: int | None = None

    @property
    def is_finished(self) -> bool:
        """Whether the render reached a final status (succeeded, failed or canceled)."""
        return self.status in FINISHED_STATUSES


class Output(BeatframeObject):
    role: str = Field(description="canvas, video or poster")
    uri: str
    url: str = Field(description="signed, expiring download URL")
    sha256: str
    bytes: int
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    codec: str | None = None
    has_audio: bool | None = None


class Segment(BeatframeObject):
    start: float
    end: float


class _References:
    """Ids of the expandable references, whether they came as ids or as expanded objects."""

    @property
    def track_id(self) -> str:
        return id_of(self.track)

    @property
    def render_id(self) -> str:
        return id_of(self.render)


class Canvas(_References, BeatframeObject):
    id: str = Field(description="cnv_…")
    object: Literal["canvas"] = "canvas"
    track: str | Track
    render: str | Render
    template: str = Field(description="the template's name or tpl_ id, as given")
    seconds: float
    seed: int
    loop: LoopMode
    cover_asset: str | None = None
    analysis_hints: dict[str, Any] | None = Field(None, description="the corrections of the analysis this"
                                                                    " request gave (replacing the track's)")
    analysis_version: int | None = Field(None, description="the track's analysis version the render used; null"
                                                           " when the request's own analysis_hints replaced it")
    segment: Segment | None = None
    outputs: list[Output]
    manifest: dict[str, Any] | None = Field(None, description="beatframe.manifest/1 once the render succeeded")
    livemode: bool
    created: int


class Video(_References, BeatframeObject):
    id: str = Field(description="vid_…")
    object: Literal["video"] = "video"
    track: str | Track
    canvas: str | Canvas | None = None
    render: str | Render
    template: str
    size: str = Field(description="WIDTHxHEIGHT, e.g. 1920x1080")
    seed: int
    analysis_hints: dict[str, Any] | None = Field(None, description="the corrections of the analysis this"
                                                                    " request (or its canvas) gave, replacing the"
                                                                    " track's")
    analysis_version: int | None = Field(None, description="the track's analysis version the render used; null"
                                                           " when analysis_hints replaced it")
    outputs: list[Output]
    manifest: dict[str, Any] | None = Field(None, description="beatframe.manifest/1 once the render succeeded")
    livemode: bool
    created: int

    @property
    def canvas_id(self) -> str | None:
        return id_of(self.canvas)


class Template(BeatframeObject):
    id: str = Field(description="tpl_<name> for built-ins, tpl_<random> for a project's own")
    object: Literal["template"] = "template"
    name: str
    version: str
    title: str
    description: str
    license: str
    scene: str
    default_loop: LoopMode
    palette: list[str]
    builtin: bool
    definition: dict[str, Any] = Field(description="the full validated template")
    created: int | None = None


class Asset(BeatframeObject):
    id: str = Field(description="ast_…")
    object: Literal["asset"] = "asset"
    kind: Literal["image", "clip", "audio"]
    filename: str
    content_type: str
    bytes: int
    sha256: str
    license: str
    attribution: str
    rights_holder: str
    livemode: bool
    created: int


class UsageRow(BeatframeObject):
    key: str = Field(description="the day (2026-11-21), the object id or the env")
    env: str | None = None
    seconds: float
    amount: float
    billed_amount: float = Field(description="0 in test mode: test renders are not billed")
    lines: int


class Usage(BeatframeObject):
    object: Literal["usage"] = "usage"
    group_by: Literal["day", "object", "flow", "stage", "env"]
    currency: str
    total: float
    billed_total: float
    data: list[UsageRow]


SlaLevel = Literal["best_effort", "standard", "premium", "critical"]


class SlaViolation(BeatframeObject):
    metric: Literal["uptime_percent", "latency_p99_ms", "error_rate_percent"]
    measured: float
    target: float
    message: str = Field(description="e.g. 'error_rate_percent 2.5 is above premium's 0.1'")


class SlaTargets(BeatframeObject):
    uptime_percent: float = Field(description="at least")
    latency_p99_ms: float = Field(description="at most")
    error_rate_percent: float = Field(description="at most")


class SlaStatus(BeatframeObject):
    object: Literal["sla_status"] = "sla_status"
    target_level: SlaLevel
    meets_sla: bool = Field(description="true when there are no violations")
    uptime_percent: float
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    error_rate_percent: float
    current_throughput_rps: float
    violations: list[SlaViolation]
    targets: SlaTargets
    window_seconds: float
    requests: int = Field(description="requests in the window, on every API process")


class WebhookEndpoint(BeatframeObject):
    id: str = Field(description="we_…")
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str] = Field(description="event types, or ['*'] for all")
    description: str
    secret: str | None = Field(None, description="whsec_…: the signing secret, only in the answer that creates it")
    task: str | None = Field(None, description="gen_…: the endpoint of one generate task's webhook_url")
    livemode: bool
    created: int


class Event(BeatframeObject):
    id: str = Field(description="evt_…: receivers deduplicate on it")
    object: Literal["event"] = "event"
    type: str = Field(description="render.created, render.succeeded, canvas.completed, track.analyzed, …")
    livemode: bool
    created: int
    data: dict[str, Any] = Field(description='{"object": the render, track, canvas or video}')


class WebhookAttempt(BeatframeObject):
    attempt: int
    status: int | None = Field(None, description="the receiver's HTTP status, if it answered")
    error: str | None = None
    duration_ms: float
    created: int


class WebhookDelivery(BeatframeObject):
    id: str = Field(description="whd_…")
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event: str
    endpoint: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status: int | None = None
    last_error: str | None = None
    next_attempt: int | None = Field(None, description="when a pending delivery is tried next")
    delivered: int | None = None
    livemode: bool
    created: int
    attempt_log: list[WebhookAttempt] | None = Field(None, description="every attempt (retrieve only)")


# --- the reference video-generation API's routes (POST /v1/generate, /v1/status, /v1/result, /v1/genius)


class ReferenceErrorBody(BeatframeObject):
    """The reference API's error body, on its routes."""

    error: str = Field(description="a title, e.g. 'Validation error'")
    detail: str = Field(description="what is wrong, e.g. 'duration_seconds: must be between 1 and 60'")
    type: str = Field(description="e.g. ValueError, NotFoundError, RateLimitError, NotImplementedError")
    code: str | None = Field(None, description="beatframe's error code")
    request_id: str | None = None


#: The description of every ``estimated_time_seconds`` a 202 answer carries (beatframe.models.estimate).
ESTIMATED_TIME = ("an estimate, not a measurement: the model catalog's planning figures for the generator this"
                  " deployment would choose, for the output's length and size, plus a fixed overhead; model"
                  " loading excluded")


TaskStatusName = Literal["pending", "planning", "generating", "finalizing", "uploading", "processing", "completed",
                         "failed", "cancelled"]
#: The statuses of a generate task that is still going.
TASK_RUNNING_STATUSES = frozenset({"pending", "planning", "generating", "finalizing", "uploading", "processing"})


class GenerateAccepted(BeatframeObject):
    task_id: str = Field(description="gen_…")
    status: TaskStatusName
    message: str
    estimated_time_seconds: float = Field(description=ESTIMATED_TIME)
    estimate_basis: str | None = Field(None, description="what estimated_time_seconds is based on: the generator"
                                                         " and catalog figures priced")
    queue_position: int = Field(description="1 when it is next; counts renders queued before it")
    seed: int = Field(description="the seed used (drawn when the request had none)")
    render: str = Field(description="rnd_…: the render, as /v1/renders shows it")
    webhook_secret: str | None = Field(None, description="whsec_…: signs this task's webhook_url deliveries;"
                                                         " shown only here")


class TaskStatus(BeatframeObject):
    task_id: str
    status: TaskStatusName
    progress: float = Field(ge=0.0, le=1.0)
    current_step: str
    elapsed_seconds: float = Field(description="measured: since the render started (0 while queued)")
    eta_seconds: float | None = Field(None, description="an estimate: the elapsed time extrapolated from progress"
                                                        " (none before 2 %)")
    preview_url: str | None = Field(None, description="a signed URL of the newest preview frame")
    error: str | None = None


class TaskResultMetadata(BeatframeObject):
    prompt: str
    model: str = Field(description="the generator that made the frames, e.g. procedural (post:v2v for a"
                                   " post-production step)")
    seed: int | None = None


class TaskResult(BeatframeObject):
    task_id: str
    status: Literal["completed"] = "completed"
    video_url: str = Field(description="signed, expiring")
    thumbnail_url: str = Field(description="signed, expiring")
    duration_seconds: float
    resolution: str
    file_size_mb: float
    generation_time_seconds: float = Field(description="measured: from the render's start to its end")
    metadata: TaskResultMetadata
