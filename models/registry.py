"""Generator registry: a backend is one module plus one line here.

Factories import their module lazily, so a backend with heavy optional dependencies (diffusers
on a GPU) costs nothing until it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beatframe.infra.errors import BadInputError


def _procedural(**kwargs: Any):
    from beatframe.models.procedural import ProceduralGenerator

    return ProceduralGenerator(**kwargs)


def _cover_art(**kwargs: Any):
    from beatframe.models.cover_art import CoverArtGenerator

    return CoverArtGenerator(**kwargs)


def _wan_t2v(**kwargs: Any):
    from beatframe.models.wan import WanGenerator

    return WanGenerator(kind="t2v", **kwargs)


def _wan_i2v(**kwargs: Any):
    from beatframe.models.wan import WanGenerator

    return WanGenerator(kind="i2v", **kwargs)


GENERATORS: dict[str, Callable[..., Any]] = {
    "procedural": _procedural,
    "cover-art": _cover_art,
    "wan-t2v": _wan_t2v,
    "wan-i2v": _wan_i2v,
}


def get_generator(name: str, **kwargs: Any):
    """A generator instance by registry name (``cover-art`` and ``wan-i2v`` take ``image_path=``;
    the Wan generators' other keywords are :class:`beatframe.models.wan.WanGenerator`'s)."""
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise BadInputError(f"unknown generator {name!r}; known generators: "
                            f"{', '.join(sorted(GENERATORS))}") from None
    return factory(**kwargs)
