"""Stage 0: the inputs as local files, and their content hashes, which key every cache downstream.

Flows take inputs as local paths or as ``store:<key>`` references to the object store (what the
HTTP API passes, so that a worker on another machine reads the same track or asset).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from beatframe.infra.cachekeys import sha256_file
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import get_settings
from beatframe.infra.storage import STORE_REF, get_store, validate_key
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient


def _hash(path: str, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{what} {path} does not exist or is not a file")
    return sha256_file(p)


@task(name="hash-inputs")
def hash_inputs(audio: str, cover: str | None = None) -> dict:
    """sha256 of the audio (and cover) file; always recomputed, it is what caches trust."""
    return {"audio": _hash(audio, "audio file"), "cover": _hash(cover, "cover image") if cover else None}


@task(name="hash-files")
def hash_files(paths: dict[str, str], what: str) -> dict[str, str]:
    """sha256 of each file of ``{name: path}`` (``what`` names them in errors)."""
    return {name: _hash(path, what) for name, path in paths.items()}


def local_input(ref: str | None) -> str | None:
    """A local path for ``ref``: a path as given, or a ``store:<key>`` object fetched once into
    ``$BEATFRAME_DATA_DIR/cache/inputs/<key>`` (keys name immutable uploads, so a copy stays valid)."""
    if ref is None or not ref.startswith(STORE_REF):
        return ref
    key = validate_key(ref[len(STORE_REF):])
    settings = get_settings()
    local = settings.cache_dir / "inputs" / key
    if not local.is_file():
        try:
            get_store(settings).get_file(key, local)
        except FileNotFoundError:
            raise BadInputError(f"input {key!r} is not in the object store (was it deleted?)") from None
    return str(local)


@task(name="fetch-inputs", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient)
def fetch_inputs(audio: str, cover: str | None = None) -> tuple[str, str | None]:
    """The audio (and cover) as local files, fetched from the object store when given as ``store:<key>``."""
    return local_input(audio), local_input(cover)
