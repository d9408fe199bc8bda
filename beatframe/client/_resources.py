"""The resource namespaces (``client.tracks``, ``client.canvases``, …), written once for both clients.

Each method builds an operation (see :mod:`beatframe.client._core`) and hands it to its client: a
:class:`~beatframe.client.Client` runs it and returns the result, an
:class:`~beatframe.client.AsyncClient` returns an awaitable (and ``list_all`` an async iterator).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import IO, Any, Literal

from beatframe.client._core import Api, Operation, Upload, _seg, expand_params
from beatframe.music.schemas import AnalysisHints
from beatframe.resources import (Analysis, Asset, Canvas, Deleted, Event, GenerateAccepted, ListObject, Render,
                                 SlaStatus, TaskResult, TaskStatus, Template, Track, Usage, Video, WebhookDelivery,
                                 WebhookEndpoint, id_of)

FileInput = str | os.PathLike | IO[bytes]
ProgressCallback = Callable[[Render], None]
#: Corrections of a track's analysis: the model itself, or its fields as a dict.
HintsInput = AnalysisHints | dict[str, Any]


def _hints_body(hints: HintsInput | None) -> dict[str, Any] | None:
    """Corrections as the API takes them (checked here first: a bad value is a ValueError before any
    request), or None when not given."""
    if hints is None:
        return None
    model = hints if isinstance(hints, AnalysisHints) else AnalysisHints.model_validate(hints)
    return model.model_dump(mode="json", exclude_none=True)


class _Namespace:
    _path = ""
    _model: type = object

    def __init__(self, client: Any) -> None:
        self._client = client
        self._api: Api = client._api

    def _run(self, op: Operation) -> Any:
        return self._client._run(op)

    def _list(self, params: list[tuple[str, Any]]) -> Any:
        return self._run(self._api.call(ListObject[self._model], "GET", self._path, params=params))

    def _list_all(self, params: list[tuple[str, Any]]) -> Any:
        return self._client._iterate(self._api.paginate(self._model, self._path, params))

    def _retrieve(self, object_id: str, params: list[tuple[str, Any]] | None = None) -> Any:
        return self._run(self._api.call(self._model, "GET", f"{self._path}/{_seg(object_id)}", params=params))

    def _post(self, cast: type, path: str, idempotency_key: str | None, **kwargs: Any) -> Any:
        return self._run(self._api.call(cast, "POST", path, idempotency_key=idempotency_key, **kwargs))


def _page(limit: int | None, starting_after: str | None, ending_before: str | None) -> list[tuple[str, Any]]:
    return [("limit", limit), ("starting_after", starting_after), ("ending_before", ending_before)]


class _Collection(_Namespace):
    """``list``, ``list_all`` and ``retrieve`` of a resource that has no expandable references."""

    def list(self, *, limit: int | None = None, starting_after: str | None = None,
             ending_before: str | None = None) -> ListObject:
        """One page, newest first.

        Parameters
        ----------
        limit : int, optional
            1 to 100 objects (the server's default is 10).
        starting_after, ending_before : str, optional
            Object ids: the page after (older than) or before (newer than) that object.

        Returns
        -------
        ListObject
            ``data`` and ``has_more``.
        """
        return self._list(_page(limit, starting_after, ending_before))

    def list_all(self, *, page_size: int = 100) -> Iterator:
        """Every object, newest first, fetched page by page as the iteration goes
        (an async iterator on :class:`~beatframe.client.AsyncClient`)."""
        return self._list_all([("limit", page_size)])

    def retrieve(self, object_id: str) -> Any:
        """One object by id (:class:`~beatframe.client.NotFoundError` if it is not this project's)."""
        return self._retrieve(object_id)


class _ExpandableCollection(_Namespace):
    """``list``, ``list_all`` and ``retrieve`` with ``expand`` (``"track"``, ``"render"``, ``"canvas"``)."""

    def list(self, *, limit: int | None = None, starting_after: str | None = None, ending_before: str | None = None,
             expand: Iterable[str] | None = None) -> ListObject:
        """One page, newest first; ``expand`` replaces the named references' ids by the objects."""
        return self._list(_page(limit, starting_after, ending_before) + expand_params(expand))

    def list_all(self, *, page_size: int = 100, expand: Iterable[str] | None = None) -> Iterator:
        """Every object, newest first, page by page (an async iterator on the async client)."""
        return self._list_all([("limit", page_size), *expand_params(expand)])

    def retrieve(self, object_id: str, *, expand: Iterable[str] | None = None) -> Any:
        """One object by id; ``expand`` replaces the named references' ids by the objects."""
        return self._retrieve(object_id, expand_params(expand))

    def wait(self, object_id: str, *, timeout: float | None = 600.0, poll: float = 1.0,
             on_progress: ProgressCallback | None = None) -> Any:
        """Wait for the object's render to succeed; returns the object retrieved again (with outputs).

        Parameters
        ----------
        object_id : str
            The canvas or video.
        timeout : float or None
            Seconds to wait at most (None: no limit).
        poll : float
            Seconds between two looks at the render.
        on_progress : callable, optional
            Called with every :class:`~beatframe.resources.Render` seen.

        Raises
        ------
        RenderFailed
            The render failed or was canceled (``.render`` says why).
        WaitTimeoutError
            Still not finished after ``timeout`` (a :class:`TimeoutError`).
        """
        return self._run(self._wait(object_id, timeout=timeout, poll=poll, on_progress=on_progress))

    def _wait(self, object_id: str, **wait: Any) -> Operation:
        path = f"{self._path}/{_seg(object_id)}"
        obj = yield from self._api.call(self._model, "GET", path)
        yield from self._api.wait_render(obj.render_id, **wait)
        return (yield from self._api.call(self._model, "GET", path))


class Tracks(_Collection):
    """``/v1/tracks``: the audio a project renders from."""

    _path, _model = "/v1/tracks", Track

    def create(self, file: FileInput | None = None, *, url: str | None = None, filename: str | None = None,
               idempotency_key: str | None = None) -> Track:
        """Upload an audio file, or have the server fetch one from an http(s) ``url``.

        Parameters
        ----------
        file : path or binary file object, optional
            The audio; a path is reopened and a file object rewound on every retry.
        url : str, optional
            Instead of ``file``: a public http(s) URL the server downloads.
        filename : str, optional
            The name to send (default: the file's own).
        idempotency_key : str, optional
            Default: a new uuid4, reused on this call's retries.
        """
        if (file is None) == (url is None):
            raise ValueError("give a file or a url (exactly one)")
        if url is not None:
            return self._post(Track, self._path, idempotency_key, json={"url": url})
        return self._post(Track, self._path, idempotency_key, upload=Upload(file, filename=filename))

    def delete(self, track_id: str) -> Deleted:
        """Delete a track (its audio is removed from storage)."""
        return self._run(self._api.call(Deleted, "DELETE", f"{self._path}/{_seg(track_id)}"))

    def analysis(self, track_id: str, *, wait: bool = False, timeout: float | None = 300.0,
                 poll: float = 1.0) -> Analysis:
        """The track's analysis: ``status="pending"`` while computed, then the ``beatframe.analysis/1`` fields.

        With ``wait=True`` it polls until the analysis succeeded (a :class:`WaitTimeoutError` after
        ``timeout`` seconds); a failed analysis raises :class:`InvalidRequestError` (``analysis_failed``).
        """
        path = f"{self._path}/{_seg(track_id)}/analysis"
        if not wait:
            return self._run(self._api.call(Analysis, "GET", path))
        return self._run(self._api.poll(lambda: self._api.call(Analysis, "GET", path),
                                        lambda a: a.status != "pending", timeout=timeout, interval=poll,
                                        what=f"the analysis of {track_id}"))

    def update_analysis(self, track_id: str, hints: HintsInput | None = None, *, bpm: float | None = None,
                        downbeat: float | None = None, meter: int | None = None, beats: list[float] | None = None,
                        beat_positions: list[int] | None = None, wait: bool = False, timeout: float | None = 300.0,
                        poll: float = 1.0, idempotency_key: str | None = None) -> Analysis:
        """Correct the track's analysis (``PATCH /v1/tracks/{id}/analysis``): a new analysis version
        that every canvas and video created afterwards uses.

        Parameters
        ----------
        track_id : str
        hints : AnalysisHints or dict, optional
            The corrections as one object; or give them as keywords:
        bpm : float, optional
            The tempo (30-300); the beats are tracked again at it.
        downbeat : float, optional
            The time (s) of one downbeat.
        meter : int, optional
            Beats per bar (2-12).
        beats, beat_positions : lists, optional
            The beat grid (increasing times, s) and each beat's place in its bar (1 = downbeat);
            :func:`beatframe.music.analysis.hints.read_beat_file` reads them from a beat file.
        wait : bool
            Poll until the corrected analysis is computed (as :meth:`analysis` with ``wait=True``).

        The corrections replace any given before; none at all goes back to the estimate.
        Invalid values raise ``pydantic.ValidationError`` (a ``ValueError``) before any request.

        Returns
        -------
        Analysis
            ``status="pending"`` with the new ``version`` (or, with ``wait``, the finished analysis).
        """
        fields = {"bpm": bpm, "downbeat": downbeat, "meter": meter, "beats": beats, "beat_positions": beat_positions}
        given = {k: v for k, v in fields.items() if v is not None}
        if hints is not None and given:
            raise ValueError("give the corrections as hints or as keywords, not both")
        body = _hints_body(hints if hints is not None else given)
        path = f"{self._path}/{_seg(track_id)}/analysis"
        patched = self._api.call(Analysis, "PATCH", path, json=body, idempotency_key=idempotency_key)
        if not wait:
            return self._run(patched)
        return self._run(self._patch_and_wait(patched, path, timeout=timeout, poll=poll,
                                              what=f"the analysis of {track_id}"))

    def _patch_and_wait(self, patched: Operation, path: str, *, timeout: float | None, poll: float,
                        what: str) -> Operation:
        yield from patched
        return (yield from self._api.poll(lambda: self._api.call(Analysis, "GET", path),
                                          lambda a: a.status != "pending", timeout=timeout, interval=poll,
                                          what=what))


class Canvases(_ExpandableCollection):
    """``/v1/canvases``: loop-native Spotify Canvases of tracks."""

    _path, _model = "/v1/canvases", Canvas

    def create(self, track: str | Track, *, template: str | None = None, seconds: float | None = None,
               seed: int | None = None, loop: Literal["continuous", "rebound", "hard_cut"] | None = None,
               cover_asset: str | None = None, analysis_hints: HintsInput | None = None,
               idempotency_key: str | None = None) -> Canvas:
        """Request a Canvas; the answer comes at once (202) with its queued render expanded.

        Parameters
        ----------
        track : str or Track
        template : str, optional
            A template name or ``tpl_`` id (server default ``neon-pulse``).
        seconds : float, optional
            Loop length, 3 to 8, rounded to whole bars (server default 7).
        seed : int, optional
        loop : {"continuous", "rebound", "hard_cut"}, optional
            Default: the template's.
        cover_asset : str, optional
            An ``ast_`` image to animate instead of a procedural scene.
        analysis_hints : AnalysisHints or dict, optional
            Corrections of the analysis for this render (``bpm``, ``downbeat``, ``meter``, ``beats``,
            ``beat_positions``), replacing the track's own (:meth:`Tracks.update_analysis`).
        idempotency_key : str, optional
            Default: a new uuid4, reused on this call's retries.
        """
        body = {"track": id_of(track), "template": template, "seconds": seconds, "seed": seed, "loop": loop,
                "cover_asset": id_of(cover_asset), "analysis_hints": _hints_body(analysis_hints)}
        return self._post(Canvas, self._path, idempotency_key, json=_present(body))


class Videos(_ExpandableCollection):
    """``/v1/videos``: full-length music videos of a track, or expanded from a canvas."""

    _path, _model = "/v1/videos", Video

    def create(self, *, track: str | Track | None = None, canvas: str | Canvas | None = None,
               template: str | None = None, size: str | None = None, seed: int | None = None,
               analysis_hints: HintsInput | None = None, idempotency_key: str | None = None) -> Video:
        """Request a video of ``track``, or in the style of ``canvas`` (exactly one); 202 with its render.

        Parameters
        ----------
        track, canvas : str or object
        template : str, optional
        size : str, optional
            ``1920x1080`` (server default), ``1080x1920`` or ``1080x1080``.
        seed : int, optional
        analysis_hints : AnalysisHints or dict, optional
            Corrections of the analysis for this render, replacing the track's own (default: the
            canvas's, if it gave any).
        idempotency_key : str, optional
        """
        if (track is None) == (canvas is None):
            raise ValueError("give a track or a canvas (exactly one)")
        body = {"track": id_of(track), "canvas": id_of(canvas), "template": template, "size": size, "seed": seed,
                "analysis_hints": _hints_body(analysis_hints)}
        return self._post(Video, self._path, idempotency_key, json=_present(body))


class Renders(_Collection):
    """``/v1/renders``: the work behind canvases and videos (status, stages, cost, error)."""

    _path, _model = "/v1/renders", Render

    def cancel(self, render_id: str, *, idempotency_key: str | None = None) -> Render:
        """Cancel a queued render (:class:`ConflictError` ``render_not_cancelable`` once it started)."""
        return self._post(Render, f"{self._path}/{_seg(render_id)}/cancel", idempotency_key)

    def wait(self, render_id: str, *, timeout: float | None = 600.0, poll: float = 1.0,
             on_progress: ProgressCallback | None = None) -> Render:
        """Poll until the render finished; returns it when it succeeded.

        Raises
        ------
        RenderFailed
            It failed or was canceled (``.render`` holds it, with its ``error``).
        WaitTimeoutError
            Not finished after ``timeout`` seconds (a :class:`TimeoutError`; ``.last`` is the render).
        """
        return self._run(self._api.wait_render(render_id, timeout=timeout, poll=poll, on_progress=on_progress))


class Templates(_Collection):
    """``/v1/templates``: the built-in templates and the project's own."""

    _path, _model = "/v1/templates", Template

    def retrieve(self, template_id: str, *, version: int | str | None = None) -> Template:
        """A template by id (``tpl_…``), optionally an earlier ``version``."""
        return self._retrieve(template_id, [("version", version)])

    def create(self, *, name: str, title: str, palette: list[str], scene: str,
               idempotency_key: str | None = None, **fields: Any) -> Template:
        """Create a project template; other Template fields (``description``, ``default_loop``, …) as keywords."""
        body = {"name": name, "title": title, "palette": palette, "scene": scene, **fields}
        return self._post(Template, self._path, idempotency_key, json=body)

    def update(self, template_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Template:
        """Change some fields of a project template; the answer is its new version."""
        return self._post(Template, f"{self._path}/{_seg(template_id)}", idempotency_key, json=fields)

    def delete(self, template_id: str) -> Deleted:
        return self._run(self._api.call(Deleted, "DELETE", f"{self._path}/{_seg(template_id)}"))


class Assets(_Collection):
    """``/v1/assets``: images, clips and audio a project brings in, with their rights."""

    _path, _model = "/v1/assets", Asset

    def create(self, file: FileInput, *, license: str, attribution: str, rights_holder: str,
               filename: str | None = None, idempotency_key: str | None = None) -> Asset:
        """Upload an asset with its licence, attribution and rights holder (all required)."""
        form = {"license": license, "attribution": attribution, "rights_holder": rights_holder}
        return self._post(Asset, self._path, idempotency_key, data=form, upload=Upload(file, filename=filename))

    def delete(self, asset_id: str) -> Deleted:
        return self._run(self._api.call(Deleted, "DELETE", f"{self._path}/{_seg(asset_id)}"))


class WebhookEndpoints(_Collection):
    """``/v1/webhook_endpoints``: where the project's events are POSTed, signed."""

    _path, _model = "/v1/webhook_endpoints", WebhookEndpoint

    def create(self, url: str, *, events: Iterable[str] = ("*",), description: str = "",
               idempotency_key: str | None = None) -> WebhookEndpoint:
        """Register ``url`` for ``events``; keep the answer's ``secret`` (shown this once) to verify
        deliveries with :func:`beatframe.api.webhooks.verify_signature`."""
        body = {"url": url, "events": list(events), "description": description}
        return self._post(WebhookEndpoint, self._path, idempotency_key, json=body)

    def delete(self, endpoint_id: str) -> Deleted:
        return self._run(self._api.call(Deleted, "DELETE", f"{self._path}/{_seg(endpoint_id)}"))


class Events(_Collection):
    """``/v1/events``: everything that happened to the project's renders and tracks."""

    _path, _model = "/v1/events", Event


class WebhookDeliveries(_Collection):
    """``/v1/webhook_deliveries``: the delivery log, with each attempt; ``redeliver`` sends one again."""

    _path, _model = "/v1/webhook_deliveries", WebhookDelivery

    def redeliver(self, delivery_id: str, *, idempotency_key: str | None = None) -> WebhookDelivery:
        return self._post(WebhookDelivery, f"{self._path}/{_seg(delivery_id)}/redeliver", idempotency_key)


class UsageResource(_Namespace):
    """``/v1/usage``: seconds and cost, by day, object or environment."""

    def retrieve(self, *, group_by: Literal["day", "object", "flow", "stage", "env"] = "day",
                 start: date | str | None = None,
                 end: date | str | None = None) -> Usage:
        """Usage between ``start`` and ``end`` (``YYYY-MM-DD`` or dates), grouped by ``group_by``."""
        params = [("group_by", group_by), ("start", start), ("end", end)]
        return self._run(self._api.call(Usage, "GET", "/v1/usage", params=params))


class SlaResource(_Namespace):
    """``/v1/sla/status``: the service's latency, errors and uptime against an SLA level."""

    def retrieve(self, *, level: Literal["best_effort", "standard", "premium", "critical"] | None = None,
                 window: float | None = None) -> SlaStatus:
        """The status over the last ``window`` seconds (default and at most the server's window)."""
        return self._run(self._api.call(SlaStatus, "GET", "/v1/sla/status",
                                         params=[("level", level), ("window", window)]))


class Tasks(_Namespace):
    """The reference video-generation API's tasks: ``POST /v1/generate``, ``/v1/status``, ``/v1/result``."""

    def create(self, prompt: str, *, idempotency_key: str | None = None, **fields: Any) -> GenerateAccepted:
        """Start a generation from ``prompt``; ``fields`` are the reference's (``duration_seconds``,
        ``fps``, ``resolution``, ``aspect_ratio``, ``genre``, ``seed``, ``webhook_url`` …)."""
        return self._post(GenerateAccepted, "/v1/generate", idempotency_key, json={"prompt": prompt, **_present(fields)})

    def status(self, task_id: str) -> TaskStatus:
        return self._run(self._api.call(TaskStatus, "GET", f"/v1/status/{_seg(task_id)}"))

    def result(self, task_id: str) -> TaskResult:
        """A completed task's result (:class:`ConflictError` while it is not completed, or after it failed)."""
        return self._run(self._api.call(TaskResult, "GET", f"/v1/result/{_seg(task_id)}"))

    def wait(self, task_id: str, *, timeout: float | None = 600.0, poll: float = 1.0,
             on_progress: Callable[[TaskStatus], None] | None = None) -> TaskResult:
        """Poll until the task finished, then return its result (a failed task raises :class:`ConflictError`)."""
        return self._run(self._api.wait_task(task_id, timeout=timeout, poll=poll, on_progress=on_progress))


def _present(body: dict[str, Any]) -> dict[str, Any]:
    """The fields given; the server's defaults apply to the rest."""
    return {k: v for k, v in body.items() if v is not None}


def download_target(output_or_url: Any) -> tuple[str, str | None]:
    """The URL and expected sha256 of an output (object or dict), or a bare URL."""
    if isinstance(output_or_url, str):
        return output_or_url, None
    if isinstance(output_or_url, dict):
        return output_or_url["url"], output_or_url.get("sha256")
    return output_or_url.url, getattr(output_or_url, "sha256", None)


