"""Cache keys from small inputs: content hashes, specs, seeds and code revisions.

Prefect tasks build their cache keys with :func:`cache_key`; a key never hashes arrays, tensors or
clients. :func:`source_revision` fingerprints a package's source so a change to, say, the
analysis code invalidates cached analyses without anybody remembering to bump a number.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_key(namespace: str, **parts: object) -> str:
    """``namespace-<sha256 of the parts as canonical JSON>``; parts must be JSON-serializable."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return f"{namespace}-{hashlib.sha256(blob.encode()).hexdigest()[:40]}"


@lru_cache(maxsize=None)
def source_revision(*sources: str) -> str:
    """A short hash of the given ``.py`` files and every ``.py`` file under the given folders."""
    digest = hashlib.sha256()
    for source in sources:
        root = Path(source)
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
