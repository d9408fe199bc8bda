"""Atomic file output: write under a temporary name beside the destination, then rename.

A reader never sees a half-written file, and a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path in ``dest``'s folder; on success it replaces ``dest``.

    The temporary file keeps ``dest``'s suffix so tools that pick a format by extension work.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(dest: Path, data: object) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
