"""Webhooks: events written to a transactional outbox in PostgreSQL and delivered, signed, to the
project's endpoints with retries for up to a day.

- :func:`emit` inserts an event and one pending delivery per subscribed endpoint *in the caller's
  transaction*, so an event exists exactly when the change it reports was committed.
- :class:`DeliveryWorker` (a thread in every API process) claims due deliveries with
  ``FOR UPDATE SKIP LOCKED`` and a lease, so several processes share the work and none sends a
  delivery twice at once; each attempt is logged. A failed attempt is retried after an exponential
  delay with jitter (``BEATFRAME_WEBHOOK_RETRY_BASE`` seconds doubling up to
  ``BEATFRAME_WEBHOOK_RETRY_CAP``) until ``BEATFRAME_WEBHOOK_RETRY_FOR`` seconds (a day) have passed.
  Deliveries go through the SSRF guard of :mod:`beatframe.infra.urlfetch` (``BEATFRAME_FETCH_ALLOWED_NETWORKS``).
- Every delivery is signed: ``Beatframe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
  with the endpoint's secret. Receivers check it with :func:`verify_signature` (or the same few
  lines in their language) and reject stale timestamps, so a captured delivery cannot be replayed.

- Events of the reference video-generation API (``task.created/started/progress/completed/failed``,
  about ``POST /v1/generate`` tasks) are delivered in that API's payload shape,
  ``{"id", "event", "task_id", "timestamp", "data"}``, and carry its signature form too:
  ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>`` (:func:`verify_reference_signature`,
  the reference's own snippet). They go to the project's endpoints that subscribe to them and to the
  task's own ``webhook_url``, an endpoint of the task alone whose secret the generate answer shows once.

Events may arrive out of order and, after a network failure, more than once; each has a unique
``id`` for receivers to deduplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from psycopg.types.json import Jsonb

from beatframe.infra.db import new_id

log = logging.getLogger(__name__)

EVENT_TYPES = ("render.created", "render.started", "render.progress", "render.succeeded", "render.failed",
               "render.canceled", "canvas.completed", "video.completed", "track.analyzed",
               "task.created", "task.started", "task.progress", "task.completed", "task.failed")
TASK_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t.startswith("task."))
SIGNATURE_HEADER = "Beatframe-Signature"
#: The reference API's signature header on task events: ``sha256=<hex>`` (no timestamp).
REFERENCE_SIGNATURE_HEADER = "X-Webhook-Signature"
#: How old a signed timestamp a receiver accepts, in seconds.
SIGNATURE_TOLERANCE = 300
#: A claimed delivery is someone's for this long; a worker that died frees it when it runs out.
LEASE_SECONDS = 60
DELIVERY_THREADS = 4


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Beatframe-Signature`` header value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(body: bytes, header: str, secret: str, *, tolerance: int = SIGNATURE_TOLERANCE,
                     now: float | None = None) -> bool:
    """Whether ``header`` (``Beatframe-Signature``) signs the raw ``body`` with ``secret``, recently.

    Parameters
    ----------
    body : bytes
        The request body exactly as received (not re-serialized JSON).
    header : str
        ``t=<unix seconds>,v1=<hex>``; several ``v1`` entries are allowed (secret rotation).
    secret : str
        The endpoint's ``whsec_…`` secret, shown once when the endpoint was created.
    tolerance : int
        Largest accepted age of ``t`` in seconds (replays of old deliveries are refused).
    """
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [v for k, v in parts if k.strip() == "t"]
    macs = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not macs:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected.encode(), mac.encode()) for mac in macs)


def reference_signature(secret: str, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value of a task event's ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_reference_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether ``header`` (``X-Webhook-Signature``) signs ``body`` with ``secret``: the reference
    API's check. It has no timestamp, so receivers that fear replays deduplicate on the event ``id``
    or check ``Beatframe-Signature`` (:func:`verify_signature`), sent on the same delivery."""
    return hmac.compare_digest(reference_signature(secret, body).encode(), header.strip().encode())


def retry_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: ``base * 2**(attempt-1)`` up to ``cap``, jittered
    to 50-100 % so receivers coming back up are not hit by every sender at the same instant."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def event_body(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def emit(conn, *, project_id: str, env: str, type: str, obj: dict) -> str:
    """Record event ``type`` about ``obj`` and queue its deliveries, in ``conn``'s transaction.

    A task event (``obj["task_id"]``) also goes to that task's own endpoint (its ``webhook_url``).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event_id = new_id("evt")
    conn.execute("INSERT INTO events (id, project_id, env, type, data) VALUES (%s, %s, %s, %s, %s)",
                 (event_id, project_id, env, type, Jsonb({"object": obj})))
    conn.execute(
        "INSERT INTO webhook_deliveries (id, project_id, env, event_id, endpoint_id)"
        " SELECT 'whd_' || substr(md5(random()::text || id), 1, 24), project_id, env, %s, id"
        " FROM webhook_endpoints WHERE project_id = %s AND env = %s AND deleted_at IS NULL"
        " AND (%s = ANY(events) OR '*' = ANY(events)) AND (task_id IS NULL OR task_id = %s)",
        (event_id, project_id, env, type, obj.get("task_id") if type in TASK_EVENT_TYPES else None))
    return event_id


def event_object(row: dict) -> dict:
    """An event as delivered and as ``GET /v1/events`` shows it."""
    created = row["created_at"]
    return {"id": row["id"], "object": "event", "type": row["type"], "livemode": row["env"] == "live",
            "created": int(created.timestamp()) if isinstance(created, datetime) else created,
            "data": row["data"]}


def reference_event(row: dict) -> dict:
    """A task event as the reference API delivers it: ``event``, ``task_id``, ``timestamp`` (ISO
    8601, UTC) and ``data``, plus the event ``id`` to deduplicate on."""
    task = dict(row["data"]["object"])
    created = row["created_at"]
    return {"id": row["id"], "event": row["type"], "task_id": task.pop("task_id"),
            "timestamp": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "data": task}


class DeliveryWorker:
    """Sends due deliveries from this process until :meth:`stop`."""

    def __init__(self, *, pool, settings, poll_seconds: float = 0.5) -> None:
        self.pool, self.settings, self.poll_seconds = pool, settings, poll_seconds
        self._stop = threading.Event()
        self._senders = ThreadPoolExecutor(max_workers=DELIVERY_THREADS, thread_name_prefix="webhook")
        self._thread = threading.Thread(target=self._loop, name="webhook-deliveries", daemon=True)

    def start(self) -> "DeliveryWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._senders.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.claim(limit=DELIVERY_THREADS * 4)
                for _ in self._senders.map(self.attempt, claimed):
                    pass
            except Exception:  # noqa: BLE001 - the database briefly away: try again next round
                log.warning("webhook delivery round failed", exc_info=True)
                claimed = []
            if not claimed:
                self._stop.wait(self.poll_seconds)

    def claim(self, *, limit: int) -> list[dict]:
        """Due deliveries, leased to this worker (their next attempt pushed ``LEASE_SECONDS`` ahead)."""
        with self.pool.connection() as conn:
            return conn.execute(
                "WITH due AS (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
                "  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE webhook_deliveries d SET attempts = d.attempts + 1,"
                f"  next_attempt_at = now() + interval '{LEASE_SECONDS} seconds'"
                " FROM due, events e, webhook_endpoints w"
                " WHERE d.id = due.id AND e.id = d.event_id AND w.id = d.endpoint_id"
                " RETURNING d.id, d.attempts, d.retry_from, w.url, w.secret,"
                "  e.id AS event_id, e.type, e.env, e.data, e.created_at", (limit,)).fetchall()

    def attempt(self, delivery: dict) -> None:
        """Send one claimed delivery and record the outcome (and the next try, if any)."""
        from beatframe.infra.urlfetch import FetchError, post

        event = {"id": delivery["event_id"], "type": delivery["type"], "env": delivery["env"],
                 "data": delivery["data"], "created_at": delivery["created_at"]}
        task_event = delivery["type"] in TASK_EVENT_TYPES
        body = event_body(reference_event(event) if task_event else event_object(event))
        headers = {"Content-Type": "application/json", "User-Agent": "beatframe-webhooks",
                   SIGNATURE_HEADER: sign(delivery["secret"], body, int(time.time())),
                   "Beatframe-Event-Id": delivery["event_id"], "Beatframe-Delivery-Id": delivery["id"]}
        if task_event:
            headers[REFERENCE_SIGNATURE_HEADER] = reference_signature(delivery["secret"], body)
        started, status, error = time.perf_counter(), None, None
        try:
            status = post(delivery["url"], body, headers=headers, timeout=self.settings.webhook_timeout,
                          allowed_networks=self.settings.fetch_allowed_networks)
            if not 200 <= status < 300:
                error = f"the endpoint answered HTTP {status}"
        except FetchError as exc:
            error = str(exc)
        self._record(delivery, status, error, (time.perf_counter() - started) * 1000)

    def _record(self, delivery: dict, status: int | None, error: str | None, duration_ms: float) -> None:
        age = (datetime.now(timezone.utc) - delivery["retry_from"]).total_seconds()
        delay = retry_delay(delivery["attempts"], base=self.settings.webhook_retry_base,
                            cap=self.settings.webhook_retry_cap)
        outcome = "succeeded" if error is None else "failed" if age + delay > self.settings.webhook_retry_for \
            else "pending"
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO webhook_attempts (delivery_id, attempt, status, error, duration_ms)"
                         " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (delivery["id"], delivery["attempts"], status, error, duration_ms))
            conn.execute(
                "UPDATE webhook_deliveries SET status = %s, last_status = %s, last_error = %s,"
                " delivered_at = CASE WHEN %s = 'succeeded' THEN now() END,"
                " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
                (outcome, status, error, outcome, delay, delivery["id"]))
