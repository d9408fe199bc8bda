"""User corrections of the analysis: reading beat files, and checking hints against a track.

Editors fix a wrong beat grid by giving the tempo, one downbeat, the meter or a whole beat list;
:class:`beatframe.music.schemas.AnalysisHints` holds them and :func:`beatframe.music.analysis.analyze`
applies them. :func:`read_beat_file` reads the three beat-list formats people have:

* plain text, one beat time (seconds) per line (``#`` comments and blank lines skipped; a CSV
  with the time in its first column is read the same way);
* ``.beats`` files (the MIR datasets' format): ``time<TAB or space>position`` with the beat's
  place in its bar, 1 on downbeats (in other files a second column is read as positions only
  when it is a whole number from 1 to 12 on every line: a CSV's confidence is ignored);
* JAMS (JSON): the first ``beat`` or ``beat_position`` annotation (for ``beat_position`` the
  bar positions come from each value's ``position``).

Examples
--------
>>> hints = read_beat_file("song.beats")                       # doctest: +SKIP
>>> analyze("song.wav", hints=hints)                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import ValidationError

from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import MAX_HINT_BEATS, AnalysisHints

__all__ = ["read_beat_file", "parse_beats", "MAX_BEAT_FILE_BYTES"]

#: Largest beat file accepted (20,000 beats with positions fit in well under 1 MB).
MAX_BEAT_FILE_BYTES = 2 * 1024 * 1024


def read_beat_file(path: str | Path) -> AnalysisHints:
    """Read a beat list (plain times, ``.beats`` with bar positions, or JAMS).

    Raises
    ------
    beatframe.infra.errors.BadInputError
        If the file is missing, too large, not text, or holds no usable increasing beat times.
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"beat file {p.name} does not exist or is not a file")
    if p.stat().st_size > MAX_BEAT_FILE_BYTES:
        raise BadInputError(f"beat file {p.name} is larger than "
                            f"{MAX_BEAT_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError(f"beat file {p.name} is not UTF-8 text") from None
    return parse_beats(text, name=p.name)


def parse_beats(text: str, *, name: str = "beats") -> AnalysisHints:
    """Parse the text of a beat file (see the module docstring for the formats)."""
    if len(text) > MAX_BEAT_FILE_BYTES:
        raise BadInputError(f"beat file {name} is larger than "
                            f"{MAX_BEAT_FILE_BYTES // (1024 * 1024)} MB")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        times, positions = _parse_jams(stripped, name)
    else:
        times, positions = _parse_lines(text, name)
    if len(times) > MAX_HINT_BEATS:
        raise BadInputError(f"beat file {name} has {len(times)} beats; at most "
                            f"{MAX_HINT_BEATS} are accepted")
    try:
        return AnalysisHints(beats=times, beat_positions=positions)
    except ValidationError as exc:
        msg = exc.errors()[0].get("msg", "invalid beats").removeprefix("Value error, ")
        raise BadInputError(f"beat file {name}: {msg}") from None


def _number(tok: str, name: str, line: int) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise BadInputError(f"beat file {name}, line {line}: {tok[:20]!r} is not a time "
                            f"in seconds") from None
    if not math.isfinite(v):
        raise BadInputError(f"beat file {name}, line {line}: the time is not finite")
    return v


def _parse_lines(text: str, name: str) -> tuple[list[float], list[int] | None]:
    rows: list[tuple[int, float, float | None]] = []  # (line number, time, second column)
    first = True
    for i, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        toks = line.replace(",", " ").replace(";", " ").split()
        if first and not _is_number(toks[0]):
            first = False
            continue  # a CSV header
        first = False
        second = _number(toks[1], name, i) if len(toks) > 1 and _is_number(toks[1]) else None
        rows.append((i, _number(toks[0], name, i), second))
        if len(rows) > MAX_HINT_BEATS:
            break
    if not rows:
        raise BadInputError(f"beat file {name} holds no beat times")
    times = [t for _, t, _ in rows]
    seconds = [p for _, _, p in rows]
    if name.lower().endswith(".beats") and seconds[0] is not None:
        # the .beats format's second column is the bar position: it must be right everywhere
        for line, _, p in rows:
            if p is None:
                raise BadInputError(f"beat file {name}, line {line}: the bar position is missing "
                                    f"(the first line has one)")
            if p != int(p):
                raise BadInputError(f"beat file {name}, line {line}: the bar position must be a "
                                    f"whole number")
        return times, [int(p) for p in seconds]
    # elsewhere a second column is bar positions only if every line has a whole number from 1
    # to 12 there; anything else (a CSV's confidence, a duration) is not read
    if all(p is not None and p == int(p) and 1 <= p <= 12 for p in seconds):
        return times, [int(p) for p in seconds]
    return times, None


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _parse_jams(text: str, name: str) -> tuple[list[float], list[int] | None]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise BadInputError(f"beat file {name} is not valid JSON (JAMS)") from None
    anns = doc.get("annotations") if isinstance(doc, dict) else None
    if not isinstance(anns, list):
        raise BadInputError(f"beat file {name} is JSON but not JAMS (no annotations list)")
    for ann in anns:
        if not isinstance(ann, dict):
            continue
        ns = ann.get("namespace")
        if ns not in ("beat", "beat_position"):
            continue
        data = ann.get("data")
        if isinstance(data, dict):  # JAMS's column-wise ("sparse") layout
            data = [dict(zip(data, row)) for row in zip(*data.values())]
        if not isinstance(data, list):
            break
        times: list[float] = []
        positions: list[int] = []
        for k, obs in enumerate(data[:MAX_HINT_BEATS + 1], 1):
            if not isinstance(obs, dict) or not isinstance(obs.get("time"), (int, float)):
                raise BadInputError(f"beat file {name}: observation {k} has no numeric time")
            times.append(_number(str(obs["time"]), name, k))
            if ns == "beat_position":
                val = obs.get("value")
                pos = val.get("position") if isinstance(val, dict) else None
                if not isinstance(pos, int):
                    raise BadInputError(f"beat file {name}: observation {k} has no bar position")
                positions.append(pos)
        if not times:
            raise BadInputError(f"beat file {name}: its {ns} annotation is empty")
        return times, positions or None
    raise BadInputError(f"beat file {name} has no beat or beat_position annotation")
