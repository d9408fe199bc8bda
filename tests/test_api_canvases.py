"""Canvases over HTTP: upload -> canvas -> poll the render -> the finished Canvas passes its spec.

Real servers: embedded PostgreSQL, the local object store and the session's Prefect server.
"""

from __future__ import annotations

import time

import pytest

from beatframe.infra import db

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wait_for(wait_render):
    return wait_render


def test_canvas_lifecycle(client, auth, track, wait_for):
    created = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 2})
    assert created.status_code == 202, created.text
    canvas = created.json()
    assert canvas["id"].startswith("cnv_") and canvas["render"]["status"] == "queued"
    render = wait_for(client, auth[0], canvas["render"]["id"])
    assert render["status"] == "succeeded", render["error"]
    assert render["flow_run_id"] and render["cost"]["total"] > 0 and render["progress"] == 1
    assert [s["name"] for s in render["stages"]][:4] == ["hash", "analyze", "plan", "generate"]
    assert {s["status"] for s in render["stages"]} == {"succeeded"} and render["canvas"] == canvas["id"]
    done = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0]).json()
    video = done["outputs"][0]
    assert done["manifest"]["checks"]["spec_ok"] and (video["width"], video["height"]) == (720, 1280)
    assert client.get(f"/v1/canvases/{canvas['id']}", headers=auth[1]).status_code == 404
    assert client.get(f"/v1/renders/{canvas['render']['id']}", headers=auth[1]).status_code == 404
    assert [c["id"] for c in client.get("/v1/canvases", headers=auth[0]).json()["data"]] == [canvas["id"]]
    again = client.post(f"/v1/renders/{canvas['render']['id']}/cancel", headers=auth[0])
    assert again.status_code == 409 and again.json()["error"]["code"] == "render_not_cancelable"


@pytest.mark.parametrize("body, status, param", [
    ({"track": "trk_missing"}, 404, "track"),
    ({"track": None, "seconds": 12}, 400, "seconds"),
    ({"track": None, "template": "no-such"}, 400, "template"),
    ({"track": None, "loop": "sideways"}, 400, "loop"),
    ({"track": None, "surprise": 1}, 400, "surprise"),
])
def test_bad_canvas_requests(client, auth, track, body, status, param):
    body = {**body, "track": body["track"] or track["id"]}
    response = client.post("/v1/canvases", headers=auth[0], json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("route", ["/v1/canvases", "/v1/videos"])
def test_wan_without_the_generative_extra_is_a_400_naming_it(client, auth, track, monkeypatch, route):
    # as on a core install: the import check says torch, diffusers and transformers are missing
    monkeypatch.setattr("beatframe.infra.extras.missing_gen_modules", lambda: ["torch", "diffusers", "transformers"])
    response = client.post(route, headers=auth[0], json={"track": track["id"], "generator": "wan-t2v"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "generator"
    assert error["message"] == ("the wan-t2v generator needs the generative extra (torch, diffusers, transformers"
                                " not installed): pip install 'beatframe[gen]'")


def test_another_projects_track_cannot_be_rendered(client, auth, track):
    response = client.post("/v1/canvases", headers=auth[1], json={"track": track["id"]})
    assert response.status_code == 404


def test_outputs_download_through_signed_expiring_links(client, auth, track, wait_for):
    import hashlib

    canvas = client.post("/v1/canvases", headers=auth[0], json={"track": track["id"], "seconds": 4, "seed": 2}).json()
    assert wait_for(client, auth[0], canvas["render"]["id"])["status"] == "succeeded"
    video = client.get(f"/v1/canvases/{canvas['id']}", headers=auth[0]).json()["outputs"][0]
    downloaded = client.get(video["url"])  # no API key needed: the link itself is the credential
    assert downloaded.status_code == 200 and hashlib.sha256(downloaded.content).hexdigest() == video["sha256"]
    tampered = video["url"].replace("signature=", "signature=0")
    assert client.get(tampered).status_code == 403
    expired = video["url"].split("?")[0] + "?expires=1&signature=" + video["url"].rsplit("=", 1)[1]
    assert client.get(expired).status_code == 403
    assert client.get("/v1/files/../../etc/passwd?expires=9999999999&signature=x").status_code in (403, 404)


def test_idempotency_key_makes_concurrent_duplicates_one_canvas(client, auth, track, wait_for):
    from concurrent.futures import ThreadPoolExecutor

    headers = {**auth[0], "Idempotency-Key": "order-4711"}
    body = {"track": track["id"], "seconds": 4, "seed": 9}
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: client.post("/v1/canvases", headers=headers, json=body), range(50)))
    assert {r.status_code for r in responses} == {202}
    ids = {(r.json()["id"], r.json()["render"]["id"]) for r in responses}
    assert len(ids) == 1
    with db.get_pool().connection() as conn:  # this project's renders: other modules share the database
        count = conn.execute("SELECT count(*) AS n FROM renders r JOIN tracks t ON t.project_id = r.project_id"
                             " WHERE t.id = %s AND r.params->>'seed' = '9'", (track["id"],)).fetchone()["n"]
    assert count == 1
    other = client.post("/v1/canvases", headers=headers, json={**body, "seed": 10})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    wait_for(client, auth[0], next(iter(ids))[1])


def test_track_analysis_is_202_until_computed(client, auth, track):
    from beatframe.music.schemas import Analysis

    deadline = time.monotonic() + 120
    while True:
        response = client.get(f"/v1/tracks/{track['id']}/analysis", headers=auth[0])
        if response.status_code != 202 or time.monotonic() > deadline:
            break
        assert response.json()["status"] == "pending"
        time.sleep(0.3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and body["hints"] is None  # which analysis: the estimate, uncorrected
    analysis = Analysis.model_validate({k: v for k, v in body.items()
                                        if k not in ("object", "track", "status", "version", "hints")})
    assert abs(analysis.bpm - 120) < 2 and analysis.corrected == []
    assert client.get(f"/v1/tracks/{track['id']}/analysis", headers=auth[1]).status_code == 404
