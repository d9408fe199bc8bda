"""Rate limits per API key and endpoint class, shared by every API process through PostgreSQL.

Configured by ``BEATFRAME_RATE_LIMITS`` (read through :class:`beatframe.infra.settings.Settings`, which
checks it with :func:`parse_limits` at start): ``off``, or comma-separated ``class=rate/burst``
entries, where ``rate`` is requests per second (sustained) and ``burst`` how many may come at once
from a full bucket, or ``class=off``. Classes not named keep their defaults (the reference API's)::

    BEATFRAME_RATE_LIMITS="generate=0.5/5,batch=0.1/2,default=10/50"   # the defaults

- ``generate``: requests that create renders (``POST /v1/canvases``, ``POST /v1/videos``,
  ``POST /v1/generate``): 1 per 2 s, 5 at once;
- ``batch``: ``POST /v1/genius/batch/submit``: 1 per 10 s, 2 at once;
- ``default``: every other request with a valid API key: 10 per second, 50 at once.

Requests without a valid key (401), the signed downloads under ``/v1/files/`` and the OpenAPI
document and docs are not limited: only the ``principal`` dependency (:mod:`beatframe.api.deps`)
takes a token, once the key is known. The decision is kept on ``request.state.rate_limit``; the
app's middleware puts :func:`response_headers` on the response: ``X-RateLimit-Limit`` (the burst),
``X-RateLimit-Remaining`` (whole requests left now) and ``X-RateLimit-Reset`` (unix seconds when
the bucket is full again), plus ``Retry-After`` (whole seconds, at least 1) on a 429.

Each key has one bucket per class, a row of the ``rate_limits`` table (migration 0005), updated by
one statement per request (:func:`take`): GCRA, a token bucket kept as one timestamp, ``tat``,
when the bucket is full again. A request finds ``max(tat, now) - now`` seconds of tokens missing;
it is allowed when at least one token is left (``<= (burst - 1) / rate`` missing) and then moves
``tat`` on by ``1 / rate``. The statement is an ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
in autocommit, so it is one round trip, concurrent processes serialize on the row's lock instead of
racing a read-modify-write, and ``now`` is the database's ``clock_timestamp()``, the one clock all
API hosts share. :meth:`Limit.take` is the same arithmetic in Python, for reading and for tests.

The settings import this module to check the variable, so it imports no more than it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from psycopg.pq import TransactionStatus
from starlette.routing import get_route_path

from beatframe.resources import ApiErrorBody

CLASSES = ("generate", "batch", "default")


@dataclass(frozen=True)
class Limit:
    rate: float  # requests per second, sustained
    burst: int   # requests at once from a full bucket

    @property
    def interval(self) -> float:
        """Seconds one request's token takes to come back."""
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        """Seconds of tokens a bucket may be missing and still allow a request."""
        return (self.burst - 1) * self.interval

    def take(self, tat: float | None, now: float) -> tuple[bool, float]:
        """``(allowed, new tat)`` for a request at ``now`` on a bucket full again at ``tat``
        (None: no bucket yet, a full one). Times in seconds; what :data:`_TAKE` computes."""
        start = now if tat is None else max(tat, now)
        if start - now <= self.tolerance:
            return True, start + self.interval
        return False, start


DEFAULT_LIMITS = {"generate": Limit(0.5, 5), "batch": Limit(0.1, 2), "default": Limit(10.0, 50)}

#: ``(method, path)`` of the requests that are not in the ``default`` class (paths without parameters:
#: they are matched as sent, since routes of included routers know only their own part of it).
ROUTE_CLASSES = {("POST", "/v1/canvases"): "generate", ("POST", "/v1/videos"): "generate",
                 ("POST", "/v1/generate"): "generate", ("POST", "/v1/genius/batch/submit"): "batch"}

_EXAMPLE = "e.g. 'generate=0.5/5,batch=0.1/2,default=10/50', 'default=off' or 'off'"


@lru_cache(maxsize=8)
def parse_limits(spec: str) -> dict[str, Limit]:
    """The limit of each class under ``BEATFRAME_RATE_LIMITS=spec`` (a class that is off is absent).

    Raises ValueError naming the entry that is wrong and why."""
    spec = spec.strip()
    if spec.lower() == "off":
        return {}
    limits: dict[str, Limit | None] = dict(DEFAULT_LIMITS)
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = (part.strip() for part in entry.partition("="))
        if not sep or name not in CLASSES:
            raise ValueError(f"BEATFRAME_RATE_LIMITS: {entry!r} is not CLASS=RATE/BURST with CLASS one of"
                             f" {', '.join(CLASSES)} ({_EXAMPLE})")
        limits[name] = None if value.lower() == "off" else _parse_limit(entry, value)
    return {name: limit for name, limit in limits.items() if limit is not None}


def _parse_limit(entry: str, value: str) -> Limit:
    rate, sep, burst = (part.strip() for part in value.partition("/"))
    try:
        limit = Limit(float(rate), int(burst))
    except ValueError:
        raise ValueError(f"BEATFRAME_RATE_LIMITS: {entry!r}: expected RATE/BURST, requests per second"
                         f" and how many at once, or off ({_EXAMPLE})") from None
    if not sep or not (1e-6 <= limit.rate <= 1e6) or not (1 <= limit.burst <= 1_000_000):
        raise ValueError(f"BEATFRAME_RATE_LIMITS: {entry!r}: the rate must be requests per second from 0.000001"
                         f" to 1000000 and the burst a whole number from 1 to 1000000 ({_EXAMPLE})")
    return limit


def endpoint_class(method: str, route_path: str) -> str:
    """The class of a request by its method and path under the app (``/v1/canvases``)."""
    return ROUTE_CLASSES.get((method.upper(), route_path.rstrip("/")), "default")


@dataclass(frozen=True)
class Decision:
    """One request's outcome on its bucket; times are the database's, in unix seconds."""

    cls: str
    limit: Limit
    allowed: bool
    tat: float  # when the bucket is full again, after this request
    now: float  # when the database decided

    @property
    def remaining(self) -> int:
        """Whole requests the bucket would allow right now."""
        if not self.allowed:
            return 0  # less than one token, whatever rounding says
        # timestamps have microsecond steps: forgive a hundredth of a token of rounding
        tokens = self.limit.burst - (self.tat - self.now) / self.limit.interval
        return max(0, min(self.limit.burst, math.floor(tokens + 0.01)))

    @property
    def reset(self) -> int:
        """Unix seconds when the bucket is full again."""
        return math.ceil(max(self.tat, self.now))

    @property
    def retry_after(self) -> int:
        """Whole seconds (at least 1) until the next request of this class is allowed."""
        return max(1, math.ceil(max(self.tat, self.now) - self.limit.tolerance - self.now))

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit.burst), "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    @property
    def message(self) -> str:
        return (f"too many {self.cls} requests for this API key: {self.limit.burst} at once, then"
                f" {self.limit.rate:g} per second; retry after {self.retry_after} s")


# Both SET expressions see the row as it was, so the decision is spelled out twice; EXCLUDED carries
# this statement's one reading of the clock. The insert is a new (full) bucket's first request.
_ALLOWED = "greatest(b.tat, excluded.updated_at) <= excluded.updated_at + %(tolerance)s"
_TAKE = f"""
INSERT INTO rate_limits AS b (key_id, class, tat, allowed, updated_at)
SELECT %(key_id)s, %(class)s, c.now + %(interval)s, true, c.now
FROM (SELECT coalesce(%(now)s::timestamptz, clock_timestamp()) AS now) AS c
ON CONFLICT (key_id, class) DO UPDATE SET
    allowed = {_ALLOWED},
    tat = CASE WHEN {_ALLOWED} THEN greatest(b.tat, excluded.updated_at) + %(interval)s ELSE b.tat END,
    updated_at = excluded.updated_at
RETURNING allowed, extract(epoch FROM tat)::float8 AS tat, extract(epoch FROM updated_at)::float8 AS now
"""


def take(pool, key_id: str, cls: str, limit: Limit, *, now: datetime | None = None) -> Decision:
    """Take a token from ``key_id``'s ``cls`` bucket: one statement, one round trip (autocommit).
    ``now`` replaces the database's clock (tests)."""
    params = {"key_id": key_id, "class": cls, "now": now, "interval": timedelta(seconds=limit.interval),
              "tolerance": timedelta(seconds=limit.tolerance)}
    with pool.connection() as conn:
        conn.autocommit = True  # a transaction around one statement would add BEGIN and COMMIT round trips
        try:
            row = conn.execute(_TAKE, params).fetchone()
        finally:
            if conn.info.transaction_status == TransactionStatus.IDLE:  # else lost: the pool drops it
                conn.autocommit = False
    return Decision(cls, limit, row["allowed"], row["tat"], row["now"])


def limit_request(request, key_id: str) -> Decision | None:
    """Take a token for ``request`` made with ``key_id`` (None when its class is not limited), and
    keep the decision on ``request.state`` for :func:`response_headers`."""
    limit_by_class = parse_limits(request.app.state.settings.rate_limits)
    if not limit_by_class:
        return None
    cls = endpoint_class(request.method, get_route_path(request.scope))
    limit = limit_by_class.get(cls)
    if limit is None:
        return None
    request.state.rate_limit = decision = take(request.app.state.pool, key_id, cls, limit)
    return decision


def response_headers(request) -> dict[str, str]:
    """The ``X-RateLimit-*`` (and on a 429 ``Retry-After``) headers of a limited request; {} otherwise."""
    decision = getattr(request.state, "rate_limit", None)
    return decision.headers() if decision is not None else {}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer"}}


#: The 429 as the OpenAPI document shows it on every operation that takes an API key.
RESPONSES: dict[int | str, dict[str, Any]] = {429: {
    "model": ApiErrorBody,
    "description": "Too many requests of this class for the API key (`rate_limit_error`, code `rate_limited`)."
                   " Every limited response carries the `X-RateLimit-*` headers.",
    "headers": {
        "Retry-After": _header("Seconds until a request of this class is allowed again."),
        "X-RateLimit-Limit": _header("The burst: requests allowed at once from a full bucket."),
        "X-RateLimit-Remaining": _header("Requests of this class allowed right now (0 here)."),
        "X-RateLimit-Reset": _header("Unix seconds when the bucket is full again."),
    },
}}
