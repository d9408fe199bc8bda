"""Music-first prompts for diffusion shots, and the reference API's generation parameter ranges.

A generative shot in beatframe illustrates a stretch of a song, so its prompt is built from what
the music and the style template say: the template's description (or title), its scene and its
palette in colour words, the song section the shot covers (intro, verse, chorus, drop ...) as a
mood, and the section's energy as the pace of motion (calm, driving or explosive). The user's own
prompt, when there is one, comes first, because text-to-video models weigh the start of a prompt
most.

The negative prompt always carries Spotify's Canvas rules (no text, no logos, no singing or
lip-syncing faces) and a guard against strobing, whatever the user adds, plus the reference API's
default ``blurry, low quality``.

:func:`check_generation_params` enforces the reference API's ranges for the diffusion settings
(guidance scale 1-20, 10-150 inference steps, a seed in 0..2**32-1), as
:mod:`beatframe.music.generation` defines them.

No environment variables are read here.
"""

from __future__ import annotations

import colorsys
import math
from numbers import Integral, Real

from beatframe.infra.errors import BadInputError
from beatframe.music.limits import DEFAULT_NEGATIVE_PROMPT, GUIDANCE_RANGE, MAX_PROMPT_CHARS, SEED_MAX, STEPS_RANGE
from beatframe.music.templates import Template, load_template, validate_template

#: What each section of a song should feel like on screen (labels of beatframe.analysis/1).
SECTION_MOODS: dict[str, str] = {
    "intro": "an opening moment, the scene slowly revealing itself",
    "verse": "a steady, restrained groove",
    "pre-chorus": "rising tension, building toward the peak",
    "chorus": "the euphoric peak of the song, full and bright",
    "bridge": "a contrasting, dreamlike turn",
    "breakdown": "stripped back and sparse, holding its breath",
    "drop": "the drop, a massive impact where everything hits at once",
    "outro": "the ending, fading out and resolving",
    "silence": "near stillness, almost empty",
}

#: (upper bound of the energy band, wording): the pace of motion for a section's energy, 0-1.
ENERGY_BANDS: tuple[tuple[float, str], ...] = (
    (0.35, "calm, slow, gentle motion"),
    (0.7, "driving, rhythmic motion with a steady pulse"),
    (math.inf, "explosive, fast, intense motion surging forward"),
)

#: How each procedural scene reads as a picture, for templates without a description.
SCENE_PHRASES: dict[str, str] = {
    "tunnel": "an endless tunnel rushing toward the camera",
    "plasma": "flowing abstract waves of light",
    "grid": "a retro perspective grid racing to the horizon",
    "particles": "a drifting star field under aurora curtains",
}

# Spotify's Canvas rules (no text, logos or singing faces) and a strobe guard (beatframe's flash
# guard softens flashes after the fact; better not to generate them).
CANVAS_NEGATIVES = (
    "text", "letters", "captions", "subtitles", "watermark", "logo", "brand names",
    "singing face", "lip-syncing mouth", "strobe", "flashing lights",
)
#: the reference API's default negative prompt, term by term
DEFAULT_NEGATIVES = tuple(DEFAULT_NEGATIVE_PROMPT.split(", "))


def _template(template: Template | str | dict) -> Template:
    if isinstance(template, Template):
        return template
    if isinstance(template, str):
        return load_template(template)
    if isinstance(template, dict):
        return validate_template(template)
    raise BadInputError(f"template must be a Template, a template name or its data, got {type(template).__name__}")


def _user_text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{name} must contain text (leave it out for none)")
    if len(value) > MAX_PROMPT_CHARS:
        raise BadInputError(f"{name} is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}")
    return " ".join(value.split())


def _hsv(hex_colour: str) -> tuple[float, float, float]:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)


def colour_name(hex_colour: str) -> str:
    """A plain colour word for ``#rrggbb`` (``deep purple``, ``cyan``, ``pale yellow`` ...)."""
    h, s, v = _hsv(hex_colour)
    if v < 0.15:
        return "black"
    if s < 0.15:
        return "white" if v > 0.85 else "grey"
    degrees = h * 360.0
    for upper, name in ((15, "red"), (40, "orange"), (65, "yellow"), (160, "green"), (185, "teal"),
                        (200, "cyan"), (250, "blue"), (290, "purple"), (330, "magenta"), (345, "pink"),
                        (360, "red")):
        if degrees < upper:
            break
    if v < 0.4:
        return f"deep {name}"
    if s < 0.45 and v > 0.8:
        return f"pale {name}"
    return name


def palette_words(template: Template) -> str:
    """The template's palette as distinct colour words: ``black, magenta, cyan and white``."""
    names = list(dict.fromkeys(colour_name(c) for c in template.palette))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def energy_words(energy: float) -> str:
    """The pace of motion for a section energy in 0-1 (see :data:`ENERGY_BANDS`)."""
    if isinstance(energy, bool) or not isinstance(energy, Real) or not 0.0 <= energy <= 1.0:
        raise BadInputError(f"energy must be a number from 0 to 1, got {energy!r}")
    return next(words for upper, words in ENERGY_BANDS if energy < upper)


def _section(section: str) -> str:
    key = "-".join(section.strip().lower().replace("_", " ").split()) if isinstance(section, str) else None
    if key == "prechorus":
        key = "pre-chorus"
    if key not in SECTION_MOODS:
        raise BadInputError(f"section must be one of {', '.join(SECTION_MOODS)}, got {section!r}")
    return key


def shot_prompt(*, template: Template | str | dict, section: str, energy: float,
                user_prompt: str | None = None) -> str:
    """The positive prompt for one generated shot.

    Parameters
    ----------
    template : Template, str or dict
        The style template, its built-in name (or JSON), or its data.
    section : str
        The song section the shot covers: intro, verse, pre-chorus, chorus, bridge, breakdown,
        drop, outro or silence.
    energy : float
        The section's energy, 0-1: below 0.35 calm, below 0.7 driving, else explosive.
    user_prompt : str, optional
        The user's own words; they lead the prompt.

    Returns
    -------
    str
        Sentences in this order: the user's prompt, the template's description (its title when
        it has none), its scene and palette, the section's mood and the energy's pace, and how
        the picture follows the music.

    Raises
    ------
    BadInputError
        For an unknown section, an energy outside 0-1, a blank or over-long user prompt, or a
        template that does not validate.
    """
    tpl = _template(template)
    key = _section(section)
    pace = energy_words(energy)
    user = _user_text("user_prompt", user_prompt)
    parts = [user.rstrip(" .")] if user else []
    parts.append((tpl.description or tpl.title).rstrip(" ."))
    scene = SCENE_PHRASES[tpl.scene]
    parts.append(f"{scene[0].upper()}{scene[1:]} in {palette_words(tpl)}")
    parts.append(f"{SECTION_MOODS[key][0].upper()}{SECTION_MOODS[key][1:]}; {pace}")
    parts.append("Motion locked to the beat of the music, smooth and continuous")
    return ". ".join(parts) + "."


def negative_prompt(*, template: Template | str | dict, user_negative: str | None = None) -> str:
    """The negative prompt: the user's terms first, then the Canvas rules and the defaults.

    The Canvas rules stay whatever the user writes. The template adds what would break its look:
    a black-and-white palette (at most one saturated colour) rules out ``rainbow colours``; a
    colourful one rules out a ``washed-out, grey cast``. Terms are comma-separated and appear
    once each.

    Raises
    ------
    BadInputError
        For a blank or over-long ``user_negative`` or a template that does not validate.
    """
    tpl = _template(template)
    user = _user_text("user_negative", user_negative)
    saturated = sum(1 for c in tpl.palette if (hsv := _hsv(c))[1] >= 0.35 and hsv[2] >= 0.3)
    style = ("rainbow colours",) if saturated <= 1 else ("washed-out colours", "grey cast")
    terms = [t.strip() for t in user.split(",")] if user else []
    unique: dict[str, str] = {}
    for term in [*terms, *CANVAS_NEGATIVES, *style, *DEFAULT_NEGATIVES]:
        if term:
            unique.setdefault(term.lower(), term)
    return ", ".join(unique.values())


def check_generation_params(*, guidance_scale: float, num_inference_steps: int,
                            seed: int | None) -> tuple[float, int, int | None]:
    """Check diffusion settings against the reference API's ranges.

    Parameters
    ----------
    guidance_scale : float
        Prompt adherence, 1-20.
    num_inference_steps : int
        Denoising steps, 10-150 (a whole number).
    seed : int or None
        0..2**32-1; None asks for a random seed.

    Returns
    -------
    tuple
        ``(guidance_scale, num_inference_steps, seed)`` as float, int and int (or None).

    Raises
    ------
    BadInputError
        Naming the first field out of range or of the wrong type.
    """
    lo, hi = GUIDANCE_RANGE
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, Real) or not lo <= guidance_scale <= hi:
        raise BadInputError(f"guidance_scale must be a number from {lo:g} to {hi:g}, got {guidance_scale!r}")
    lo_steps, hi_steps = STEPS_RANGE
    if (isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, Integral)
            or not lo_steps <= num_inference_steps <= hi_steps):
        raise BadInputError(f"num_inference_steps must be a whole number from {lo_steps} to {hi_steps}, "
                            f"got {num_inference_steps!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed <= SEED_MAX):
        raise BadInputError(f"seed must be a whole number from 0 to {SEED_MAX} (2**32-1), got {seed!r}")
    return float(guidance_scale), int(num_inference_steps), None if seed is None else int(seed)
