"""Webhooks over HTTP: endpoints, signed deliveries from the PostgreSQL outbox, retries while the
receiver is down, the delivery log, redelivery and the SSRF guard.

Real servers: embedded PostgreSQL, the session's Prefect server, and a receiver on loopback that
checks every signature with the documented :func:`beatframe.api.webhooks.verify_signature`.
"""

from __future__ import annotations

import http.server
import json
import random
import socket
import threading
import time
from collections import Counter

import pytest

from beatframe.api.webhooks import retry_delay, sign, verify_signature

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


def test_signatures_verify_and_refuse_tampering_and_replays():
    body, secret = b'{"id":"evt_1"}', "whsec_test"
    header = sign(secret, body, int(time.time()))
    assert verify_signature(body, header, secret)
    assert not verify_signature(body + b" ", header, secret)
    assert not verify_signature(body, header, "whsec_other")
    assert not verify_signature(body, sign(secret, body, int(time.time()) - 3600), secret)  # stale
    assert not verify_signature(body, "t=abc,v1=00", secret) and not verify_signature(body, "", secret)


def test_retry_delays_grow_and_are_capped():
    rng = random.Random(1)
    delays = [retry_delay(n, base=30, cap=3600, rng=rng) for n in range(1, 12)]
    assert 15 <= delays[0] <= 30 and all(d <= 3600 for d in delays) and delays[8] >= 1800


@pytest.fixture(scope="module")
def fast_retries(client):
    settings = client.app.state.settings
    saved = settings.webhook_retry_base, settings.webhook_retry_cap, settings.fetch_allowed_networks
    settings.webhook_retry_base, settings.webhook_retry_cap = 1.0, 4.0
    settings.fetch_allowed_networks = "127.0.0.1/32"  # the receiver; everything else private stays refused
    yield settings
    settings.webhook_retry_base, settings.webhook_retry_cap, settings.fetch_allowed_networks = saved


class Receiver(http.server.BaseHTTPRequestHandler):
    secret = ""
    received: Counter = Counter()
    bad_signatures = 0

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if verify_signature(body, self.headers["Beatframe-Signature"], Receiver.secret):
            Receiver.received[json.loads(body)["id"]] += 1
            self.send_response(204)
        else:
            Receiver.bad_signatures += 1
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deliveries(client, headers, endpoint_id) -> list[dict]:
    return client.get("/v1/webhook_deliveries", headers=headers,
                      params={"endpoint": endpoint_id, "limit": 100}).json()["data"]


def test_endpoint_secret_is_shown_once_and_inputs_are_checked(client, auth):
    created = client.post("/v1/webhook_endpoints", headers=auth[0],
                          json={"url": "https://hooks.example.com/bf", "events": ["render.succeeded"]})
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    again = client.get(f"/v1/webhook_endpoints/{created.json()['id']}", headers=auth[0]).json()
    assert again["secret"] is None and again["events"] == ["render.succeeded"]
    assert client.get(f"/v1/webhook_endpoints/{created.json()['id']}", headers=auth[1]).status_code == 404
    for body, param in [({"url": "ftp://x.example/"}, "url"), ({"url": "https://x.example/", "events": ["nope"]},
                                                                 "events")]:
        response = client.post("/v1/webhook_endpoints", headers=auth[0], json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert client.delete(f"/v1/webhook_endpoints/{created.json()['id']}", headers=auth[0]).json()["deleted"]


def test_every_event_arrives_once_after_the_receiver_was_down_30_s(client, song, fast_retries, wait_render):
    from conftest import bearer_for_new_project

    headers, port = bearer_for_new_project("webhooks"), _free_port()
    endpoint = client.post("/v1/webhook_endpoints", headers=headers,
                           json={"url": f"http://127.0.0.1:{port}/hooks"}).json()
    down_since = time.monotonic()
    with open(song, "rb") as f:
        track = client.post("/v1/tracks", headers=headers, files={"file": ("song.wav", f)}).json()
    canvas = client.post("/v1/canvases", headers=headers, json={"track": track["id"], "seconds": 4}).json()
    assert wait_render(client, headers, canvas["render"]["id"])["status"] == "succeeded"
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    failing = _deliveries(client, headers, endpoint["id"])
    assert failing and all(d["status"] == "pending" for d in failing)
    assert max(d["attempts"] for d in failing) >= 2 and all(d["last_error"] for d in failing if d["attempts"])

    Receiver.secret, Receiver.received, Receiver.bad_signatures = endpoint["secret"], Counter(), 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while any(d["status"] != "succeeded" for d in _deliveries(client, headers, endpoint["id"])):
            assert time.monotonic() < deadline, "deliveries still pending a minute after the receiver came back"
            time.sleep(0.5)
        events = client.get("/v1/events", headers=headers, params={"limit": 100}).json()["data"]
        types = Counter(e["type"] for e in events)
        assert {"track.analyzed", "render.created", "render.started", "render.progress", "render.succeeded",
                "canvas.completed"} <= set(types) and types["render.succeeded"] == 1
        assert set(Receiver.received) == {e["id"] for e in events}  # nothing lost
        assert set(Receiver.received.values()) == {1} and Receiver.bad_signatures == 0  # each once, all signed

        delivery = _deliveries(client, headers, endpoint["id"])[0]
        log = client.get(f"/v1/webhook_deliveries/{delivery['id']}", headers=headers).json()["attempt_log"]
        assert log[-1]["status"] == 204 and all(a["error"] for a in log[:-1])
        again = client.post(f"/v1/webhook_deliveries/{delivery['id']}/redeliver", headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "pending"
        deadline = time.monotonic() + 20
        while Receiver.received[delivery["event"]] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        server.shutdown()


def test_deliveries_to_private_addresses_are_refused(client, auth, fast_retries, song):
    endpoint = client.post("/v1/webhook_endpoints", headers=auth[0],
                           json={"url": "http://169.254.169.254/latest/meta-data/", "events": ["track.analyzed"]}).json()
    with open(song, "rb") as f:
        client.post("/v1/tracks", headers=auth[0], files={"file": ("song.wav", f)})
    deadline = time.monotonic() + 60
    while not (done := [d for d in _deliveries(client, auth[0], endpoint["id"]) if d["last_error"]]):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert "not a public address" in done[0]["last_error"]
