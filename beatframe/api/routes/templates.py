"""``/v1/templates``: the built-in style templates."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.errors import BadInputError
from beatframe.templates import list_templates, load_template

router = APIRouter(prefix="/templates", tags=["templates"])


def _template(t) -> dict:
    return {"id": f"tpl_{t.name}", "object": "template", "name": t.name, "version": t.version, "title": t.title,
            "description": t.description, "license": t.license, "scene": t.scene, "default_loop": t.default_loop,
            "palette": list(t.palette), "builtin": True}


@router.get("")
def list_all(_: Principal = Depends(principal)) -> dict:
    data = [_template(t) for t in list_templates()]
    return {"object": "list", "data": data, "has_more": False}


@router.get("/{name}")
def retrieve(name: str, _: Principal = Depends(principal)) -> dict:
    try:
        return _template(load_template(name.removeprefix("tpl_")))
    except BadInputError:
        raise ApiError(404, "resource_missing", f"no template {name!r}", param="name") from None
