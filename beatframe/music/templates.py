"""Style templates: data files that say how a Canvas or video looks and moves.

A template names a procedural scene, a palette, motion parameters, how the music drives the
picture (beat and downbeat pulses, energy to speed and brightness, onset sparkle), the default
loop mode and how cover art is animated. Built-ins live as TOML files in the ``templates``
package and are read with :mod:`importlib.resources`, so they ship inside the wheel.

``Template.fingerprint()`` is the sha256 of the template's canonical JSON; cache keys use it so
editing a template re-renders what it touched and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import LoopMode

Scene = Literal["tunnel", "plasma", "grid", "particles"]
SCENES = get_args(Scene)
LOOP_MODES = get_args(LoopMode)
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Motion(_Strict):
    """Continuous motion of the scene (units are per loop-independent seconds)."""

    speed: float = Field(1.0, ge=0.0, le=4.0, description="base travel speed of the scene")
    rotation: float = Field(0.2, ge=0.0, le=1.0, description="rotation/roll sway amplitude")
    sway: float = Field(0.3, ge=0.0, le=1.0, description="camera drift amplitude")
    zoom_kick: float = Field(0.5, ge=0.0, le=1.0, description="scale jump on each beat")
    phase_kick: float = Field(0.5, ge=0.0, le=1.0, description="forward rush on each beat")
    detail: float = Field(0.5, ge=0.0, le=1.0, description="pattern density")


class Intensity(_Strict):
    """How the music drives the picture."""

    beat_pulse: float = Field(0.7, ge=0.0, le=1.0, description="accent size on ordinary beats")
    downbeat_pulse: float = Field(1.0, ge=0.0, le=1.0, description="accent size on downbeats")
    energy_speed: float = Field(0.5, ge=0.0, le=1.0, description="energy -> travel speed")
    energy_brightness: float = Field(0.3, ge=0.0, le=1.0, description="energy -> brightness")
    onset_sparkle: float = Field(0.3, ge=0.0, le=1.0, description="onsets -> soft sparkle")


class CoverSettings(_Strict):
    """Cover-art animation: each effect's strength, 0 turns it off."""

    zoom: float = Field(0.6, ge=0.0, le=1.0)
    pan: float = Field(0.4, ge=0.0, le=1.0)
    parallax: float = Field(0.5, ge=0.0, le=1.0)
    glitch: float = Field(0.0, ge=0.0, le=1.0)

    @property
    def effects(self) -> list[str]:
        return [k for k in ("zoom", "pan", "parallax", "glitch") if getattr(self, k) > 0]


class Template(_Strict):
    name: str
    version: str = "1"
    title: str
    description: str = ""
    license: str = "CC0-1.0"
    palette: tuple[str, ...] = Field(..., min_length=2, max_length=8)
    scene: Scene
    motion: Motion = Motion()
    intensity: Intensity = Intensity()
    default_loop: LoopMode = "continuous"
    cover: CoverSettings = CoverSettings()

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"template name must be lowercase letters, digits and '-', got {v!r}")
        return v

    @field_validator("palette")
    @classmethod
    def _check_palette(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            if not _HEX.match(c):
                raise ValueError(f"palette colours must be '#rrggbb', got {c!r}")
        return tuple(c.lower() for c in v)

    @property
    def palette_rgb(self) -> list[tuple[int, int, int]]:
        return [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in self.palette]

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def validate_template(data: object, source: str = "<template>") -> Template:
    """A validated :class:`Template` from its parsed data (BadInputError naming the first problem)."""
    try:
        return Template.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "template"
        raise BadInputError(f"template {source}: {loc}: {first['msg']}") from None


def parse_template(text: str, source: str = "<template>") -> Template:
    """Parse TOML text into a validated :class:`Template` (BadInputError on any problem)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInputError(f"template {source}: invalid TOML: {e}") from None
    return validate_template(data, source)


@lru_cache(maxsize=64)
def _template_from_json(text: str) -> Template:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInputError(f"template JSON is invalid: {e}") from None
    return validate_template(data, "(JSON)")


@lru_cache(maxsize=1)
def _builtins() -> dict[str, Template]:
    out: dict[str, Template] = {}
    root = resources.files("beatframe.templates")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        t = parse_template(entry.read_text(encoding="utf-8"), entry.name)
        if t.name != entry.name[: -len(".toml")]:
            raise BadInputError(f"template {entry.name}: name {t.name!r} does not match its file name")
        out[t.name] = t
    return out


def list_templates() -> list[Template]:
    """All built-in templates, sorted by name."""
    return [t for _, t in sorted(_builtins().items())]


def load_template(name: str) -> Template:
    """The built-in template called ``name``, or the template a JSON object spells out.

    Flows take templates as strings so that Prefect parameters and cache keys stay small: a
    built-in's name, or the canonical JSON of a project's own template (as the HTTP API passes
    it). BadInputError lists the known names for an unknown one.
    """
    if name.lstrip().startswith("{"):
        return _template_from_json(name)
    known = _builtins()
    if name not in known:
        raise BadInputError(f"unknown template {name!r}; known templates: {', '.join(sorted(known))}")
    return known[name]
