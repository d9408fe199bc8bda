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
import struct
from collections.abc import Iterator

import cv2
import numpy as np

from beatframe.errors import BadInputError
from models.base import LoopTimeline
from models.motion import envelopes, event_frames, oscillator, value_envelope
from models.procedural import _resolve_template, check_size, seed_rng

MIN_SIDE = 300
MAX_SIDE = 12000
MAX_PIXELS = 80_000_000


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF, BMP or WebP header, without decoding; None if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = data[12:16]
            if kind == b"VP8X":
                w = 1 + int.from_bytes(data[24:27], "little")
                h = 1 + int.from_bytes(data[27:30], "little")
                return w, h
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L":
                b = int.from_bytes(data[21:25], "little")
                return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
            return None
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                    i += 1 if marker == 0xFF else 2
                    continue
                seg = struct.unpack(">H", data[i + 2:i + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                              0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return w, h
                i += 2 + seg
            return None
    except (struct.error, IndexError):
        return None
    return None


def _check_dims(path, w: int, h: int, *, what: str, min_side: int) -> None:
    if min(w, h) < min_side:
        raise BadInputError(f"{what} {path} is too small ({w}x{h}); it needs at least "
                            f"{min_side} px on its shorter side")
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise BadInputError(f"{what} {path} is too large ({w}x{h}); the limit is {MAX_SIDE} px "
                            f"a side and {MAX_PIXELS // 1_000_000} megapixels")


def load_cover(path) -> np.ndarray:
    """Read and validate a cover image (at least :data:`MIN_SIDE` px a side): :func:`load_image`."""
    return load_image(path, what="cover image", min_side=MIN_SIDE)


def load_image(path, *, what: str = "image", min_side: int = 8) -> np.ndarray:
    """Read and validate an image; returns RGB uint8 ``(h, w, 3)``.

    Raises BadInputError (one line naming the file as ``what``) when the file is missing, is not an
    image, or is smaller than ``min_side`` or absurdly large. Alpha is composited over black;
    greyscale and 16-bit images are converted.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise BadInputError(f"{what} {p}: file not found")
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadInputError(f"{what} {p}: cannot read it ({e.strerror or e})") from None
    if not data:
        raise BadInputError(f"{what} {p} is empty")
    hdr = _header_size(data)
    if hdr is not None:
        _check_dims(p, *hdr, what=what, min_side=min_side)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise BadInputError(f"{what} {p} is not an image we can read (PNG, JPEG, WebP, BMP, TIFF)")
    _check_dims(p, img.shape[1], img.shape[0], what=what, min_side=min_side)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        f = (f - f.min()) / max(float(f.max() - f.min()), 1e-6)
        img = (f * 255 + 0.5).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3].astype(np.float32) * a + 0.5).astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


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
