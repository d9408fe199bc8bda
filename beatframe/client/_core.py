"""The SDK's logic, written once for both clients, free of I/O ("sans-I/O").

Every API call is an *operation*: a generator that yields actions and receives their outcomes:

- :class:`Send` (one HTTP request) → a :class:`Reply`, or the ``httpx.TransportError`` it raised;
- :class:`Sleep` (a pause between retries or polls) → ``None``;
- :class:`Emit` (an item of an iterator such as ``list_all``) → ``None``.

Request building, idempotency keys, retries and backoff, error mapping, parsing, pagination and
polling live here; :class:`~beatframe.client.Client` and :class:`~beatframe.client.AsyncClient`
only perform the actions (blocking or awaiting).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel

from beatframe import __version__
from beatframe.client.errors import (APIConnectionError, APITimeoutError, BeatframeError, RenderFailed,
                                     WaitTimeoutError, error_from_response)
from beatframe.infra.fsutil import _umask
from beatframe.resources import FINISHED_STATUSES, TASK_RUNNING_STATUSES, ListObject, Render, TaskResult, TaskStatus

M = TypeVar("M", bound=BaseModel)
DEFAULT_VERSION = "2026-11-21"
#: First retry after about this many seconds, doubling up to :data:`MAX_BACKOFF`.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: A server's ``Retry-After`` is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_CHUNK = 1 << 16


# --- actions and outcomes -------------------------------------------------------------------------

@dataclass
class Send:
    """One HTTP request; ``dest`` streams a 200 body into a temporary file beside that path."""

    method: str
    url: str
    headers: dict[str, str]
    params: list[tuple[str, str]] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    dest: Path | None = None

    def httpx_args(self) -> dict[str, Any]:
        args = {"method": self.method, "url": self.url, "headers": self.headers, "params": self.params,
                "json": self.json, "data": self.data, "files": self.files}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class Sleep:
    seconds: float


@dataclass
class Emit:
    item: Any


@dataclass
class Reply:
    """A whole answer: status, headers and body (or, for a download, the temporary file)."""

    status: int
    headers: httpx.Headers
    content: bytes = b""
    path: Path | None = None
    sha256: str | None = None
    bytes: int = 0

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id")

    def json(self) -> Any:
        return httpx.Response(self.status, content=self.content).json()


Outcome = Reply | httpx.TransportError | None
Operation = Generator[Send | Sleep | Emit, Outcome, Any]


class Sink:
    """Collects one response body while a client streams it: in memory, or for a successful
    download into a temporary file beside the destination (removed if the stream breaks)."""

    def __init__(self, send: Send, response: httpx.Response) -> None:
        self.status, self.headers = response.status_code, response.headers
        self._buffer = bytearray()
        self._digest, self._size = hashlib.sha256(), 0
        self._file: IO[bytes] | None = None
        self._tmp: Path | None = None
        if send.dest is not None and response.status_code == 200:
            send.dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{send.dest.name}.", suffix=".part", dir=send.dest.parent)
            self._file, self._tmp = os.fdopen(fd, "wb"), Path(name)

    def __enter__(self) -> Sink:
        return self

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            self._buffer += chunk
            return
        self._digest.update(chunk)
        self._size += len(chunk)
        self._file.write(chunk)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._file is not None:
            self._file.close()
            if exc_type is not None and self._tmp is not None:
                self._tmp.unlink(missing_ok=True)

    def reply(self) -> Reply:
        if self._tmp is None:
            return Reply(self.status, self.headers, bytes(self._buffer))
        return Reply(self.status, self.headers, path=self._tmp, sha256=self._digest.hexdigest(), bytes=self._size)


def step(op: Operation, outcome: Outcome) -> tuple[bool, Any]:
    """Advance ``op`` by one outcome: ``(False, next action)`` or ``(True, its return value)``."""
    try:
        return False, op.send(outcome)
    except StopIteration as stop:
        return True, stop.value


def emit_result(op: Operation) -> Operation:
    """``op`` with its return value emitted last, so one iterating driver serves every call."""
    value = yield from op
    yield Emit(value)


# --- configuration --------------------------------------------------------------------------------

def resolve_config(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The API root (without ``/v1``) and key: the arguments, else BEATFRAME_API_URL / BEATFRAME_API_KEY."""
    if base_url is None or api_key is None:
        from beatframe.infra.settings import Settings

        settings = Settings()
        base_url = base_url if base_url is not None else settings.api_url
        api_key = api_key if api_key is not None else settings.api_key
    if not base_url:
        raise ValueError("no beatframe API URL: pass base_url= or set BEATFRAME_API_URL (e.g. http://127.0.0.1:8000)")
    if not api_key:
        raise ValueError("no beatframe API key: pass api_key= or set BEATFRAME_API_KEY (bf_test_… or bf_live_…)")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the beatframe API URL must be http(s)://host[:port], not {base_url!r}")
    root = base_url.strip().rstrip("/")
    return root.removesuffix("/v1"), api_key.strip()


@dataclass
class Api:
    """What an operation needs to know about its client; builds every operation."""

    base_url: str
    api_key: str
    version: str = DEFAULT_VERSION
    max_retries: int = 3
    sleep_jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __repr__(self) -> str:  # never show the key
        return f"Api(base_url={self.base_url!r}, version={self.version!r}, max_retries={self.max_retries})"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Beatframe-Version": self.version,
                "User-Agent": f"beatframe-python/{__version__}", "Accept": "application/json"}

    # --- one request, retried -------------------------------------------------------------------

    def retry_delay(self, outcome: Outcome, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``outcome``, or None to stop here.

        Connection trouble, timeouts, 429 and 5xx are retried (``max_retries`` times) after an
        exponential backoff with jitter, or after the server's ``Retry-After``; other answers are
        final (a 4xx would fail the same way again).
        """
        if attempt >= self.max_retries:
            return None
        if isinstance(outcome, Reply):
            if outcome.status != 429 and outcome.status < 500:
                return None
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, MAX_RETRY_AFTER)
        elif not isinstance(outcome, _RETRYABLE_ERRORS):
            return None
        backoff = min(MAX_BACKOFF, INITIAL_BACKOFF * 2 ** attempt)
        return backoff / 2 + self.sleep_jitter() * backoff / 2

    def request(self, method: str, path_or_url: str, *, params: Iterable[tuple[str, Any]] | dict | None = None,
                json: Any = None, data: dict[str, str] | None = None, upload: Upload | None = None,
                idempotency_key: str | None = None, dest: Path | None = None, auth: bool = True) -> Operation:
        """Send one request, retried as :meth:`retry_delay` says; returns the :class:`Reply` or raises.

        Every POST and PATCH carries an ``Idempotency-Key`` (``idempotency_key`` or a new uuid4), the same on
        every retry, so a retry after a lost answer replays the first result instead of repeating it.
        """
        url = path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"
        headers = self.headers() if auth else {"User-Agent": f"beatframe-python/{__version__}"}
        if method in ("POST", "PATCH"):
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        query = _query(params)
        attempt = 0
        while True:
            with upload.open() if upload is not None else nullcontext() as files:
                outcome = yield Send(method, url, headers, params=query, json=json, data=data, files=files, dest=dest)
            delay = self.retry_delay(outcome, attempt)
            if delay is None:
                break
            _discard(outcome)
            attempt += 1
            yield Sleep(delay)
        if isinstance(outcome, httpx.TimeoutException):
            raise APITimeoutError(f"{method} {url} timed out ({type(outcome).__name__}, {attempt + 1} attempts)") \
                from outcome
        if isinstance(outcome, httpx.TransportError):
            raise APIConnectionError(f"could not reach the beatframe API at {url}: {outcome or type(outcome).__name__}"
                                     f" ({attempt + 1} attempts)") from outcome
        if outcome.status >= 400:
            _discard(outcome)
            raise error_from_response(outcome.status, outcome.content, outcome.request_id)
        return outcome

    def call(self, cast: type[M], method: str, path: str, **kwargs: Any) -> Operation:
        """:meth:`request`, then the answer parsed as ``cast``."""
        reply = yield from self.request(method, path, **kwargs)
        return parse(cast, reply)

    # --- iterators and waits ----------------------------------------------------------------------

    def paginate(self, cast: type[M], path: str, params: list[tuple[str, Any]]) -> Operation:
        """Every object of a listing, newest first, fetched page by page (``starting_after``)."""
        cursor: list[tuple[str, Any]] = []
        while True:
            page = yield from self.call(ListObject[cast], "GET", path, params=[*params, *cursor])
            for item in page.data:
                yield Emit(item)
            if not page.has_more or not page.data:
                return
            cursor = [("starting_after", page.data[-1].id)]

    def poll(self, fetch: Callable[[], Operation], done: Callable[[Any], bool], *, timeout: float | None,
             interval: float, what: str, on_progress: Callable[[Any], None] | None = None) -> Operation:
        """Repeat ``fetch`` every ``interval`` seconds until ``done(result)``; returns that result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = yield from fetch()
            if on_progress is not None:
                on_progress(current)
            if done(current):
                return current
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeoutError(f"{what} not finished after {timeout} s", current)
            yield Sleep(interval if remaining is None else min(interval, remaining))

    def wait_render(self, render_id: str, *, timeout: float | None, poll: float,
                    on_progress: Callable[[Render], None] | None) -> Operation:
        """Poll a render until it finishes: the succeeded :class:`Render`, else :class:`RenderFailed`."""
        render = yield from self.poll(lambda: self.call(Render, "GET", f"/v1/renders/{_seg(render_id)}"),
                                      lambda r: r.status in FINISHED_STATUSES, timeout=timeout, interval=poll,
                                      what=f"render {render_id}", on_progress=on_progress)
        if render.status != "succeeded":
            raise RenderFailed(render)
        return render

    def wait_task(self, task_id: str, *, timeout: float | None, poll: float,
                  on_progress: Callable[[Any], None] | None) -> Operation:
        """Poll a generate task until it finishes, then read its result."""
        yield from self.poll(lambda: self.call(TaskStatus, "GET", f"/v1/status/{_seg(task_id)}"),
                             lambda status: status.status not in TASK_RUNNING_STATUSES, timeout=timeout, interval=poll,
                             what=f"task {task_id}", on_progress=on_progress)
        return (yield from self.call(TaskResult, "GET", f"/v1/result/{_seg(task_id)}"))

    def download(self, url: str, dest: Path, *, sha256: str | None = None, name: str | None = None) -> Operation:
        """Stream ``url`` (a signed link: no API key is sent) to a temporary file, then rename it to
        ``dest`` (or ``dest/<name>`` when ``dest`` is a folder); checks ``sha256`` when given."""
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / (name or PurePosixPath(unquote(urlsplit(url).path)).name or "download")
        reply = yield from self.request("GET", url, dest=dest, auth=False)
        if reply.path is None:
            raise BeatframeError(f"download of {url} answered {reply.status}, not 200", status=reply.status)
        if sha256 and reply.sha256 != sha256:
            reply.path.unlink(missing_ok=True)
            raise BeatframeError(f"download of {dest.name} is corrupt: sha256 {reply.sha256} != {sha256}")
        os.chmod(reply.path, 0o666 & ~_umask())
        os.replace(reply.path, dest)
        return dest


# --- helpers --------------------------------------------------------------------------------------

class Upload:
    """A file for a multipart field that can be sent again on every retry.

    A path is reopened for each attempt; a seekable file object is rewound to where it stood; any
    other stream is read into memory once.
    """

    def __init__(self, file: str | os.PathLike | IO[bytes], *, field: str = "file", filename: str | None = None,
                 content_type: str | None = None) -> None:
        self.field = field
        self._path: Path | None = None
        self._fileobj: IO[bytes] | None = None
        self._data: bytes | None = None
        if isinstance(file, (str, os.PathLike)):
            self._path = Path(file)
            if not self._path.is_file():
                raise FileNotFoundError(f"no such file: {self._path}")
            name = self._path.name
        else:
            name = Path(str(getattr(file, "name", "") or "upload")).name
            if _seekable(file):
                self._fileobj, self._start = file, file.tell()
            else:
                self._data = file.read()
        self.filename = filename or name
        self.content_type = content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    @contextmanager
    def open(self) -> Iterator[dict[str, Any]]:
        if self._path is not None:
            with open(self._path, "rb") as f:
                yield {self.field: (self.filename, f, self.content_type)}
            return
        if self._fileobj is not None:
            self._fileobj.seek(self._start)
            yield {self.field: (self.filename, self._fileobj, self.content_type)}
            return
        yield {self.field: (self.filename, self._data, self.content_type)}


def parse(cast: type[M], reply: Reply) -> M:
    try:
        return cast.model_validate(reply.json())
    except ValueError as exc:  # not JSON, or not the object the contract promises
        raise BeatframeError(f"unexpected answer from the server ({reply.status}): {exc}", status=reply.status,
                             request_id=reply.request_id) from None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def expand_params(expand: Iterable[str] | None) -> list[tuple[str, str]]:
    return [("expand[]", e) for e in (expand or ())]


def _query(params: Iterable[tuple[str, Any]] | dict | None) -> list[tuple[str, str]] | None:
    if params is None:
        return None
    items = params.items() if isinstance(params, dict) else params
    return [(k, _text(v)) for k, v in items if v is not None] or None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _seg(object_id: str) -> str:
    """An id as one path segment (ids never hold ``/``; refuse rather than reach another route)."""
    if not object_id or "/" in object_id or object_id in (".", ".."):
        raise ValueError(f"not an object id: {object_id!r}")
    return object_id


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _discard(outcome: Outcome) -> None:
    """Remove the temporary file of a download answer that is not kept."""
    if isinstance(outcome, Reply) and outcome.path is not None:
        outcome.path.unlink(missing_ok=True)

