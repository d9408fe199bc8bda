"""The API's objects as JSON: one builder per resource, the columns each reads, lookups scoped to
the caller's project and environment, and ``expand[]``.

Builders take a database row (and the request, where outputs need signed URLs); the shapes are
the models of :mod:`beatframe.resources`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from beatframe.api.deps import Principal, connection, looks_like_id, pool, principal, store
from beatframe.api.errors import ApiError
from beatframe.api.pagination import page
from beatframe.api.signing import download_url
from beatframe.resources import ListObject

TRACK_COLUMNS = ("id, env, filename, source_url, sha256, bytes, duration, status, analysis_status, analysis_version,"
                 " created_at")
RENDER_COLUMNS = ("id, env, kind, status, progress, stage, stages, flow_run_id, cost, error, created_at,"
                  " started_at, finished_at")
CANVAS_COLUMNS = "id, env, track_id, render_id, cover_asset_id, params, manifest, created_at"
VIDEO_COLUMNS = "id, env, track_id, canvas_id, render_id, params, manifest, created_at"
ASSET_COLUMNS = ("id, env, kind, filename, content_type, bytes, sha256, license, attribution, rights_holder,"
                 " created_at")

#: The fields each object's ``expand[]`` may name.
EXPANDABLE = {"canvas": ("track", "render"), "video": ("track", "render", "canvas")}


def ts(value) -> int | None:
    return int(value.timestamp()) if value else None


def track_object(row: dict) -> dict:
    return {"id": row["id"], "object": "track", "filename": row["filename"], "source_url": row["source_url"],
            "sha256": row["sha256"], "bytes": row["bytes"], "duration": row["duration"], "status": row["status"],
            "analysis_status": row["analysis_status"], "analysis_version": row["analysis_version"],
            "livemode": row["env"] == "live", "created": ts(row["created_at"])}


def render_object(row: dict) -> dict:
    return {"id": row["id"], "object": "render", "kind": row["kind"], "status": row["status"],
            "progress": row["progress"], "stage": row["stage"], "stages": row["stages"],
            "canvas": row.get("canvas_id"), "video": row.get("video_id"), "generation": row.get("generation_id"),
            "flow_run_id": row["flow_run_id"],
            "cost": row["cost"], "error": row["error"], "livemode": row["env"] == "live",
            "created": ts(row["created_at"]), "started": ts(row["started_at"]), "finished": ts(row["finished_at"])}


def asset_object(row: dict) -> dict:
    return {"id": row["id"], "object": "asset", "kind": row["kind"], "filename": row["filename"],
            "content_type": row["content_type"], "bytes": row["bytes"], "sha256": row["sha256"],
            "license": row["license"], "attribution": row["attribution"], "rights_holder": row["rights_holder"],
            "livemode": row["env"] == "live", "created": ts(row["created_at"])}


def _outputs(request: Request, manifest: dict | None) -> list[dict]:
    settings, store = request.app.state.settings, request.app.state.store
    return [{**output, "url": download_url(store, settings, output["uri"], base_url=str(request.base_url))}
            for output in (manifest["outputs"] if manifest else [])]


def canvas_object(row: dict, request: Request) -> dict:
    manifest, params = row["manifest"], row["params"]
    return {"id": row["id"], "object": "canvas", "track": row["track_id"], "render": row["render_id"],
            "template": params.get("template"), "seconds": params.get("seconds"), "seed": params.get("seed"),
            "loop": params.get("loop"), "cover_asset": row["cover_asset_id"],
            "analysis_hints": params.get("analysis_hints"), "analysis_version": params.get("analysis_version"),
            "segment": manifest["segment"] if manifest else None, "outputs": _outputs(request, manifest),
            "manifest": manifest, "livemode": row["env"] == "live", "created": ts(row["created_at"])}


def video_object(row: dict, request: Request) -> dict:
    manifest, params = row["manifest"], row["params"]
    return {"id": row["id"], "object": "video", "track": row["track_id"], "canvas": row["canvas_id"],
            "render": row["render_id"], "template": params.get("template"), "size": params.get("size"),
            "seed": params.get("seed"), "analysis_hints": params.get("analysis_hints"),
            "analysis_version": params.get("analysis_version"), "outputs": _outputs(request, manifest), "manifest": manifest,
            "livemode": row["env"] == "live", "created": ts(row["created_at"])}


def fetch_one(request: Request, who: Principal, table: str, columns: str, object_id: str, *,
              noun: str, live_rows: bool = False) -> dict:
    """One of the caller's objects; another project's or environment's is as missing as none (404).
    ``live_rows`` skips soft-deleted rows."""
    deleted = " AND deleted_at IS NULL" if live_rows else ""
    if not looks_like_id(object_id):
        raise ApiError(404, "resource_missing", f"no {noun} {object_id[:64]!r}", param="id")
    with connection(request) as conn:
        row = conn.execute(f"SELECT {columns} FROM {table} WHERE id = %s AND project_id = %s AND env = %s{deleted}",
                           (object_id, who.project_id, who.env)).fetchone()
    if row is None:
        raise ApiError(404, "resource_missing", f"no {noun} {object_id!r}", param="id")
    return row


def render_row(request: Request, who: Principal, render_id: str) -> dict:
    """A render with the id of the canvas, video or generation it makes."""
    return fetch_one(request, who, "render_objects", RENDER_COLUMNS + ", canvas_id, video_id, generation_id",
                     render_id, noun="render")


def check_expand(kind: str, expand: list[str]) -> list[str]:
    for field in expand:
        if field not in EXPANDABLE[kind]:
            raise ApiError(400, "parameter_invalid", f"a {kind} can expand {', '.join(EXPANDABLE[kind])};"
                           f" not {field!r}", param="expand[]")
    return expand


def expanded(obj: dict, expand: list[str], request: Request, who: Principal) -> dict:
    """``obj`` with the ids named in ``expand`` replaced by their objects."""
    for field in expand:
        object_id = obj.get(field)
        if not isinstance(object_id, str):
            continue
        if field == "render":
            obj[field] = render_object(render_row(request, who, object_id))
        elif field == "track":
            obj[field] = track_object(fetch_one(request, who, "tracks", TRACK_COLUMNS, object_id, noun="track"))
        elif field == "canvas":
            obj[field] = canvas_object(fetch_one(request, who, "canvases", CANVAS_COLUMNS, object_id, noun="canvas"),
                                       request)
    return obj


def listing(request: Request, who: Principal, *, table: str, columns: str, build, limit: int,
            starting_after: str | None, ending_before: str | None, where: str = "TRUE", where_params: tuple = (),
            expand: list[str] | None = None) -> dict:
    """One page of the caller's objects of ``table`` as a list object; ``build(row)`` makes each."""
    rows, has_more = page(pool(request), table=table, columns=columns, project_id=who.project_id, env=who.env,
                          limit=limit, starting_after=starting_after, ending_before=ending_before, where=where,
                          where_params=where_params)
    return {"object": "list", "has_more": has_more,
            "data": [expanded(build(row), expand or [], request, who) for row in rows]}


def soft_delete(request: Request, who: Principal, table: str, object_id: str, *, noun: str) -> dict:
    """Mark one of the caller's objects deleted and remove its file from the object store."""
    row = fetch_one(request, who, table, "id, object_key", object_id, noun=noun, live_rows=True)
    with connection(request) as conn:
        conn.execute(f"UPDATE {table} SET deleted_at = now() WHERE id = %s", (object_id,))
    store(request).delete(row["object_key"])
    return {"id": object_id, "object": noun, "deleted": True}


def add_list_and_retrieve(router: APIRouter, *, kind: str, table: str, columns: str, build, model) -> None:
    """Add ``GET ""`` (a page) and ``GET /{object_id}`` of an object that has ``expand[]``
    (canvases, videos) to ``router``; ``build(row, request)`` makes each object."""
    expand_query = Query([], alias="expand[]",
                         description=f"{', '.join(EXPANDABLE[kind])}: return these objects instead of their ids")

    def list_objects(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                     starting_after: str | None = None, ending_before: str | None = None,
                     expand: list[str] = expand_query) -> dict:
        return listing(request, who, table=table, columns=columns, build=lambda row: build(row, request), limit=limit,
                       starting_after=starting_after, ending_before=ending_before, expand=check_expand(kind, expand))

    # the path parameter keeps the kind's name (canvas_id, video_id) in the route template and OpenAPI
    def retrieve_object(request: Request, object_id: str = Path(alias=f"{kind}_id"),
                        who: Principal = Depends(principal), expand: list[str] = expand_query) -> dict:
        row = fetch_one(request, who, table, columns, object_id, noun=kind)
        return expanded(build(row, request), check_expand(kind, expand), request, who)

    router.add_api_route("", list_objects, methods=["GET"], response_model=ListObject[model], name=f"list_{table}")
    router.add_api_route(f"/{{{kind}_id}}", retrieve_object, methods=["GET"], response_model=model,
                         name=f"retrieve_{kind}")
