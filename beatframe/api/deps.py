"""Request dependencies: the database pool and connections, the object store and the
authenticated project (which also takes the request's rate-limit token, :mod:`beatframe.api.ratelimit`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beatframe.infra import db
from beatframe.api import ratelimit
from beatframe.api.errors import ApiError


@dataclass(frozen=True)
class Principal:
    project_id: str
    project_name: str
    env: str
    key_id: str


_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def looks_like_id(value: str) -> bool:
    """Whether ``value`` could be an object id or a template name; anything else (NUL bytes,
    slashes, megabytes) is missing without asking the database."""
    return _ID.fullmatch(value) is not None


def pool(request: Request):
    return request.app.state.pool


@contextmanager
def transaction(request: Request) -> Iterator:
    """One transaction for the rest of the request's work: :func:`connection` calls inside it share
    it (fewer round trips, all or nothing), and :func:`after_commit` work runs once it committed."""
    with request.app.state.pool.connection() as conn:
        request.state.conn, request.state.after_commit = conn, []
        try:
            yield conn
        finally:
            request.state.conn = None
    for work in request.state.after_commit:
        work()


@contextmanager
def connection(request: Request) -> Iterator:
    """The request's open :func:`transaction`, or a pooled connection for one transaction of its own."""
    conn = getattr(request.state, "conn", None)
    if conn is not None:
        yield conn
        return
    with request.app.state.pool.connection() as conn:
        yield conn


def after_commit(request: Request, work: Callable[[], None]) -> None:
    """Run ``work`` once the request's transaction committed (at once when none is open)."""
    if getattr(request.state, "conn", None) is not None:
        request.state.after_commit.append(work)
    else:
        work()


def store(request: Request):
    return request.app.state.store


_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="An API key: `Authorization: Bearer bf_test_…` or `bf_live_…`")


def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """The project and environment of the Bearer API key (401 without a valid one; 429 when the key's
    bucket for this kind of request is empty)."""
    if credentials is None:
        raise ApiError(401, "api_key_missing", "send your API key as 'Authorization: Bearer bf_test_…'")
    who = db.authenticate(request.app.state.pool, credentials.credentials.strip())
    if who is None:
        raise ApiError(401, "api_key_invalid", "the API key is invalid or revoked")
    decision = ratelimit.limit_request(request, who["key_id"])
    if decision is not None and not decision.allowed:
        raise ApiError(429, "rate_limited", decision.message)
    return Principal(project_id=who["project_id"], project_name=who["project_name"], env=who["env"],
                     key_id=who["key_id"])
