"""``GET /v1/sla/status``: whether the service meets an SLA level over a recent window, measured
from the request log that every API process writes (:mod:`beatframe.api.metrics`).

Environment (through :class:`beatframe.infra.settings.Settings`): ``BEATFRAME_SLA_LEVEL`` (the level
checked without ``?level=``, default ``standard``) and ``BEATFRAME_SLA_WINDOW`` (the window in
seconds, default 900; ``?window=`` may narrow it).

The levels are the reference API's (``SLA Monitor``):

=============== ======== ============= ==========
level           uptime   p99 latency   error rate
=============== ======== ============= ==========
``best_effort`` 95 %     30 s          5 %
``standard``    99 %     5 s           1 %
``premium``     99.9 %   1 s           0.1 %
``critical``    99.99 %  200 ms        0.01 %
=============== ======== ============= ==========

What is measured, over the requests that arrived in the window, on every API process:

- ``error_rate_percent``: the share answered with a 5xx. A 4xx is the client's (bad input, no
  key, rate limited) and was served as designed.
- ``latency_p50_ms`` / ``_p95_ms`` / ``_p99_ms``: of all requests, until their response started;
  null without requests.
- ``uptime_percent``: the share of 10-second slots of the window that were up. A slot is down when
  no API process was alive in it (none marked it in ``api_heartbeats``: the API was not running,
  which no request can report) or when most of its requests were answered with a 5xx. The window
  starts no earlier than the first slot ever marked, so a fresh install is not down before it
  existed; the slot being answered now is up. This differs from the error rate on purpose: it
  catches outages during which nothing could be recorded.
- ``current_throughput_rps``: requests per second over the last minute.

The status is the whole service's, the same for every project; any valid API key may read it.
:func:`sla_status` computes it for other routes too (e.g. the reference's ``/genius/sla/status``).
"""

from __future__ import annotations

import time
from typing import NamedTuple

from fastapi import APIRouter, Depends, Query, Request

from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.api.metrics import SLOT_SECONDS
from beatframe.resources import SlaLevel, SlaStatus

router = APIRouter(prefix="/sla", tags=["sla"])

#: Throughput is measured over this many most recent seconds.
THROUGHPUT_SECONDS = 60.0


class SlaTarget(NamedTuple):
    uptime_percent: float
    latency_p99_ms: float
    error_rate_percent: float


LEVELS: dict[str, SlaTarget] = {
    "best_effort": SlaTarget(95.0, 30_000.0, 5.0),
    "standard": SlaTarget(99.0, 5_000.0, 1.0),
    "premium": SlaTarget(99.9, 1_000.0, 0.1),
    "critical": SlaTarget(99.99, 200.0, 0.01),
}


def sla_status(conn, *, level: str, window_seconds: float, now: float | None = None) -> dict:
    """The SLA status of the whole service over the last ``window_seconds``.

    Parameters
    ----------
    conn
        A connection (rows as dicts) to the database the API processes log their requests into.
    level
        A key of :data:`LEVELS`.
    window_seconds
        How far back to look; rows older than twice ``BEATFRAME_SLA_WINDOW`` are gone.
    now
        The end of the window (epoch seconds); the API host's clock by default, the one the
        request times were taken with.

    Returns
    -------
    dict
        The fields of :class:`SlaStatus`.
    """
    now = time.time() if now is None else now
    start = now - window_seconds
    recent = now - min(THROUGHPUT_SECONDS, window_seconds)
    summary = conn.execute(
        "SELECT count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS server_errors,"
        " count(*) FILTER (WHERE at >= to_timestamp(%(recent)s)) AS recent,"
        " percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS latency"
        " FROM request_log WHERE at >= to_timestamp(%(start)s)", {"start": start, "recent": recent}).fetchone()
    # slots where most requests failed (5xx), and slots some process marked alive
    failing = {r["slot"] for r in conn.execute(
        "SELECT floor(extract(epoch FROM at) / %(slot)s)::bigint AS slot FROM request_log"
        " WHERE at >= to_timestamp(%(start)s) GROUP BY 1 HAVING 2 * count(*) FILTER (WHERE status >= 500) > count(*)",
        {"start": start, "slot": SLOT_SECONDS})}
    alive = {r["slot"] for r in conn.execute(
        "SELECT floor(extract(epoch FROM slot) / %(slot)s)::bigint AS slot FROM api_heartbeats"
        " WHERE slot >= to_timestamp(%(start)s)", {"start": start - SLOT_SECONDS, "slot": SLOT_SECONDS})}
    first_seen = conn.execute("SELECT extract(epoch FROM min(slot))::float8 AS t FROM api_heartbeats").fetchone()["t"]

    current = int(now // SLOT_SECONDS)
    first = current if first_seen is None else max(int(start // SLOT_SECONDS), int(first_seen // SLOT_SECONDS))
    slots = range(min(first, current), current + 1)
    down = {s for s in slots if (s not in alive and s != current) or s in failing}
    uptime = 100.0 * (len(slots) - len(down)) / len(slots)

    requests = summary["requests"]
    error_rate = 100.0 * summary["server_errors"] / requests if requests else 0.0
    p50, p95, p99 = summary["latency"] or (None, None, None)
    # over the last minute, or since the first mark if the service is younger than that
    observed = now - max(recent, first * SLOT_SECONDS)
    throughput = summary["recent"] / max(observed, 1.0)

    target = LEVELS[level]
    violations = []
    if uptime < target.uptime_percent:
        violations.append(_violation("uptime_percent", uptime, target.uptime_percent, level, "below"))
    if p99 is not None and p99 > target.latency_p99_ms:
        violations.append(_violation("latency_p99_ms", p99, target.latency_p99_ms, level, "above"))
    if error_rate > target.error_rate_percent:
        violations.append(_violation("error_rate_percent", error_rate, target.error_rate_percent, level, "above"))
    return {"object": "sla_status", "target_level": level, "meets_sla": not violations,
            "uptime_percent": round(uptime, 4), "latency_p50_ms": _ms(p50), "latency_p95_ms": _ms(p95),
            "latency_p99_ms": _ms(p99), "error_rate_percent": round(error_rate, 4),
            "current_throughput_rps": round(throughput, 3), "violations": violations,
            "targets": target._asdict(), "window_seconds": window_seconds, "requests": requests}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _violation(metric: str, measured: float, target: float, level: str, side: str) -> dict:
    measured = round(float(measured), 4)
    return {"metric": metric, "measured": measured, "target": target,
            "message": f"{metric} {measured:g} is {side} {level}'s {target:g}"}


@router.get("/status", response_model=SlaStatus)
def get_sla_status(request: Request, who: Principal = Depends(principal),
                   level: SlaLevel | None = Query(None, description="the level to check; default BEATFRAME_SLA_LEVEL"),
                   window: float | None = Query(None, ge=10, description="seconds to look back; default and at most"
                                                                         " BEATFRAME_SLA_WINDOW")) -> dict:
    settings = request.app.state.settings
    if window is not None and window > settings.sla_window:
        raise ApiError(400, "parameter_invalid", f"window is at most {settings.sla_window:g} seconds", param="window")
    with request.app.state.pool.connection() as conn:
        return sla_status(conn, level=level or settings.sla_level, window_seconds=window or settings.sla_window)
