"""``/v1/webhook_endpoints``, ``/v1/events`` and ``/v1/webhook_deliveries``: where a project hears
about its renders and tracks without polling (see :mod:`beatframe.api.webhooks`).

An endpoint's signing secret is in the answer that creates it and never again. Every event is
kept and listed; each delivery keeps its attempts, and can be sent again with ``redeliver``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from beatframe.infra import db
from beatframe.api import webhooks
from beatframe.api import idempotency
from beatframe.api.deps import Principal, connection, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import fetch_one, listing, ts
from beatframe.resources import Deleted, Event, ListObject, WebhookDelivery, WebhookEndpoint
from beatframe.infra.urlfetch import FetchError, check_url

router = APIRouter(tags=["webhooks"])
_ENDPOINT_COLUMNS = "id, env, url, events, description, task_id, created_at"
_DELIVERY_COLUMNS = ("id, env, event_id, endpoint_id, status, attempts, next_attempt_at, last_status, last_error,"
                     " created_at, delivered_at")


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="an http(s) URL the events are POSTed to")
    events: list[str] = Field(["*"], min_length=1, max_length=len(webhooks.EVENT_TYPES),
                              description=f"event types, or ['*'] for all: {', '.join(webhooks.EVENT_TYPES)}")
    description: str = Field("", max_length=500)

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - {"*", *webhooks.EVENT_TYPES})
        if unknown:
            raise ValueError(f"unknown event types {unknown}")
        return sorted(set(events))


def endpoint_object(row: dict) -> dict:
    return {"id": row["id"], "object": "webhook_endpoint", "url": row["url"], "events": row["events"],
            "description": row["description"], "task": row["task_id"], "livemode": row["env"] == "live",
            "created": ts(row["created_at"])}


def delivery_object(row: dict) -> dict:
    return {"id": row["id"], "object": "webhook_delivery", "event": row["event_id"], "endpoint": row["endpoint_id"],
            "status": row["status"], "attempts": row["attempts"], "last_status": row["last_status"],
            "last_error": row["last_error"], "next_attempt": ts(row["next_attempt_at"]) if row["status"] == "pending"
            else None, "delivered": ts(row["delivered_at"]), "livemode": row["env"] == "live",
            "created": ts(row["created_at"])}


@router.post("/webhook_endpoints", status_code=201, response_model=WebhookEndpoint)
def create_endpoint(body: EndpointCreate, request: Request, who: Principal = Depends(principal)):
    """Register an endpoint; the answer carries its signing ``secret``, shown this once."""
    try:
        check_url(body.url)
    except FetchError as exc:
        raise ApiError(400, exc.code, str(exc), param="url") from None

    def work() -> dict:
        endpoint_id, secret = db.new_id("we"), webhooks.new_secret()
        with connection(request) as conn:
            row = conn.execute(
                f"INSERT INTO webhook_endpoints (id, project_id, env, url, secret, events, description)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}",
                (endpoint_id, who.project_id, who.env, body.url, secret, body.events, body.description)).fetchone()
        return {**endpoint_object(row), "secret": secret}

    return idempotency.respond(request, who.project_id, status=201, fingerprint=body.model_dump(), work=work)


@router.get("/webhook_endpoints", response_model=ListObject[WebhookEndpoint])
def list_endpoints(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                   starting_after: str | None = None, ending_before: str | None = None) -> dict:
    return listing(request, who, table="webhook_endpoints", columns=_ENDPOINT_COLUMNS, build=endpoint_object,
                   limit=limit, starting_after=starting_after, ending_before=ending_before, where="deleted_at IS NULL")


@router.get("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpoint)
def retrieve_endpoint(endpoint_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return endpoint_object(fetch_one(request, who, "webhook_endpoints", _ENDPOINT_COLUMNS, endpoint_id,
                                     noun="webhook endpoint", live_rows=True))


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=Deleted)
def delete_endpoint(endpoint_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """Stop sending to an endpoint (its pending deliveries are dropped)."""
    fetch_one(request, who, "webhook_endpoints", "id", endpoint_id, noun="webhook endpoint", live_rows=True)
    with connection(request) as conn:
        conn.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = %s", (endpoint_id,))
        conn.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted'"
                     " WHERE endpoint_id = %s AND status = 'pending'", (endpoint_id,))
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@router.get("/events", response_model=ListObject[Event])
def list_events(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                starting_after: str | None = None, ending_before: str | None = None) -> dict:
    """Every event of the project, newest first (also those no endpoint subscribed to)."""
    return listing(request, who, table="events", columns="id, env, type, data, created_at",
                   build=webhooks.event_object, limit=limit, starting_after=starting_after,
                   ending_before=ending_before)


@router.get("/events/{event_id}", response_model=Event)
def retrieve_event(event_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return webhooks.event_object(fetch_one(request, who, "events", "id, env, type, data, created_at", event_id,
                                           noun="event"))


@router.get("/webhook_deliveries", response_model=ListObject[WebhookDelivery])
def list_deliveries(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                    starting_after: str | None = None, ending_before: str | None = None,
                    endpoint: str | None = Query(None, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")) -> dict:
    """The delivery log, newest first; ``endpoint`` narrows it to one endpoint."""
    return listing(request, who, table="webhook_deliveries", columns=_DELIVERY_COLUMNS, build=delivery_object,
                   limit=limit, starting_after=starting_after, ending_before=ending_before,
                   where="endpoint_id = %s" if endpoint else "TRUE", where_params=(endpoint,) if endpoint else ())


@router.get("/webhook_deliveries/{delivery_id}", response_model=WebhookDelivery)
def retrieve_delivery(delivery_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """A delivery with every attempt (status, error, duration)."""
    row = fetch_one(request, who, "webhook_deliveries", _DELIVERY_COLUMNS, delivery_id, noun="webhook delivery")
    with connection(request) as conn:
        attempts = conn.execute("SELECT attempt, status, error, duration_ms, created_at FROM webhook_attempts"
                                " WHERE delivery_id = %s ORDER BY attempt", (delivery_id,)).fetchall()
    return {**delivery_object(row), "attempt_log": [
        {"attempt": a["attempt"], "status": a["status"], "error": a["error"],
         "duration_ms": round(a["duration_ms"], 1), "created": ts(a["created_at"])} for a in attempts]}


@router.post("/webhook_deliveries/{delivery_id}/redeliver", response_model=WebhookDelivery)
def redeliver(delivery_id: str, request: Request, who: Principal = Depends(principal)):
    """Send a delivery again now, whatever became of it (its retry window starts over)."""
    def work() -> dict:
        fetch_one(request, who, "webhook_deliveries", "id", delivery_id, noun="webhook delivery")
        with connection(request) as conn:
            row = conn.execute(
                "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), retry_from = now(),"
                " delivered_at = NULL FROM webhook_endpoints w WHERE d.id = %s AND w.id = d.endpoint_id"
                f" AND w.deleted_at IS NULL RETURNING {', '.join('d.' + c.strip() for c in _DELIVERY_COLUMNS.split(','))}",
                (delivery_id,)).fetchone()
        if row is None:
            raise ApiError(409, "endpoint_deleted", "the delivery's endpoint was deleted", param="id")
        return delivery_object(row)

    return idempotency.respond(request, who.project_id, status=200, fingerprint={"delivery": delivery_id}, work=work)
