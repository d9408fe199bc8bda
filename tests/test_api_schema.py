"""Property tests of the HTTP API against its own OpenAPI document (schemathesis).

The schema is the real app's ``/v1/openapi.json``, fetched in-process over ASGI when the module is
imported (no lifespan is needed to serve it). Requests go in-process over ASGI to the module's app
(``case.call(app=...)``): schemathesis' ASGI transport starts that app's lifespan (database pool on
the embedded PostgreSQL, object store, Prefect on the session's test server, the render runner) at
the first request and its pytest plugin ends it after each test; the module fixture then closes the
pool and stops the embedded server, like ``api_client`` in conftest. So there is one app and one
lifespan at a time (conftest's ``api_client`` is not used: it would run a second lifespan beside
schemathesis' one). ``schemathesis.pytest.from_fixture`` would load the schema lazily, but its
4.32 implementation sets pytest's private ``Function._nodeid``, which pytest 9.2 no longer has.

Checks run on every generated request (named explicitly, so a schemathesis upgrade never changes
them silently):

- ``not_a_server_error``: no 5xx, whatever the input (but a 501 the operation documents: a
  reference ``/genius`` feature not built yet);
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the response media type is one the operation documents;
- ``response_headers_conformance``: documented response headers are present and valid;
- ``response_schema_conformance``: the JSON body validates against the documented schema. This is
  as strict as the document: a route without a ``response_model`` documents a free-form object
  and passes anything; declared models (and the error shape) make it stricter on their own.

Inputs are positive and negative (schema-violating) cases, from the examples, coverage and fuzzing
phases, with a fresh project's Bearer key; ids in paths and bodies are random, so canvases and
retrievals mostly answer 404 and generated uploads 4xx, which is what is exercised. A second test
checks that requests without a valid key are 401 errors of the documented shape on every
operation that needs a key.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
# serial: under pytest-xdist schemathesis ran 4 of its 104 per-operation tests; `.ci/run` runs it on its own
pytestmark = [pytest.mark.slow, pytest.mark.serial]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
#: Half schemathesis' default of 100 per operation: the suite runs on two slow cores (25 → 50 costs ~4 s).
EXAMPLES_PER_OPERATION = 50
# Deterministic generation (seed + derandomize), no example database written into the checkout.
CONFIG = {"seed": 20261121, "generation": {"mode": "all", "deterministic": True},
          "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
          "warnings": False}
HYPOTHESIS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def app(prefect_server):
    from beatframe.infra import db
    from beatframe.api.app import create_app

    yield create_app()
    db.close_pool()
    db.stop_embedded_server()


@pytest.fixture(scope="module")
def bearer(app):
    """The Authorization header of a fresh test-mode project."""
    from conftest import bearer_for_new_project

    return bearer_for_new_project("schema")


def _served_document() -> dict:
    from fastapi.testclient import TestClient

    from beatframe.api.app import create_app
    from beatframe.infra.settings import Settings

    # Not entered, so no lifespan; explicit settings leave get_settings()'s cache alone at import.
    response = TestClient(create_app(Settings())).get("/v1/openapi.json")
    response.raise_for_status()
    return response.json()


DOCUMENT = _served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))


def _needs_key(operation) -> bool:
    """Whether the operation takes an API key: a security requirement, or the ``Authorization``
    header parameter FastAPI documents for the ``principal`` dependency."""
    definition = operation.definition.raw
    if definition.get("security", operation.schema.raw_schema.get("security")):
        return True
    return any(p.get("in") == "header" and p.get("name", "").lower() == "authorization"
               for p in definition.get("parameters", []))


@settings(max_examples=EXAMPLES_PER_OPERATION, **HYPOTHESIS)
@schema.parametrize()
def test_api_conforms_to_its_openapi_document(case, app, bearer):
    response = case.call(app=app, headers=bearer)
    # a documented 501 is the honest answer of a feature not built yet, not a server error
    not_built = response.status_code == 501 and "501" in case.operation.definition.raw.get("responses", {})
    case.validate_response(response, checks=CHECKS[1:] if not_built else CHECKS, transport_kwargs={"app": app})


@settings(max_examples=3, **HYPOTHESIS)
@schema.parametrize()
def test_requests_without_a_valid_key_are_401_errors(case, app):
    if not _needs_key(case.operation):
        pytest.skip("a public operation")
    if case.method.upper() != case.operation.method.upper():
        return  # a coverage probe with another method (405): not about authentication
    for auth in (None, "Bearer bf_test_" + "0" * 32, "Basic Zm9vOmJhcg=="):
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if auth is not None:
            case.headers["Authorization"] = auth
        response = case.call(app=app)
        case.validate_response(response, checks=CHECKS, transport_kwargs={"app": app})
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        if negative and response.status_code == 400:
            continue  # a malformed body is refused before authentication: FastAPI parses it first
        assert response.status_code == 401, (case.operation.label, auth, response.status_code, response.text)
        body = response.json()
        if isinstance(body["error"], str):  # the reference video-generation API's routes have its body
            assert body["type"] == "AuthenticationError", body
            assert [body["request_id"]] == response.headers["request-id"], (body, response.headers)
            continue
        error = body["error"]
        assert error["type"] == "authentication_error", error
        assert [error["request_id"]] == response.headers["request-id"], (error, response.headers)


def test_a_signed_download_conforms(app, bearer, tmp_path):
    """``GET /v1/files/{key}`` with a valid signature (generated requests never have one)."""
    import time

    from beatframe.infra import storage
    from beatframe.api.signing import signature, signing_secret
    from beatframe.infra.settings import get_settings

    settings = get_settings()
    store = storage.get_store(settings)
    if not isinstance(store, storage.LocalStore):
        pytest.skip("signed API downloads exist for the local store only")
    key = "tests/schema/loop.mp4"
    (tmp_path / "loop.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    store.put_file(key, tmp_path / "loop.mp4", content_type="video/mp4")
    expires = int(time.time()) + 600
    operation = schema["/v1/files/{key}"]["GET"]
    for sig in (signature(signing_secret(settings), key, expires), "0" * 64):
        case = operation.Case(path_parameters={"key": key}, query={"expires": expires, "signature": sig})
        response = case.call(app=app, headers=bearer)
        case.validate_response(response, checks=CHECKS, transport_kwargs={"app": app})
        assert response.status_code == (200 if sig != "0" * 64 else 403), response.text


def test_openapi_document_and_docs_are_served(app):
    from fastapi.testclient import TestClient

    client = TestClient(app)  # no lifespan needed: neither route touches the database
    document = client.get("/v1/openapi.json")
    assert document.status_code == 200 and document.headers["content-type"] == "application/json"
    assert document.json() == DOCUMENT and document.headers["Beatframe-Version"]
    docs = client.get("/v1/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
