"""Rate limits per API key and endpoint class (:mod:`beatframe.api.ratelimit`).

The pure parts (the ``BEATFRAME_RATE_LIMITS`` format, the bucket arithmetic, the headers) are
tested without a database. The rest runs against two real API processes (uvicorn subprocesses of
``create_app``) sharing the session's embedded PostgreSQL, with small limits
(:data:`LIMITS`): conftest turns limits off for every other test, which send bursts with one key.
Each test takes a fresh key, so it starts with full buckets. Bursts of the ``generate`` class are
``POST /v1/canvases`` of a missing track: they take a token and answer 404 without rendering.
"""

from __future__ import annotations

import math
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from beatframe.api.ratelimit import DEFAULT_LIMITS, Decision, Limit, endpoint_class, parse_limits

ROOT = Path(__file__).resolve().parents[1]
#: The test servers' limits: a generate token comes back every 10 s (no refill during a burst), a
#: default one every second (the refill test waits for one).
LIMITS = "generate=0.1/4,default=1/10"
MISSING_TRACK = {"track": "trk_" + "x" * 24}


# ---------------------------------------------------------------------------------------------
# without a database


def test_the_format_and_its_defaults():
    assert parse_limits("") == DEFAULT_LIMITS == {"generate": Limit(0.5, 5), "batch": Limit(0.1, 2),
                                                  "default": Limit(10.0, 50)}
    assert parse_limits(" off ") == parse_limits("OFF") == {}
    assert parse_limits("generate=2/3, default=off") == {"generate": Limit(2.0, 3), "batch": Limit(0.1, 2)}
    assert parse_limits(LIMITS)["default"] == Limit(1.0, 10)


@pytest.mark.parametrize("spec, says", [
    ("generate=fast", "'generate=fast': expected RATE/BURST"),
    ("generate=1", "'generate=1': expected RATE/BURST"),
    ("generate=1/2.5", "'generate=1/2.5': expected RATE/BURST"),
    ("render=1/2", "'render=1/2' is not CLASS=RATE/BURST with CLASS one of generate, batch, default"),
    ("default", "'default' is not CLASS=RATE/BURST"),
    ("generate=0/3", "'generate=0/3': the rate must be"),
    ("generate=nan/3", "'generate=nan/3': the rate must be"),
    ("generate=1/0", "'generate=1/0': the rate must be requests per second from 0.000001 to 1000000 and the burst"),
])
def test_a_bad_setting_is_a_clear_error(spec, says, monkeypatch):
    from beatframe.api.app import create_app
    from beatframe.infra.settings import Settings

    with pytest.raises(ValueError, match="BEATFRAME_RATE_LIMITS: " + says.replace(".", r"\.")):
        parse_limits(spec)
    monkeypatch.setenv("BEATFRAME_RATE_LIMITS", spec)
    with pytest.raises(ValueError, match="BEATFRAME_RATE_LIMITS: " + says.replace(".", r"\.")):
        create_app(Settings())


def test_endpoint_classes():
    assert endpoint_class("POST", "/v1/canvases") == endpoint_class("post", "/v1/videos/") == "generate"
    assert endpoint_class("POST", "/v1/generate") == "generate"
    assert endpoint_class("POST", "/v1/genius/batch/submit") == "batch"
    for method, path in [("GET", "/v1/canvases"), ("GET", "/v1/videos/vid_1"), ("POST", "/v1/tracks"),
                         ("POST", "/v1/renders/rnd_1/cancel"), ("DELETE", "/v1/assets/ast_1")]:
        assert endpoint_class(method, path) == "default"


def test_the_bucket_allows_a_burst_then_the_rate():
    limit, t0 = Limit(rate=2.0, burst=3), 1_000.0
    tat, allowed = None, []
    for _ in range(5):  # all at once: the burst, then nothing
        ok, tat = limit.take(tat, t0)
        allowed.append(ok)
    assert allowed == [True, True, True, False, False] and tat == t0 + 1.5
    assert limit.take(tat, t0 + 0.49) == (False, tat)       # a token takes 0.5 s to come back
    ok, tat = limit.take(tat, t0 + 0.5)
    assert ok and tat == t0 + 2.0
    assert limit.take(tat, t0 + 10) == (True, t0 + 10.5)    # idle long enough: full again, not fuller


def test_the_bucket_never_allows_more_than_burst_plus_rate_times_time():
    rng = random.Random(5)
    limit, tat, now, allowed_at = Limit(rate=3.0, burst=4), None, 0.0, []
    for _ in range(2000):
        now += rng.expovariate(8.0)  # ~8 requests/s offered against 3/s allowed
        ok, tat = limit.take(tat, now)
        if ok:
            allowed_at.append(now)
    for i, start in enumerate(allowed_at):  # every window from an allowed request on
        for j in range(i, len(allowed_at), 37):
            assert j - i + 1 <= limit.burst + limit.rate * (allowed_at[j] - start) + 1e-9
    assert 2.9 < len(allowed_at) / now < 3.1  # and the sustained rate is the rate


def test_decision_headers():
    limit, now = Limit(rate=0.5, burst=5), 1_700_000_000.25
    first = Decision("generate", limit, True, tat=now + 2, now=now)
    assert first.headers() == {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                               "X-RateLimit-Reset": str(math.ceil(now + 2))}
    # microsecond rounding of the stored times must not cost a whole token
    assert Decision("generate", limit, True, tat=now + 4.000001, now=now).remaining == 3
    refused = Decision("generate", limit, False, tat=now + 9.5, now=now)  # 0.25 token left
    assert refused.headers() == {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": str(math.ceil(now + 9.5)), "Retry-After": "2"}
    assert Decision("generate", limit, False, tat=now + 8.01, now=now).retry_after == 1  # never 0
    assert "5 at once, then 0.5 per second; retry after 2 s" in refused.message


def test_the_429_is_documented_on_operations_with_a_key():
    from fastapi.testclient import TestClient

    from beatframe.api.app import create_app
    from beatframe.infra.settings import Settings

    paths = TestClient(create_app(Settings())).get("/v1/openapi.json").json()["paths"]
    documented = paths["/v1/canvases"]["post"]["responses"]["429"]
    assert set(documented["headers"]) == {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                                          "X-RateLimit-Reset"}
    assert documented["content"]["application/json"]["schema"]["$ref"].endswith("/ApiErrorBody")
    assert "429" in paths["/v1/tracks/{track_id}"]["get"]["responses"]
    assert "429" not in paths["/v1/files/{key}"]["get"]["responses"]
    reference = paths["/v1/generate"]["post"]["responses"]["429"]  # the reference routes' own error body
    assert reference["content"]["application/json"]["schema"]["$ref"].endswith("/ReferenceErrorBody")


# ---------------------------------------------------------------------------------------------
# the statement on the database


@pytest.fixture(scope="module")
def pool():
    from beatframe.infra import db

    yield db.get_pool()
    db.close_pool()
    db.stop_embedded_server()


def new_key(pool) -> tuple[str, dict]:
    """(key id, Authorization header) of a new key of a new project."""
    from beatframe.infra import db

    project = db.create_project(pool, f"ratelimit {db.new_id('t')}")
    record, secret = db.create_api_key(pool, project=project)
    return record["id"], {"Authorization": f"Bearer {secret}"}


def test_the_statement_does_what_the_model_does(pool):
    from beatframe.api.ratelimit import take

    key_id, _ = new_key(pool)
    limit, t0 = Limit(rate=2.0, burst=3), datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
    offsets = [0, 0, 0, 0, 0.2, 0.5, 0.5, 1.25, 1.5, 1.5, 1.5, 1.75, 9, 9, 9, 9, 9.1]
    tat = None
    for offset in offsets:
        now = t0 + timedelta(seconds=offset)
        decision = take(pool, key_id, "generate", limit, now=now)
        allowed, tat = limit.take(tat, now.timestamp())
        assert (decision.allowed, decision.now) == (allowed, now.timestamp()), offset
        assert decision.tat == pytest.approx(tat, abs=1e-5), offset
    # the other classes of the same key have buckets of their own
    assert take(pool, key_id, "default", limit, now=t0 + timedelta(seconds=9.1)).remaining == 2


# ---------------------------------------------------------------------------------------------
# two API processes on one database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(pool, prefect_server, tmp_path_factory):
    """Two API processes with :data:`LIMITS`, on the session's database and Prefect server."""
    env = {**os.environ, "BEATFRAME_RATE_LIMITS": LIMITS}
    logs = tmp_path_factory.mktemp("ratelimit-api")
    procs, urls = [], []
    for i in range(2):
        port = _free_port()
        with open(logs / f"api{i}.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "beatframe.api.app:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning", "--no-access-log"],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    clients = [httpx.Client(base_url=url, timeout=30) for url in urls]
    try:
        deadline = time.monotonic() + 120
        for proc, client, i in zip(procs, clients, range(2)):
            while True:
                try:
                    if client.get("/v1/openapi.json").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"API process {i} did not start:\n{(logs / f'api{i}.log').read_text()[-3000:]}")
                time.sleep(0.2)
        yield clients
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _limits(response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"]), int(h["X-RateLimit-Reset"])


def test_limited_responses_carry_headers_that_count_down(servers, pool):
    api = servers[0]
    _, auth = new_key(pool)
    before = time.time()
    responses = [api.get("/v1/templates", headers=auth) for _ in range(4)]
    assert all(r.status_code == 200 for r in responses), responses[-1].text
    limits = [_limits(r) for r in responses]
    remaining = [left for _, left, _ in limits]
    assert all(limit == 10 for limit, _, _ in limits) and "Retry-After" not in responses[0].headers
    assert remaining[0] == 9 and remaining == sorted(remaining, reverse=True) and remaining[-1] < remaining[0]
    # full again once the 10 - remaining used tokens are back, at 1 per second
    assert before + (10 - remaining[-1]) - 2 <= limits[-1][2] <= time.time() + (10 - remaining[-1]) + 2
    # not limited: no key, a wrong key, the document, signed downloads
    for response in (api.get("/v1/templates"), api.get("/v1/templates", headers={"Authorization": "Bearer bf_x"}),
                     api.get("/v1/openapi.json"), api.get("/v1/files/a/b.mp4?expires=1&signature=00")):
        assert not any(h.lower().startswith("x-ratelimit") for h in response.headers), response.headers


def _refused_properly(response, *, limit: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
    assert error["request_id"] == response.headers["Request-Id"] and error["param"] is None
    assert _limits(response)[:2] == (limit, 0)
    assert 1 <= int(response.headers["Retry-After"]) <= math.ceil(1 / 0.1)


def test_a_burst_is_refused_with_429(servers, pool):
    api = servers[0]
    _, auth = new_key(pool)
    answers = [api.post("/v1/canvases", headers=auth, json=MISSING_TRACK) for _ in range(6)]
    assert [r.status_code for r in answers] == [404] * 4 + [429] * 2, [r.text for r in answers]
    assert [_limits(r)[:2] for r in answers[:4]] == [(4, 3), (4, 2), (4, 1), (4, 0)]
    for refused in answers[4:]:
        _refused_properly(refused, limit=4)
        # the bucket is full again 4 tokens of 10 s after the first request
        assert abs(_limits(refused)[2] - (time.time() + 40)) < 5
    assert "retry after" in answers[-1].json()["error"]["message"]
    _refused_properly(api.post("/v1/videos", headers=auth, json=MISSING_TRACK), limit=4)  # one class


def test_classes_have_buckets_of_their_own(servers, pool):
    api = servers[0]
    _, auth = new_key(pool)
    for _ in range(4):
        api.post("/v1/canvases", headers=auth, json=MISSING_TRACK)
    assert api.post("/v1/canvases", headers=auth, json=MISSING_TRACK).status_code == 429
    reading = api.get("/v1/canvases", headers=auth)  # the default class: untouched
    assert reading.status_code == 200 and _limits(reading)[:2] == (10, 9)

    _, auth = new_key(pool)
    statuses = [api.get("/v1/templates", headers=auth).status_code for _ in range(12)]
    assert statuses[-1] == 429, statuses
    creating = api.post("/v1/canvases", headers=auth, json=MISSING_TRACK)
    assert creating.status_code == 404 and _limits(creating)[:2] == (4, 3)


def test_tokens_come_back_at_the_rate(servers, pool):
    api = servers[0]
    _, auth = new_key(pool)
    for _ in range(20):
        response = api.get("/v1/templates", headers=auth)
        if response.status_code == 429:
            break
    _refused_properly(response, limit=10)
    assert response.headers["Retry-After"] == "1"  # a token a second
    time.sleep(int(response.headers["Retry-After"]))
    again = api.get("/v1/templates", headers=auth)
    assert again.status_code == 200 and _limits(again)[:2] == (10, 0)


def test_two_processes_share_each_bucket(servers, pool):
    assert servers[0].base_url != servers[1].base_url
    _, auth = new_key(pool)
    answers = [servers[i % 2].post("/v1/canvases", headers=auth, json=MISSING_TRACK) for i in range(10)]
    assert [r.status_code for r in answers] == [404] * 4 + [429] * 6, [r.text for r in answers]
    assert [_limits(r)[1] for r in answers[:4]] == [3, 2, 1, 0]

    _, auth = new_key(pool)  # all at once, half on each process: the row lock serializes them

    def create(i: int) -> int:
        return servers[i % 2].post("/v1/canvases", headers=auth, json=MISSING_TRACK).status_code

    with ThreadPoolExecutor(max_workers=16) as threads:
        statuses = list(threads.map(create, range(16)))
    assert sorted(statuses) == [404] * 4 + [429] * 12, statuses


def test_a_bad_setting_stops_the_api_at_start():
    env = {**os.environ, "BEATFRAME_RATE_LIMITS": "generate=5"}
    done = subprocess.run([sys.executable, "-m", "beatframe.cli", "api", "--port", str(_free_port())], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "BEATFRAME_RATE_LIMITS: 'generate=5': expected RATE/BURST" in done.stderr, done.stderr
