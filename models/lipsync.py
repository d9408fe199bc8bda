"""Lip-sync: a mouth drawn into a face of a clip, moving with the viseme timeline of a vocal.

What it is for: issue 8 makes a singer in a shot (a generated clip, filmed footage, a cover-art
portrait animated into frames) mouth the track's vocal. :func:`lipsync_frames` takes the clip,
the face's box and the viseme timeline of the voice (:func:`beatframe.music.analysis.visemes.visemes`:
``rest``, ``PP``, ``FF``, ``AA``, ``EE``, ``OO``) and returns the clip with a mouth drawn in every
frame; :func:`mouth_openness` measures how open a mouth is in each frame (tests and evaluations).

How the mouth moves:

1. **Keyframes.** Every viseme is a pose of eight numbers (:data:`POSES`): how far the lips part
   (``open``), how wide the mouth is, how round, how much of the opening the upper and lower
   teeth and the tongue fill, how hard the lips press (thinner, rolled in) and how far the lower
   lip tucks under the upper teeth. ``PP`` shut and pressed; ``FF`` a small opening filled by the
   upper teeth, the lower lip tucked; ``AA`` wide and tall, tongue low; ``EE`` spread wide and
   flat, both rows of teeth; ``OO`` narrow and round, lips pushed forward; ``rest`` relaxed shut.
2. **Coarticulation** (Cohen & Massaro, 1993). A pose does not switch at a span's edge: each
   span holds a *dominance* over time, its full weight inside the span and a bell-shaped
   fall-off outside, slower before it (60 ms; 100 ms for the lip rounding of ``OO``, which is
   known to be anticipated well ahead of the vowel) than after it (45 ms). The bell is
   ``(1 - x**2 / 4) ** 4`` of the distance ``x`` in those units, close to a Gaussian but zero
   from twice its width on, so a held pose is held exactly (no drift of a pixel's shade). The
   pose at any instant is the dominance-weighted mean of the spans' poses. Neighbouring shapes
   therefore ease into each other, the next shape is anticipated, and a span shorter than the
   easing is reached only partly, as in fluent speech. Consonants weigh more than vowels (their shape is the one that
   must be seen). The lips of ``PP`` must meet whatever surrounds them, so on top of the blend
   the opening is multiplied by ``1 - closure``, where the closure eases in over 100 ms before the
   span, holds through it and releases over 50 ms after it.
3. **Exposure.** A frame's pose is the mean of five instants over its exposure
   (``1 / fps``), so a 30 ms closure between frames still shows and nothing jumps by a whole
   frame's worth of motion at once.
4. **Expression and intensity**, the same for the whole clip: ``happy`` lifts the mouth's
   corners and widens it, ``sad`` drops the corners and pushes the lower lip out, ``surprised``
   drops the jaw and rounds the lips (the mouth is open even at rest), ``angry`` tightens
   (narrower, thinner pressed lips, a smaller opening, bared teeth). ``intensity`` (0-2)
   multiplies the opening; 0 keeps the mouth shut.

How it is drawn, per frame, on the CPU: the skin around the mouth box (a ring outside it, within
the face region; pixels far from the ring's median colour, such as the background, eyes or a
beard, are left out) is fitted with a plane per colour channel, so the new skin follows the
frame's lighting gradient and changes of light over time. That skin covers the whole mouth box,
hiding whatever mouth was there; the lips (two curves around the opening with a thickness that
tapers to the corners, a Cupid's bow, the upper lip in shadow), the dark cavity, the teeth (a
light band, the upper row above the lower, stopping short of the corners) and the tongue are
drawn over it at 4x resolution and averaged down (anti-aliasing). Lip, cavity and teeth colours
derive from the skin (lips darker and redder, the cavity nearly black, the teeth a light ivory
dimmed with the skin's light). The result is blended into the frame with a feathered weight
that is 1 inside the box and falls to 0 at its edge, so no seam shows and nothing outside the
mouth box changes. The same inputs always give the same frames.

A moving head: with ``follow=True`` the face region of the first frame is followed through the
clip (:func:`beatframe.models.following.follow_entity`, template and keypoint matching along optical
flow), and the mouth box moves with the face, shifted by the face's displacement in each frame (the
last known place where it is lost). Without it the face is taken to stay put.

Limits, honestly: a followed face moves but is not taken to turn or scale (the box keeps its
size); only the lips move, not the jaw or the chin; the mouth is a drawing in the
face's own colours, not a photoreal one, and a mouth box much larger than the real mouth puts
skin over part of the face. No generative lip-sync model is used.

Plain numpy (no Prefect, no I/O); reads no environment variables.

Examples
--------
>>> from beatframe.music.analysis.visemes import visemes_json
>>> frames, info = lipsync_frames(clip, fps=24, visemes=visemes_json("vocal.wav"),
...                               face_region=[40, 30, 160, 180], expression="happy")  # doctest: +SKIP
>>> out = list(frames)                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from beatframe.music.analysis.visemes import VISEMES, Viseme
from beatframe.infra.errors import BadInputError
from beatframe.models.frames import check_clip

__all__ = ["EXPRESSIONS", "POSES", "lipsync_frames", "mouth_openness"]

EXPRESSIONS = ("neutral", "happy", "sad", "surprised", "angry")

#: the numbers of a mouth pose, in this order
POSE_FIELDS = ("open", "width", "round", "teeth_up", "teeth_low", "tongue", "press", "tuck")
#: the pose of every viseme: ``open`` (share of the largest opening), ``width`` (share of the mouth
#: box's width), ``round`` (0 spread, 1 round), ``teeth_up``/``teeth_low``/``tongue`` (share of
#: the opening they fill), ``press`` (lips pressed thin), ``tuck`` (lower lip under the teeth)
POSES = {
    "rest": (0.00, 0.70, 0.15, 0.00, 0.00, 0.00, 0.0, 0.0),
    "PP": (0.00, 0.66, 0.10, 0.00, 0.00, 0.00, 1.0, 0.0),
    "FF": (0.18, 0.70, 0.00, 0.80, 0.00, 0.00, 0.2, 1.0),
    "AA": (0.90, 0.74, 0.35, 0.22, 0.00, 0.35, 0.0, 0.0),
    "EE": (0.34, 0.92, 0.00, 0.40, 0.25, 0.00, 0.0, 0.0),
    "OO": (0.55, 0.44, 1.00, 0.00, 0.00, 0.15, 0.0, 0.0),
}
#: dominance weight and anticipation (s) per viseme: consonants weigh more than vowels, and lip
#: rounding starts early
_DOMINANCE = {"rest": (1.0, 0.06), "PP": (2.5, 0.06), "FF": (2.0, 0.06),
              "AA": (1.0, 0.06), "EE": (1.0, 0.06), "OO": (1.5, 0.10)}
#: dominance fall-off after a span (s)
_CARRYOVER = 0.045
#: the lips close over this long before a ``PP`` span and release over this long after it (s)
_CLOSE_IN, _RELEASE = 0.1, 0.05
#: spans farther than this from an instant have no say in its pose (s): twice the longest fall-off
_REACH = 0.2
#: a gap in the timeline shorter than this (s) is no pause: the span before it lasts until the next
_MIN_GAP = 0.05
#: instants averaged over a frame's exposure
_EXPOSURE_SAMPLES = 5
#: per expression: width factor, opening factor, opening added, roundness added, press added,
#: teeth added, corner lift (+ up), lower-lip thickness factor
_EXPRESSION = {
    "neutral": (1.00, 1.00, 0.00, 0.00, 0.0, 0.00, 0.0, 1.00),
    "happy": (1.07, 1.00, 0.00, 0.00, 0.0, 0.15, 1.0, 1.00),
    "sad": (0.95, 0.90, 0.00, 0.00, 0.1, 0.00, -1.0, 1.25),
    "surprised": (0.88, 1.00, 0.25, 0.45, 0.0, 0.00, 0.0, 1.00),
    "angry": (0.90, 0.75, 0.00, 0.00, 0.5, 0.25, -0.35, 0.90),
}
#: a frame whose ``open`` is above this counts towards ``info["open_seconds"]``
_OPEN = 0.15

# Geometry, in units of the mouth box: x of its half-width from the centre, y of its height.
#: the lips meet this far above the box's centre (room below for the jaw to drop)
_SEAM_Y = -0.08
#: the largest opening; the upper lip takes 30 % of the parting, the jaw (lower lip) the rest
_MAX_OPEN, _UPPER_SHARE = 0.42, 0.3
#: lip thickness at the centre: upper, lower
_UPPER_LIP, _LOWER_LIP = 0.11, 0.14
#: how far the corners rise (``happy``) or fall (``sad``) at full expression
_CORNER_LIFT = 0.09
#: the mouth is never wider than this share of the box (the feathered edge must not cut it)
_MAX_WIDTH = 0.92
#: teeth are at most this tall (upper row, lower row) and span this share of the mouth's width
_TEETH_UP, _TEETH_LOW, _TEETH_SPAN = 0.08, 0.05, 0.72
#: supersampling factor of the drawing (anti-aliasing)
_SS = 4
#: the blend into the face falls from 1 to 0 over this share of the box's shorter side
_FEATHER = 0.12
#: the skin is sampled in a ring this wide (share of the box's shorter side, at least 2 px)
_RING = 0.25
#: ring pixels farther than this (share of the median skin's brightness) from it are not skin
_SKIN_TOLERANCE = 0.25

# Colours, as factors of the skin's RGB: why the lips look like lips in any skin tone.
_LIP = np.array([0.80, 0.55, 0.58], np.float32)
_CAVITY = np.array([0.20, 0.07, 0.08], np.float32)
_IVORY = np.array([240.0, 234.0, 218.0], np.float32)
#: skin this bright (luma) lights the teeth fully; darker skin dims them in proportion
_TEETH_LIGHT = 185.0
#: :func:`mouth_openness` counts a pixel as cavity when its luma is under this share of the
#: box's edge (the skin)
DARK = 0.4


# ------------------------------------------------------------------------------------ public API
def lipsync_frames(
    frames: Sequence[np.ndarray] | np.ndarray,
    *,
    fps: float,
    visemes: Sequence[Viseme | Mapping],
    face_region: Sequence[float],
    expression: str = "neutral",
    intensity: float = 1.0,
    start: float = 0.0,
    mouth: Sequence[float] | None = None,
    follow: bool = False,
) -> tuple[Iterator[np.ndarray], dict]:
    """Animate a mouth in the face of every frame, following a viseme timeline.

    Parameters
    ----------
    frames : sequence of numpy.ndarray, or numpy.ndarray
        RGB uint8 frames of one shape ``(height, width, 3)``, or one array
        ``(n_frames, height, width, 3)``.
    fps : float
        Frame rate of the clip (0 < fps <= 240).
    visemes : sequence of Viseme or dict
        The timeline (:func:`beatframe.music.analysis.visemes.visemes`, or ``visemes_json``'s dicts
        ``{"start", "end", "viseme"}``), seconds of the audio, in order and not overlapping;
        labels from :data:`beatframe.music.analysis.visemes.VISEMES`. Times before and after it and
        gaps of 50 ms or more are ``rest``; a shorter gap continues the span before it.
    face_region : sequence of 4 numbers
        ``[x0, y0, x1, y1]`` of the face in pixels (``x1``, ``y1`` exclusive), within the frame.
    expression : {"neutral", "happy", "sad", "surprised", "angry"}
        Shapes the mouth for the whole clip (see the module docstring).
    intensity : float
        0-2, multiplies how far the mouth opens.
    start : float
        Seconds of the audio at the clip's first frame (>= 0): frame ``k`` shows the audio at
        ``start + k / fps``.
    mouth : sequence of 4 numbers, optional
        ``[x0, y0, x1, y1]`` of the mouth, inside ``face_region``: the box the mouth is drawn in
        and the old mouth hidden under. Default: the lower-middle third of the face region
        (middle third across, lower third down).
    follow : bool
        Track the face through the clip and move the mouth with it (``face_region`` and ``mouth``
        are then where they are in the first frame).

    Returns
    -------
    frames : iterator of numpy.ndarray
        The frames with the mouth drawn, as many as given, drawn one at a time as they are read;
        pixels outside the mouth box are the input's.
    info : dict
        ``backend`` (``"procedural"``), ``face_region`` and ``mouth_box`` (``[x0, y0, x1, y1]``,
        ints), ``expression``, ``intensity``, ``frames``, ``fps``, ``start``,
        ``duration_seconds`` (of the clip), ``keyframes`` (viseme spans that reach into the
        clip), ``visemes`` (their count per label), ``open_seconds`` (how long the mouth is
        open, ``open`` above 0.15, in the clip) and, when following, ``followed_frames`` (frames
        where the face was found) and ``max_shift`` (its largest displacement, pixels).

    Raises
    ------
    BadInputError
        Naming the problem: frames that are not RGB uint8 or differ in shape, a box outside the
        frame (or the mouth outside the face), an unknown viseme or expression, an intensity
        outside 0-2, an empty or unordered timeline, a bad fps or start.
    """
    clip = check_clip(frames, what="frames")
    h, w = clip[0].shape[:2]
    fps = _number(fps, "fps", 0.0, 240.0, low_open=True)
    start = _number(start, "start", 0.0, math.inf)
    intensity = _number(intensity, "intensity", 0.0, 2.0)
    if not isinstance(expression, str) or expression not in EXPRESSIONS:
        raise BadInputError(f"unknown expression {expression!r}; use one of {', '.join(EXPRESSIONS)}")
    face = _box(face_region, "face_region", (0, 0, w, h), f"the {w}x{h} frame", min_side=6)
    if mouth is None:
        fx0, fy0, fx1, fy1 = face
        fw, fh = fx1 - fx0, fy1 - fy0
        box = (fx0 + round(fw / 3), fy0 + round(2 * fh / 3), fx0 + round(2 * fw / 3), fy1)
    else:
        box = _box(mouth, "mouth", face, f"face_region {list(face)}", min_side=2)
    spans = _timeline(visemes)

    n = len(clip)
    motion = _Motion(spans, expression=expression, intensity=intensity)
    poses = motion.poses(start + np.arange(n) / fps, 1.0 / fps)
    end = start + n / fps
    inside = [s for s in spans if s.end > start and s.start < end]
    counts = {v: sum(s.viseme == v for s in inside) for v in VISEMES}
    info = {
        "backend": "procedural",
        "face_region": list(face),
        "mouth_box": list(box),
        "expression": expression,
        "intensity": intensity,
        "frames": n,
        "fps": fps,
        "start": start,
        "duration_seconds": n / fps,
        "keyframes": len(inside),
        "visemes": {v: c for v, c in counts.items() if c},
        "open_seconds": float(np.count_nonzero(poses[:, 0] > _OPEN) / fps),
    }
    if not isinstance(follow, (bool, np.bool_)):
        raise BadInputError(f"follow must be true or false, got {follow!r}")
    shifts = [(0, 0)] * n
    if follow:
        shifts, found = _face_shifts(clip, face)
        info.update(followed_frames=found, max_shift=max(max(abs(dx), abs(dy)) for dx, dy in shifts))
    painters: dict[tuple[int, int], _Painter] = {}

    def painter(dx: int, dy: int) -> _Painter:
        if (dx, dy) not in painters:
            moved = [v + d for v, d in zip(box, (dx, dy, dx, dy))]
            around = [v + d for v, d in zip(face, (dx, dy, dx, dy))]
            painters[dx, dy] = _Painter(moved, around, (h, w), corner=_EXPRESSION[expression][6],
                                        lower_lip=_EXPRESSION[expression][7])
        return painters[dx, dy]

    return (painter(*shift).paint(f, p) for f, p, shift in zip(clip, poses, shifts)), info


def _face_shifts(clip: list[np.ndarray], face: tuple[int, int, int, int]) -> tuple[list[tuple[int, int]], int]:
    """Per frame, how far the face moved from the first frame (whole pixels, keeping the face box
    inside the frame; the last known shift where it was lost), and in how many frames it
    was found."""
    from beatframe.models.following import follow_entity, register_entity

    x0, y0, x1, y1 = face
    h, w = clip[0].shape[:2]
    entity = register_entity(name="face", entity_type="character", reference_image=clip[0][y0:y1, x0:x1])
    points = follow_entity(clip, entity=entity)
    # displacements are measured from where following put the face in the first frame it found
    # it, so its own fit of the box is no shift
    origin = next(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in [p.bbox for p in points] + [face] if b)
    shifts, last, found = [], (0, 0), 0
    for point in points:
        if point.bbox is not None:
            bx0, by0, bx1, by1 = point.bbox
            dx, dy = round((bx0 + bx1) / 2 - origin[0]), round((by0 + by1) / 2 - origin[1])
            last = (int(np.clip(dx, -x0, w - x1)), int(np.clip(dy, -y0, h - y1)))
            found += 1
        shifts.append(last)
    return shifts, found


def mouth_openness(frames: Sequence[np.ndarray] | np.ndarray, *,
                   mouth_box: Sequence[float]) -> np.ndarray:
    """How open the mouth is in every frame: the share of dark (cavity) pixels in the mouth box.

    A pixel is cavity when its luma (Rec. 601) is under :data:`DARK` times the median luma of the
    box's outer edge (two pixels or 8 % of its side deep), which is taken for skin; the measure
    therefore does not depend on the skin's tone or the light.

    Parameters
    ----------
    frames : sequence of numpy.ndarray, or numpy.ndarray
        RGB uint8 frames of one shape.
    mouth_box : sequence of 4 numbers
        ``[x0, y0, x1, y1]`` within the frame, at least 6 px a side.

    Returns
    -------
    numpy.ndarray
        float64, one value per frame in [0, 1].

    Raises
    ------
    BadInputError
        Frames that are not RGB uint8 or differ in shape, a box outside the frame or too small.
    """
    clip = check_clip(frames, what="frames")
    h, w = clip[0].shape[:2]
    x0, y0, x1, y1 = _box(mouth_box, "mouth_box", (0, 0, w, h), f"the {w}x{h} frame", min_side=6)
    edge = max(2, round(0.08 * min(x1 - x0, y1 - y0)))
    border = np.ones((y1 - y0, x1 - x0), bool)
    border[edge:-edge, edge:-edge] = False
    out = np.empty(len(clip))
    for i, frame in enumerate(clip):
        luma = _luma(frame[y0:y1, x0:x1].astype(np.float32))
        out[i] = np.mean(luma < DARK * np.median(luma[border]))
    return out


# ------------------------------------------------------------------------------------ validation
def _number(value, what: str, lo: float, hi: float, *, low_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(float(value)) and (lo < float(value) if low_open else lo <= float(value)) \
        and float(value) <= hi
    if not ok:
        span = (f"above {lo:g}" if low_open else f"at least {lo:g}") if hi == math.inf else \
            f"within {'(' if low_open else '['}{lo:g}, {hi:g}]"
        raise BadInputError(f"{what} must be a number {span}, got {value!r}")
    return float(value)


def _box(value, what: str, within: tuple[int, int, int, int], where: str,
         min_side: int) -> tuple[int, int, int, int]:
    """``value`` as an int box ``(x0, y0, x1, y1)`` inside ``within``, at least ``min_side`` a side."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) \
            or len(value) != 4:
        raise BadInputError(f"{what} must be [x0, y0, x1, y1], got {value!r}")
    nums = [_number(v, f"{what} coordinate", -math.inf, math.inf) for v in value]
    x0, y0, x1, y1 = (int(round(v)) for v in nums)
    wx0, wy0, wx1, wy1 = within
    if not (wx0 <= x0 < x1 <= wx1 and wy0 <= y0 < y1 <= wy1):
        raise BadInputError(f"{what} {[x0, y0, x1, y1]} is not inside {where} "
                            f"(x0 < x1, y0 < y1, within [{wx0}, {wy0}, {wx1}, {wy1}])")
    if min(x1 - x0, y1 - y0) < min_side:
        raise BadInputError(f"{what} {[x0, y0, x1, y1]} is too small (at least {min_side} px a side)")
    return x0, y0, x1, y1


def _timeline(visemes) -> list[Viseme]:
    """The timeline as :class:`Viseme` spans, checked: known labels, ``0 <= start < end``, in order."""
    if isinstance(visemes, (str, bytes, Mapping)) or not isinstance(visemes, Sequence):
        raise BadInputError(f"visemes must be a list of Viseme or {{start, end, viseme}} dicts, "
                            f"got {type(visemes).__name__}")
    if not visemes:
        raise BadInputError("visemes is empty: the timeline needs at least one span")
    spans: list[Viseme] = []
    for i, v in enumerate(visemes):
        if isinstance(v, Mapping):
            missing = [k for k in ("start", "end", "viseme") if k not in v]
            if missing:
                raise BadInputError(f"visemes[{i}] lacks {', '.join(missing)}")
            s, e, label = v["start"], v["end"], v["viseme"]
        elif isinstance(v, Viseme):
            s, e, label = v.start, v.end, v.viseme
        else:
            raise BadInputError(f"visemes[{i}] must be a Viseme or a dict, got {type(v).__name__}")
        if not isinstance(label, str) or label not in VISEMES:
            raise BadInputError(f"visemes[{i}]: unknown viseme {label!r}; use one of {', '.join(VISEMES)}")
        s = _number(s, f"visemes[{i}] start", 0.0, math.inf)
        e = _number(e, f"visemes[{i}] end", 0.0, math.inf)
        if e <= s:
            raise BadInputError(f"visemes[{i}] ends ({e:g} s) before it starts ({s:g} s)")
        # a millisecond of slack: visemes_json rounds its times
        if spans and s < spans[-1].end - 1e-3:
            raise BadInputError(f"visemes[{i}] starts at {s:g} s, before visemes[{i - 1}] ends "
                                f"({spans[-1].end:g} s): spans must be in order, not overlapping")
        spans.append(Viseme(s, e, label))
    return spans


# ------------------------------------------------------------------------------------ motion
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Motion:
    """The mouth's pose over time: dominance-blended keyframes, the ``PP`` closure constraint,
    then the expression and the intensity."""

    def __init__(self, spans: list[Viseme], *, expression: str, intensity: float):
        # gaps, and all time before and after the timeline, are rest; a gap too short to be a
        # pause belongs to the span before it (a rest span, however short, would pull the mouth
        # shut for as long as its dominance reaches)
        full: list[Viseme] = []
        edge = -1e9
        for s in spans:
            if s.start - edge >= _MIN_GAP or not full:
                full.append(Viseme(edge, s.start, "rest"))
            elif s.start > edge:
                full[-1] = Viseme(full[-1].start, s.start, full[-1].viseme)
            full.append(s)
            edge = s.end
        full.append(Viseme(edge, 1e9, "rest"))
        self.starts = np.array([s.start for s in full])
        self.ends = np.array([s.end for s in full])
        self.targets = np.array([POSES[s.viseme] for s in full], np.float64)
        self.weight = np.array([_DOMINANCE[s.viseme][0] for s in full])
        self.lead = np.array([_DOMINANCE[s.viseme][1] for s in full])
        self.closure = np.array([s.viseme == "PP" for s in full])
        self.expression = _EXPRESSION[expression]
        self.intensity = intensity

    def poses(self, times: np.ndarray, exposure: float) -> np.ndarray:
        """One pose (``POSE_FIELDS``) per time, each averaged over ``exposure`` seconds."""
        offsets = ((np.arange(_EXPOSURE_SAMPLES) + 0.5) / _EXPOSURE_SAMPLES - 0.5) * exposure
        out = np.empty((len(times), len(POSE_FIELDS)))
        chunk = 512  # frames at a time: the dominance matrix is instants x nearby spans
        for a in range(0, len(times), chunk):
            t = (times[a:a + chunk, None] + offsets[None, :]).ravel()
            out[a:a + chunk] = self._at(t).reshape(-1, _EXPOSURE_SAMPLES, len(POSE_FIELDS)).mean(1)
        return out

    def _at(self, t: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(self.ends, t.min() - _REACH)
        hi = np.searchsorted(self.starts, t.max() + _REACH, side="right")
        s, e = self.starts[lo:hi], self.ends[lo:hi]
        tc = t[:, None]
        before = np.maximum(s - tc, 0.0) / self.lead[lo:hi]
        after = np.maximum(tc - e, 0.0) / _CARRYOVER
        dominance = self.weight[lo:hi] * np.maximum(1.0 - (before ** 2 + after ** 2) / 4.0, 0.0) ** 4
        pose = dominance @ self.targets[lo:hi] / dominance.sum(axis=1, keepdims=True)

        closing = _smoothstep((tc - (s - _CLOSE_IN)) / _CLOSE_IN) \
            * _smoothstep(((e + _RELEASE) - tc) / _RELEASE)
        closure = np.where(self.closure[lo:hi], closing, 0.0).max(axis=1)

        width_f, open_f, open_add, round_add, press_add, teeth_add, _, _ = self.expression
        opening = pose[:, 0] * open_f + open_add
        pose[:, 0] = np.clip(opening * self.intensity, 0.0, 1.0) * (1.0 - closure)
        pose[:, 1] = np.clip(pose[:, 1] * width_f, 0.0, _MAX_WIDTH)
        pose[:, 2] = np.clip(pose[:, 2] + round_add, 0.0, 1.0)
        pose[:, 3] = np.clip(pose[:, 3] + teeth_add, 0.0, 1.0)
        pose[:, 4] = np.clip(pose[:, 4] + teeth_add * 0.5, 0.0, 1.0)
        pose[:, 6] = np.clip(np.maximum(pose[:, 6], closure) + press_add, 0.0, 1.0)
        return pose


# ------------------------------------------------------------------------------------ drawing
def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


class _Painter:
    """Draws a pose into the mouth box of a frame (the geometry that is the same for all frames
    is computed once)."""

    def __init__(self, box, face, shape: tuple[int, int], *, corner: float, lower_lip: float):
        self.box = box
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        h, w = shape
        # subpixel centres in box units: x of the half-width from the centre, y of the height
        xs = ((np.arange(bw * _SS) + 0.5) / _SS - bw / 2) / (bw / 2)
        ys = ((np.arange(bh * _SS) + 0.5) / _SS - bh / 2) / bh
        self.X, self.Y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
        self.corner = corner
        self.lower_lip = lower_lip
        # feathered blend weight, 1 inside, 0 at the box's edge
        f = max(1.0, _FEATHER * min(bw, bh))
        ax = _smoothstep(np.minimum(np.arange(bw) + 0.5, bw - np.arange(bw) - 0.5) / f)
        ay = _smoothstep(np.minimum(np.arange(bh) + 0.5, bh - np.arange(bh) - 0.5) / f)
        self.alpha = (ay[:, None] * ax[None, :]).astype(np.float32)[..., None]
        # the skin ring: around the box, inside the face region and the frame
        r = max(2, round(_RING * min(bw, bh)))
        fx0, fy0, fx1, fy1 = face
        rx0, ry0 = max(x0 - r, fx0, 0), max(y0 - r, fy0, 0)
        rx1, ry1 = min(x1 + r, fx1, w), min(y1 + r, fy1, h)
        ring = np.ones((ry1 - ry0, rx1 - rx0), bool)
        ring[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0] = False
        if ring.sum() < 16:  # the box fills the face: its own edge is the skin
            rx0, ry0, rx1, ry1 = x0, y0, x1, y1
            ring = np.ones((bh, bw), bool)
            ring[1:-1, 1:-1] = False
        self.ring_rect = (rx0, ry0, rx1, ry1)
        ry, rx = np.nonzero(ring)
        self.ring_idx = (ry, rx)
        # the plane's design matrix on the ring and over the box (coordinates centred on the box)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.ring_design = np.stack([np.ones(len(rx)), rx + rx0 + 0.5 - cx, ry + ry0 + 0.5 - cy], 1)
        gy, gx = np.mgrid[0:bh, 0:bw]
        self.box_design = np.stack([np.ones(gx.size), gx.ravel() + x0 + 0.5 - cx,
                                    gy.ravel() + y0 + 0.5 - cy], 1)

    def skin(self, frame: np.ndarray) -> np.ndarray:
        """The skin under the mouth box: a plane per channel fitted to the ring's skin pixels."""
        rx0, ry0, rx1, ry1 = self.ring_rect
        px = frame[ry0:ry1, rx0:rx1][self.ring_idx].astype(np.float64)
        median = np.median(px, axis=0)
        near = np.linalg.norm(px - median, axis=1) <= _SKIN_TOLERANCE * max(np.linalg.norm(median), 1.0)
        if near.sum() >= 8:
            px, design = px[near], self.ring_design[near]
        else:
            design = self.ring_design
        coef, *_ = np.linalg.lstsq(design, px, rcond=None)
        x0, y0, x1, y1 = self.box
        return (self.box_design @ coef).reshape(y1 - y0, x1 - x0, 3).astype(np.float32)

    def paint(self, frame: np.ndarray, pose: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        skin = self.skin(frame)
        tone = np.clip(skin[skin.shape[0] // 2, skin.shape[1] // 2], 1.0, 255.0)
        drawn = self._mouth(skin, tone, pose)
        out = frame.copy()
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region + self.alpha * (drawn - region) + 0.5, 0, 255).astype(np.uint8)
        return out

    def _mouth(self, skin: np.ndarray, tone: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """The mouth box's pixels: skin with the lips, cavity, teeth and tongue of ``pose``."""
        opening, width, rnd, teeth_up, teeth_low, tongue, press, tuck = (float(v) for v in pose)
        X, Y = self.X, self.Y
        u = X / max(width, 1e-3)
        lips_span = np.abs(u) < 1.0
        # the corners' lift bends the whole mouth (a smile is a U)
        bend = -self.corner * _CORNER_LIFT * np.minimum(u * u, 1.0)
        seam = _SEAM_Y + bend
        # round lips gather at the corners: the opening is narrower than the lips
        v = u / (1.0 - 0.3 * rnd)
        k = 2.0 + 2.5 * (1.0 - rnd)  # superellipse: 2 is an ellipse, larger is flatter (spread)
        outline = np.sqrt(np.clip(1.0 - np.abs(u) ** k, 0.0, 1.0))
        profile = np.sqrt(np.clip(1.0 - np.abs(v) ** k, 0.0, 1.0))
        parting = _MAX_OPEN * opening
        top = seam - _UPPER_SHARE * parting * profile
        bottom = seam + (1.0 - _UPPER_SHARE) * parting * profile
        cavity = (Y > top) & (Y < bottom)

        # each lip's outer edge: the opening's outline (as wide as the lips, so never inside the
        # opening) plus the lip's own thickness, tapering to the corners
        taper = np.clip(1.0 - u * u, 0.0, 1.0)
        thin = 1.0 - 0.35 * press
        cupid = 1.0 - 0.18 * np.exp(-(u / 0.12) ** 2) + 0.06 * np.exp(-((np.abs(u) - 0.22) / 0.1) ** 2)
        upper_t = _UPPER_LIP * thin * (1.0 + 0.2 * rnd) * taper ** (0.6 - 0.3 * rnd) * cupid
        lower_t = _LOWER_LIP * thin * (1.0 - 0.45 * tuck) * self.lower_lip * taper ** (0.7 - 0.3 * rnd)
        upper_edge = seam - _UPPER_SHARE * parting * outline - upper_t
        lower_edge = seam + (1.0 - _UPPER_SHARE) * parting * outline + lower_t
        upper = lips_span & (Y > upper_edge) & (Y <= top)
        lower = lips_span & (Y >= bottom) & (Y < lower_edge)
        seam_line = lips_span & (np.abs(Y - seam) < 0.012) & (np.abs(u) < 0.95)

        parted = bottom - top
        teeth_span = np.abs(u) < _TEETH_SPAN
        up_teeth = cavity & teeth_span & (Y < top + np.minimum(teeth_up * parted, _TEETH_UP))
        low_teeth = cavity & teeth_span & (Y > bottom - np.minimum(teeth_low * parted, _TEETH_LOW))
        tongue_px = cavity & (Y > bottom - tongue * parted * np.clip(1.0 - (u / 0.7) ** 2, 0.0, 1.0))

        lip = tone * _LIP
        teeth = _IVORY * min(1.0, float(_luma(tone)) / _TEETH_LIGHT)
        # the upper lip is in its own shadow; the lower one catches the light, most at its middle
        lower_shade = (1.0 + 0.08 * np.exp(-(u / 0.35) ** 2))[..., None].astype(np.float32)
        big = np.repeat(np.repeat(skin, _SS, axis=0), _SS, axis=1)
        big = np.where(seam_line[..., None], lip * 0.7, big)
        big = np.where(upper[..., None], lip * 0.88, big)
        big = np.where(lower[..., None], lip * lower_shade, big)
        big = np.where(cavity[..., None], tone * _CAVITY, big)
        big = np.where(tongue_px[..., None], lip * 0.8, big)
        big = np.where(up_teeth[..., None], teeth, big)
        big = np.where(low_teeth[..., None], teeth * 0.92, big)
        bh, bw = skin.shape[:2]
        return big.reshape(bh, _SS, bw, _SS, 3).mean(axis=(1, 3))
