"""Validated render requests: every problem with the input is reported before work starts.

:class:`CanvasRequest` and :class:`VideoRequest` check what a user asks for (audio file, template,
seed, size, loop mode, cover image) and raise :class:`beatframe.infra.errors.BadInputError` with one
clear line for the first problem found; :func:`variant_requests` checks every variant of a
variants run the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import LoopMode
from beatframe.music.limits import SEED_MAX

# Kept free of heavy imports (OpenCV, NumPy): the CLI validates requests before anything loads.


CANVAS_MIN_WIDTH, CANVAS_MAX_WIDTH = 720, 1080
LOOP_MODES: tuple[str, ...] = get_args(LoopMode)
#: Most variants one run renders.
MAX_VARIANTS = 32


def parse_canvas_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)``; a Canvas is 9:16 between 720x1280 and 1080x1920."""
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX]\s*(\d{2,5})\s*", str(text))
    if not match:
        raise BadInputError(f"size must look like 720x1280, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width * 16 != height * 9:
        raise BadInputError(f"a Canvas is 9:16; {width}x{height} is not (try 720x1280 or 1080x1920)")
    if not CANVAS_MIN_WIDTH <= width <= CANVAS_MAX_WIDTH or width % 2:
        raise BadInputError(f"a Canvas is 720x1280 to 1080x1920 with even sides, got {width}x{height}")
    return width, height


def _seed(seed) -> int:
    """``seed`` as the integer a generator takes (0 to 2**32-1)."""
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise BadInputError(f"seed must be an integer, got {seed!r}") from None
    if not 0 <= seed <= SEED_MAX:
        raise BadInputError(f"seed must be an integer from 0 to 2**32-1, got {seed}")
    return seed


def _common(audio, template: str, seed, cover) -> tuple[Path, object, int, Path | None]:
    from beatframe.music.templates import load_template

    audio = Path(audio)
    if not audio.is_file():
        raise BadInputError(f"audio file {audio} does not exist or is not a file")
    style = load_template(template)
    seed = _seed(seed)
    cover_path = None
    if cover is not None:
        from beatframe.music.images import load_cover

        cover_path = Path(cover)
        load_cover(cover_path)
    return audio, style, seed, cover_path


@dataclass(frozen=True)
class CanvasRequest:
    audio: Path
    template: str  # a built-in's name, or a template's JSON (see load_template)
    scene: str
    seconds: float
    seed: int
    size: tuple[int, int]
    loop_mode: LoopMode
    start: float | None
    cover: Path | None
    cover_license: str | None

    @classmethod
    def validate(cls, *, audio: str | Path, template: str = "neon-pulse", seconds: float = 7.0, seed: int = 0,
                 size: str | tuple[int, int] = "720x1280", loop_mode: str | None = None,
                 start: float | None = None, cover: str | Path | None = None,
                 cover_license: str | None = None) -> "CanvasRequest":
        audio, style, seed, cover_path = _common(audio, template, seed, cover)
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise BadInputError(f"seconds must be a number, got {seconds!r}") from None
        if not 3.0 <= seconds <= 8.0:
            raise BadInputError(f"seconds must be within 3-8 (Spotify's Canvas limits), got {seconds:g}")
        dims = parse_canvas_size(size) if isinstance(size, str) else parse_canvas_size(f"{size[0]}x{size[1]}")
        mode = loop_mode or style.default_loop
        if mode not in LOOP_MODES:
            raise BadInputError(f"loop mode must be one of {', '.join(LOOP_MODES)}, got {mode!r}")
        if start is not None and (not isinstance(start, (int, float)) or not start >= 0):
            raise BadInputError(f"start must be a time in seconds >= 0, got {start!r}")
        return cls(audio=audio, template=template, scene=style.scene, seconds=seconds, seed=seed, size=dims,
                   loop_mode=mode, start=None if start is None else float(start), cover=cover_path,
                   cover_license=cover_license)


@dataclass(frozen=True)
class VideoRequest:
    audio: Path
    template: str
    scene: str
    seed: int
    size: tuple[int, int]
    transitions: bool
    cover: Path | None
    cover_license: str | None

    @classmethod
    def validate(cls, *, audio: str | Path, template: str = "neon-pulse", seed: int = 0,
                 size: str | tuple[int, int] = "1920x1080", transitions: bool = True,
                 cover: str | Path | None = None, cover_license: str | None = None) -> "VideoRequest":
        from beatframe.music.video import parse_video_size

        audio, style, seed, cover_path = _common(audio, template, seed, cover)
        dims = parse_video_size(size) if isinstance(size, str) else parse_video_size(f"{size[0]}x{size[1]}")
        return cls(audio=audio, template=template, scene="cover-art" if cover_path else style.scene, seed=seed,
                   size=dims, transitions=bool(transitions), cover=cover_path, cover_license=cover_license)


def variant_requests(*, audio: str | Path, kind: str, count: int, templates: list[str], seed: int,
                     size: str | None = None) -> list[CanvasRequest | VideoRequest]:
    """The request of every variant of a variants run, each checked before any of them renders.

    Parameters
    ----------
    audio : str or Path
        The track every variant is made of.
    kind : str
        ``canvas`` or ``video``.
    count : int
        How many variants, 1 to :data:`MAX_VARIANTS`.
    templates : list of str
        Taken in turn, one per variant; at least one.
    seed : int
        The first variant's seed; each next variant takes the next one.
    size : str, optional
        Every variant's size (default: the kind's).

    Returns
    -------
    list of CanvasRequest or VideoRequest
        In variant order.

    Raises
    ------
    BadInputError
        For the first problem found: the kind, the count, an empty template list, or any variant's
        request (audio, template, seed, size).
    """
    if kind not in ("canvas", "video"):
        raise BadInputError(f"variants are of a canvas or a video, not {kind!r}")
    if not isinstance(count, int) or not 1 <= count <= MAX_VARIANTS:
        raise BadInputError(f"count must be 1-{MAX_VARIANTS}, got {count!r}")
    if not templates:
        raise BadInputError("templates must name at least one template")
    validate = CanvasRequest.validate if kind == "canvas" else VideoRequest.validate
    first, sized = _seed(seed), {"size": size} if size else {}
    if first + count > SEED_MAX + 1:
        raise BadInputError(f"seeds {first}-{first + count - 1} of {count} variants pass 2**32-1; "
                            "give a lower first seed")
    return [validate(audio=audio, template=templates[i % len(templates)], seed=first + i, **sized)
            for i in range(count)]
