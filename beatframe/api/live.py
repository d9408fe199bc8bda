"""Live render events across processes: PostgreSQL ``LISTEN/NOTIFY`` from whoever changes a render
to every API process that streams it (``GET /v1/renders/{id}/stream``).

:func:`notify` queues an event in the caller's transaction (PostgreSQL delivers it at commit, in
commit order, to every listening connection, on any host). Each API process runs one
:class:`RenderListener`: a thread on a dedicated connection that hands each event to the asyncio
queues of the WebSockets following that render.

Events (JSON): ``{"type": "progress", "progress", "stage"}``, ``{"type": "stage", "stage"}``,
``{"type": "frame_available", "quality": "draft" | "full", "key"}``, ``{"type": "complete",
"status"}`` and ``{"type": "error", "error"}``; each carries ``render``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict

import psycopg

log = logging.getLogger(__name__)
CHANNEL = "beatframe_render"
PREVIEW_QUALITIES = ("draft", "full")


def notify(conn, render_id: str, event: dict) -> None:
    """Publish ``event`` about ``render_id`` when ``conn``'s transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({**event, "render": render_id})))


def preview_prefix(project_id: str, render_id: str) -> str:
    """Where a render's preview frames go in the object store."""
    return f"previews/{project_id}/{render_id}"


class RenderListener:
    """One LISTEN connection per process, fanned out to the WebSockets of this process."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = defaultdict(set)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="render-listener", daemon=True)

    def start(self) -> "RenderListener":
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def subscribe(self, render_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._subscribers[render_id].add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, render_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers[render_id] = {s for s in self._subscribers[render_id] if s[1] is not queue}
            if not self._subscribers[render_id]:
                del self._subscribers[render_id]

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._dispatch(json.loads(note.payload))
            except Exception:  # noqa: BLE001 - the database restarted: listen again
                log.warning("render listener lost its connection; reconnecting", exc_info=True)
                self._stop.wait(1.0)

    def _dispatch(self, event: dict) -> None:
        with self._lock:
            targets = list(self._subscribers.get(event.get("render"), ()))
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, event)
