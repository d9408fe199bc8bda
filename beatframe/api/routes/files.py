"""``/v1/files/{key}``: downloads of local-store outputs through HMAC-signed, expiring links."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from beatframe.api.errors import ApiError
from beatframe.api.signing import verify
from beatframe.infra.errors import BadInputError
from beatframe.infra.storage import LocalStore, validate_key

router = APIRouter(tags=["files"])


@router.get("/files/{key:path}", response_class=FileResponse, responses={200: {
    "description": "the file", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download(key: str, request: Request, expires: int = 0, signature: str = "") -> FileResponse:
    store = request.app.state.store
    try:
        validate_key(key)
    except BadInputError:
        raise ApiError(404, "resource_missing", "no such file") from None
    if not isinstance(store, LocalStore):
        raise ApiError(404, "resource_missing", "downloads come from the object store's own signed URLs")
    if not verify(request.app.state.settings, key, expires, signature):
        raise ApiError(403, "signature_invalid", "the download link is invalid or has expired")
    path = store.root / key
    if not path.is_file():
        raise ApiError(404, "resource_missing", "the file no longer exists")
    return FileResponse(path, filename=path.name)
