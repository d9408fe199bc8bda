"""Prometheus ``/metrics`` and ``GET /v1/sla/status``, over HTTP on the real app.

Real servers: the embedded PostgreSQL and the session's Prefect server (the app's lifespan needs
it). The module runs its own app (not conftest's ``api_client``) with an extra router whose
routes fail on purpose, so the SLA status can be shown to see injected 5xx answers: one route
raises an unexpected exception (the 500 of the outermost error middleware), one an ``ApiError``
503. The request log is emptied first, since the session's database keeps the requests and the
gaps between apps of earlier test modules, which count against the uptime of this window.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from beatframe.infra import db
from beatframe.api.errors import ApiError

FAMILIES = {"beatframe_http_request_duration_seconds": "histogram", "beatframe_http_request_errors": "counter",
            "beatframe_renders": "gauge", "beatframe_render_queue_wait_seconds": "histogram",
            "beatframe_render_queue_oldest_seconds": "gauge", "beatframe_render_stage_seconds": "histogram",
            "beatframe_render_metrics_up": "gauge"}

failing = APIRouter(prefix="/v1/test")


@failing.get("/boom")
def boom() -> dict:
    raise RuntimeError("an injected bug")


@failing.get("/unavailable")
def unavailable() -> dict:
    raise ApiError(503, "injected_outage", "an injected outage")


@pytest.fixture(scope="module")
def app(prefect_server):
    from beatframe.api.app import create_app

    app = create_app()
    app.include_router(failing)
    yield app
    db.close_pool()
    db.stop_embedded_server()


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    # the injected RuntimeError is answered 500 by the app; the test client must not re-raise it
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def key(client):
    from conftest import bearer_for_new_project

    return bearer_for_new_project("metrics")


@pytest.fixture(scope="module")
def empty_log(client):
    """The request log and liveness marks emptied, once for the module."""
    with db.get_pool().connection() as conn:
        conn.execute("TRUNCATE request_log, api_heartbeats")


def scrape(client) -> dict:
    """``/metrics`` parsed: {family name: family}, checked to parse as Prometheus text."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(families: dict, family: str, suffix: str = "", **labels) -> float:
    """The value of the one sample of ``family`` named ``family + suffix`` with these labels (0 if none)."""
    values = [s.value for s in families[family].samples
              if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(values) <= 1, values
    return values[0] if values else 0.0


def test_metrics_parse_and_have_every_family(client):
    families = scrape(client)
    assert {name: families[name].type for name in FAMILIES if name in families} == FAMILIES
    assert sample(families, "beatframe_render_metrics_up") == 1
    assert "process_cpu_seconds" in families  # this process's own, from prometheus_client


def test_latency_histogram_counts_by_route_template(client, key):
    route = {"route": "/v1/canvases/{canvas_id}", "method": "GET"}
    before = scrape(client)
    for i in range(3):
        assert client.get(f"/v1/canvases/cnv_missing{i}", headers=key).status_code == 404
    after = scrape(client)

    def delta(family, suffix, **labels):
        return sample(after, family, suffix, **labels) - sample(before, family, suffix, **labels)

    assert delta("beatframe_http_request_duration_seconds", "_count", **route, status_class="4xx") == 3
    assert delta("beatframe_http_request_duration_seconds", "_bucket", **route, status_class="4xx", le="+Inf") == 3
    assert delta("beatframe_http_request_errors", "_total", **route, status_class="4xx") == 3
    assert delta("beatframe_http_request_errors", "_total", **route, status_class="5xx") == 0
    # bounded labels: the template, never the raw path
    routes = {s.labels.get("route") for s in after["beatframe_http_request_duration_seconds"].samples}
    assert not any("cnv_missing" in r for r in routes) and "/metrics" in routes


def test_render_metrics_are_read_from_postgres(client):
    pool = db.get_pool()
    project = db.create_project(pool, f"metrics {db.new_id('t')}")
    before = scrape(client)
    created = datetime.now(timezone.utc) - timedelta(seconds=10)
    render_id = db.new_id("rnd")
    with pool.connection() as conn:
        conn.execute("INSERT INTO renders (id, project_id, env, kind, status, created_at, started_at, finished_at)"
                     " VALUES (%s, %s, 'test', 'video', 'succeeded', %s, %s, %s)",
                     (render_id, project["id"], created, created + timedelta(seconds=2.5), created + timedelta(seconds=9)))
        for stage, seconds in (("metrics-test-frames", 4.0), ("metrics-test-frames", 0.3)):
            conn.execute("INSERT INTO usage_lines (id, project_id, env, object_id, stage, seconds, device, amount, currency)"
                         " VALUES (%s, %s, 'test', %s, %s, %s, 'cpu', 0, 'USD')",
                         (db.new_id("usg"), project["id"], render_id, stage, seconds))
    after = scrape(client)

    def delta(family, suffix="", **labels):
        return sample(after, family, suffix, **labels) - sample(before, family, suffix, **labels)

    assert delta("beatframe_renders", kind="video", status="succeeded") == 1
    wait = "beatframe_render_queue_wait_seconds"
    assert delta(wait, "_count", kind="video") == 1
    assert delta(wait, "_sum", kind="video") == pytest.approx(2.5)
    assert delta(wait, "_bucket", kind="video", le="1.0") == 0 and delta(wait, "_bucket", kind="video", le="2.5") == 1
    stage = {"stage": "metrics-test-frames", "device": "cpu"}
    assert sample(after, "beatframe_render_stage_seconds", "_count", **stage) == 2
    assert sample(after, "beatframe_render_stage_seconds", "_sum", **stage) == pytest.approx(4.3)
    assert sample(after, "beatframe_render_stage_seconds", "_bucket", **stage, le="0.5") == 1
    assert sample(after, "beatframe_render_stage_seconds", "_bucket", **stage, le="5.0") == 2


def sla(client, key, **params) -> dict:
    response = client.get("/v1/sla/status", headers=key, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_sla_status_meets_best_effort_with_only_successes(app, client, key, empty_log):
    for _ in range(20):
        assert client.get("/v1/usage", headers=key).status_code == 200
    assert app.state.http_metrics.log.flush()  # what the background thread does every second
    status = sla(client, key, level="best_effort")
    assert status["target_level"] == "best_effort" and status["meets_sla"] is True and status["violations"] == []
    assert status["requests"] >= 20 and status["error_rate_percent"] == 0 and status["uptime_percent"] == 100
    assert 0 < status["latency_p50_ms"] <= status["latency_p95_ms"] <= status["latency_p99_ms"]
    assert status["current_throughput_rps"] > 0 and status["window_seconds"] == 900
    assert status["targets"] == {"uptime_percent": 95.0, "latency_p99_ms": 30000.0, "error_rate_percent": 5.0}
    assert sla(client, key)["target_level"] == "standard"  # BEATFRAME_SLA_LEVEL's default


def test_sla_status_sees_injected_failures(app, client, key, empty_log):
    for _ in range(150):
        assert client.get("/v1/usage", headers=key).status_code == 200
    before = scrape(client)
    assert client.get("/v1/test/boom").status_code == 500
    assert client.get("/v1/test/unavailable").status_code == 503
    assert sample(scrape(client), "beatframe_http_request_errors", "_total", route="/v1/test/boom",
                  status_class="5xx") - sample(before, "beatframe_http_request_errors", "_total",
                                               route="/v1/test/boom", status_class="5xx") == 1
    app.state.http_metrics.log.flush()

    premium = sla(client, key, level="premium")
    assert 0 < premium["error_rate_percent"] < 5 and premium["meets_sla"] is False
    [violation] = [v for v in premium["violations"] if v["metric"] == "error_rate_percent"]
    assert violation["measured"] == premium["error_rate_percent"] and violation["target"] == 0.1
    assert "premium" in violation["message"]
    critical = sla(client, key, level="critical")
    assert "error_rate_percent" in {v["metric"] for v in critical["violations"]}
    # two 5xx among ~170 requests is within best effort's 5 %
    assert sla(client, key, level="best_effort")["meets_sla"] is True


def test_sla_status_covers_every_process(app, client, key, empty_log):
    """Another API process's outcomes (its own RequestLog, on the same database) are counted too."""
    from beatframe.api.metrics import RequestLog

    before = sla(client, key, level="standard")
    other_process = RequestLog(db.get_pool(), retention=1800)
    for _ in range(40):
        other_process.record("/v1/canvases", "POST", 502, 12.5)
    assert other_process.flush()
    app.state.http_metrics.log.flush()
    after = sla(client, key, level="standard")
    assert after["requests"] >= before["requests"] + 40
    assert after["error_rate_percent"] > before["error_rate_percent"] + 10
    assert "error_rate_percent" in {v["metric"] for v in after["violations"]} and not after["meets_sla"]


def test_uptime_counts_slots_without_a_live_process_as_down(client, empty_log):
    """A stretch in which no API process marked itself alive is down time, although no request
    could report it (here: a minute ahead of the last mark)."""
    from beatframe.api.routes.sla import sla_status

    with db.get_pool().connection() as conn:
        status = sla_status(conn, level="critical", window_seconds=120, now=time.time() + 60)
    assert status["uptime_percent"] < 100
    assert "uptime_percent" in {v["metric"] for v in status["violations"]}


def test_sla_status_parameters_and_key(client, key):
    assert client.get("/v1/sla/status").status_code == 401
    bad_level = client.get("/v1/sla/status", headers=key, params={"level": "gold"})
    assert bad_level.status_code == 400 and bad_level.json()["error"]["param"] == "level"
    too_long = client.get("/v1/sla/status", headers=key, params={"window": 86400})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "window"
    assert sla(client, key, window=60)["window_seconds"] == 60


def test_metrics_token_when_configured():
    from fastapi.testclient import TestClient

    from beatframe.api.app import create_app
    from beatframe.infra.settings import Settings

    client = TestClient(create_app(Settings(metrics_token="s3cret")))  # no lifespan: no database needed
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "metrics_token_invalid"
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(allowed.text)}
    assert sample(families, "beatframe_render_metrics_up") == 0  # no pool before the lifespan
