"""One error shape for every failure: ``{"error": {"type", "code", "message", "param", "request_id"}}``;
the reference video-generation API's routes answer theirs instead (:mod:`beatframe.api.reference`)."""

from __future__ import annotations

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from beatframe.api import reference
from beatframe.infra.errors import BadInputError
from beatframe.resources import ApiErrorBody

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
          415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def error_response(request: Request, status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    if reference.is_reference_path(request.url.path):
        detail = f"{param}: {message}" if param and not message.startswith(param) else message
        return JSONResponse(reference.error_body(status, code, detail, request_id), status_code=status)
    kind = "idempotency_error" if code.startswith("idempotency") else \
        _TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    body = {"error": {"type": kind, "code": code, "message": message, "param": param, "request_id": request_id}}
    return JSONResponse(body, status_code=status)


def install(app) -> None:
    # The OpenAPI document says what these handlers answer: any 4xx or 5xx is the one error shape.
    # Declared on the app's router, so it must run before the routes are included; a route's own
    # declaration of a code wins. Declaring 4XX also drops FastAPI's 422 HTTPValidationError, which
    # `_validation` answers as a 400 of this shape.
    for status, description in (("4XX", "Client error"), ("5XX", "Server error")):
        app.router.responses.setdefault(status, {"model": ApiErrorBody, "description": description})

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, exc.code, exc.message, exc.param)

    @app.exception_handler(BadInputError)
    async def _bad_input(request: Request, exc: BadInputError):
        return error_response(request, 400, "bad_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", [])[1:]) or None
        message = first.get("msg", "invalid request")
        return error_response(request, 400, "parameter_invalid", f"{param}: {message}" if param else message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "resource_missing", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(psycopg.DataError)
    async def _unstorable(request: Request, exc: psycopg.DataError):
        # a value PostgreSQL cannot hold (a NUL character in text, say) that no check caught first
        return error_response(request, 400, "parameter_invalid", "a value in the request cannot be stored:"
                              f" {str(exc).splitlines()[0]}")

    @app.exception_handler(psycopg.OperationalError)
    async def _database_down(request: Request, exc: psycopg.OperationalError):
        # e.g. the database restarted under a pooled connection: nothing was done, a retry works
        return error_response(request, 503, "database_unavailable", "the database is briefly unavailable; retry")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return error_response(request, 500, "internal_error", "an internal error occurred; quote the request id")
