"""The FastAPI application: ``create_app()`` wires settings, the database pool (migrations
applied at start), object storage, the error shape, request ids and API versions under ``/v1``."""

from __future__ import annotations

import gc
import secrets
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from beatframe import __version__
from beatframe.infra import db
from beatframe.api import errors, metrics, ratelimit
from beatframe.api.routes import (assets, canvases, files, generate, genius, renders, sla, stream, templates, tracks,
                                  usage, videos, webhooks)
from beatframe.api.live import RenderListener
from beatframe.api.runner import make_runner
from beatframe.resources import ReferenceErrorBody
from beatframe.infra.settings import Settings, get_settings
from beatframe.infra.storage import get_store
from beatframe.api.webhooks import DeliveryWorker

#: The API version a request gets without a ``Beatframe-Version`` header.
API_VERSION = "2026-11-21"
SUPPORTED_VERSIONS = (API_VERSION,)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ratelimit.parse_limits(settings.rate_limits)  # a bad BEATFRAME_RATE_LIMITS stops the start, naming the entry

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from beatframe.infra.prefect_local import ensure_api

        app.state.settings = settings
        app.state.pool = db.get_pool()
        app.state.store = get_store(settings)
        ensure_api(settings)  # renders are Prefect flow runs: the configured server or the local one
        app.state.runner = make_runner(pool=app.state.pool, settings=settings)
        app.state.webhooks = DeliveryWorker(pool=app.state.pool, settings=settings).start()
        app.state.live = RenderListener(db.database_url(settings)).start()
        metrics.start(app, settings)  # this process's request log, read by GET /v1/sla/status
        # Everything loaded so far (Prefect, FastAPI, pydantic: millions of objects) lives as long
        # as the process; frozen, it is skipped by every later full collection, which would
        # otherwise stall all requests for 100-200 ms at a time.
        gc.collect()
        gc.freeze()
        yield
        app.state.runner.shutdown()
        app.state.webhooks.stop()
        app.state.live.stop()
        metrics.stop(app)

    app = FastAPI(title="beatframe Music Visuals API", version=__version__, lifespan=lifespan,
                  openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None)
    errors.install(app)

    @app.middleware("http")
    async def request_id_and_version(request: Request, call_next):
        request.state.request_id = f"req_{secrets.token_hex(12)}"
        version = request.headers.get("beatframe-version", API_VERSION)
        if version not in SUPPORTED_VERSIONS:
            response = errors.error_response(request, 400, "version_invalid",
                                             f"unknown Beatframe-Version {version!r}; use {API_VERSION}")
        else:
            response = await call_next(request)
        response.headers["Request-Id"] = request.state.request_id
        response.headers["Beatframe-Version"] = API_VERSION
        response.headers.update(ratelimit.response_headers(request))  # X-RateLimit-* once a key was known
        return response

    metrics.install(app, settings)  # added last, so outermost: it also times the answers of the middleware above
    v1 = APIRouter(prefix="/v1")
    for routes in (tracks, canvases, videos, renders, templates, assets, usage, sla, webhooks, files):
        v1.include_router(routes.router, responses={} if routes is files else ratelimit.RESPONSES)
    # the reference video-generation API's routes: its error body, also on a 429
    reference_429 = {429: {**ratelimit.RESPONSES[429], "model": ReferenceErrorBody}}
    for routes in (generate, genius):
        v1.include_router(routes.router, responses=reference_429)
    v1.include_router(stream.router)  # WebSockets: they authenticate themselves, outside the HTTP responses
    v1.include_router(stream.task_router)
    app.include_router(v1)
    app.include_router(stream.task_router)  # the reference's WS /ws/{task_id}, at the root as it documents it
    app.include_router(metrics.router)  # GET /metrics, at the root as Prometheus expects
    return app
