"""Stage 0: content hashes of the inputs, which key every cache downstream."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from beatframe.cachekeys import sha256_file
from beatframe.errors import BadInputError


def _hash(path: str, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{what} {path} does not exist or is not a file")
    return sha256_file(p)


@task(name="hash-inputs")
def hash_inputs(audio: str, cover: str | None = None) -> dict:
    """sha256 of the audio (and cover) file; always recomputed, it is what caches trust."""
    return {"audio": _hash(audio, "audio file"), "cover": _hash(cover, "cover image") if cover else None}
