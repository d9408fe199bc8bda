"""Catalogs: many tracks rendered in one run, from a folder of audio files or a CSV.

A CSV needs a ``path`` column (relative to the CSV's folder, or absolute) and may carry metadata:
``title``, ``artist``, ``isrc``, ``template``. :func:`read_catalog` validates the whole listing
before anything renders and gives every track a distinct, safe output folder name;
:func:`check_templates`, that every template the catalog uses is known.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from beatframe.infra.errors import BadInputError

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".aif", ".aiff", ".opus"}
METADATA_COLUMNS = ("title", "artist", "isrc")
MAX_TRACKS = 10_000
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


@dataclass(frozen=True)
class CatalogEntry:
    audio: str
    folder: str
    template: str | None = None
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "track"
    return slug[:80]


def _with_folders(rows: list[tuple[Path, str | None, dict]]) -> list[CatalogEntry]:
    used: set[str] = set()
    entries = []
    for audio, template, metadata in rows:
        base = _slug(metadata.get("title") or audio.stem)
        name, n = base, 2
        while name.lower() in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name.lower())
        entries.append(CatalogEntry(audio=str(audio), folder=name, template=template, metadata=metadata))
    return entries


def read_catalog(source: str | Path) -> list[CatalogEntry]:
    """The tracks of a folder (its audio files, sorted by name) or of a CSV listing.

    Raises
    ------
    BadInputError
        When the source is missing, holds no audio, or the CSV is malformed (no ``path`` column,
        an empty path, a bad ISRC).
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise BadInputError(f"{source} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
        rows = [(p, None, {}) for p in files]
    elif source.is_file() and source.suffix.lower() == ".csv":
        rows = _read_csv(source)
    elif source.exists():
        raise BadInputError(f"{source} is neither a folder of audio files nor a .csv listing")
    else:
        raise BadInputError(f"{source} does not exist")
    if len(rows) > MAX_TRACKS:
        raise BadInputError(f"{source} lists {len(rows)} tracks; split catalogs above {MAX_TRACKS}")
    return _with_folders(rows)


def check_templates(entries: list[CatalogEntry], *, default: str) -> None:
    """Refuse an unknown template before anything renders, rather than fail each of its tracks.

    Parameters
    ----------
    entries : list of CatalogEntry
        The catalog, as :func:`read_catalog` returns it.
    default : str
        The template of the entries that name none.

    Raises
    ------
    BadInputError
        Naming the first template that is not known.
    """
    from beatframe.music.templates import load_template

    for name in dict.fromkeys([default, *(entry.template for entry in entries if entry.template)]):
        load_template(name)


def _read_csv(path: Path) -> list[tuple[Path, str | None, dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "path" not in columns:
                raise BadInputError(f"{path.name} needs a 'path' column; it has {', '.join(columns) or 'none'}")
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
                if not row.get("path"):
                    raise BadInputError(f"{path.name} line {line}: the path is empty")
                audio = Path(row["path"])
                audio = audio if audio.is_absolute() else path.parent / audio
                isrc = row.get("isrc", "").replace("-", "").upper()
                if isrc and not _ISRC.match(isrc):
                    raise BadInputError(f"{path.name} line {line}: {row['isrc']!r} is not an ISRC (CCXXXYYNNNNN)")
                metadata = {k: row[k] for k in METADATA_COLUMNS if row.get(k)}
                if isrc:
                    metadata["isrc"] = isrc
                rows.append((audio, row.get("template") or None, metadata))
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name} is not UTF-8 text") from None
    except csv.Error as exc:
        raise BadInputError(f"{path.name} is not a readable CSV: {exc}") from None
    if not rows:
        raise BadInputError(f"{path.name} lists no tracks")
    return rows
