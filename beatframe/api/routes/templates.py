"""``/v1/templates``: the built-in style templates and the project's own.

A project template is validated exactly like a built-in (:class:`beatframe.music.templates.Template`);
every update saves a new version, and renders record the version they used. Built-ins have ids
``tpl_<name>``; a project's templates ``tpl_<random>``. Canvases and videos name a template by
id or name; a project template's name never shadows a built-in.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, connection, looks_like_id, pool, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import ts
from beatframe.api.pagination import page
from beatframe.infra.errors import BadInputError
from beatframe.resources import Deleted, ListObject, Template as TemplateObject
from beatframe.music.schemas import LoopMode
from beatframe.music.templates import CoverSettings, Intensity, Motion, Scene, Template, list_templates, load_template, \
    validate_template

router = APIRouter(prefix="/templates", tags=["templates"])
_COLUMNS = "t.id, t.env, t.name, t.version, t.created_at, v.definition"
_FROM = "templates t JOIN template_versions v ON v.template_id = t.id AND v.version = t.version"


class TemplateCreate(BaseModel):
    """A template's definition; ``version`` is kept by the server."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    license: str = Field("CC0-1.0", min_length=1, max_length=200)
    palette: list[str] = Field(min_length=2, max_length=8)
    scene: Scene
    motion: Motion = Motion()
    intensity: Intensity = Intensity()
    default_loop: LoopMode = "continuous"
    cover: CoverSettings = CoverSettings()


class TemplateUpdate(BaseModel):
    """The fields to change; the others keep their current values."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    license: str | None = Field(None, min_length=1, max_length=200)
    palette: list[str] | None = Field(None, min_length=2, max_length=8)
    scene: Scene | None = None
    motion: Motion | None = None
    intensity: Intensity | None = None
    default_loop: LoopMode | None = None
    cover: CoverSettings | None = None


def _builtin_object(t: Template) -> dict:
    return {"id": f"tpl_{t.name}", "object": "template", "name": t.name, "version": t.version, "title": t.title,
            "description": t.description, "license": t.license, "scene": t.scene, "default_loop": t.default_loop,
            "palette": list(t.palette), "builtin": True, "definition": t.model_dump(mode="json"), "created": None}


def _project_object(row: dict) -> dict:
    t = Template.model_validate(row["definition"])
    return {**_builtin_object(t), "id": row["id"], "builtin": False, "version": str(row["version"]),
            "created": ts(row["created_at"])}


def _builtin(ref: str) -> Template | None:
    try:
        return load_template(ref.removeprefix("tpl_"))
    except BadInputError:
        return None


def _project_row(request: Request, who: Principal, ref: str, version: int | None = None) -> dict | None:
    if not looks_like_id(ref):
        return None
    column = "t.id" if ref.startswith("tpl_") else "t.name"
    join = _FROM if version is None else _FROM.replace("v.version = t.version", "v.version = %s")
    params = ([version] if version is not None else []) + [ref, who.project_id, who.env]
    with connection(request) as conn:
        return conn.execute(f"SELECT {_COLUMNS} FROM {join} WHERE {column} = %s AND t.project_id = %s"
                            " AND t.env = %s AND t.deleted_at IS NULL", params).fetchone()


def resolve_template(request: Request, who: Principal, ref: str) -> tuple[str, Template]:
    """What a render's ``template`` names: (the flows' template argument, the template).

    A built-in goes by name; a project template as its JSON, so a worker anywhere renders the
    exact version current now.
    """
    builtin = _builtin(ref)  # first: a project template can never take a built-in's name or id
    if builtin is not None:
        return builtin.name, builtin
    row = _project_row(request, who, ref)
    if row is None:
        raise ApiError(400, "parameter_invalid", f"no template {ref!r}; see GET /v1/templates", param="template")
    t = Template.model_validate({**row["definition"], "version": str(row["version"])})
    return t.canonical_json(), t


def _validated(data: dict) -> Template:
    try:
        return validate_template(data)
    except BadInputError as exc:
        raise ApiError(400, "parameter_invalid", str(exc)) from None


@router.get("", response_model=ListObject[TemplateObject])
def list_all(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
             starting_after: str | None = None, ending_before: str | None = None) -> dict:
    """The project's own templates, newest first, then the built-ins on the last page."""
    rows, has_more = page(pool(request), table="templates", columns="id", project_id=who.project_id, env=who.env,
                          limit=limit, starting_after=starting_after, ending_before=ending_before,
                          where="deleted_at IS NULL")
    data = [_project_object(_project_row(request, who, r["id"])) for r in rows]
    if not has_more and not ending_before:
        data += [_builtin_object(t) for t in list_templates()]
    return {"object": "list", "data": data, "has_more": has_more}


@router.post("", status_code=201, response_model=TemplateObject)
def create(body: TemplateCreate, request: Request, who: Principal = Depends(principal)):
    """Create a project template (version 1)."""
    def work() -> dict:
        if _builtin(body.name) is not None:
            raise ApiError(400, "template_name_taken", f"{body.name!r} is a built-in template's name", param="name")
        t = _validated({**body.model_dump(mode="json"), "version": "1"})
        template_id = db.new_id("tpl")
        try:
            with connection(request) as conn:
                conn.execute("INSERT INTO templates (id, project_id, env, name) VALUES (%s, %s, %s, %s)",
                             (template_id, who.project_id, who.env, t.name))
                conn.execute("INSERT INTO template_versions (template_id, version, definition) VALUES (%s, 1, %s)",
                             (template_id, Jsonb(t.model_dump(mode="json"))))
        except pg_errors.UniqueViolation:
            raise ApiError(400, "template_name_taken", f"the project already has a template {t.name!r}",
                           param="name") from None
        return _project_object(_project_row(request, who, template_id))

    return idempotency.respond(request, who.project_id, status=201, fingerprint=body.model_dump(mode="json"),
                               work=work)


@router.get("/{template_id}", response_model=TemplateObject)
def retrieve(template_id: str, request: Request, who: Principal = Depends(principal),
             version: int | None = Query(None, ge=1)) -> dict:
    """A template by id or name; ``version`` picks an earlier version of a project template."""
    row = _project_row(request, who, template_id, version)
    if row is not None:
        return {**_project_object(row), "version": str(version or row["version"])}
    builtin = _builtin(template_id)
    if builtin is None or version not in (None, int(builtin.version)):
        raise ApiError(404, "resource_missing", f"no template {template_id!r}" + (f" version {version}" if version else ""),
                       param="id")
    return _builtin_object(builtin)


@router.post("/{template_id}", response_model=TemplateObject)
def update(template_id: str, body: TemplateUpdate, request: Request, who: Principal = Depends(principal)):
    """Change a project template: saved as its next version (built-ins are read-only)."""
    def work() -> dict:
        current = _project_row(request, who, template_id)
        if current is None:
            if _builtin(template_id) is not None:
                raise ApiError(400, "template_builtin", "built-in templates are read-only; create your own", param="id")
            raise ApiError(404, "resource_missing", f"no template {template_id!r}", param="id")
        changes = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        version = current["version"] + 1
        t = _validated({**current["definition"], **changes, "version": str(version)})
        with connection(request) as conn:
            bumped = conn.execute("UPDATE templates SET version = %s, updated_at = now() WHERE id = %s AND version = %s"
                                  " RETURNING id", (version, current["id"], current["version"])).fetchone()
            if bumped is None:
                raise ApiError(409, "template_changed", "the template changed meanwhile; retry", param="id")
            conn.execute("INSERT INTO template_versions (template_id, version, definition) VALUES (%s, %s, %s)",
                         (current["id"], version, Jsonb(t.model_dump(mode="json"))))
        return _project_object(_project_row(request, who, current["id"]))

    return idempotency.respond(request, who.project_id, status=200,
                               fingerprint={"id": template_id, **body.model_dump(mode="json", exclude_unset=True)},
                               work=work)


@router.delete("/{template_id}", response_model=Deleted)
def delete(template_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    row = _project_row(request, who, template_id)
    if row is None:
        raise ApiError(404 if _builtin(template_id) is None else 400,
                       "resource_missing" if _builtin(template_id) is None else "template_builtin",
                       f"no project template {template_id!r}", param="id")
    with connection(request) as conn:
        conn.execute("UPDATE templates SET deleted_at = now() WHERE id = %s", (row["id"],))
    return {"id": row["id"], "object": "template", "deleted": True}
