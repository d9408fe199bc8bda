"""``/v1/assets``: bring your own images, clips and audio, with the rights to use them.

Every asset needs its licence, attribution and rights holder; a render that uses an asset (a
canvas's ``cover_asset``, a video made from that canvas) copies them into its manifest's
licensing record. Files are checked before they are kept: images must decode, clips must have a
video stream, audio must decode.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, connection, principal, store
from beatframe.api.errors import ApiError
from beatframe.api.objects import ASSET_COLUMNS, asset_object, fetch_one, listing, soft_delete
from beatframe.api.uploads import check_length, receive
from beatframe.music.catalog import AUDIO_SUFFIXES
from beatframe.infra.errors import BadInputError
from beatframe.resources import Asset, Deleted, ListObject
from beatframe.infra.storage import store_ref

router = APIRouter(prefix="/assets", tags=["assets"])
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
CLIP_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv"}
_KINDS = {**{s: "image" for s in IMAGE_SUFFIXES}, **{s: "clip" for s in CLIP_SUFFIXES},
          **{s: "audio" for s in AUDIO_SUFFIXES}}


def _check_content(kind: str, path) -> None:
    """BadInputError naming the problem when the file is not the media its name says."""
    if kind == "image":
        from beatframe.music.images import load_cover

        load_cover(path)
    elif kind == "audio":
        from beatframe.music.audio import load_audio

        load_audio(path)
    else:
        from beatframe.music.check import probe

        try:
            probe(path)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for a broken file
            raise BadInputError(f"the clip cannot be read as a video: {exc}") from None


def image_asset(request: Request, who: Principal, asset_id: str, *, param: str) -> tuple[str, dict]:
    """The store reference of one of the caller's image assets and its licensing record (licence,
    attribution, rights holder, asset id); 404 or 400 naming ``param`` when there is no such image."""
    try:
        asset = fetch_one(request, who, "assets", ASSET_COLUMNS + ", object_key", asset_id, noun="asset",
                          live_rows=True)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.message, param=param) from None
    if asset["kind"] != "image":
        raise ApiError(400, "parameter_invalid", f"{param} must be an image; {asset['id']} is {asset['kind']}",
                       param=param)
    licensing = {"license": asset["license"], "attribution": asset["attribution"],
                 "rights_holder": asset["rights_holder"], "asset": asset["id"]}
    return store_ref(asset["object_key"]), licensing


def cover_inputs(request: Request, who: Principal, asset_id: str) -> dict:
    """The flow inputs that animate an image asset as cover art, with its licensing."""
    cover, licensing = image_asset(request, who, asset_id, param="cover_asset")
    return {"cover": cover, "cover_license": json.dumps(licensing, sort_keys=True)}


@router.post("", status_code=201, response_model=Asset)
def create(request: Request, file: UploadFile = File(...),
           license: str = Form(..., min_length=1, max_length=200, description="e.g. CC-BY-4.0, or 'proprietary'"),
           attribution: str = Form(..., min_length=1, max_length=1000, description="the credit line to show"),
           rights_holder: str = Form(..., min_length=1, max_length=200),
           who: Principal = Depends(principal)):
    """Upload an image, clip or audio file with its licence fields (multipart)."""
    check_length(request)
    with receive(request, file, suffixes=set(_KINDS), what="an image, clip or audio file") as upload:
        kind = _KINDS[upload.suffix]
        fields = {"license": license.strip(), "attribution": attribution.strip(), "rights_holder": rights_holder.strip()}
        for name, value in fields.items():
            if not value:
                raise ApiError(400, "parameter_invalid", f"{name} must not be blank", param=name)

        def work() -> dict:
            _check_content(kind, upload.path)
            asset_id = db.new_id("ast")
            key = f"assets/{who.project_id}/{asset_id}/{kind}{upload.suffix}"
            store(request).put_file(key, upload.path, content_type=upload.content_type)
            with connection(request) as conn:
                row = conn.execute(
                    f"INSERT INTO assets (id, project_id, env, kind, filename, content_type, bytes, sha256, object_key,"
                    f" license, attribution, rights_holder) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    f" RETURNING {ASSET_COLUMNS}",
                    (asset_id, who.project_id, who.env, kind, upload.filename, upload.content_type, upload.bytes,
                     upload.sha256, key, fields["license"], fields["attribution"], fields["rights_holder"]),
                ).fetchone()
            return asset_object(row)

        return idempotency.respond(request, who.project_id, status=201, work=work,
                                   fingerprint={"sha256": upload.sha256, "filename": upload.filename, **fields})


@router.get("", response_model=ListObject[Asset])
def list_assets(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                starting_after: str | None = None, ending_before: str | None = None) -> dict:
    return listing(request, who, table="assets", columns=ASSET_COLUMNS, build=asset_object, limit=limit,
                   starting_after=starting_after, ending_before=ending_before, where="deleted_at IS NULL")


@router.get("/{asset_id}", response_model=Asset)
def retrieve(asset_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return asset_object(fetch_one(request, who, "assets", ASSET_COLUMNS, asset_id, noun="asset", live_rows=True))


@router.delete("/{asset_id}", response_model=Deleted)
def delete(asset_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """Delete an asset; outputs already made with it keep their licensing record."""
    return soft_delete(request, who, "assets", asset_id, noun="asset")
