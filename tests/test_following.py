"""Entity following (beatframe.models.following): boxes follow a planted object, confidence drops when it
is hidden, gone or not the entity at all."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.models.following import (Entity, FollowPoint, consistency_score, follow_entity, follow_report,
                                        register_entity)

W, H, N = 320, 240, 30


def _background(seed: int = 1) -> np.ndarray:
    """A busy, muted texture: blurred noise at two scales, low saturation."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.random((H // 16, W // 16)).astype(np.float32), (W, H),
                        interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 1.5)
    grey = cv2.normalize(coarse + 2.0 * fine, None, 60, 190, cv2.NORM_MINMAX)
    tint = np.array([1.0, 0.95, 0.85], np.float32)
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def _object(seed: int = 5, size: int = 48) -> np.ndarray:
    """A distinctive object: a grid of saturated colour blocks with a ring and a cross on top."""
    rng = np.random.default_rng(seed)
    palette = np.array([[230, 40, 40], [40, 200, 60], [40, 80, 230], [240, 220, 30],
                        [230, 60, 220], [30, 220, 220]], np.uint8)
    blocks = palette[rng.integers(0, len(palette), (6, 6))]
    obj = cv2.resize(blocks, (size, size), interpolation=cv2.INTER_NEAREST)
    c = size // 2
    cv2.circle(obj, (c, c), size // 3, (255, 255, 255), 3)
    cv2.line(obj, (4, 4), (size - 5, size - 5), (0, 0, 0), 2)
    return obj


def _clip(*, occlude: range = range(0), leave: bool = False, seed: int = 5):
    """The object moving diagonally and growing 1.0 -> 1.3x over the background.

    Returns the frames and the true boxes (x0, y0, x1, y1) of the object, None where it is
    not on screen. With ``leave`` it exits through the right edge half way through; frames
    in ``occlude`` have a background-textured panel over the object.
    """
    bg, obj = _background(), _object(seed)
    cover = _background(seed=9)
    frames, boxes = [], []
    for i in range(N):
        t = i / (N - 1)
        s = 48 * (1.0 + 0.3 * t)
        if leave:
            x, y = 40 + t * 2.2 * W, 90.0
        else:
            x, y = 30 + t * 190, 40 + t * 110
        m = np.float32([[s / 48, 0, x], [0, s / 48, y]])
        layer = cv2.warpAffine(obj, m, (W, H), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones((48, 48), np.float32), m, (W, H), flags=cv2.INTER_LINEAR)
        frame = (bg * (1 - mask[..., None]) + layer * mask[..., None]).astype(np.uint8)
        box = (x, y, x + s, y + s)
        if i in occlude:
            x0, y0 = int(x) - 10, int(y) - 10
            frame[y0:y0 + int(s) + 20, x0:x0 + int(s) + 20] = cover[y0:y0 + int(s) + 20,
                                                                      x0:x0 + int(s) + 20]
        frames.append(frame)
        boxes.append(box if x < W - 0.3 * s else None)
    return frames, boxes


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module")
def hero() -> Entity:
    return register_entity(name="hero", entity_type="object", reference_image=_object())


def test_register_keeps_a_descriptor(hero):
    assert hero.name == "hero" and hero.entity_type == "object" and hero.size == (48, 48)
    assert hero.histogram.shape == (24, 16) and hero.histogram.sum() == pytest.approx(1.0)
    assert len(hero.keypoints) >= 10 and hero.descriptors is not None
    assert not hero.reference.flags.writeable


def test_follows_a_moving_growing_object(hero):
    frames, truth = _clip()
    points = follow_entity(frames, entity=hero)
    assert [p.frame for p in points] == list(range(N))
    assert all(p.bbox is not None for p in points)
    ious = [_iou(p.bbox, box) for p, box in zip(points, truth)]
    print(f"mean IoU {np.mean(ious):.3f}, min {np.min(ious):.3f}")
    assert np.mean(ious) >= 0.7 and min(ious) >= 0.5
    assert min(p.confidence for p in points) > 0.6
    assert consistency_score(points) > 0.7


def test_occlusion_lowers_confidence_and_following_recovers(hero):
    hidden = range(12, 18)
    frames, truth = _clip(occlude=hidden)
    points = follow_entity(frames, entity=hero)
    seen = [p.confidence for p in points if p.frame not in hidden]
    covered = [p.confidence for p in points if p.frame in hidden]
    assert max(covered) < 0.5 * min(seen)
    assert all(p.bbox is None for p in points if p.frame in hidden)
    after = [_iou(points[i].bbox, truth[i]) for i in range(hidden.stop, N)]
    assert np.mean(after) >= 0.7
    full = follow_entity(_clip()[0], entity=hero)
    assert consistency_score(points) < consistency_score(full) - 0.1


def test_leaving_the_frame_lowers_confidence(hero):
    frames, truth = _clip(leave=True)
    points = follow_entity(frames, entity=hero)
    inside = [p for p, box in zip(points, truth) if box is not None and box[2] < W]
    gone = [p for p, box in zip(points, truth) if box is None]
    assert len(inside) >= 8 and len(gone) >= 8
    assert min(p.confidence for p in inside) > 0.6
    assert all(p.bbox is None for p in gone)
    assert max(p.confidence for p in gone) < 0.3
    assert consistency_score(points) < 0.6


def test_a_wrong_reference_scores_low(hero):
    frames, _ = _clip()
    stranger = register_entity(name="stranger", entity_type="character",
                               reference_image=_object(seed=77)[:, ::-1].copy())
    right = consistency_score(follow_entity(frames, entity=hero))
    wrong = consistency_score(follow_entity(frames, entity=stranger))
    print(f"right reference {right:.3f}, wrong reference {wrong:.3f}")
    assert wrong < 0.35 < 0.7 < right


def test_report_has_the_reference_api_shape(hero):
    frames, _ = _clip()
    other = register_entity(name="stranger", entity_type="prop",
                            reference_image=_object(seed=77)[:, ::-1].copy())
    report = follow_report(frames[:10], entities=[hero, other])
    assert report["entities_tracked"] == 2 and report["frames_analyzed"] == 10
    assert 0.0 <= report["consistency_score"] <= 1.0
    assert set(report["entity_timelines"]) == {"hero", "stranger"}
    entry = report["entity_timelines"]["hero"][0]
    assert set(entry) == {"frame", "bbox", "confidence"} and entry["frame"] == 0
    assert len(entry["bbox"]) == 4 and all(isinstance(v, int) for v in entry["bbox"])
    assert report["consistency_score"] == pytest.approx(
        sum(report["entity_scores"].values()) / 2, abs=1e-4)


def test_consistency_score_definition():
    points = [FollowPoint(frame=0, bbox=(0, 0, 4, 4), confidence=0.9),
              FollowPoint(frame=1, bbox=None, confidence=0.2)]
    assert consistency_score(points) == pytest.approx(0.45)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="", entity_type="object"), "name"),
    (dict(name="x", entity_type="planet"), "entity_type"),
    (dict(name="x", entity_type="object", reference_image=np.zeros((4, 4, 3), np.uint8)), "small"),
    (dict(name="x", entity_type="object", reference_image=np.zeros((32, 32), np.uint8)), "RGB"),
    (dict(name="x", entity_type="object", reference_image=np.full((32, 32, 3), 90, np.uint8)),
     "flat"),
])
def test_register_rejects_bad_input(kwargs, match):
    kwargs.setdefault("reference_image", _object())
    with pytest.raises(BadInputError, match=match):
        register_entity(**kwargs)


def test_following_rejects_bad_input(hero):
    frame = _background()
    with pytest.raises(BadInputError, match="empty"):
        follow_entity([], entity=hero)
    with pytest.raises(BadInputError, match="shape"):
        follow_entity([frame, frame[:100]], entity=hero)
    with pytest.raises(BadInputError, match="RGB"):
        follow_entity([frame.astype(np.float32)], entity=hero)
    with pytest.raises(BadInputError, match="register_entity"):
        follow_entity([frame], entity="hero")
    with pytest.raises(BadInputError, match="min_confidence"):
        follow_entity([frame], entity=hero, min_confidence=1.5)
    with pytest.raises(BadInputError, match="unique"):
        follow_report([frame], entities=[hero, hero])
    with pytest.raises(BadInputError, match="non-empty"):
        follow_report([frame], entities=[])
    with pytest.raises(BadInputError, match="non-empty"):
        consistency_score([])
