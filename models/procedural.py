"""Procedural scenes on the CPU: tunnel, plasma waves, perspective grid, starfield with aurora.

Every scene is rendered at a reduced *work* resolution (about 360 px wide) with numpy/OpenCV
vector operations and precomputed coordinate grids, then scaled up once with ``cv2.resize``
(bilinear), which keeps a 720x1280 frame at a few milliseconds on one core.

How the music drives the picture (see :mod:`beatframe.models.motion` for the envelopes):

* every beat is a geometric accent: the scene *rushes* forward (a phase jump that decays within
  a few frames) and *kicks* in scale; downbeats are stronger, ordinary beats keep ~0.7 of a
  downbeat so each one stands out in frame differences;
* brightness pulses are kept small (a few percent) so accents never read as flashes;
* energy changes the travel speed and brightness smoothly; onsets add soft swells (sparkle)
  with no sharp step, so they never produce an accent of their own;
* with ``timeline.periodic`` every continuous phase completes whole cycles over the clip and the
  beat envelopes wrap around, so the last frame flows into the first;
* with ``cut_on_downbeats`` each downbeat starts a new shot (camera, palette, variation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.music.timeline import LoopTimeline
from beatframe.models.motion import Envelopes, cycles_over_clip, envelopes, integrate, oscillator

TAU = 2.0 * np.pi
MAX_SIDE = 4096


def _resolve_template(template):
    from beatframe.music.templates import Template, load_template

    if isinstance(template, Template):
        return template
    if isinstance(template, str):
        return load_template(template)
    if isinstance(template, dict):
        return Template.model_validate(template)
    raise BadInputError(f"not a template: {type(template).__name__}")


def check_size(size) -> tuple[int, int]:
    try:
        w, h = (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError):
        raise BadInputError(f"size must be (width, height), got {size!r}") from None
    if w < 16 or h < 16 or w > MAX_SIDE or h > MAX_SIDE:
        raise BadInputError(f"frame size {w}x{h} is out of range (16..{MAX_SIDE} px a side)")
    return w, h


def work_size(size: tuple[int, int], target: int = 360) -> tuple[int, int]:
    """The resolution scenes are rendered at: about ``target`` px on the short side."""
    w, h = size
    s = max(1, int(round(min(w, h) / target)))
    return max(8, int(round(w / s))), max(8, int(round(h / s)))


def seed_rng(seed: int, *parts) -> np.random.Generator:
    h = hashlib.sha256(repr((int(seed),) + tuple(parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def palette_lut(colors, cyclic: bool = False, n: int = 256) -> np.ndarray:
    """A (256, 1, 3) uint8 colour ramp through ``colors`` (RGB tuples) for ``cv2.LUT``."""
    stops = [np.asarray(c, dtype=np.float32) for c in colors]
    if cyclic:
        stops = stops + stops[-2:0:-1] + [stops[0]]
    pos = np.linspace(0.0, 1.0, len(stops))
    x = np.arange(n, dtype=np.float32) / (n if cyclic else n - 1)
    # smoothstep between stops for softer transitions
    k = np.clip(np.searchsorted(pos, x, side="right") - 1, 0, len(stops) - 2)
    f = (x - pos[k]) / (pos[k + 1] - pos[k])
    f = f * f * (3 - 2 * f)
    a = np.stack([stops[i] for i in k])
    b = np.stack([stops[i + 1] for i in k])
    rgb = a + (b - a) * f[:, None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8).reshape(n, 1, 3)


class _Scene:
    """A scene renders frame ``i`` at work resolution as RGB uint8."""

    def __init__(self, tpl, wsize, timeline: LoopTimeline, env: Envelopes, seed: int):
        self.tpl = tpl
        self.w, self.h = wsize
        self.tl = timeline
        self.env = env
        self.seed = seed
        self.m = tpl.motion
        self.k = tpl.intensity
        self.n = timeline.n_frames
        # normalized coordinates: x in [-1, 1], y in [-h/w, h/w] (downwards)
        self.xs = ((np.arange(self.w, dtype=np.float32) + 0.5) / self.w * 2 - 1)
        self.ys = ((np.arange(self.h, dtype=np.float32) + 0.5) / self.w * 2 - self.h / self.w)
        self.X, self.Y = np.meshgrid(self.xs, self.ys)
        self.pix = 2.0 / self.w  # one work pixel in normalized units
        n_shots = int(env.shot.max()) + 1
        self.shots = [self.shot_params(seed_rng(seed, "shot", s), s) for s in range(n_shots)]
        e = env.energy
        es = self.k.energy_speed
        # travel speed: energy-driven, smooth
        self.speed = (0.6 + 0.8 * self.m.speed) * (1.0 + es * 0.9 * (e - 0.5))
        self.gain = 1.0 + 0.16 * self.k.energy_brightness * (e - 0.5) + 0.06 * self.k.onset_sparkle * env.sparkle
        self.gain = self.gain.astype(np.float32)

    def shot_params(self, rng: np.random.Generator, shot: int) -> dict:
        return {}

    def frame(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------------------- tunnel
class TunnelScene(_Scene):
    """A neon tunnel: a wrapped texture sampled through polar coordinates (``cv2.remap``)."""

    TEX = 128

    def __init__(self, tpl, wsize, timeline, env, seed):
        super().__init__(tpl, wsize, timeline, env, seed)
        rng = seed_rng(seed, "tunnel")
        pal = tpl.palette_rgb
        self.n_rep = int(rng.integers(3, 6)) + int(round(2 * self.m.detail))  # stripe repeats around
        self.textures = [self._texture(pal, rng, swap=False), self._texture(pal, rng, swap=True)]
        self.dk = 0.45 + 0.5 * self.m.detail  # depth scale: rings visible across the frame
        fps = timeline.fps
        # depth phase in ring periods: base travel + beat rush
        kick = 0.3 * self.m.phase_kick
        self.depth = integrate(self.speed / fps * 0.4 + kick * env.rush, timeline)
        # rotation in stripe-repeat units: slow spin + a twist on every beat
        spin = 0.15 * self.m.rotation / fps + 0.25 * self.m.rotation * env.rush / 2.4
        self.spin = integrate(np.full(self.n, 0.0) + spin, timeline)
        self.cx = 0.22 * self.m.sway * oscillator(3.7, timeline)
        self.cy = 0.30 * self.m.sway * oscillator(5.3, timeline, 1.3)
        self.zoom = 1.0 + 0.16 * self.m.zoom_kick * env.kick
        self.glow = (1.0 + 0.05 * env.kick) * self.gain

    def shot_params(self, rng, shot):
        return {"dx": float(rng.uniform(-0.25, 0.25)) if shot else 0.0,
                "dy": float(rng.uniform(-0.35, 0.35)) if shot else 0.0,
                "rot": float(rng.uniform(0, 1)) if shot else 0.0,
                "tex": shot % 2,
                "dk": float(rng.uniform(0.8, 1.25)) if shot else 1.0}

    def _texture(self, pal, rng, swap: bool) -> np.ndarray:
        T = self.TEX
        dark = np.asarray(pal[0], np.float32)
        mid = np.asarray(pal[1], np.float32)
        ring = np.asarray(pal[2 if not swap else 3], np.float32)
        stripe = np.asarray(pal[3 if not swap else 2], np.float32)
        hi = np.asarray(pal[min(4, len(pal) - 1)], np.float32)
        v = (np.arange(T, dtype=np.float32) + 0.5) / T  # depth
        u = (np.arange(T, dtype=np.float32) + 0.5) / T  # angle
        V, U = np.meshgrid(v, u, indexing="ij")
        img = np.empty((T, T, 3), np.float32)
        img[:] = dark
        # panels: a gradient along depth, alternating shade around
        shade = 0.55 + 0.45 * np.cos(TAU * V) * 0.5 + 0.25 * (np.floor(U * 2) % 2)
        img += (mid - dark) * shade[..., None] * 0.8
        dv = np.minimum(V, 1 - V)  # distance to the ring at v = 0
        du = np.abs(U - 0.5)  # distance to the stripe at u = 0.5
        ring_core = np.exp(-(dv / 0.035) ** 2)
        ring_glow = np.exp(-(dv / 0.12) ** 2)
        sub = np.exp(-((np.abs(V - 0.5)) / 0.02) ** 2) * 0.45
        stripe_core = np.exp(-(du / 0.03) ** 2)
        stripe_glow = np.exp(-(du / 0.1) ** 2)
        img += ring[None, None] * (0.95 * ring_core + 0.35 * ring_glow + sub)[..., None]
        img += stripe[None, None] * (0.8 * stripe_core + 0.3 * stripe_glow)[..., None]
        img += hi[None, None] * (ring_core * stripe_core)[..., None] * 0.8
        # a few lit panels for texture
        cells = rng.random((4, 2)) < 0.35
        cell = cells[(V * 4).astype(int) % 4, (U * 2).astype(int) % 2]
        img += (stripe * 0.12)[None, None] * cell[..., None]
        return np.clip(img, 0, 255).astype(np.uint8)

    def frame(self, i):
        sp = self.shots[int(self.env.shot[i])]
        dx = self.X - (self.cx[i] + sp["dx"])
        dy = self.Y - (self.cy[i] + sp["dy"])
        mag, ang = cv2.cartToPolar(dx, dy)
        np.maximum(mag, 0.03, out=mag)
        T = self.TEX
        depth = (self.dk * sp["dk"] * self.zoom[i]) / mag  # in ring periods (zoom in = deeper)
        np.minimum(depth, 60.0, out=depth)
        map_y = depth * T + float((self.depth[i] % 1.0) * T)
        rot = (self.spin[i] + sp["rot"]) % 1.0
        map_x = ang * (self.n_rep * T / TAU) + float(rot * T)
        # fixed-point maps; the texture size is a power of two, so wrapping is an integer mask
        m1, m2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        np.bitwise_and(m1, T - 1, out=m1)
        img = cv2.remap(self.textures[sp["tex"]], m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        # fog: the far end fades to black
        fog = np.minimum(mag * 1.5, 1.0)
        fog *= fog
        fog *= self.glow[i]
        f8 = cv2.convertScaleAbs(fog, alpha=255.0)
        return cv2.multiply(img, cv2.cvtColor(f8, cv2.COLOR_GRAY2RGB), scale=1.0 / 255.0)


# --------------------------------------------------------------------------------------- plasma
class PlasmaScene(_Scene):
    """Flowing gradient waves: a sum of sines mapped through a cyclic palette."""

    def __init__(self, tpl, wsize, timeline, env, seed):
        super().__init__(tpl, wsize, timeline, env, seed)
        rng = seed_rng(seed, "plasma")
        self.lut = palette_lut(tpl.palette_rgb, cyclic=True)
        self.R = np.sqrt(self.X ** 2 + (self.Y - 0.4) ** 2).astype(np.float32)
        d = 0.7 + 0.8 * self.m.detail
        self.freq = [float(v) * d for v in rng.uniform(0.8, 1.3, 5)] + [float(rng.uniform(0.2, 0.6))]
        self.ang = float(rng.uniform(0.3, 1.2))
        kr = self.freq[3] * 4.0 * self.R
        self.SR, self.CR = np.sin(kr).astype(np.float32), np.cos(kr).astype(np.float32)
        fps = timeline.fps
        # band phase in palette cycles: steady flow + a surge on every beat
        # palette drift is slow and steady (a palette jump would be a brightness flash); the beat
        # surge moves the waves themselves (their phases, in whole turns over the loop)
        self.flow = integrate(np.full(self.n, self.speed.mean() / fps * 0.12), timeline)
        surge = TAU * 0.07 * self.m.phase_kick * env.rush
        self.ph = [integrate(TAU * self.speed / fps / p + w * surge, timeline, TAU) + o
                   for p, o, w in zip((4.1, 5.9, 3.3, 7.7), rng.uniform(0, TAU, 4), (1.0, 0.0, 0.8, 0.6))]
        self.zoom = 1.0 + 0.14 * self.m.zoom_kick * env.kick
        self.sway = 0.25 * self.m.sway * oscillator(6.1, timeline)
        self.bands = 1.6 + 1.2 * self.m.detail
        # a soft vertical shade: darker at the top and bottom
        sh = 0.78 + 0.22 * np.cos(np.clip(self.ys / (self.h / self.w), -1, 1) * np.pi / 2)
        sh = np.repeat(sh.astype(np.float32)[:, None], self.w, axis=1)
        self.shade3 = cv2.cvtColor(cv2.convertScaleAbs(sh, alpha=255.0), cv2.COLOR_GRAY2RGB)
        self.lut_f = self.lut.astype(np.float32)
        self.gain_k = (self.gain * (1.0 + 0.04 * env.kick)).astype(np.float32)

    def shot_params(self, rng, shot):
        return {"off": float(rng.uniform(0.2, 0.8)) if shot else 0.0,
                "flip": bool(shot % 2), "dz": float(rng.uniform(0.8, 1.25)) if shot else 1.0}

    def frame(self, i):
        sp = self.shots[int(self.env.shot[i])]
        z = float(self.zoom[i] * sp["dz"])
        xs = (self.xs + float(self.sway[i])) / z
        if sp["flip"]:
            xs = -xs
        ys = self.ys / z
        k = self.freq
        ph = [float(p[i]) for p in self.ph]
        # the field is a sum of separable waves, evaluated as one rank-6 matrix product:
        # sin(a(x) + w(y)) = sin a cos w + cos a sin w, likewise for the slanted wave
        S = self.bands * 0.5 * 256.0  # field units -> palette index
        a = k[0] * 2.4 * xs
        wy = 0.9 * np.sin(k[1] * 2.1 * ys + ph[1]) + ph[0]
        c, s = np.cos(self.ang), np.sin(self.ang)
        bx = k[2] * 3.0 * c * xs
        by = k[2] * 3.0 * s * ys + ph[2]
        cols = np.stack([0.55 * np.cos(wy), 0.55 * np.sin(wy), 0.35 * np.cos(by), 0.35 * np.sin(by),
                         ys * (1.1 * k[5] + 0.5), np.ones_like(ys)], axis=1).astype(np.float32) * S
        rows = np.stack([np.sin(a), np.cos(a), np.sin(bx), np.cos(bx), np.ones_like(xs),
                         np.zeros_like(xs)], axis=0).astype(np.float32)
        f = cols @ rows
        # the radial ripple (not separable; precomputed sin/cos, phase by rotation)
        off = float((self.flow[i] + sp["off"]) % 1.0) * 256.0 + 4096.0
        f += cv2.addWeighted(self.SR, 0.25 * S * np.cos(ph[3]), self.CR, -0.25 * S * np.sin(ph[3]), off)
        ii = f.astype(np.int32).astype(np.uint8)  # wraps modulo 256: a cyclic palette
        lut = cv2.convertScaleAbs(self.lut_f, alpha=float(self.gain_k[i]))
        rgb = cv2.LUT(cv2.cvtColor(ii, cv2.COLOR_GRAY2RGB), lut)
        return cv2.multiply(rgb, self.shade3, scale=1.0 / 255.0)


# ----------------------------------------------------------------------------------------- grid
class GridScene(_Scene):
    """A retro perspective grid (floor and faint ceiling) with a slatted sun on the horizon.

    The picture is built from 1-D row profiles (depth, fog, cross lines, sun rows) and one 2-D
    pass for the converging lines; roll and the beat's zoom kick are one affine warp at the end.
    """

    def __init__(self, tpl, wsize, timeline, env, seed):
        super().__init__(tpl, wsize, timeline, env, seed)
        rng = seed_rng(seed, "grid")
        pal = [np.asarray(c, np.float32) / 255.0 for c in tpl.palette_rgb]
        self.bg, self.line_c = pal[0], pal[1]
        self.acc = pal[2] if len(pal) > 2 else pal[1]
        fps = timeline.fps
        ph = rng.uniform(0, TAU, 4)
        # forward travel in grid cells + a rush on every beat
        self.travel = integrate(self.speed / fps * 0.45 + 0.5 * self.m.phase_kick * env.rush, timeline)
        self.travel0 = float(rng.uniform(0, 1))
        self.roll = 0.06 * self.m.rotation * oscillator(4.3, timeline, ph[0])
        self.sway = 0.5 * self.m.sway * oscillator(5.9, timeline, ph[1])
        self.bob = 0.05 * self.m.sway * oscillator(2.9, timeline, ph[2])
        self.kick = env.kick
        self.zoom = 1.0 + 0.12 * self.m.zoom_kick * env.kick
        self.cells = 3.0 + 3.0 * self.m.detail
        self.sun_phase = integrate(np.full(self.n, 0.6 / fps), timeline) + float(ph[3] / TAU)
        self.absx = np.abs(self.xs)[None, :]
        self.ramp = (np.arange(256, dtype=np.float32) / 255.0)[:, None]

    def shot_params(self, rng, shot):
        return {"hz": float(rng.uniform(-0.35, 0.25)) if shot else -0.1,
                "cam": float(rng.uniform(0.25, 0.5)) if shot else 0.35,
                "roll": float(rng.uniform(-0.05, 0.05)) if shot else 0.0,
                "swap": bool(shot % 2),
                "sun": float(rng.uniform(0.4, 0.65)) if shot else 0.55}

    @staticmethod
    def _lines(u, du, width):
        """Box-filtered lines at integer ``u``: sharp when near, fading to their average far away."""
        d = np.abs(u - np.floor(u + 0.5))
        inv = 1.0 / (width + du)
        v = 1.0 - d * inv
        np.maximum(v, 0.0, out=v)
        v *= width * inv
        return v

    def frame(self, i):
        sp = self.shots[int(self.env.shot[i])]
        ys, pix = self.ys, self.pix
        hz = sp["hz"] + float(self.bob[i]) + 0.04 * float(self.kick[i])
        dy = ys - hz
        ady = np.maximum(np.abs(dy), 0.004)
        floor = dy > 0
        cam = np.where(floor, sp["cam"], sp["cam"] * 1.8).astype(np.float32)
        depth = cam / ady
        near = np.minimum(depth * 1.4, 1.0)  # near the camera lines keep a bounded screen width
        dz = depth * (pix / ady)  # |d depth / d pixel|
        # cross lines (1-D per row); they fade out close to the camera where they would sweep
        lz = self._lines(depth + float((self.travel[i] + self.travel0) % 1.0), dz, 0.06 * near)
        lz *= np.clip((depth - 0.35) * 2.5, 0.0, 1.0)
        # converging lines (the only full 2-D pass)
        c = (depth * (self.cells * 0.5))[:, None]
        u = self.xs[None, :] * c
        u += float(self.sway[i])
        lines = self._lines(u, (c * pix).astype(np.float32), (0.05 * near)[:, None].astype(np.float32))
        np.maximum(lines, lz[:, None].astype(np.float32), out=lines)
        rowf = (np.exp(-depth * 0.12) * np.where(floor, 1.0, 0.28)).astype(np.float32)
        lines *= rowf[:, None]
        glow = (np.exp(-ady * 9.0) * 0.35).astype(np.float32)
        light = np.repeat(glow[:, None], self.w, axis=1)
        # the sun: a disc above the horizon with slats in its lower half (only its rows are drawn)
        R = sp["sun"]
        sc = hz - 0.55 * R
        r0 = int(np.clip(np.searchsorted(ys, sc - R) - 1, 0, self.h))
        r1 = int(np.clip(np.searchsorted(ys, min(sc + R, hz)) + 1, 0, self.h))
        if r1 > r0:
            yb = ys[r0:r1] - sc
            hw = np.sqrt(np.maximum(R * R - yb * yb, 0.0))
            yn = yb / R
            slat = np.sin(TAU * (yn * 5.0 - float(self.sun_phase[i] % 1.0)))
            rowm = ~((yn > 0.05) & (slat > 0.55 - 0.8 * yn)) & ~floor[r0:r1]
            disc = (hw[:, None] - self.absx) * (1.0 / (2 * pix))
            np.clip(disc, 0.0, 1.0, out=disc)
            disc *= rowm[:, None].astype(np.float32)
            lines[r0:r1] *= 1.0 - disc
            light[r0:r1] += disc * 0.95
        lc, ac = (self.acc, self.line_c) if sp["swap"] else (self.line_c, self.acc)
        g = float(self.gain[i])
        ramp = self.ramp
        lut_a = np.clip((self.bg + ramp * (lc - self.bg)) * (255.0 * g) + 0.5, 0, 255).astype(np.uint8)
        lut_b = np.clip(ramp * np.maximum(ac - self.bg, 0.0) * (255.0 * g) + 0.5, 0, 255).astype(np.uint8)
        a8 = cv2.cvtColor(cv2.convertScaleAbs(lines, alpha=255.0), cv2.COLOR_GRAY2RGB)
        b8 = cv2.cvtColor(cv2.convertScaleAbs(light, alpha=255.0), cv2.COLOR_GRAY2RGB)
        img = cv2.add(cv2.LUT(a8, lut_a.reshape(256, 1, 3)), cv2.LUT(b8, lut_b.reshape(256, 1, 3)))
        # roll + zoom kick about the centre; scale enough that rotated corners stay covered
        th = float(self.roll[i] + sp["roll"])
        cover = np.cos(th) + (self.h / self.w) * abs(np.sin(th))
        A = cv2.getRotationMatrix2D((self.w / 2, self.h / 2), np.degrees(th), float(self.zoom[i]) * cover)
        return cv2.warpAffine(img, A, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# ------------------------------------------------------------------------------------ particles
class ParticleScene(_Scene):
    """A starfield flying through aurora curtains."""

    def __init__(self, tpl, wsize, timeline, env, seed):
        super().__init__(tpl, wsize, timeline, env, seed)
        rng = seed_rng(seed, "particles")
        pal = tpl.palette_rgb
        self.lut = palette_lut([pal[0], pal[1], pal[2], pal[3], pal[min(4, len(pal) - 1)]])
        self.star_c = np.asarray(pal[-1], np.float32) / 255.0
        n_st = int(900 + 1600 * self.m.detail)
        self.sx = rng.uniform(-1.6, 1.6, n_st).astype(np.float32)
        self.sy = rng.uniform(-2.4, 2.4, n_st).astype(np.float32)
        self.sz0 = rng.uniform(0, 1, n_st).astype(np.float32)
        self.sb = rng.uniform(0.4, 1.0, n_st).astype(np.float32)
        fps = timeline.fps
        # star travel in units of the depth range
        self.travel = integrate(self.speed / fps * 0.16 + 0.085 * self.m.phase_kick * env.rush, timeline)
        self.aur = integrate(self.speed / fps * 0.25 + 0.22 * self.m.phase_kick * env.rush, timeline)
        self.roll = 0.08 * self.m.rotation * oscillator(5.1, timeline)
        self.zoom = 1.0 + 0.12 * self.m.zoom_kick * env.kick
        self.ph = [TAU * cycles_over_clip(p, timeline) * np.arange(self.n) / self.n + o
                   for p, o in zip((6.3, 4.7, 8.9), rng.uniform(0, TAU, 3))]
        # aurora is smooth: render it at a quarter of the work size
        self.aw, self.ah = max(8, self.w // 3), max(8, self.h // 3)
        self.ax = np.linspace(-1, 1, self.aw, dtype=np.float32)
        self.ay = np.linspace(-self.h / self.w, self.h / self.w, self.ah, dtype=np.float32)
        self.ak = rng.uniform(0.8, 1.25, 3).astype(np.float32)
        self.sparkle = env.sparkle

    def shot_params(self, rng, shot):
        return {"dx": float(rng.uniform(-0.3, 0.3)) if shot else 0.0,
                "dy": float(rng.uniform(-0.3, 0.3)) if shot else 0.0,
                "roll": float(rng.uniform(-0.4, 0.4)) if shot else 0.0,
                "lift": float(rng.uniform(-0.5, 0.5)) if shot else 0.0}

    def _aurora(self, i, sp):
        z = float(self.zoom[i])
        x = self.ax / z + sp["dx"]
        y = self.ay / z + sp["lift"]
        ph = [float(p[i]) for p in self.ph]
        a = float(self.aur[i] % 1.0) * TAU
        k = self.ak
        # curtain baselines wave across x; rays shimmer along x
        base = -0.6 + 0.35 * np.sin(k[0] * 2.2 * x + ph[0]) + 0.15 * np.sin(k[1] * 5.0 * x - ph[1])
        dy = y[:, None] - base[None, :]
        prof = np.exp(-np.maximum(dy, 0) * 2.2) * np.exp(-np.maximum(-dy, 0) * 12.0)
        rays = 0.6 + 0.4 * np.sin(k[2] * 19.0 * x + a + 1.5 * np.sin(3.0 * x + ph[2]))
        second = np.exp(-np.abs(y[:, None] - (base[None, :] + 1.2)) * 3.0) * 0.45
        band = prof * rays[None, :] + second * (0.6 + 0.4 * np.sin(k[0] * 7.0 * x - a))[None, :]
        sky = np.clip(0.12 + 0.1 * (y / (self.h / self.w)), 0, 1)[:, None]
        v = np.clip(band * 0.8 + sky, 0, 1) * (0.82 * float(self.gain[i]))
        idx = cv2.convertScaleAbs(v.astype(np.float32), alpha=255.0)
        rgb = cv2.LUT(cv2.cvtColor(idx, cv2.COLOR_GRAY2RGB), self.lut)
        return cv2.resize(rgb, (self.w, self.h), interpolation=cv2.INTER_LINEAR)

    def frame(self, i):
        sp = self.shots[int(self.env.shot[i])]
        img = self._aurora(i, sp)
        z = (self.sz0 - float(self.travel[i] % 1.0)) % 1.0  # 0 near .. 1 far
        depth = 0.04 + z * 1.2
        f = float(self.zoom[i]) * 0.5
        th = float(self.roll[i] + sp["roll"])
        c, s = np.cos(th), np.sin(th)
        px = (self.sx * c - self.sy * s) / depth * f
        py = (self.sx * s + self.sy * c) / depth * f
        u = ((px + 1) * 0.5 * self.w).astype(np.int32)
        v = ((py + self.h / self.w) * 0.5 * self.w).astype(np.int32)
        ok = (u >= 0) & (u < self.w) & (v >= 0) & (v < self.h)
        fade = np.clip((1.0 - z) * 4.0, 0, 1) * np.clip(z * 12.0, 0, 1)
        b = self.sb * fade * (1.1 - z) * (1.0 + 0.6 * self.k.onset_sparkle * float(self.sparkle[i]))
        near = z < 0.35
        layers = []
        for sel, sig, amp in ((ok & ~near, 0.6, 1.6), (ok & near, 1.4, 7.0)):
            acc = np.bincount(v[sel] * self.w + u[sel], weights=b[sel], minlength=self.w * self.h)
            acc = acc.reshape(self.h, self.w).astype(np.float32)
            layers.append(cv2.GaussianBlur(acc, (0, 0), sig) * amp)
        st = cv2.convertScaleAbs(layers[0] + layers[1], alpha=255.0)
        st3 = cv2.cvtColor(st, cv2.COLOR_GRAY2RGB)
        return cv2.add(img, st3)


SCENES = {"tunnel": TunnelScene, "plasma": PlasmaScene, "grid": GridScene, "particles": ParticleScene}


class ProceduralGenerator:
    """CPU generator for the template scenes (see the module docstring)."""

    name = "procedural"
    revision = "1"

    def __init__(self, work_target: int = 360):
        self.work_target = int(work_target)

    def render(self, *, timeline: LoopTimeline, template, size, seed: int,
               cut_on_downbeats: bool = False) -> Iterator[np.ndarray]:
        tpl = _resolve_template(template)
        w, h = check_size(size)
        ws = work_size((w, h), self.work_target)
        k = tpl.intensity
        down = max(k.downbeat_pulse, 1e-3)
        # ordinary beats keep >= 0.6 of a downbeat so each one is a visible accent
        beat_w = float(np.clip(k.beat_pulse / down, 0.6, 1.0))
        env = envelopes(timeline, beat_weight=beat_w, downbeat_weight=1.0,
                        cut_on_downbeats=cut_on_downbeats)
        scene = SCENES[tpl.scene](tpl, ws, timeline, env, int(seed))
        return self._frames(scene, timeline.n_frames, (w, h), ws)

    @staticmethod
    def _frames(scene: _Scene, n: int, size, ws) -> Iterator[np.ndarray]:
        for i in range(n):
            img = scene.frame(i)
            if ws != tuple(size):
                img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
            yield np.ascontiguousarray(img, dtype=np.uint8)
