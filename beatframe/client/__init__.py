"""The Python SDK of the beatframe HTTP API: typed results, retries, waits and downloads.

>>> from beatframe.client import Client                             # doctest: +SKIP
>>> with Client() as client:
...     track = client.tracks.create(file="song.wav")
...     canvas = client.canvases.create(track, template="neon-pulse", seconds=6)
...     canvas = client.canvases.wait(canvas.id, on_progress=lambda r: print(r.status, r.progress))
...     for output in canvas.outputs:
...         client.download(output, "out/")

:class:`Client` blocks; :class:`AsyncClient` has the same methods to ``await``. Results are the
pydantic models of :mod:`beatframe.resources`; failures raise :class:`BeatframeError` subclasses.

Environment: the clients read ``BEATFRAME_API_URL`` (the API's address, e.g.
``http://127.0.0.1:8000``) and ``BEATFRAME_API_KEY`` (``bf_test_…`` / ``bf_live_…``) through
:class:`beatframe.infra.settings.Settings` when ``base_url`` / ``api_key`` are not passed.

Every POST and PATCH carries an ``Idempotency-Key`` (a new uuid4 per call unless you pass
``idempotency_key=``), kept across the automatic retries of connection errors, timeouts, 429 and
5xx, so a retry after a lost answer replays the first result instead of creating a second object.
"""

from beatframe.client._clients import AsyncClient, Client
from beatframe.client.errors import (APIConnectionError, APIError, APITimeoutError, AuthenticationError,
                                     BeatframeError, ConflictError, IdempotencyError, InvalidRequestError,
                                     NotFoundError, PermissionDeniedError, RateLimitError, RenderFailed,
                                     WaitTimeoutError)
from beatframe.resources import (Analysis, Asset, Canvas, Cost, CostLine, Deleted, ListObject, Output, Render,
                                 RenderError, RenderStage, Template, Track, Usage, UsageRow, Video)

__all__ = [
    "APIConnectionError", "APIError", "APITimeoutError", "Analysis", "Asset", "AsyncClient", "AuthenticationError",
    "BeatframeError", "Canvas", "Client", "ConflictError", "Cost", "CostLine", "Deleted", "IdempotencyError",
    "InvalidRequestError", "ListObject", "NotFoundError", "Output", "PermissionDeniedError", "RateLimitError",
    "Render", "RenderError", "RenderFailed", "RenderStage", "Template", "Track", "Usage", "UsageRow", "Video",
    "WaitTimeoutError",
]
