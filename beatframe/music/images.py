"""Reading the user's images (covers, reference and scene images): validated, RGB, bounded.

The header's dimensions are checked before anything is decoded, so a decompression bomb is refused
from its first bytes; every problem is a :class:`~beatframe.infra.errors.BadInputError` naming the
image.
"""

from __future__ import annotations

import os
import struct

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError

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
