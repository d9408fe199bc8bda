"""Animate the user's cover art into a loop-native, beat-synced clip.

The artwork is fitted into the frame over a blurred, darkened fill made from the same image.
From the template's ``cover`` settings (each strength 0-1, 0 turns the effect off):

* ``zoom``: the artwork kicks in scale on every beat (stronger on downbeats), the fill kicks the
  other way, so each beat is a clear geometric accent;
* ``pan``: a slow drift that closes on itself over the loop;
* ``parallax``: the fill moves against the artwork (depth);
* ``glitch``: a brief RGB split and slice shift on each downbeat, fading in a few frames.

Brightness changes stay within a few percent, so accents never read as flashes. Rendering cost
is one affine warp of the artwork at output size plus a warp of the fill at quarter size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.music.images import load_cover
from beatframe.music.timeline import LoopTimeline
from beatframe.models.motion import envelopes, event_frames, oscillator, value_envelope
from beatframe.models.procedural import _resolve_template, check_size, seed_rng

class CoverArtGenerator:
    """Frames from a cover image (see the module docstring)."""

    name = "cover-art"
    revision = "1"

    def __init__(self, image_path):
        self.image_path = os.fspath(image_path)
        self.image = load_cover(self.image_path)
        self.image_sha256 = hashlib.sha256(self.image.tobytes()).hexdigest()

    def render(self, *, timeline: LoopTimeline, template, size, seed: int,
               cut_on_downbeats: bool = False) -> Iterator[np.ndarray]:
        tpl = _resolve_template(template)
        w, h = check_size(size)
        return self._frames(timeline, tpl, (w, h), int(seed), cut_on_downbeats)

    def _frames(self, tl: LoopTimeline, tpl, size, seed: int, cut: bool) -> Iterator[np.ndarray]:
        W, H = size
        cs = tpl.cover
        k = tpl.intensity
        beat_w = float(np.clip(k.beat_pulse / max(k.downbeat_pulse, 1e-3), 0.6, 1.0))
        env = envelopes(tl, beat_weight=beat_w, downbeat_weight=1.0, cut_on_downbeats=cut)
        n = tl.n_frames
        img = self.image
        ih, iw = img.shape[:2]

        # --- the fill: cover-cropped, blurred and darkened, at quarter size with a pan margin
        bw, bh = max(16, W // 4), max(16, H // 4)
        margin = 1.25
        s = max(bw * margin / iw, bh * margin / ih)
        fw, fh = int(np.ceil(iw * s)), int(np.ceil(ih * s))
        fill = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
        fill = cv2.GaussianBlur(fill, (0, 0), max(2.0, bw / 24))
        fill = cv2.convertScaleAbs(fill, alpha=0.42)

        # --- the artwork: fitted in a box of 86% width / 62% height, kept at up to 1.35x for zooms
        box = min(W * 0.86 / iw, H * 0.62 / ih)
        pre = min(1.0, box * 1.35)
        art = cv2.resize(img, (max(1, int(iw * pre)), max(1, int(ih * pre))),
                         interpolation=cv2.INTER_AREA if pre < 1 else cv2.INTER_LINEAR)
        ah, aw = art.shape[:2]
        base = box / pre  # art pixels -> frame pixels at rest

        zoom_k = 0.075 * cs.zoom
        pan = cs.pan
        par = cs.parallax
        px = oscillator(6.7, tl) * (0.025 * pan)
        py = oscillator(9.1, tl, 1.1) * (0.02 * pan)
        breathe = oscillator(4.3, tl, 0.4) * 0.01 * pan
        kick = env.kick
        gain = 1.0 + 0.05 * k.energy_brightness * (env.energy - 0.5) + 0.03 * kick
        glitch = (value_envelope(tl.downbeats, tl, 0.045) if cs.glitch > 0 else np.zeros(n, np.float32))
        gidx = np.searchsorted(np.unique(event_frames(tl.downbeats, tl)), np.arange(n), side="left")
        shots = [self._shot(seed_rng(seed, "cover-shot", i), i) for i in range(int(env.shot.max()) + 1)]

        for i in range(n):
            sp = shots[int(env.shot[i])]
            # background: moves against the artwork (parallax) and kicks the other way
            bz = 1.0 + 0.2 * (margin - 1) - 0.04 * cs.zoom * kick[i] * (0.5 + par)
            bx = -px[i] * (1 + 3 * par) * bw + sp["bx"] * bw
            by = -py[i] * (1 + 3 * par) * bh
            sc = bz * max(bw / fw, bh / fh) * margin
            M = np.float32([[sc, 0, bw / 2 - sc * fw / 2 + bx], [0, sc, bh / 2 - sc * fh / 2 + by]])
            bg = cv2.warpAffine(fill, M, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            frame = cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)

            # foreground: fitted artwork, zoom kick on the beat, gentle drift
            z = base * sp["z"] * (1.0 + breathe[i] + zoom_k * kick[i])
            cx = W / 2 + px[i] * W * (1 + 0.5 * par) * 0.4
            cy = H / 2 + py[i] * H * 0.4
            ox, oy = aw / 2 + sp["ox"] * aw, ah / 2 + sp["oy"] * ah  # art point at the box centre
            # visible box: the fitted size (a shot may crop in; the kick may grow it a little)
            vw = min(W, aw * base * (1.0 + zoom_k * kick[i] + breathe[i]))
            vh = min(H, ah * base * (1.0 + zoom_k * kick[i] + breathe[i]))
            x0, x1 = int(max(0, cx - vw / 2)), int(min(W, cx + vw / 2))
            y0, y1 = int(max(0, cy - vh / 2)), int(min(H, cy + vh / 2))
            if x1 > x0 and y1 > y0:
                M = np.float32([[z, 0, cx - x0 - z * ox], [0, z, cy - y0 - z * oy]])
                roi = np.ascontiguousarray(frame[y0:y1, x0:x1])
                cv2.warpAffine(art, M, (x1 - x0, y1 - y0), dst=roi, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_TRANSPARENT)
                frame[y0:y1, x0:x1] = roi
            g = float(gain[i])
            if abs(g - 1.0) > 1e-3:
                frame = cv2.convertScaleAbs(frame, alpha=g)
            if glitch[i] > 0.04:
                frame = self._glitch(frame, float(glitch[i]) * cs.glitch,
                                     seed_rng(seed, "glitch", int(gidx[i])))
            yield np.ascontiguousarray(frame, dtype=np.uint8)

    @staticmethod
    def _shot(rng: np.random.Generator, shot: int) -> dict:
        if shot == 0:
            return {"z": 1.0, "ox": 0.0, "oy": 0.0, "bx": 0.0}
        z = float(rng.uniform(1.15, 1.4))
        lim = 0.5 - 0.5 / z
        return {"z": z, "ox": float(rng.uniform(-lim, lim)), "oy": float(rng.uniform(-lim, lim)),
                "bx": float(rng.uniform(-0.08, 0.08))}

    @staticmethod
    def _glitch(frame: np.ndarray, amt: float, rng: np.random.Generator) -> np.ndarray:
        """RGB split plus a few horizontally shifted slices; ``amt`` in 0..1."""
        H, W = frame.shape[:2]
        d = int(round(W * 0.018 * amt))
        out = frame.copy()
        if d > 0:
            out[:, d:, 0] = frame[:, :-d, 0]
            out[:, :-d, 2] = frame[:, d:, 2]
        for _ in range(3):
            y0 = int(rng.integers(0, H - 8))
            hh = int(rng.integers(H // 60, H // 14))
            sh = int(round(rng.uniform(-0.06, 0.06) * W * amt))
            if sh:
                out[y0:y0 + hh] = np.roll(out[y0:y0 + hh], sh, axis=1)
        return out
