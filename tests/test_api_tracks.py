"""The HTTP API's first resources on real servers: embedded PostgreSQL and the local object store."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def keys(project_keys):
    return {"mine": project_keys[0], "theirs": project_keys[1]}


def test_requests_need_a_valid_key_and_errors_have_one_shape(client):
    response = client.get("/v1/tracks")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["request_id"] == response.headers["Request-Id"]
    assert client.get("/v1/tracks", headers={"Authorization": "Bearer bf_test_nope"}).status_code == 401


def test_track_lifecycle_and_isolation(client, keys, song):
    with open(song, "rb") as f:
        created = client.post("/v1/tracks", headers=keys["mine"], files={"file": ("my song.wav", f, "audio/wav")})
    assert created.status_code == 201, created.text
    track = created.json()
    assert track["id"].startswith("trk_") and track["duration"] > 20 and track["livemode"] is False
    assert client.get(f"/v1/tracks/{track['id']}", headers=keys["mine"]).json()["sha256"] == track["sha256"]
    assert client.get(f"/v1/tracks/{track['id']}", headers=keys["theirs"]).status_code == 404
    listing = client.get("/v1/tracks", headers=keys["mine"]).json()
    assert [t["id"] for t in listing["data"]] == [track["id"]] and listing["has_more"] is False
    assert client.get("/v1/tracks", headers=keys["theirs"]).json()["data"] == []
    assert client.delete(f"/v1/tracks/{track['id']}", headers=keys["theirs"]).status_code == 404
    assert client.delete(f"/v1/tracks/{track['id']}", headers=keys["mine"]).json()["deleted"] is True
    assert client.get(f"/v1/tracks/{track['id']}", headers=keys["mine"]).status_code == 404


def test_pagination(client, keys, song):
    ids = []
    for i in range(3):
        with open(song, "rb") as f:
            ids.append(client.post("/v1/tracks", headers=keys["mine"], files={"file": (f"s{i}.wav", f)}).json()["id"])
    first = client.get("/v1/tracks?limit=2", headers=keys["mine"]).json()
    assert [t["id"] for t in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = client.get(f"/v1/tracks?limit=2&starting_after={first['data'][-1]['id']}", headers=keys["mine"]).json()
    assert [t["id"] for t in rest["data"]] == [ids[0]] and not rest["has_more"]
    back = client.get(f"/v1/tracks?limit=5&ending_before={ids[0]}", headers=keys["mine"]).json()
    assert [t["id"] for t in back["data"]] == ids[::-1][:2]


@pytest.mark.parametrize("name, body, status, code", [
    ("notes.wav", b"this is not audio" * 100, 400, "bad_input"),
    ("empty.wav", b"", 400, "file_empty"),
    ("virus.exe", b"MZ" * 100, 415, "unsupported_media"),
    ("../../etc/passwd.wav", b"nope", 400, "bad_input"),
])
def test_bad_uploads_are_4xx_json(client, keys, name, body, status, code):
    response = client.post("/v1/tracks", headers=keys["mine"], files={"file": (name, body)})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_templates_and_openapi(client, keys):
    names = {t["name"] for t in client.get("/v1/templates", headers=keys["mine"]).json()["data"]}
    assert {"neon-pulse", "sunset-waves", "mono-grid", "aurora-particles"} <= names
    assert client.get("/v1/templates/nope", headers=keys["mine"]).status_code == 404
    assert "/v1/tracks" in client.get("/v1/openapi.json").json()["paths"]
    response = client.get("/v1/templates", headers={**keys["mine"], "Beatframe-Version": "1999-01-01"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "version_invalid"
