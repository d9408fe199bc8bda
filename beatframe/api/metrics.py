"""Prometheus metrics of the HTTP API (``GET /metrics``) and the shared request log behind
``GET /v1/sla/status``.

Environment (through :class:`beatframe.infra.settings.Settings`):

- ``BEATFRAME_METRICS_TOKEN``: when set, ``/metrics`` answers only requests with
  ``Authorization: Bearer <token>`` (in Prometheus: ``authorization: {credentials: <token>}`` in
  the scrape config); unset, it is open, as Prometheus expects by default. It never takes an API
  key: metrics are the operator's, not a project's.
- ``BEATFRAME_SLA_WINDOW`` (seconds, default 900): the request log keeps twice this long.

Two kinds of metrics, on purpose:

- **Per process**, counted in memory by :class:`MetricsMiddleware`:
  ``beatframe_http_request_duration_seconds`` (histogram by ``route``, ``method`` and
  ``status_class``), ``beatframe_http_request_errors_total`` (4xx and 5xx, told apart by
  ``status_class``), and prometheus_client's ``process_*`` and ``python_*``. Each API process
  exposes its own; with several processes Prometheus scrapes each one (one target per process)
  and ``sum by (route) (rate(...))`` adds them up. ``beatframe api`` runs one process per port;
  under ``uvicorn --workers N`` the workers share a port and each scrape reaches one of them, so
  give each process its own port there (prometheus_client's multiprocess mode is not wired in).
- **Shared**, read from PostgreSQL at scrape time by :class:`RenderCollector`: ``beatframe_renders``
  (by ``kind`` and ``status``), ``beatframe_render_queue_wait_seconds`` (created → started),
  ``beatframe_render_queue_oldest_seconds`` and ``beatframe_render_stage_seconds`` (from the cost
  lines, by ``stage`` and ``device``). Renders are run by any API process or Prefect worker, so no
  process could count them alone; read from the database, they are right whoever did the work,
  and survive restarts. Every process exposes the same values: aggregate them with ``max``, not
  ``sum``. A scrape aggregates the whole ``renders`` and ``usage_lines`` tables (milliseconds up to
  some hundred thousand rows), bounded by a statement timeout; ``beatframe_render_metrics_up`` is 0
  when the database did not answer.

Labels stay bounded: ``route`` is the matched route's template (``/v1/canvases/{canvas_id}``,
never the raw path), ``unmatched`` for a path no route matches; a method outside the standard
ones is ``OTHER``.

Latency is measured from the request reaching this middleware to the start of the response (the
status line and headers): a download's transfer time depends on the client, not on the server.

The **request log** (:class:`RequestLog`) gives the SLA status every process's requests: the
middleware appends each outcome (time, route, method, status, latency) to an in-memory buffer (no
database work on the request path), and a background thread copies the buffer into the
``request_log`` table once a second with one ``COPY``, marks the current 10-second slot in
``api_heartbeats`` (this process was alive), and prunes rows older than twice the SLA window. When
the database is unreachable the rows wait in memory (up to :data:`MAX_PENDING`) and are written,
with their original times, once it answers again: the 503s of an outage count.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from psycopg_pool import ConnectionPool

from beatframe.api.errors import ApiError
from beatframe.infra.settings import Settings

log = logging.getLogger(__name__)

#: Request latency buckets (seconds); 0.05 is the POST target of benchmarks/api.py, and 0.2, 1, 5
#: and 30 are the p99 limits of the SLA levels, so ``histogram_quantile`` is exact at those limits.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds of one render stage (analysis, planning, frames, encoding…): sub-second to many minutes.
STAGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
#: Seconds between a render's creation and its start (queue wait).
QUEUE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RENDER_KINDS = ("canvas", "video")
RENDER_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")

#: How often each process writes its buffered request outcomes (and its liveness mark).
FLUSH_SECONDS = 1.0
#: Liveness is kept per slot of this many seconds: a flush delayed by a few seconds is not downtime.
SLOT_SECONDS = 10
PRUNE_SECONDS = 60.0
#: Request outcomes kept in memory while the database is unreachable (some 200 bytes each, so tens
#: of megabytes at most); the oldest go first beyond this.
MAX_PENDING = 100_000
#: Bounds one scrape's queries, so a slow database cannot pile up scrapes.
SCRAPE_STATEMENT_TIMEOUT_MS = 5000
#: Rows are kept for this many SLA windows: the uptime needs the first live slot before the window.
RETENTION_WINDOWS = 2
#: What generate_latest writes (spelled out: older prometheus_client have no constant for it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def route_template(scope: dict) -> str:
    """The template of the route that handled the request, e.g. ``/v1/canvases/{canvas_id}``.

    Only the public ASGI scope is used. Since FastAPI 0.154 a route included with a prefix keeps
    its own path (``/canvases/{canvas_id}``), so the prefix is what precedes the route's rendered
    path in the request's path; that prefix is the router's (the route's pattern matched the
    whole path), so values stay bounded either way. A plain Starlette route (the OpenAPI
    document, the docs) leaves no ``route`` in the scope; without path parameters, its path is
    its template.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    params = scope.get("path_params") or {}
    if template is None:
        return scope["path"] if "endpoint" in scope and not params else "unmatched"
    try:
        rendered = template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
    path = scope.get("path", "")
    return path[:len(path) - len(rendered)] + template if path.endswith(rendered) else template


# ---------------------------------------------------------------------------------------------
# per-process request metrics


class HttpMetrics:
    """One app's metrics registry: the request histogram and error counter (this process's
    requests), the process collectors, the shared :class:`RenderCollector`, and this process's
    :class:`RequestLog` once the app started.

    Each app has its own registry, not prometheus_client's global one: several apps in one process
    (the tests) would otherwise clash, and Prefect's own metrics stay out of beatframe's.

    Parameters
    ----------
    pool_of
        Returns the app's connection pool, or None before its lifespan opened it.
    token
        The bearer token ``/metrics`` wants (``BEATFRAME_METRICS_TOKEN``), or None: open.
    """

    def __init__(self, pool_of: Callable[[], ConnectionPool | None], token: str | None = None) -> None:
        self.token = token
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "beatframe_http_request_duration_seconds",
            "Seconds from a request's arrival to the start of its response, in this process",
            ["route", "method", "status_class"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter(
            "beatframe_http_request_errors",
            "Requests answered with a 4xx (client) or 5xx (server) status, in this process",
            ["route", "method", "status_class"], registry=self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(RenderCollector(pool_of))
        self.log: RequestLog | None = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (a few microseconds; no I/O)."""
        method = method if method in METHODS else "OTHER"
        status_class = f"{status // 100}xx"
        self.latency.labels(route, method, status_class).observe(seconds)
        if status >= 400:
            self.errors.labels(route, method, status_class).inc()
        request_log = self.log
        if request_log is not None:
            request_log.record(route, method, status, seconds * 1000.0)

    def exposition(self) -> bytes:
        """The Prometheus text format (0.0.4) of everything in the registry."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request into :class:`HttpMetrics`.

    Pure ASGI rather than ``@app.middleware("http")``: no extra task and response wrapping per
    request. An exception that escapes the app before a response started is counted as the 500
    that Starlette's outermost error middleware then sends.
    """

    def __init__(self, app, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        answered: list = []  # [status, seconds] once the response starts

        async def send_timed(message) -> None:
            if message["type"] == "http.response.start" and not answered:
                answered.extend((message["status"], time.perf_counter() - arrived))
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        except Exception:
            status, seconds = answered or (500, time.perf_counter() - arrived)
            self.metrics.observe(route_template(scope), scope["method"], status, seconds)
            raise
        if answered:  # else the client went away before any answer: nothing was served
            self.metrics.observe(route_template(scope), scope["method"], answered[0], answered[1])


# ---------------------------------------------------------------------------------------------
# render metrics from PostgreSQL


class RenderCollector(Collector):
    """Render counts, queue waits and stage seconds, read from PostgreSQL at each scrape, so they
    cover every API process and Prefect worker.

    Parameters
    ----------
    pool_of
        Returns the connection pool, or None (then only ``beatframe_render_metrics_up 0``).
    """

    def __init__(self, pool_of: Callable[[], ConnectionPool | None]) -> None:
        self._pool_of = pool_of

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("beatframe_render_metrics_up",
                               "1 when this scrape read the render metrics from PostgreSQL, else 0")
        pool = self._pool_of()
        families: list[Metric] = []
        if pool is not None:
            try:
                with pool.connection(timeout=SCRAPE_STATEMENT_TIMEOUT_MS / 1000) as conn:
                    conn.execute(f"SET LOCAL statement_timeout = {SCRAPE_STATEMENT_TIMEOUT_MS}")
                    families = render_families(conn)
            except psycopg.Error as exc:  # PoolTimeout and PoolClosed included
                log.warning("render metrics not read from PostgreSQL: %s", exc)
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families


def render_families(conn) -> list[Metric]:
    """The shared render metrics, from one connection (rows as dicts)."""
    counts = {(r["kind"], r["status"]): r["n"] for r in
              conn.execute("SELECT kind, status, count(*) AS n FROM renders GROUP BY kind, status")}
    renders = GaugeMetricFamily("beatframe_renders", "Renders in each status, all projects and environments",
                                labels=["kind", "status"])
    # every combination, zeros included, so a series never vanishes when its last render moves on
    for kind, status in sorted({(k, s) for k in RENDER_KINDS for s in RENDER_STATUSES} | set(counts)):
        renders.add_metric([kind, status], counts.get((kind, status), 0))

    oldest = GaugeMetricFamily("beatframe_render_queue_oldest_seconds",
                               "Age of the oldest render still queued (0 when none is)", labels=["kind"])
    ages = {r["kind"]: r["age"] for r in conn.execute(
        "SELECT kind, extract(epoch FROM now() - min(created_at))::float8 AS age"
        " FROM renders WHERE status = 'queued' GROUP BY kind")}
    for kind in sorted(set(RENDER_KINDS) | set(ages)):
        oldest.add_metric([kind], max(0.0, ages.get(kind, 0.0)))

    queue_wait = _histogram(
        conn, "beatframe_render_queue_wait_seconds", "Seconds from a render's creation to its start",
        ["kind"], "SELECT kind, greatest(extract(epoch FROM started_at - created_at), 0)::float8 AS v"
                  " FROM renders WHERE started_at IS NOT NULL", QUEUE_BUCKETS)
    stage_seconds = _histogram(
        conn, "beatframe_render_stage_seconds", "Seconds of each finished render stage, from the cost lines",
        ["stage", "device"], "SELECT stage, device, seconds AS v FROM usage_lines", STAGE_BUCKETS)
    return [renders, oldest, queue_wait, stage_seconds]


def _histogram(conn, name: str, documentation: str, labels: list[str], values_sql: str,
               buckets: tuple[float, ...]) -> HistogramMetricFamily:
    """A cumulative histogram of column ``v`` of ``values_sql``, per ``labels`` (code constants,
    never input), counted by PostgreSQL in one pass."""
    columns = ", ".join(labels)
    counts = ", ".join(f"count(*) FILTER (WHERE v <= %s) AS b{i}" for i in range(len(buckets)))
    rows = conn.execute(f"SELECT {columns}, {counts}, count(*) AS n, coalesce(sum(v), 0)::float8 AS total"
                        f" FROM ({values_sql}) AS t GROUP BY {columns} ORDER BY {columns}", buckets).fetchall()
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for row in rows:
        cumulative = [(floatToGoString(b), row[f"b{i}"]) for i, b in enumerate(buckets)] + [("+Inf", row["n"])]
        family.add_metric([str(row[label]) for label in labels], cumulative, row["total"])
    return family


# ---------------------------------------------------------------------------------------------
# the request log shared by all processes


class RequestLog:
    """This process's request outcomes, buffered in memory and copied to PostgreSQL in batches.

    :meth:`record` only appends to a deque (thread-safe, no lock, no I/O); a daemon thread calls
    :meth:`flush` every :data:`FLUSH_SECONDS`.

    Parameters
    ----------
    pool
        Where ``request_log`` and ``api_heartbeats`` are (migration 0006).
    retention
        Seconds of rows to keep; older ones are deleted about once a minute by every process.
    """

    def __init__(self, pool: ConnectionPool, *, retention: float) -> None:
        self._pool, self._retention = pool, retention
        self._buffer: deque = deque(maxlen=MAX_PENDING)
        self._pending: list[tuple] = []  # drained from the buffer, not yet written
        self._slots: set[int] = set()  # liveness slots not yet written
        self._flush_lock = threading.Lock()  # the thread's and an explicit flush() never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._failing_since: float | None = None
        self._last_warning = 0.0

    def record(self, route: str, method: str, status: int, latency_ms: float) -> None:
        self._buffer.append((time.time(), route, method, status, latency_ms))

    def start(self) -> RequestLog:
        self._thread = threading.Thread(target=self._run, name="beatframe-request-log", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and write what is left (once, if the database answers)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # never let the thread die: the SLA status would silently go stale
                log.exception("request log flush failed")

    def flush(self) -> bool:
        """Write the buffered outcomes and this slot's liveness mark; prune when due. True when
        everything was written, False when the database did not answer (the rows are kept)."""
        with self._flush_lock:
            now = time.time()
            self._slots.add(int(now // SLOT_SECONDS))
            while True:
                try:
                    self._pending.append(self._buffer.popleft())
                except IndexError:
                    break
            if len(self._pending) > MAX_PENDING:
                del self._pending[:len(self._pending) - MAX_PENDING]
            try:
                self._write(now)
            except psycopg.Error as exc:  # PoolTimeout and PoolClosed included
                self._failed(now, exc)
                return False
            if self._failing_since is not None:
                log.warning("request log written again after %.0f s", now - self._failing_since)
                self._failing_since = None
            self._pending.clear()
            self._slots.clear()
            return True

    def _write(self, now: float) -> None:
        with self._pool.connection(timeout=5) as conn:
            if self._pending:
                with conn.cursor() as cur, cur.copy(
                        "COPY request_log (at, route, method, status, latency_ms) FROM STDIN") as copy:
                    for at, route, method, status, latency_ms in self._pending:
                        copy.write_row((datetime.fromtimestamp(at, timezone.utc), route, method, status, latency_ms))
            conn.execute("INSERT INTO api_heartbeats (slot) SELECT to_timestamp(s) FROM unnest(%s::float8[]) AS s"
                         " ON CONFLICT DO NOTHING", ([float(s * SLOT_SECONDS) for s in sorted(self._slots)],))
            if now - self._last_prune >= PRUNE_SECONDS:
                cutoff = datetime.fromtimestamp(now - self._retention, timezone.utc)
                conn.execute("DELETE FROM request_log WHERE at < %s", (cutoff,))
                conn.execute("DELETE FROM api_heartbeats WHERE slot < %s", (cutoff,))
                self._last_prune = now

    def _failed(self, now: float, exc: Exception) -> None:
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_warning >= 60:  # once a minute, not once a second
            log.warning("request log not written (%d outcomes kept in memory): %s", len(self._pending), exc)
            self._last_warning = now


# ---------------------------------------------------------------------------------------------
# wiring


def install(app: FastAPI, settings: Settings) -> HttpMetrics:
    """Time every request of ``app`` (call after the other middleware, so this one is outermost
    and also times the answers they give themselves)."""
    metrics = HttpMetrics(lambda: getattr(app.state, "pool", None), token=settings.metrics_token)
    app.state.http_metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def start(app: FastAPI, settings: Settings) -> None:
    """Start this process's request log (in the lifespan, once ``app.state.pool`` is open)."""
    app.state.http_metrics.log = RequestLog(app.state.pool,
                                            retention=RETENTION_WINDOWS * settings.sla_window).start()


def stop(app: FastAPI) -> None:
    """Stop the request log, writing its last outcomes (in the lifespan, before the pool closes)."""
    metrics: HttpMetrics = app.state.http_metrics
    request_log, metrics.log = metrics.log, None
    if request_log is not None:
        request_log.stop()


router = APIRouter(tags=["monitoring"])


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"description": "The Prometheus text exposition format (version 0.0.4)",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus_metrics(request: Request) -> Response:
    """Request latency and errors of this API process; render counts, queue waits and stage
    seconds of the whole service (from PostgreSQL). Open unless ``BEATFRAME_METRICS_TOKEN`` is
    set; then it wants ``Authorization: Bearer <that token>`` (not an API key)."""
    metrics: HttpMetrics = request.app.state.http_metrics
    if metrics.token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), metrics.token.encode()):
            raise ApiError(401, "metrics_token_invalid",
                           "send the metrics token (BEATFRAME_METRICS_TOKEN) as 'Authorization: Bearer …'")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)
