"""Lip-sync (beatframe.models.lipsync): the drawn mouth follows the viseme timeline, smoothly, in its face.

The clip is synthesized: a skin-coloured elliptical face with eyes and a dark open mouth (the
"old" mouth the drawing must hide) on a gradient background, still for 48 frames at 24 fps, so
every change in the output is the lip-sync's own.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from beatframe.music.analysis.visemes import Viseme
from beatframe.infra.errors import BadInputError
from beatframe.models.lipsync import lipsync_frames, mouth_openness

W = H = 200
FACE = [50, 40, 150, 170]
MOUTH = [70, 125, 130, 165]
FPS = 24
#: rest -> AA -> PP -> EE -> OO -> rest over the clip's 2 s
TIMELINE = [
    {"start": 0.0, "end": 0.3, "viseme": "rest"},
    {"start": 0.3, "end": 0.7, "viseme": "AA"},
    {"start": 0.7, "end": 0.85, "viseme": "PP"},
    {"start": 0.85, "end": 1.25, "viseme": "EE"},
    {"start": 1.25, "end": 1.65, "viseme": "OO"},
    {"start": 1.65, "end": 2.0, "viseme": "rest"},
]


def _face_clip(n: int = 48, skin=(224, 178, 150)) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.dstack([40 + 60 * xx / W, 70 + 40 * yy / H, 120 + 0 * xx]).astype(np.float32)
    face = ((xx - 100) / 56.0) ** 2 + ((yy - 105) / 72.0) ** 2 < 1
    shade = (1.0 - 0.15 * (yy - 40) / 130.0)[..., None]  # light from above
    img[face] = (np.array(skin, np.float32) * shade)[face]
    img = np.clip(img, 0, 255).astype(np.uint8)
    for ex in (80, 120):
        cv2.ellipse(img, (ex, 85), (9, 5), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(img, (ex, 85), 3, (40, 30, 20), -1, cv2.LINE_AA)
    cv2.ellipse(img, (100, 145), (16, 7), 0, 0, 360, (70, 25, 30), -1, cv2.LINE_AA)
    return np.stack([img] * n)


CLIP = _face_clip()


def _run(clip=CLIP, timeline=TIMELINE, **kw) -> tuple[np.ndarray, dict]:
    kw = {"fps": FPS, "face_region": FACE, "mouth": MOUTH, **kw}
    frames, info = lipsync_frames(clip, visemes=timeline, **kw)
    return np.stack(list(frames)), info


def _frame_at(t: float) -> int:
    return int(round(t * FPS))


def _luma(crop: np.ndarray) -> np.ndarray:
    return crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _cavity_box(frame: np.ndarray) -> tuple[int, int]:
    """Width and height (px) of the dark cavity's bounding box in the mouth box."""
    x0, y0, x1, y1 = MOUTH
    luma = _luma(frame[y0:y1, x0:x1])
    ys, xs = np.nonzero(luma < 0.4 * np.median(luma[:2]))  # the top rows are skin
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _corner_rise(frame: np.ndarray) -> float:
    """How far (px) the lips' ends sit above their middle (negative: below)."""
    x0, y0, x1, y1 = MOUTH
    luma = _luma(frame[y0:y1, x0:x1])
    lips = luma < 0.85 * np.median(luma[:2])
    cols = np.nonzero(lips.any(axis=0))[0]
    span = cols.max() - cols.min() + 1
    ys = np.arange(lips.shape[0])[:, None]

    def mid_y(c0: int, c1: int) -> float:
        part = lips[:, c0:c1]
        return float((ys * part).sum() / part.sum())

    edge = max(2, span // 8)
    ends = (mid_y(cols.min(), cols.min() + edge) + mid_y(cols.max() + 1 - edge, cols.max() + 1)) / 2
    centre = cols.min() + span // 2
    return mid_y(centre - edge // 2, centre + edge // 2 + 1) - ends


def test_openness_follows_the_visemes_and_hides_the_old_mouth():
    out, info = _run()
    open_ = mouth_openness(out, mouth_box=MOUTH)
    before = mouth_openness(CLIP[:1], mouth_box=MOUTH)[0]
    aa, pp = open_[_frame_at(0.55)], open_[_frame_at(0.78)]
    ee, oo = open_[_frame_at(1.1)], open_[_frame_at(1.5)]
    rest = open_[[_frame_at(0.1), _frame_at(1.9)]]
    assert before > 0.1                                  # the old mouth is open and dark...
    assert np.all(rest < 0.005) and pp < 0.005           # ...and hidden: closed lips at rest and PP
    assert aa > 0.09
    assert aa > 1.8 * ee and aa > 1.8 * oo and ee > 0.02 and oo > 0.02
    assert info["backend"] == "procedural"
    assert info["keyframes"] == 6 and info["visemes"] == {"rest": 2, "PP": 1, "AA": 1, "EE": 1, "OO": 1}
    assert info["frames"] == 48 and info["duration_seconds"] == pytest.approx(2.0)
    # AA, EE and OO are open (1.05 s) give or take the easing; rest and PP are shut
    assert 0.9 < info["open_seconds"] < 1.4


def test_viseme_shapes():
    out, _ = _run()
    aa_w, aa_h = _cavity_box(out[_frame_at(0.55)])
    ee_w, ee_h = _cavity_box(out[_frame_at(1.1)])
    oo_w, oo_h = _cavity_box(out[_frame_at(1.5)])
    assert ee_w > 3 * ee_h                               # EE: spread wide, narrow
    assert ee_w > aa_w > oo_w                             # OO: the narrowest
    assert oo_w / oo_h < 0.8 * (aa_w / aa_h)              # ...and the roundest
    assert aa_h > oo_h and aa_h > 2 * ee_h                # AA: the tallest


def test_transitions_are_smooth_and_anticipated():
    out, _ = _run()
    open_ = mouth_openness(out, mouth_box=MOUTH)
    steps = np.abs(np.diff(open_))
    # a hard cut would jump the whole AA opening in one frame
    assert steps.max() < 0.6 * open_.max()
    # rest -> AA: the mouth starts to open before the vowel (anticipation) and opens over frames
    onset = _frame_at(0.3)
    assert open_[onset - 1] > 0.005
    opening = open_[:_frame_at(0.55)]
    assert np.count_nonzero((opening > 0.005) & (opening < 0.8 * open_.max())) >= 3
    # a still face in the middle of a long vowel, out of its neighbours' reach, is held exactly
    hold = out[_frame_at(0.42):_frame_at(0.55)]
    assert len(hold) == 3 and all(np.array_equal(f, hold[0]) for f in hold)


def test_short_gaps_are_no_pause():
    sung = [{"start": 0.0, "end": 0.5, "viseme": "AA"}, {"start": 0.51, "end": 1.0, "viseme": "AA"}]
    paused = [{"start": 0.0, "end": 0.4, "viseme": "AA"}, {"start": 0.6, "end": 1.0, "viseme": "AA"}]
    held = mouth_openness(_run(CLIP[:24], sung)[0], mouth_box=MOUTH)
    gap = mouth_openness(_run(CLIP[:24], paused)[0], mouth_box=MOUTH)
    assert held[4:20].min() > 0.09                       # a 10 ms gap does not close the mouth
    assert gap[_frame_at(0.5)] < 0.5 * held[_frame_at(0.5)]   # a 200 ms pause does


def test_expression_moves_the_corners():
    rest = [{"start": 0.0, "end": 1.0, "viseme": "rest"}]
    rise = {}
    for expression in ("happy", "neutral", "sad"):
        out, info = _run(CLIP[:1], rest, expression=expression, start=0.5)
        assert info["expression"] == expression
        rise[expression] = _corner_rise(out[0])
    assert rise["happy"] > rise["neutral"] + 1 > rise["sad"] + 2
    surprised, _ = _run(CLIP[:1], rest, expression="surprised", start=0.5)
    assert mouth_openness(surprised, mouth_box=MOUTH)[0] > 0.01   # the jaw drops even at rest
    aa = [{"start": 0.0, "end": 1.0, "viseme": "AA"}]
    neutral, _ = _run(CLIP[:1], aa, start=0.5)
    angry, _ = _run(CLIP[:1], aa, expression="angry", start=0.5)
    assert _cavity_box(angry[0])[0] < _cavity_box(neutral[0])[0]  # tight


def test_intensity_scales_the_opening():
    aa = _frame_at(0.55)
    full, _ = _run()
    half, info = _run(intensity=0.5)
    none, _ = _run(intensity=0)
    o_full = mouth_openness(full[aa:aa + 1], mouth_box=MOUTH)[0]
    o_half = mouth_openness(half[aa:aa + 1], mouth_box=MOUTH)[0]
    assert info["intensity"] == 0.5
    assert 0.2 * o_full < o_half < 0.75 * o_full
    assert mouth_openness(none, mouth_box=MOUTH).max() < 0.005


def test_only_the_mouth_box_changes_and_it_blends_in():
    out, info = _run()
    x0, y0, x1, y1 = MOUTH
    outside = np.ones((H, W), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[:, outside], CLIP[:, outside])
    fx0, fy0, fx1, fy1 = FACE
    outside_face = np.ones((H, W), bool)
    outside_face[fy0:fy1, fx0:fx1] = False
    assert np.array_equal(out[:, outside_face], CLIP[:, outside_face])
    # the feathered edge: the box's border rows and columns stay within a few levels of the skin
    diff = np.abs(out[:, y0:y1, x0:x1].astype(int) - CLIP[:, y0:y1, x0:x1].astype(int))
    assert diff[:, [0, -1]].max() <= 6 and diff[:, :, [0, -1]].max() <= 6
    # the lips are darker and redder than the skin around them
    frame = out[_frame_at(0.1)]
    lips = frame[y0:y1, x0:x1][_luma(frame[y0:y1, x0:x1]) < 0.85 * _luma(frame[y0:y0 + 2, x0:x1]).mean()]
    skin = frame[y0 - 4, (x0 + x1) // 2].astype(float)
    assert len(lips) > 50
    assert lips[:, 0].mean() / lips[:, 1].mean() > 1.15 * skin[0] / skin[1]
    assert info["face_region"] == FACE and info["mouth_box"] == MOUTH


def test_default_mouth_box_is_the_lower_middle_third():
    frames, info = lipsync_frames(CLIP[:2], fps=FPS, visemes=TIMELINE, face_region=FACE)
    assert info["mouth_box"] == [83, 127, 117, 170]
    list(frames)


def test_deterministic_and_input_forms_agree():
    a, _ = _run()
    b, _ = _run()
    assert np.array_equal(a, b)
    objects = [Viseme(v["start"], v["end"], v["viseme"]) for v in TIMELINE]
    c, _ = _run(list(CLIP), objects)
    assert np.array_equal(a, c)
    # a clip starting 0.5 s into the audio shows what the full clip shows from frame 12 on
    d, info = _run(CLIP[:24], TIMELINE, start=0.5)
    assert np.array_equal(d, a[12:36])
    assert info["keyframes"] == 4 and info["start"] == 0.5


def test_any_skin_tone():
    dark = _face_clip(48, skin=(96, 62, 45))
    out, _ = _run(dark)
    open_ = mouth_openness(out, mouth_box=MOUTH)
    assert open_[_frame_at(0.55)] > 0.09
    assert open_[_frame_at(0.1)] < 0.005 and open_[_frame_at(0.78)] < 0.005


@pytest.mark.parametrize("kwargs, message", [
    ({"face_region": [150, 40, 250, 170]}, "face_region"),
    ({"face_region": [50, 40, 150]}, "face_region"),
    ({"mouth": [40, 125, 100, 165]}, "mouth"),
    ({"visemes": [{"start": 0, "end": 1, "viseme": "XX"}]}, "unknown viseme 'XX'"),
    ({"visemes": []}, "visemes is empty"),
    ({"visemes": [{"start": 0, "viseme": "AA"}]}, "lacks end"),
    ({"visemes": [{"start": 0.5, "end": 0.2, "viseme": "AA"}]}, "ends"),
    ({"visemes": TIMELINE[::-1]}, "in order"),
    ({"expression": "smug"}, "unknown expression 'smug'"),
    ({"intensity": 2.5}, "intensity"),
    ({"intensity": -0.1}, "intensity"),
    ({"fps": 0}, "fps"),
    ({"start": float("nan")}, "start"),
    ({"frames": []}, "frames is empty"),
    ({"frames": np.zeros((2, 20, 20), np.uint8)}, "frames"),
])
def test_bad_inputs_are_named(kwargs, message):
    args = {"frames": CLIP[:2], "fps": FPS, "visemes": TIMELINE, "face_region": FACE, "mouth": None,
            **kwargs}
    frames = args.pop("frames")
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        lipsync_frames(frames, **args)


def test_mouth_openness_checks_its_box():
    with pytest.raises(BadInputError, match="mouth_box"):
        mouth_openness(CLIP[:1], mouth_box=[190, 190, 260, 230])
    assert mouth_openness(CLIP, mouth_box=MOUTH).shape == (48,)


def test_follow_moves_the_mouth_with_a_moving_face():
    # the face drifts right and down, 1.0 and 0.4 px a frame
    shifts = [(round(1.0 * k), round(0.4 * k)) for k in range(len(CLIP))]
    moving = np.stack([cv2.warpAffine(CLIP[0], np.float32([[1, 0, dx], [0, 1, dy]]), (W, H),
                                      borderMode=cv2.BORDER_REPLICATE) for dx, dy in shifts])

    def openness_where_the_mouth_is(out: np.ndarray, k: int) -> float:
        dx, dy = shifts[k]
        box = [MOUTH[0] + dx, MOUTH[1] + dy, MOUTH[2] + dx, MOUTH[3] + dy]
        return float(mouth_openness(out[k:k + 1], mouth_box=box)[0])

    followed, info = _run(moving, follow=True)
    still, _ = _run(moving)
    assert info["followed_frames"] == len(CLIP) and 40 <= info["max_shift"] <= 50
    late_rest, late_aa = _frame_at(1.9), _frame_at(0.55)
    # followed: the old mouth is hidden wherever the face has gone, and the new one opens there
    assert openness_where_the_mouth_is(followed, late_rest) < 0.01
    assert openness_where_the_mouth_is(followed, late_aa) > 0.09
    # a fixed box leaves the moved face's old, open mouth showing
    assert openness_where_the_mouth_is(still, late_rest) > 0.1
    with pytest.raises(BadInputError, match="follow must be true or false"):
        _run(follow="yes")
