"""Finding the evaluation recordings of ``../shared/data`` for the benchmarks (read there, never
copied into the repository). No environment variables are read here."""

from __future__ import annotations

from pathlib import Path


def recording(data: Path, name: str) -> Path | None:
    """The file ``name`` of the data folder (under ``audio/`` or at its top), or None, said once."""
    for path in (data / "audio" / name, data / name):
        if path.exists():
            return path
    print(f"  (missing {name}, skipped)")
    return None
