"""Request dependencies: the database pool, the object store and the authenticated project."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Header, Request

from beatframe import db
from beatframe.api.errors import ApiError


@dataclass(frozen=True)
class Principal:
    project_id: str
    project_name: str
    env: str
    key_id: str


def pool(request: Request):
    return request.app.state.pool


def store(request: Request):
    return request.app.state.store


def principal(request: Request, authorization: str | None = Header(default=None)) -> Principal:
    """The project and environment of the Bearer API key (401 without a valid one)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(401, "api_key_missing", "send your API key as 'Authorization: Bearer bf_test_…'")
    who = db.authenticate(request.app.state.pool, authorization[7:].strip())
    if who is None:
        raise ApiError(401, "api_key_invalid", "the API key is invalid or revoked")
    return Principal(project_id=who["project_id"], project_name=who["project_name"], env=who["env"],
                     key_id=who["key_id"])
