"""Exceptions of the beatframe SDK, one class per kind of failure.

Every error the server answers (``{"error": {"type", "code", "message", "param", "request_id"}}``)
becomes a :class:`BeatframeError` subclass chosen by the HTTP status; its ``str()`` is the server's
message. Quote ``request_id`` when reporting a problem.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BeatframeError", "ConflictError",
    "IdempotencyError", "InvalidRequestError", "NotFoundError", "PermissionDeniedError", "RateLimitError",
    "RenderFailed", "WaitTimeoutError",
]


class BeatframeError(Exception):
    """Base of every SDK error.

    Attributes
    ----------
    message : str
        What went wrong, in one line (the server's message for HTTP errors).
    status : int or None
        The HTTP status, or None when no answer came (connection errors, local timeouts).
    type, code : str or None
        The server's error type (``invalid_request_error``, …) and machine-readable code.
    param : str or None
        The request parameter at fault, when the server names one.
    request_id : str or None
        The server's ``Request-Id`` of the failed request.
    body : dict or None
        The decoded error body.
    """

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None,
                 code: str | None = None, param: str | None = None, request_id: str | None = None,
                 body: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status, self.type, self.code, self.param = status, type, code, param
        self.request_id, self.body = request_id, body

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, code={self.code!r}, "
                f"param={self.param!r}, request_id={self.request_id!r})")


class APIConnectionError(BeatframeError):
    """The server could not be reached, or the connection broke, also after the retries."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's ``timeout``, also after the retries."""


class InvalidRequestError(BeatframeError):
    """400, 413, 415, 422 (and other 4xx without a class of their own): the request is wrong."""


class AuthenticationError(BeatframeError):
    """401: the API key is missing, invalid or revoked."""


class PermissionDeniedError(BeatframeError):
    """403: the key may not do this (or a download link is invalid or expired)."""


class NotFoundError(BeatframeError):
    """404: no such object in this project and environment (another project's objects are 404 too)."""


class ConflictError(BeatframeError):
    """409: the object's state does not allow this (e.g. ``render_not_cancelable``)."""


class IdempotencyError(ConflictError):
    """409 with an ``idempotency_*`` code: the key was used with another request, or is still in use."""


class RateLimitError(BeatframeError):
    """429: too many requests, also after the retries."""


class APIError(BeatframeError):
    """5xx (or an answer the SDK cannot read): a problem on the server's side."""


class RenderFailed(BeatframeError):
    """A render ended ``failed`` or ``canceled``; ``render`` is the final :class:`~beatframe.resources.Render`."""

    def __init__(self, render: Any) -> None:
        error = render.error
        reason = f": {error.message}" if error is not None else ""
        super().__init__(f"render {render.id} {render.status}{reason}", type=error.type if error else None,
                         code=error.code if error else render.status)
        self.render = render


class WaitTimeoutError(BeatframeError, TimeoutError):
    """A ``wait`` ran out of time; ``last`` is the object as last seen (still pending or running)."""

    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


def _error_class(status: int, code: str | None) -> type[BeatframeError]:
    if status >= 500:
        return APIError
    if status == 409:
        return IdempotencyError if (code or "").startswith("idempotency") else ConflictError
    return {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
            429: RateLimitError}.get(status, InvalidRequestError if 400 <= status < 500 else APIError)


def error_from_response(status: int, content: bytes, request_id: str | None) -> BeatframeError:
    """The exception for an error answer: its status picks the class, its body fills it in."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, str) and "detail" in body:  # the reference API's body, on its routes
        detail = {"message": body["detail"], "type": body.get("type"), "code": body.get("code"),
                  "request_id": body.get("request_id")}
    if not isinstance(detail, dict):
        text = content[:200].decode("utf-8", "replace").strip()
        detail = {"message": f"HTTP {status}" + (f": {text}" if text else "")}
    message = str(detail.get("message") or f"HTTP {status}")
    return _error_class(status, detail.get("code"))(
        message, status=status, type=detail.get("type"), code=detail.get("code"), param=detail.get("param"),
        request_id=detail.get("request_id") or request_id, body=body)
