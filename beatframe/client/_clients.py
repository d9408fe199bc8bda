"""``Client`` (blocking, ``httpx.Client``) and ``AsyncClient`` (``httpx.AsyncClient``).

Both run the same operations (:mod:`beatframe.client._core`); they differ only in how an action is
performed: ``time.sleep`` or ``await asyncio.sleep``, a blocking or an awaited streamed request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from beatframe.client._core import (_CHUNK, DEFAULT_VERSION, Api, Emit, Operation, Outcome, Sink, Sleep, emit_result,
                                    resolve_config, step)
from beatframe.client._resources import (Assets, Canvases, Events, Renders, SlaResource, Tasks, Templates, Tracks,
                                         UsageResource, Videos, WebhookDeliveries, WebhookEndpoints, download_target)


class _BaseClient:
    _http_class: type = httpx.Client

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 3, version: str = DEFAULT_VERSION, transport: Any = None) -> None:
        root, key = resolve_config(base_url, api_key)
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self._api = Api(root, key, version=version, max_retries=max_retries)
        self._http = self._http_class(transport=transport, timeout=httpx.Timeout(timeout))
        self.tracks = Tracks(self)
        self.canvases = Canvases(self)
        self.videos = Videos(self)
        self.renders = Renders(self)
        self.templates = Templates(self)
        self.assets = Assets(self)
        self.usage = UsageResource(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.events = Events(self)
        self.webhook_deliveries = WebhookDeliveries(self)
        self.sla = SlaResource(self)
        self.tasks = Tasks(self)

    @property
    def base_url(self) -> str:
        """The API's root URL (the paths add ``/v1/…``)."""
        return self._api.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, version={self._api.version!r})"

    def download(self, output_or_url: Any, dest: str | Path) -> Any:
        """Download an output (or a signed URL) to ``dest``, or into ``dest`` when it is a folder.

        The body streams into a temporary file beside the destination, which is renamed into place
        once complete (and, for an output, once its sha256 matches), so ``dest`` never holds half a
        file. No API key is sent: the signed link is the credential. Returns the final path.
        """
        url, sha256 = download_target(output_or_url)
        return self._run(self._api.download(url, Path(dest), sha256=sha256))


class Client(_BaseClient):
    """The beatframe API, blocking.

    Parameters
    ----------
    base_url : str, optional
        The API's address, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is fine); default
        ``BEATFRAME_API_URL``.
    api_key : str, optional
        ``bf_test_…`` or ``bf_live_…``; default ``BEATFRAME_API_KEY``.
    timeout : float
        Seconds for connecting and for each read or write.
    max_retries : int
        Retries of a request after connection errors, timeouts, 429 and 5xx (backoff with jitter,
        or the server's ``Retry-After``). POSTs keep their ``Idempotency-Key`` across retries.
    version : str
        The ``Beatframe-Version`` to ask for.
    transport : httpx.BaseTransport, optional
        A custom transport (tests, proxies, mounting an ASGI app).

    Raises
    ------
    ValueError
        No URL or no key was given or found in the environment.

    Examples
    --------
    >>> with Client() as client:                                    # doctest: +SKIP
    ...     track = client.tracks.create(file="song.wav")
    ...     canvas = client.canvases.wait(client.canvases.create(track, seconds=6).id)
    ...     client.download(canvas.outputs[0], "out/")
    """

    _http_class = httpx.Client

    def _perform(self, action: Any) -> Outcome:
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return None
        try:
            with self._http.stream(**action.httpx_args()) as response, Sink(action, response) as sink:
                for chunk in response.iter_bytes(_CHUNK):
                    sink.write(chunk)
        except httpx.TransportError as exc:
            return exc
        return sink.reply()

    def _iterate(self, op: Operation) -> Iterator[Any]:
        done, action = step(op, None)
        while not done:
            emitted = isinstance(action, Emit)
            if emitted:
                yield action.item
            done, action = step(op, None if emitted else self._perform(action))

    def _run(self, op: Operation) -> Any:
        for result in self._iterate(emit_result(op)):
            pass
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The beatframe API for asyncio: the same namespaces and methods as :class:`Client`, awaited
    (``list_all`` gives an async iterator). Parameters as for :class:`Client`; ``transport`` is an
    ``httpx.AsyncBaseTransport``.

    Examples
    --------
    >>> async with AsyncClient() as client:                         # doctest: +SKIP
    ...     track = await client.tracks.create(file="song.wav")
    ...     async for canvas in client.canvases.list_all():
    ...         print(canvas.id)
    """

    _http_class = httpx.AsyncClient

    async def _perform(self, action: Any) -> Outcome:
        if isinstance(action, Sleep):
            await asyncio.sleep(action.seconds)
            return None
        try:
            async with self._http.stream(**action.httpx_args()) as response:
                with Sink(action, response) as sink:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        sink.write(chunk)
        except httpx.TransportError as exc:
            return exc
        return sink.reply()

    async def _iterate(self, op: Operation) -> AsyncIterator[Any]:
        done, action = step(op, None)
        while not done:
            emitted = isinstance(action, Emit)
            if emitted:
                yield action.item
            done, action = step(op, None if emitted else await self._perform(action))

    async def _run(self, op: Operation) -> Any:
        async for result in self._iterate(emit_result(op)):
            pass
        return result

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
