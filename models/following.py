"""Entity following: find a registered character or object in every frame of a clip.

The reference API's *Consistency Tracker* registers an entity from one reference image, then
reports, for every frame of a video, where the entity is and how sure it is of it. This module
does that with classic vision, on the CPU, so a render can check that its hero (a cover's
mascot, a product, a character) stays on screen and on model from shot to shot. In beatframe a
*track* is always a song, so here entities are *followed*.

How it works
------------
:func:`register_entity` keeps a descriptor of the reference image: its grey template, a 2-D
hue/saturation histogram (HSV) and ORB keypoints with their binary descriptors.

:func:`follow_entity` first *detects* the entity (in the first frame, and again whenever it was
lost or its confidence sags): ORB keypoints of the frame are matched to the reference's (Lowe's
ratio test), a similarity transform is fitted with RANSAC and the reference's outline mapped into
the frame; multi-scale normalized template matching of the reference is the second candidate,
and the candidate that scores best wins. From frame to frame it then *follows* it: the new box is
guessed three ways (corner points inside the last box followed with pyramidal Lucas-Kanade flow,
forward-backward checked, whose median shift and spread ratio move the box; the last velocity
carried on; the box staying put), the reference template is matched at three scales around each
guess, and the best-scoring box is kept. Matching the *reference* every frame (rather than the
last crop) keeps the box from drifting off the entity over a long clip.

Confidence of a box (0-1) is the geometric mean of how the crop looks like the reference in
*structure* (zero-mean normalized cross-correlation of the blurred grey crop with the blurred
reference, negative values counted as 0) and in *colour* (1 minus the Bhattacharyya distance of
their hue/saturation histograms). Structure drops when the entity is occluded, leaves the frame
or is something else; colour alone would be fooled by a same-coloured background, structure alone
by a same-shaped thing of another colour. A box scoring under ``min_confidence`` is reported as
not found (``bbox`` is None).

:func:`consistency_score` condenses the points of a follow into one number (see its docstring)
and :func:`follow_report` gives the reference API's answer shape for several entities.

Plain numpy/OpenCV (OpenCV's CSRT/KCF trackers are not in the headless 5.x wheel, so following
is built from template matching and optical flow): no Prefect, no I/O; reads no environment
variables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.models.frames import check_clip, check_rgb

ENTITY_TYPES = ("character", "object", "animal", "vehicle", "prop", "logo")

#: the smallest reference side the descriptor can be built from
MIN_REFERENCE_SIDE = 8
#: reference templates are kept at most this large on their long side (matching cost)
_TEMPLATE_SIDE = 128
#: crops and references are compared at this long side, after a light blur (tolerates small
#: misalignment and resampling differences)
_COMPARE_SIDE = 40
#: hue x saturation bins of the colour histogram
_HIST_BINS = (24, 16)
#: references are enlarged to at least this short side before ORB looks for keypoints
_ORB_SIDE = 160
#: boxes are not searched smaller than this many pixels on their short side
_MIN_BOX_SIDE = 8


@dataclass(frozen=True, eq=False)
class Entity:
    """A registered entity and the descriptor it is matched by.

    Attributes
    ----------
    name : str
        Unique name, the key of the entity's timeline in :func:`follow_report`.
    entity_type : str
        One of :data:`ENTITY_TYPES`; recorded for reports, following treats all alike.
    reference : numpy.ndarray
        The reference image, RGB uint8 ``(height, width, 3)`` (a read-only copy).
    template : numpy.ndarray
        Grey uint8 reference, at most ``128`` px on its long side.
    histogram : numpy.ndarray
        float32 hue x saturation histogram of the reference, normalized to sum 1.
    keypoints : numpy.ndarray
        float32 ``(n, 2)`` ORB keypoint positions in reference pixels (may be empty).
    descriptors : numpy.ndarray or None
        uint8 ``(n, 32)`` ORB descriptors, None when the reference has no keypoints.
    """

    name: str
    entity_type: str
    reference: np.ndarray = field(repr=False)
    template: np.ndarray = field(repr=False)
    histogram: np.ndarray = field(repr=False)
    keypoints: np.ndarray = field(repr=False)
    descriptors: np.ndarray | None = field(repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """The reference's ``(width, height)``."""
        return self.reference.shape[1], self.reference.shape[0]


@dataclass(frozen=True)
class FollowPoint:
    """Where an entity is in one frame.

    Attributes
    ----------
    frame : int
        Index of the frame in the clip.
    bbox : tuple of int or None
        ``(x0, y0, x1, y1)`` in frame pixels (``x1``, ``y1`` exclusive, clipped to the frame);
        None when the entity was not found in this frame.
    confidence : float
        0-1, how much the box looks like the reference (see the module docstring); for a frame
        where the entity was not found, the score of the best candidate seen.
    """

    frame: int
    bbox: tuple[int, int, int, int] | None
    confidence: float

    def to_dict(self) -> dict:
        """The reference API's timeline entry: ``{"frame", "bbox", "confidence"}``."""
        return {"frame": self.frame, "bbox": None if self.bbox is None else list(self.bbox),
                "confidence": round(self.confidence, 4)}


# --------------------------------------------------------------------------------------------
# input checks


def _check_frames(frames: object) -> list[np.ndarray]:
    out = check_clip(frames, what="frames")
    height, width = out[0].shape[:2]
    if min(height, width) < 2 * _MIN_BOX_SIDE:
        raise BadInputError(f"frames of {width}x{height} are too small to follow in "
                            f"(at least {2 * _MIN_BOX_SIDE} px a side)")
    return out


def _check_fraction(value: object, what: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= v <= 1.0:  # also rejects NaN
        raise BadInputError(f"{what} must be a number in [0, 1], got {value!r}")
    return v


# --------------------------------------------------------------------------------------------
# descriptors


def _hs_histogram(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256])
    total = float(hist.sum())
    return hist / total if total > 0 else hist


def _orb(n_features: int) -> cv2.ORB:
    return cv2.ORB_create(nfeatures=n_features, scaleFactor=1.2, nlevels=8, edgeThreshold=15,
                          patchSize=15, fastThreshold=10)


def _compare_image(grey: np.ndarray) -> np.ndarray:
    """``grey`` at the comparison size, blurred, as zero-mean float32."""
    h, w = grey.shape[:2]
    s = _COMPARE_SIDE / max(h, w)
    size = (max(4, round(w * s)), max(4, round(h * s)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    return small - small.mean()


def register_entity(*, name: str, entity_type: str, reference_image: np.ndarray) -> Entity:
    """Register an entity to follow from one reference image.

    Parameters
    ----------
    name : str
        Non-empty name (at most 100 characters).
    entity_type : str
        One of :data:`ENTITY_TYPES`.
    reference_image : numpy.ndarray
        RGB uint8 ``(height, width, 3)``, the entity cropped tightly (background in the crop
        becomes part of what is matched), at least 8 px a side.

    Returns
    -------
    Entity

    Raises
    ------
    BadInputError
        An empty name, an unknown type, or a reference that is not a usable RGB image (wrong
        dtype or shape, too small, or one flat colour with nothing to match).
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise BadInputError(f"an entity name must be non-empty text of at most 100 characters, "
                            f"got {name!r}")
    if entity_type not in ENTITY_TYPES:
        raise BadInputError(f"unknown entity_type {entity_type!r}; use one of "
                            f"{', '.join(ENTITY_TYPES)}")
    ref = check_rgb(reference_image, what="reference_image")
    h, w = ref.shape[:2]
    if min(h, w) < MIN_REFERENCE_SIDE:
        raise BadInputError(f"reference_image of {w}x{h} is too small (at least "
                            f"{MIN_REFERENCE_SIDE} px a side)")
    grey = cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY)
    if float(grey.std()) < 2.0:
        raise BadInputError("reference_image is one flat colour: it has nothing to match")
    ref = ref.copy()
    ref.setflags(write=False)
    s = min(1.0, _TEMPLATE_SIDE / max(h, w))
    template = grey if s == 1.0 else cv2.resize(
        grey, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    # small references are enlarged so ORB's patches fit inside them
    up = max(1.0, _ORB_SIDE / min(h, w))
    big = grey if up == 1.0 else cv2.resize(grey, (round(w * up), round(h * up)),
                                            interpolation=cv2.INTER_CUBIC)
    kps, des = _orb(500).detectAndCompute(big, None)
    pts = np.array([kp.pt for kp in kps], np.float32).reshape(-1, 2) / up
    return Entity(name=name, entity_type=entity_type, reference=ref, template=template,
                  histogram=_hs_histogram(ref), keypoints=pts,
                  descriptors=des if des is not None and len(des) else None)


# --------------------------------------------------------------------------------------------
# scoring and detection


def _clip_box(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, min(w, x0)), max(0, min(w, x1))
    y0, y1 = max(0, min(h, y0)), max(0, min(h, y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


class _Frame:
    """One frame at working resolution, with the colour spaces the scorers need."""

    def __init__(self, rgb: np.ndarray, scale: float) -> None:
        h, w = rgb.shape[:2]
        if scale != 1.0:
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                             interpolation=cv2.INTER_AREA)
        self.rgb = rgb
        self.grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        self.h, self.w = self.grey.shape


class _Matcher:
    """Scores, detects and follows one entity on working-resolution frames."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self.ref_cmp = _compare_image(entity.template)
        self.ref_norm = float(np.sqrt((self.ref_cmp ** 2).sum())) or 1.0
        self.orb = _orb(1500)
        self.bf = cv2.BFMatcher(cv2.NORM_HAMMING)

    # -- confidence -------------------------------------------------------------------------

    def confidence(self, fr: _Frame, box: np.ndarray
                   ) -> tuple[float, tuple[int, int, int, int] | None]:
        """Confidence of ``box`` (working pixels) and the box clipped to the frame."""
        clipped = _clip_box(box, fr.w, fr.h)
        if clipped is None:
            return 0.0, None
        x0, y0, x1, y1 = clipped
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bw <= 0 or bh <= 0:
            return 0.0, None
        crop = fr.grey[y0:y1, x0:x1]
        # the part of the box outside the frame counts as unmatched, so a box hanging off the
        # edge loses confidence in proportion
        visible = ((x1 - x0) * (y1 - y0)) / float(bw * bh)
        cmp = _compare_image(crop)
        if cmp.shape != self.ref_cmp.shape:
            cmp = cv2.resize(cmp, self.ref_cmp.shape[::-1], interpolation=cv2.INTER_LINEAR)
            cmp -= cmp.mean()
        norm = float(np.sqrt((cmp ** 2).sum()))
        ncc = float((cmp * self.ref_cmp).sum()) / (norm * self.ref_norm) if norm > 1e-6 else 0.0
        structure = max(0.0, ncc) * min(1.0, visible)
        hist = _hs_histogram(np.ascontiguousarray(fr.rgb[y0:y1, x0:x1]))
        colour = 1.0 - float(cv2.compareHist(self.entity.histogram, hist,
                                             cv2.HISTCMP_BHATTACHARYYA))
        return math.sqrt(max(0.0, structure) * max(0.0, colour)), clipped

    # -- detection --------------------------------------------------------------------------

    def _by_features(self, fr: _Frame) -> np.ndarray | None:
        ent = self.entity
        if ent.descriptors is None or len(ent.descriptors) < 4:
            return None
        kps, des = self.orb.detectAndCompute(fr.grey, None)
        if des is None or len(des) < 4:
            return None
        good = [m[0] for m in self.bf.knnMatch(ent.descriptors, des, k=2)
                if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
        if len(good) < 6:
            return None
        src = ent.keypoints[[m.queryIdx for m in good]]
        dst = np.array([kps[m.trainIdx].pt for m in good], np.float32)
        mat, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=3.0)
        if mat is None or inliers is None or int(inliers.sum()) < 5:
            return None
        rw, rh = ent.size
        corners = np.float32([[0, 0], [rw, 0], [rw, rh], [0, rh]])
        moved = corners @ mat[:, :2].T + mat[:, 2]
        return np.array([*moved.min(axis=0), *moved.max(axis=0)], np.float64)

    def _by_template(self, fr: _Frame) -> np.ndarray | None:
        th, tw = self.entity.template.shape
        best: tuple[float, np.ndarray] | None = None
        # template scales from the smallest followable box up to the whole frame, 12 % apart
        lo = _MIN_BOX_SIDE / min(tw, th)
        hi = min(fr.w / tw, fr.h / th)
        if hi < lo:
            return None
        for s in np.exp(np.arange(math.log(lo), math.log(hi) + 1e-9, math.log(1.12))):
            size = (max(2, round(tw * s)), max(2, round(th * s)))
            if size[0] > fr.w or size[1] > fr.h:
                continue
            tpl = cv2.resize(self.entity.template, size,
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            if float(tpl.std()) < 1.0:
                continue
            res = cv2.matchTemplate(fr.grey, tpl, cv2.TM_CCOEFF_NORMED)
            _, score, _, (x, y) = cv2.minMaxLoc(res)
            if best is None or score > best[0]:
                best = (score, np.array([x, y, x + size[0], y + size[1]], np.float64))
        return None if best is None else best[1]

    def detect(self, fr: _Frame) -> tuple[float, np.ndarray | None]:
        """Best whole-frame detection: (confidence, box in working pixels)."""
        best: tuple[float, np.ndarray | None] = (0.0, None)
        for box in (self._by_features(fr), self._by_template(fr)):
            if box is None:
                continue
            conf, _ = self.confidence(fr, box)
            if conf > best[0]:
                best = (conf, box)
        return best

    # -- frame-to-frame following -----------------------------------------------------------

    def _predict(self, prev: _Frame, cur: _Frame, box: np.ndarray) -> np.ndarray:
        """``box`` moved by the Lucas-Kanade flow of the corners inside it."""
        clipped = _clip_box(box, prev.w, prev.h)
        if clipped is None:
            return box
        x0, y0, x1, y1 = clipped
        mask = np.zeros_like(prev.grey)
        mask[y0:y1, x0:x1] = 255
        p0 = cv2.goodFeaturesToTrack(prev.grey, maxCorners=60, qualityLevel=0.01, minDistance=3,
                                     mask=mask)
        if p0 is None or len(p0) < 4:
            return box
        lk = dict(winSize=(15, 15), maxLevel=3,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev.grey, cur.grey, p0, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur.grey, prev.grey, p1, None, **lk)
        # forward-backward check: points that do not come back to where they started slipped
        ok = (st1.ravel() == 1) & (st2.ravel() == 1) & \
             (np.linalg.norm((back - p0).reshape(-1, 2), axis=1) < 1.0)
        if ok.sum() < 4:
            return box
        a, b = p0.reshape(-1, 2)[ok], p1.reshape(-1, 2)[ok]
        shift = np.median(b - a, axis=0)
        i, j = np.triu_indices(len(a), k=1)
        da = np.linalg.norm(a[i] - a[j], axis=1)
        db = np.linalg.norm(b[i] - b[j], axis=1)
        keep = da > 4.0
        scale = float(np.median(db[keep] / da[keep])) if keep.any() else 1.0
        scale = min(1.25, max(0.8, scale))
        cx, cy = (box[0] + box[2]) / 2 + shift[0], (box[1] + box[3]) / 2 + shift[1]
        hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
        return np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float64)

    def _refine(self, cur: _Frame, box: np.ndarray) -> np.ndarray:
        """The reference matched at three scales in a window around ``box``."""
        bw, bh = box[2] - box[0], box[3] - box[1]
        best: tuple[float, np.ndarray] | None = None
        for s in (0.95, 1.0, 1.05):
            size = (max(2, round(bw * s)), max(2, round(bh * s)))
            if min(size) < _MIN_BOX_SIDE // 2 or size[0] >= cur.w or size[1] >= cur.h:
                continue
            mx, my = max(4, round(0.5 * size[0])), max(4, round(0.5 * size[1]))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            x0 = int(max(0, math.floor(cx - size[0] / 2 - mx)))
            y0 = int(max(0, math.floor(cy - size[1] / 2 - my)))
            x1 = int(min(cur.w, math.ceil(cx + size[0] / 2 + mx)))
            y1 = int(min(cur.h, math.ceil(cy + size[1] / 2 + my)))
            if x1 - x0 < size[0] or y1 - y0 < size[1]:
                continue
            tpl = cv2.resize(self.entity.template, size, interpolation=cv2.INTER_AREA)
            if float(tpl.std()) < 1.0:
                continue
            res = cv2.matchTemplate(cur.grey[y0:y1, x0:x1], tpl, cv2.TM_CCOEFF_NORMED)
            _, score, _, (x, y) = cv2.minMaxLoc(res)
            if best is None or score > best[0]:
                best = (score, np.array([x0 + x, y0 + y, x0 + x + size[0], y0 + y + size[1]],
                                        np.float64))
        return box if best is None else best[1]

    def follow(self, prev: _Frame, cur: _Frame, box: np.ndarray, velocity: np.ndarray
               ) -> tuple[float, np.ndarray]:
        """The best box near the last one: (confidence, box in working pixels).

        Three guesses of where the box went are each refined by template matching: Lucas-Kanade
        flow of its corners, the last frame's velocity carried on, and staying put. Flow alone
        fails on fast or repetitive texture (its forward-backward check passes consistent
        mistakes), the other two cover that.
        """
        guesses = [self._predict(prev, cur, box), box + np.tile(velocity, 2), box]
        best: tuple[float, np.ndarray] = (-1.0, box)
        for guess in guesses:
            refined = self._refine(cur, guess)
            conf, _ = self.confidence(cur, refined)
            if conf > best[0]:
                best = (conf, refined)
        return best


def follow_entity(frames: Sequence[np.ndarray], *, entity: Entity, min_confidence: float = 0.3,
                  redetect_below: float = 0.5, work_width: int = 480) -> list[FollowPoint]:
    """Follow ``entity`` through a clip, one :class:`FollowPoint` per frame.

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        The clip: RGB uint8 frames of one shape ``(height, width, 3)`` (or one
        ``(n, height, width, 3)`` array), at least 16 px a side.
    entity : Entity
        From :func:`register_entity`.
    min_confidence : float
        Boxes scoring under this (0-1) are reported as not found (``bbox`` None) and the next
        frame is searched whole.
    redetect_below : float
        When frame-to-frame following scores under this (0-1), the whole frame is searched too
        and the better of the two boxes kept (recovers from drift and from a partial occlusion).
    work_width : int
        Frames wider than this (at least 64) are followed on a copy scaled down to it; boxes are
        reported in the original frame's pixels.

    Returns
    -------
    list of FollowPoint
        In frame order, ``frame`` running 0..n-1.

    Raises
    ------
    BadInputError
        Frames that are not a non-empty sequence of equally shaped RGB uint8 frames, an
        ``entity`` that is not an :class:`Entity`, or thresholds outside their ranges.
    """
    if not isinstance(entity, Entity):
        raise BadInputError(f"entity must come from register_entity, got {type(entity).__name__}")
    clip = _check_frames(frames)
    lo = _check_fraction(min_confidence, "min_confidence")
    redetect = _check_fraction(redetect_below, "redetect_below")
    if isinstance(work_width, bool) or not isinstance(work_width, (int, np.integer)) \
            or work_width < 64:
        raise BadInputError(f"work_width must be a whole number of at least 64, got {work_width!r}")
    h, w = clip[0].shape[:2]
    scale = min(1.0, work_width / w)
    matcher = _Matcher(entity)
    points: list[FollowPoint] = []
    prev: _Frame | None = None
    box: np.ndarray | None = None
    velocity = np.zeros(2)
    for i, rgb in enumerate(clip):
        cur = _Frame(rgb, scale)
        conf, cand = 0.0, None
        if box is not None and prev is not None:
            conf, cand = matcher.follow(prev, cur, box, velocity)
        if cand is None or conf < redetect:
            d_conf, d_box = matcher.detect(cur)
            if d_box is not None and d_conf > conf:
                conf, cand = d_conf, d_box
        out = _clip_box(cand / scale, w, h) if cand is not None and conf >= lo else None
        if out is None or box is None:
            velocity = np.zeros(2)
        else:
            velocity = (cand[:2] + cand[2:] - box[:2] - box[2:]) / 2
        box = cand if out is not None else None
        points.append(FollowPoint(frame=i, bbox=out, confidence=float(conf)))
        prev = cur
    return points


def consistency_score(points: Sequence[FollowPoint]) -> float:
    """How consistently an entity is present and looks like its reference across a clip.

    Defined as the mean, over every frame of the follow, of the frame's confidence, with frames
    where the entity was not found (``bbox`` None) counting as 0. So it is the fraction of frames
    the entity is on screen times how closely it matches its reference there: 1.0 means found in
    every frame and looking exactly like the reference; an entity found in half the frames at
    confidence 0.9 scores 0.45.

    Parameters
    ----------
    points : sequence of FollowPoint
        One per frame, e.g. from :func:`follow_entity`; at least one.

    Returns
    -------
    float
        0-1.

    Raises
    ------
    BadInputError
        No points, or something other than :class:`FollowPoint` among them.
    """
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence) or len(points) == 0:
        raise BadInputError("points must be a non-empty sequence of FollowPoint")
    total = 0.0
    for p in points:
        if not isinstance(p, FollowPoint):
            raise BadInputError(f"points must be FollowPoint items, got {type(p).__name__}")
        if p.bbox is not None:
            total += min(1.0, max(0.0, p.confidence))
    return total / len(points)


def follow_report(frames: Sequence[np.ndarray], *, entities: Sequence[Entity],
                  min_confidence: float = 0.3) -> dict:
    """Follow several entities through a clip; the reference API's answer (whose field names keep
    the API's word, ``entities_tracked``).

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        The clip, as for :func:`follow_entity`.
    entities : sequence of Entity
        At least one, with distinct names.
    min_confidence : float
        As for :func:`follow_entity`.

    Returns
    -------
    dict
        ``entities_tracked`` (int), ``frames_analyzed`` (int), ``consistency_score`` (the mean
        of the entities' :func:`consistency_score`, 0-1, 4 decimals), ``entity_timelines``
        (``{name: [{"frame", "bbox": [x0, y0, x1, y1], "confidence"}]}``, only the frames where
        the entity was found) and ``entity_scores`` (``{name: score}``, each entity's own
        consistency score).

    Raises
    ------
    BadInputError
        No entities, something that is not an :class:`Entity`, duplicate names, or bad frames.
    """
    if isinstance(entities, Entity) or isinstance(entities, (str, bytes)) \
            or not isinstance(entities, Sequence) or len(entities) == 0:
        raise BadInputError("entities must be a non-empty sequence of registered entities")
    names: set[str] = set()
    for e in entities:
        if not isinstance(e, Entity):
            raise BadInputError(f"entities must come from register_entity, got {type(e).__name__}")
        if e.name in names:
            raise BadInputError(f"two entities are named {e.name!r}; names must be unique")
        names.add(e.name)
    clip = _check_frames(frames)
    timelines: dict[str, list[dict]] = {}
    scores: dict[str, float] = {}
    for e in entities:
        points = follow_entity(clip, entity=e, min_confidence=min_confidence)
        timelines[e.name] = [p.to_dict() for p in points if p.bbox is not None]
        scores[e.name] = round(consistency_score(points), 4)
    return {
        "entities_tracked": len(entities),
        "frames_analyzed": len(clip),
        "consistency_score": round(sum(scores.values()) / len(scores), 4),
        "entity_timelines": timelines,
        "entity_scores": scores,
    }
