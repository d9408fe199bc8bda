"""Video and still-image inpainting: remove, replace, blend, background and extend.

Spotify's Canvas rules forbid text and logos, and a cover art is square while a Canvas is 9:16, so
footage and artwork often need a region cleaned, swapped or grown before they become a Canvas or a
video. :func:`inpaint_frames` does it to a clip and :func:`inpaint_image` to one picture. The
region is a ``box`` ``[x0, y0, x1, y1]`` (the reference API's ``bbox``, pixels, ``x1``/``y1``
exclusive) or a ``mask`` (one for the whole clip or one per frame). The modes:

``remove``      fill the region from its surroundings (below), so the object is gone.
``replace``     put new content in the region (an image, a colour, or an image generated from a
                ``prompt`` when a local inpainting model is installed), blended at its edge.
``blend``       overlay content on the region at an ``opacity``, blended at its edge.
``background``  keep the region (the foreground) and replace everything outside it with an image,
                a colour, generated content, or by default a blur of the clip's own background.
``extend``      outpaint to a ``target_aspect`` (a 1:1 cover to a 9:16 Canvas): the original
                stays pixel for pixel in the centre; the new margins continue its edges as a
                mirror that blurs progressively with the distance from the edge.

``feather_radius`` softens every seam: for ``replace``, ``blend`` and ``background`` the blend
weight runs from 0 at ``feather_radius`` px outside the region's edge to 1 at ``feather_radius``
px inside it; ``remove`` replaces the whole region and fades its fill into the frame over
``feather_radius`` px outside it (nothing of the removed object shows through); ``extend`` keeps
the continuation sharp for ``feather_radius`` px beyond the original's edge before it blurs.

How ``remove`` stays stable over time (flow-guided propagation). A per-frame fill (``cv2.inpaint``
on every frame) flickers, because each frame invents its fill afresh. Instead every frame's fill is
taken from what the clip itself shows of the hidden background, found along optical flow:

1. *Flow of the surroundings.* The region is grown by a few pixels (anti-aliased edges, halos) and
   pre-filled smoothly on downscaled copies so its own content (a static logo) does not pull the
   flow; dense flow (:func:`beatframe.models.interpolation.optical_flow`) is measured both ways between
   neighbouring frames in a window around the region, and inside the region (plus a margin where
   the flow's patches still see it) the flow is replaced by one interpolated from the flow around
   it (push-pull): the region moves with its surroundings. The same flows give each frame's
   brightness relative to the first (median ratio of aligned pixels), so colours taken from
   another frame are rescaled to this frame's light (beat pulses, fades).
2. *Tracing the hidden background.* A backward sweep follows each region pixel forward in time
   along the flow, frame by frame, until it lands outside the region of a later frame, where the
   background is visible. The sweep is recursive (a pixel that lands inside the next frame's
   region continues along the traces of the pixels around its landing point), stores only the
   accumulated displacement, and samples the colour once, from the frame where the background is
   visible, so nothing is blurred by repeated resampling; each trace's end is checked at its
   exact position, so sub-pixel steps cannot add up to a wrong decision. A forward sweep does the
   same towards earlier frames, and both answers are blended by their distance in time.
   Neighbouring frames share the tails of their traces, so they copy the same background pixel:
   the fill moves with the clip instead of flickering.
3. *Re-anchoring.* The same traces are made for a ring just outside the region, where the real
   frame is known; the mismatch between the traced and the real ring (a local change of light or
   colour since the background was seen, a drift of the flow) is interpolated smoothly into the
   region and added, so the fill keeps matching its surroundings in every frame.
4. *Background never seen.* Where no frame of the clip shows the background (a static camera, a
   region at the edge the clip never reveals), the first frame's region is filled by
   ``cv2.inpaint`` (Telea or Navier-Stokes) and that fill is carried into later frames along the
   flow, re-anchored to each frame's surroundings the same way; only pixels that come in from
   outside the frame are inpainted anew. Every frame gets the same fill, motion-compensated.

All per-pixel work happens inside the bounding box of the region (grown by the feather) over the
clip. ``remove`` holds the clip in memory and, while it traces, about 25 bytes per frame per pixel
of that box; the other modes stream: frames are read and returned one at a time.

Generated content (optional). With a ``prompt``, ``replace``, ``background`` and (for still
images) ``extend`` use a diffusers inpainting pipeline (``AutoPipelineForInpainting``) loaded with
``local_files_only=True`` from ``$BEATFRAME_MODELS_DIR/<model>`` (default
:data:`DEFAULT_INPAINT_MODEL`; ``huggingface-cli download stable-diffusion-v1-5/stable-diffusion-
inpainting --local-dir $BEATFRAME_MODELS_DIR/stable-diffusion-inpainting`` puts it there). For a
clip the content is generated once, on the first frame, and used for every frame, so it cannot
flicker. Without the folder the CPU path runs (``replace`` falls back to ``remove``,
``background`` to the blurred fill, ``extend`` to the mirror continuation) and the returned
``info`` says so.

Plain numpy/OpenCV (torch and diffusers only for the optional generated path); no Prefect, no
HTTP; reads no environment variables (the caller passes ``models_dir``, the settings'
``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.models.diffusion import model_folder
from beatframe.models.interpolation import optical_flow, warp
from beatframe.models.model_catalog import INPAINT_FOLDER

MODES = ("remove", "replace", "blend", "background", "extend")
FILL_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}

#: the folder under BEATFRAME_MODELS_DIR holding the inpainting pipeline when ``model`` is not given
DEFAULT_INPAINT_MODEL = INPAINT_FOLDER

#: the region is grown by this many pixels before ``remove``: anti-aliased edges and halos of a
#: logo reach a little past any box drawn around it
_GROW = 2
#: the flow is replaced by an interpolated one this many flow-resolution pixels around the region:
#: DIS matches patches, so flow vectors near the region's edge still see the region's content
_FLOW_MARGIN = 8
#: a trace found inside the region where it was expected to be visible is continued at most this
#: many times (each continuation corrects the sub-pixel drift of the one before)
_MAX_HOPS = 4
#: the flow is measured in a window reaching at least this many flow-resolution pixels (and half
#: the region's size) beyond the region
_FLOW_CONTEXT = 48
#: radius (pixels) of ``cv2.inpaint``'s neighbourhood
_INPAINT_RADIUS = 5
#: the re-anchoring correction is interpolated on a grid about this many cells across: it carries
#: slow light and colour changes, not texture
_ANCHOR_CELLS = 24
#: ``extend``: blur sigma grows by this many pixels per pixel of distance from the original's edge
_EXTEND_BLUR = 0.3
#: ``background`` without a background image: blur sigma as a fraction of the frame's longer side
_BACKGROUND_BLUR = 0.04
#: generated content is made at most this many pixels a side (then scaled to the frame)
_GEN_MAX_SIDE = 768


# ------------------------------------------------------------------------------------ public API
def inpaint_frames(
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    mode: str,
    box: tuple[float, float, float, float] | list[float] | None = None,
    mask: np.ndarray | None = None,
    feather_radius: float = 10,
    prompt: str | None = None,
    replacement=None,
    opacity: float | None = None,
    background=None,
    target_aspect=None,
    fill_method: str = "telea",
    flow_width: int = 480,
    model: str | None = None,
    models_dir: str | Path | None = None,
    seed: int = 0,
    steps: int = 30,
) -> tuple[Iterator[np.ndarray], dict]:
    """Inpaint a clip: remove, replace, blend, background or extend (see the module docstring).

    Parameters
    ----------
    frames : iterable of numpy.ndarray, or numpy.ndarray
        RGB uint8 frames of one shape ``(height, width, 3)``, or one array
        ``(n_frames, height, width, 3)``. ``remove`` reads the whole clip before returning; the
        other modes read a frame each time one is returned.
    mode : {"remove", "replace", "blend", "background", "extend"}
    box : sequence of 4 numbers, optional
        ``[x0, y0, x1, y1]`` in pixels (``x1``, ``y1`` exclusive), within the frame. The region
        to change (``background``: the foreground to keep). Give ``box`` or ``mask``, not both;
        ``extend`` takes neither.
    mask : numpy.ndarray, optional
        ``(height, width)`` for the whole clip or ``(n_frames, height, width)``, one per frame;
        bool, or numbers where nonzero (floats: at least 0.5) marks the region.
    feather_radius : float
        Width in pixels of the soft edge (see the module docstring); 0 gives a hard edge.
    prompt : str, optional
        What to generate (``replace``, ``background``; ``extend`` for still images only), with a
        local inpainting model; without one the CPU path runs and ``info`` says why.
    replacement : image, colour or frames
        ``replace`` and ``blend``: an RGB uint8 image (scaled to cover the region's bounding box),
        a colour (``(r, g, b)`` or ``"#rrggbb"``), or one image per frame (an
        ``(n_frames, h, w, 3)`` array or a list).
    opacity : float, optional
        ``blend`` only: the overlay's weight inside the region, 0-1 (default 0.5).
    background : image, colour or frames, optional
        ``background`` only: what goes outside the foreground (scaled to cover the frame);
        default: the clip's own background, blurred.
    target_aspect : str, float or pair
        ``extend`` only: width to height, as ``"9:16"``, ``(9, 16)`` or ``0.5625``. The frame
        grows (never shrinks) to that aspect, the original centred.
    fill_method : {"telea", "ns"}
        ``cv2.inpaint``'s algorithm for background no frame shows (``remove``).
    flow_width : int
        ``remove``: the optical flow is measured on copies at most this wide.
    model : str, optional
        The inpainting model's folder under the models directory; default
        :data:`DEFAULT_INPAINT_MODEL` (a missing default falls back to the CPU path, a missing
        named model is an error).
    models_dir : path, optional
        The models directory (the settings' ``BEATFRAME_MODELS_DIR``); without it a ``prompt``
        falls back to the CPU path.
    seed, steps : int
        Seed and denoising steps of generated content.

    Returns
    -------
    frames : iterator of numpy.ndarray
        The inpainted RGB uint8 frames, as many as given; ``extend`` makes them larger.
    info : dict
        ``mode``; ``backend`` (``"cpu"`` or ``"diffusers"``), ``model`` (its folder name or None)
        and ``reason`` (why a prompt was not used, else None); ``size`` ``[width, height]`` of the
        output; ``region`` ``[x0, y0, x1, y1]``, the bounding box of the region over the clip
        (None for ``extend``); for ``remove`` also ``frames`` and ``filled_from_video``, the share
        of region pixels filled with background seen elsewhere in the clip (the rest is inpainted
        and carried along the flow).

    Raises
    ------
    BadInputError
        Naming the problem: an unknown mode, a box outside the frame, an empty mask, frames that
        are not RGB uint8 or differ in shape, an argument the mode does not take, and so on.
    """
    _check_mode(mode)
    first, rest, n = _open_frames(frames)
    h, w = first.shape[:2]
    opts = _Options.parse(mode=mode, box=box, mask=mask, feather_radius=feather_radius,
                          prompt=prompt, replacement=replacement, opacity=opacity,
                          background=background, target_aspect=target_aspect,
                          fill_method=fill_method, shape=(h, w), n_frames=n)
    flow_width = int(_number(flow_width, "flow_width", 16))
    gen = _Generated.resolve(prompt=prompt, model=model, models_dir=models_dir, seed=seed,
                             steps=steps, mode=mode, still=False)
    if mode == "remove" or (mode == "replace" and opts.content is None and gen.backend is None):
        clip = [first] + list(rest)
        for i, f in enumerate(clip[1:], 1):
            _check_frame(f, f"frame {i}", (h, w))
        opts.check_mask_frames(len(clip))
        fill = _FlowGuidedFill(clip, opts, flow_width=flow_width)
        info = gen.info(mode, size=(w, h), region=opts.region_bbox())
        info.update(frames=len(clip), filled_from_video=fill.filled_from_video)
        return fill.frames(), info
    if gen.backend is not None:
        opts = gen.prepare(opts, first)
    out_size = opts.output_size((w, h))
    info = gen.info(mode, size=out_size, region=opts.region_bbox())
    return _stream(first, rest, opts), info


def inpaint_image(
    image: np.ndarray,
    *,
    mode: str,
    box: tuple[float, float, float, float] | list[float] | None = None,
    mask: np.ndarray | None = None,
    feather_radius: float = 10,
    prompt: str | None = None,
    replacement=None,
    opacity: float | None = None,
    background=None,
    target_aspect=None,
    fill_method: str = "telea",
    model: str | None = None,
    models_dir: str | Path | None = None,
    seed: int = 0,
    steps: int = 30,
) -> tuple[np.ndarray, dict]:
    """Inpaint one picture, e.g. remove a logo or text from a cover art before it becomes a Canvas.

    Takes the arguments of :func:`inpaint_frames` (``mask`` is ``(height, width)``,
    ``replacement`` and ``background`` an image or a colour); ``remove`` fills the region with
    ``cv2.inpaint`` (``fill_method``) and fades it into the picture over ``feather_radius`` px;
    ``extend`` with a ``prompt`` generates the new margins when a local model is installed.

    Returns
    -------
    image : numpy.ndarray
        RGB uint8; larger than the input for ``extend``.
    info : dict
        As for :func:`inpaint_frames`.
    """
    _check_mode(mode)
    _check_frame(image, "image", None)
    if mask is not None and np.ndim(mask) != 2:
        raise BadInputError(f"mask of an image must be (height, width), got shape {np.shape(mask)}")
    for name, value in (("replacement", replacement), ("background", background)):
        if isinstance(value, np.ndarray) and value.ndim == 4 \
                or isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            raise BadInputError(f"{name} of an image must be one image or a colour, not frames")
    h, w = image.shape[:2]
    opts = _Options.parse(mode=mode, box=box, mask=mask, feather_radius=feather_radius,
                          prompt=prompt, replacement=replacement, opacity=opacity,
                          background=background, target_aspect=target_aspect,
                          fill_method=fill_method, shape=(h, w), n_frames=1)
    gen = _Generated.resolve(prompt=prompt, model=model, models_dir=models_dir, seed=seed,
                             steps=steps, mode=mode, still=True)
    if mode == "remove" or (mode == "replace" and opts.content is None and gen.backend is None):
        # one picture: no flow is measured, the region is inpainted from its surroundings
        out = next(_FlowGuidedFill([image], opts, flow_width=16).frames())
        return out, gen.info(mode, size=(w, h), region=opts.region_bbox())
    if gen.backend is not None:
        if mode == "extend":
            out = gen.extend(image, opts)
            return out, gen.info(mode, size=opts.output_size((w, h)), region=None)
        opts = gen.prepare(opts, image)
    out = _apply(image, 0, opts)
    return out, gen.info(mode, size=opts.output_size((w, h)), region=opts.region_bbox())


# ------------------------------------------------------------------------------------ validation
def _check_mode(mode) -> None:
    if not isinstance(mode, str) or mode not in MODES:
        raise BadInputError(f"unknown inpaint mode {mode!r}; use one of {', '.join(MODES)}")


def _check_frame(frame, what: str, shape: tuple[int, int] | None) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        got = (f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray)
               else type(frame).__name__)
        raise BadInputError(f"{what} must be an RGB uint8 array of shape (height, width, 3), got {got}")
    if shape is not None and frame.shape[:2] != shape:
        raise BadInputError(f"{what} is {frame.shape[1]}x{frame.shape[0]} but the clip's frames are "
                            f"{shape[1]}x{shape[0]}")


def _open_frames(frames) -> tuple[np.ndarray, Iterator[np.ndarray], int | None]:
    """The first frame (checked), an iterator over the rest, and the count when known."""
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            raise BadInputError("frames must be a sequence of frames (n_frames, height, width, 3); "
                                "use inpaint_image for one image")
        if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[-1] != 3 or len(frames) == 0:
            raise BadInputError("frames must be an RGB uint8 array of shape (n_frames, height, width, "
                                f"3) with at least one frame, got {frames.dtype} {frames.shape}")
        return frames[0], iter(frames[1:]), len(frames)
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise BadInputError(f"frames must be an iterable of RGB uint8 frames, got {type(frames).__name__}")
    n = len(frames) if hasattr(frames, "__len__") else None
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise BadInputError("frames is empty: there is nothing to inpaint")
    _check_frame(first, "frame 0", None)
    return first, it, n


def _number(value, what: str, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not lo <= float(value) <= hi:
        span = f"at least {lo:g}" if hi == math.inf else f"within [{lo:g}, {hi:g}]"
        raise BadInputError(f"{what} must be a number {span}, got {value!r}")
    return float(value)


def _colour(value) -> np.ndarray | None:
    """An RGB colour as float32 (3,), or None when ``value`` is not a colour."""
    if isinstance(value, str):
        s = value.strip().lstrip("#")
        if len(s) == 3:
            s = "".join(c * 2 for c in s)
        try:
            if len(s) != 6:
                raise ValueError
            return np.array([int(s[i:i + 2], 16) for i in (0, 2, 4)], np.float32)
        except ValueError:
            raise BadInputError(f"colour {value!r} must be '#rrggbb' or '#rgb'") from None
    if isinstance(value, (tuple, list)) and len(value) == 3 \
            and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    for v in value):
        c = np.array(value, np.float32)
        if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 255:
            raise BadInputError(f"colour {tuple(value)!r} must have r, g, b within [0, 255]")
        return c
    return None


class _Content:
    """Replacement or background content: a colour, an image, or one image per frame.

    ``at(t, w, h)`` gives frame ``t``'s content scaled (and centre-cropped) to cover ``w`` x ``h``,
    float32.
    """

    def __init__(self, value, what: str):
        self.what = what
        self.colour = _colour(value)
        self.images: list[np.ndarray] | np.ndarray | None = None
        self._fitted: dict = {}
        if self.colour is not None:
            return
        if isinstance(value, np.ndarray) and value.ndim == 3:
            _check_frame(value, what, None)
            self.images = [value]
            self.per_frame = False
        elif isinstance(value, np.ndarray) and value.ndim == 4 or isinstance(value, list):
            if len(value) == 0:
                raise BadInputError(f"{what} has no frames")
            for i, img in enumerate(value):
                _check_frame(img, f"{what} frame {i}", None)
            self.images = value
            self.per_frame = True
        else:
            raise BadInputError(f"{what} must be an RGB uint8 image, frames, or a colour "
                                f"((r, g, b) or '#rrggbb'), got {type(value).__name__}")

    def at(self, t: int, w: int, h: int) -> np.ndarray:
        if self.colour is not None:
            return np.broadcast_to(self.colour, (h, w, 3))
        if self.per_frame:
            if t >= len(self.images):
                raise BadInputError(f"{self.what} has {len(self.images)} frames but the clip has more")
            return _cover_fit(self.images[t], w, h)
        key = (w, h)
        if key not in self._fitted:  # a still image is fitted once per size, not once per frame
            self._fitted = {key: _cover_fit(self.images[0], w, h)}
        return self._fitted[key]


def _cover_fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih)
    rw, rh = max(w, round(iw * s)), max(h, round(ih * s))
    out = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x, y = (rw - w) // 2, (rh - h) // 2
    return out[y:y + h, x:x + w].astype(np.float32)


def _parse_aspect(value) -> float:
    try:
        if isinstance(value, str):
            sep = next((c for c in ":/x" if c in value), None)
            if sep is None:
                raise ValueError
            a, b = (float(p) for p in value.split(sep))
            ratio = a / b
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            ratio = float(value[0]) / float(value[1])
        elif isinstance(value, bool):
            raise ValueError
        else:
            ratio = float(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise BadInputError(f"target_aspect must be width:height ('9:16', (9, 16) or 0.5625), "
                            f"got {value!r}") from None
    if not math.isfinite(ratio) or not 0.1 <= ratio <= 10:
        raise BadInputError(f"target_aspect must be between 1:10 and 10:1, got {value!r}")
    return ratio


class _Options:
    """Checked arguments of one inpaint call and the masks they describe."""

    # the arguments each mode takes besides frames, mode, box/mask and feather_radius
    _TAKES = {"remove": set(), "replace": {"replacement", "prompt"},
              "blend": {"replacement", "opacity"}, "background": {"background", "prompt"},
              "extend": {"target_aspect", "prompt"}}

    @classmethod
    def parse(cls, *, mode, box, mask, feather_radius, prompt, replacement, opacity, background,
              target_aspect, fill_method, shape, n_frames) -> "_Options":
        self = cls()
        self.mode = mode
        self.static_geometry = None
        self.feather = _number(feather_radius, "feather_radius", 0.0, 10_000.0)
        given = {"prompt": prompt, "replacement": replacement, "opacity": opacity,
                 "background": background, "target_aspect": target_aspect}
        for name, value in given.items():
            if value is not None and name not in cls._TAKES[mode]:
                raise BadInputError(f"mode {mode!r} does not take {name}=")
        if fill_method not in FILL_METHODS:
            raise BadInputError(f"unknown fill_method {fill_method!r}; use one of "
                                f"{', '.join(FILL_METHODS)}")
        self.fill_method = FILL_METHODS[fill_method]
        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            raise BadInputError(f"prompt must be a non-empty string, got {prompt!r}")
        self.prompt = prompt
        self.opacity = 0.5 if opacity is None else _number(opacity, "opacity", 0.0, 1.0)
        self.content = None
        if mode in ("replace", "blend"):
            if replacement is not None and prompt is not None:
                raise BadInputError("give replacement= or prompt=, not both")
            if replacement is None and (mode == "blend" or prompt is None):
                needs = "replacement= (an image, frames or a colour)" + \
                        (" or prompt=" if mode == "replace" else "")
                raise BadInputError(f"mode {mode!r} needs {needs}")
            if replacement is not None:
                self.content = _Content(replacement, "replacement")
        if mode == "background" and background is not None:
            if prompt is not None:
                raise BadInputError("give background= or prompt=, not both")
            self.content = _Content(background, "background")
        self.aspect = None
        if mode == "extend":
            if box is not None or mask is not None:
                raise BadInputError("mode 'extend' grows the whole frame; it takes target_aspect=, "
                                    "not box= or mask=")
            if target_aspect is None:
                raise BadInputError("mode 'extend' needs target_aspect= (e.g. '9:16')")
            self.aspect = _parse_aspect(target_aspect)
            self.masks = None
            return self
        self.masks = self._region(box, mask, shape, n_frames)
        return self

    def _region(self, box, mask, shape, n_frames) -> np.ndarray:
        """Bool ``(h, w)`` (one region for every frame) or ``(n, h, w)``."""
        h, w = shape
        if (box is None) == (mask is None):
            raise BadInputError(f"mode {self.mode!r} needs exactly one of box= ([x0, y0, x1, y1]) "
                                f"or mask=" + ("; both were given" if box is not None else ""))
        if box is not None:
            x0, y0, x1, y1 = check_box(box, width=w, height=h)
            m = np.zeros((h, w), bool)
            m[int(math.floor(y0)):int(math.ceil(y1)), int(math.floor(x0)):int(math.ceil(x1))] = True
            return self._check_coverage(m)
        m = np.asarray(mask)
        if m.dtype.kind not in "biuf":
            raise BadInputError(f"mask must be a bool or numeric array, got {m.dtype}")
        if m.shape != (h, w) and (m.ndim != 3 or m.shape[1:] != (h, w)):
            raise BadInputError(f"mask must be (height, width) = ({h}, {w}) or (n_frames, {h}, {w}), "
                                f"got shape {m.shape}")
        if m.ndim == 3 and n_frames is not None and len(m) != n_frames:
            raise BadInputError(f"mask has {len(m)} frames but the clip has {n_frames}")
        m = m >= 0.5 if m.dtype.kind == "f" else m != 0
        if not m.any():
            raise BadInputError("mask is empty: it selects no pixel")
        return self._check_coverage(m)

    def _check_coverage(self, m: np.ndarray) -> np.ndarray:
        # remove (and replace by a prompt, which falls back to it) fills from outside the region
        fills = self.mode == "remove" or (self.mode == "replace" and self.prompt is not None)
        if fills and any(f.all() for f in (m if m.ndim == 3 else [m])):
            raise BadInputError("the region covers the whole frame: nothing is left to fill it from")
        return m

    def check_mask_frames(self, n: int) -> None:
        if self.masks is not None and self.masks.ndim == 3 and len(self.masks) != n:
            raise BadInputError(f"mask has {len(self.masks)} frames but the clip has {n}")

    def mask_at(self, t: int) -> np.ndarray:
        if self.masks.ndim == 2:
            return self.masks
        if t >= len(self.masks):
            raise BadInputError(f"mask has {len(self.masks)} frames but the clip has more")
        return self.masks[t]

    def region_bbox(self) -> list[int] | None:
        if self.masks is None:
            return None
        m = self.masks if self.masks.ndim == 2 else self.masks.any(axis=0)
        ys, xs = np.nonzero(m)
        return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the output for a (width, height) input."""
        if self.aspect is None:
            return size
        w, h = size
        if self.aspect < w / h:
            return w, max(h, round(w / self.aspect))
        return max(w, round(h * self.aspect)), h


# ------------------------------------------------------------------------------------ masks
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return mask.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def _centred_alpha(mask: np.ndarray, r: float) -> np.ndarray:
    """Blend weight: 1 at ``r`` px inside the region's edge, 0.5 on it, 0 at ``r`` px outside."""
    if r <= 0:
        return mask.astype(np.float32)
    u8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(u8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - u8, cv2.DIST_L2, 5)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)
    return _smoothstep((signed + r) / (2.0 * r)).astype(np.float32)


def _outer_alpha(mask: np.ndarray, r: float) -> np.ndarray:
    """Blend weight: 1 on the region, falling to 0 at ``r`` px outside it."""
    if r <= 0:
        return mask.astype(np.float32)
    outside = cv2.distanceTransform(1 - mask.astype(np.uint8), cv2.DIST_L2, 5)
    return (1.0 - _smoothstep((outside - 0.5) / r)).astype(np.float32)


# ------------------------------------------------------------------------------------ streaming modes
def _stream(first: np.ndarray, rest: Iterator[np.ndarray], opts: _Options) -> Iterator[np.ndarray]:
    shape = first.shape[:2]
    n = 0
    for t, frame in enumerate(itertools.chain([first], rest)):
        if t:
            _check_frame(frame, f"frame {t}", shape)
        yield _apply(frame, t, opts)
        n = t + 1
    opts.check_mask_frames(n)


def _apply(frame: np.ndarray, t: int, opts: _Options) -> np.ndarray:
    """One frame of ``replace`` (with content), ``blend``, ``background`` or ``extend``."""
    if opts.mode == "extend":
        return _extend(frame, opts)
    m = opts.mask_at(t)
    if not m.any():  # a per-frame mask may leave a frame alone
        return frame.copy()
    geometry = opts.static_geometry if opts.masks.ndim == 2 else None
    if geometry is None:
        geometry = _geometry(m, opts)
        if opts.masks.ndim == 2:  # one region for the whole clip: its weights are computed once
            opts.static_geometry = geometry
    rect, alpha, (bx0, by0, bx1, by1) = geometry
    cx0, cy0, cx1, cy1 = rect
    if opts.mode == "background":
        h, w = m.shape
        bg = opts.content.at(t, w, h) if opts.content is not None else _blurred_background(frame, m)
        return _composite(frame, bg, alpha, rect)
    # replace / blend: content fitted to the region's bounding box, its edges continued under the
    # feather
    content = opts.content.at(t, bx1 - bx0, by1 - by0)
    content = cv2.copyMakeBorder(np.ascontiguousarray(content), by0 - cy0, cy1 - by1, bx0 - cx0,
                                 cx1 - bx1, cv2.BORDER_REPLICATE)
    return _composite(frame, content, alpha, rect)


def _geometry(m: np.ndarray, opts: _Options):
    """Where a frame changes (x0, y0, x1, y1), the blend weight there, and the region's box."""
    h, w = m.shape
    if opts.mode == "background":
        return (0, 0, w, h), 1.0 - _centred_alpha(m, opts.feather), (0, 0, w, h)
    ys, xs = np.nonzero(m)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    pad = int(math.ceil(opts.feather)) + 1
    rect = (max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    alpha = _centred_alpha(m[rect[1]:rect[3], rect[0]:rect[2]], opts.feather)
    if opts.mode == "blend":
        alpha *= opts.opacity
    return rect, alpha, (x0, y0, x1, y1)


def _composite(frame: np.ndarray, content: np.ndarray, alpha: np.ndarray, rect) -> np.ndarray:
    """``frame`` with ``alpha * content + (1 - alpha) * frame`` inside ``rect`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = rect
    out = frame.copy()
    base = frame[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(base + a * (content - base) + 0.5, 0, 255).astype(np.uint8)
    return out


def _blurred_background(frame: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """The frame's background blurred without the foreground's colours bleeding into it.

    A normalised blur (blur of background pixels / blur of the background mask) at a quarter of
    the size; where the foreground is too large for any background to reach, the plain blur.
    """
    h, w = fg.shape
    sw, sh = max(8, w // 4), max(8, h // 4)
    small = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    keep = cv2.resize((~fg).astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, _BACKGROUND_BLUR * max(sw, sh))
    num = cv2.GaussianBlur(small * keep[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(keep, (0, 0), sigma)[..., None]
    plain = cv2.GaussianBlur(small, (0, 0), sigma)
    wgt = np.clip(den / 0.05, 0, 1)  # trust the normalised blur once enough background is near
    out = np.where(den > 1e-4, num / np.maximum(den, 1e-4), plain) * wgt + plain * (1 - wgt)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


def _extend(frame: np.ndarray, opts: _Options) -> np.ndarray:
    h, w = frame.shape[:2]
    W, H = opts.output_size((w, h))
    if (W, H) == (w, h):
        return frame.copy()
    ox, oy = (W - w) // 2, (H - h) // 2
    canvas = cv2.copyMakeBorder(frame, oy, H - h - oy, ox, W - w - ox, cv2.BORDER_REFLECT)
    weights = _extend_weights(w, h, W, H, ox, oy, opts.feather)
    out = np.zeros((H, W, 3), np.float32)
    for sigma, wgt in weights:
        out += _blur(canvas, sigma) * wgt[..., None]
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    out[oy:oy + h, ox:ox + w] = frame  # the original, pixel for pixel
    return out


@functools.lru_cache(maxsize=8)
def _extend_weights(w, h, W, H, ox, oy, feather) -> list[tuple[float, np.ndarray]]:
    """Per-pixel weights of blur levels 0, 1, 2, 4 ... px: the blur grows with the distance from
    the original's edge (linear in log-sigma between two neighbouring levels). Cached: every frame
    of a clip shares them."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    dx = np.maximum(np.maximum(ox - xs, xs - (ox + w - 1)), 0)
    dy = np.maximum(np.maximum(oy - ys, ys - (oy + h - 1)), 0)
    sigma = np.maximum(np.hypot(dx, dy) - feather, 0) * _EXTEND_BLUR
    u = np.where(sigma <= 1, sigma, 1 + np.log2(np.maximum(sigma, 1)))  # level position
    top = int(math.ceil(u.max()))
    levels = [0.0] + [2.0 ** (k - 1) for k in range(1, top + 1)]
    out = []
    for k, s in enumerate(levels):
        wgt = np.clip(1 - np.abs(u - k), 0, 1).astype(np.float32)
        if wgt.any():
            out.append((s, wgt))
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones on a downscaled copy (the result is smooth anyway)."""
    if sigma <= 0:
        return img.astype(np.float32)
    if sigma <= 4:
        return cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    h, w = img.shape[:2]
    d = sigma / 2
    small = cv2.resize(img, (max(1, round(w / d)), max(1, round(h / d))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small.astype(np.float32), (0, 0), sigma / d)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ------------------------------------------------------------------------------------ remove
def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` (h, w, c) sampled at float positions, borders repeated; float32 (N, c)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(y.astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    fx = (x - x0)[:, None].astype(np.float32)
    fy = (y - y0)[:, None].astype(np.float32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _push_pull(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` (h, w, c) with the pixels outside ``known`` interpolated from the known ones.

    Push-pull (Gortler et al., "The Lumigraph", 1996): known values are averaged down a pyramid
    until every cell has some, then each level's unknown cells take the bilinear upsampling of
    the level below. Exact for constant fields and smooth elsewhere; cheap for any shape of gap.
    """
    h, w, c = values.shape
    v = values * known[..., None]
    wt = known.astype(np.float32)
    levels = [(v, wt)]
    while wt.min() <= 0 and min(wt.shape) > 1:
        size = (max(1, (wt.shape[1] + 1) // 2), max(1, (wt.shape[0] + 1) // 2))
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], c)
        wt = cv2.resize(wt, size, interpolation=cv2.INTER_AREA)
        levels.append((v, wt))
    v, wt = levels[-1]
    if wt.max() <= 0:
        return np.zeros_like(values)
    est = np.where(wt[..., None] > 0, v / np.maximum(wt, 1e-12)[..., None],
                   v.sum(axis=(0, 1)) / wt.sum())
    for v, wt in reversed(levels[:-1]):
        up = cv2.resize(est, (wt.shape[1], wt.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(wt.shape[0], wt.shape[1], c)
        a = np.clip(wt * 2.0, 0, 1)[..., None]  # a cell half covered by known pixels is trusted
        est = a * (v / np.maximum(wt, 1e-12)[..., None]) + (1 - a) * up
    return est.astype(np.float32)


def _smooth_offsets(diff: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A smooth (h, w, 3) field through the values of ``diff`` at ``known`` pixels.

    Averaged onto a coarse grid, interpolated there (push-pull) and scaled back up: it carries
    slow changes of light and colour, not the texture of the residual.
    """
    h, w = known.shape
    if not known.any():
        return np.zeros((h, w, 3), np.float32)
    f = max(1.0, max(h, w) / _ANCHOR_CELLS)
    sw, sh = max(2, round(w / f)), max(2, round(h / f))
    k = known.astype(np.float32)
    num = cv2.resize(diff * k[..., None], (sw, sh), interpolation=cv2.INTER_AREA)
    den = cv2.resize(k, (sw, sh), interpolation=cv2.INTER_AREA)
    val = _push_pull(num / np.maximum(den, 1e-6)[..., None], den > 0.02)
    val = cv2.GaussianBlur(val, (0, 0), 1.0)
    return cv2.resize(val, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 3)


def _log_gain(a: np.ndarray, b: np.ndarray, flow: np.ndarray, unreliable: np.ndarray) -> np.ndarray:
    """Per-channel log of how much brighter ``b`` is than ``a``, ``flow`` aligning ``a`` to ``b``.

    The median ratio of aligned pixels away from the region: robust to the few pixels where the
    content itself changes, exact for a gain applied to the whole frame.
    """
    h, w = a.shape[:2]
    moved = warp(frame=b, flow=flow).astype(np.float32)
    fx = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    fy = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    ok = ~unreliable & (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    a = a.astype(np.float32)
    out = np.zeros(3, np.float32)
    for c in range(3):
        sel = ok & (a[..., c] > 16) & (moved[..., c] > 16)  # dark pixels carry no usable ratio
        if sel.sum() >= 32:
            out[c] = np.log(np.median(moved[..., c][sel] / a[..., c][sel]))
    return out


class _FlowGuidedFill:
    """``remove`` for a clip held in memory (the algorithm is in the module docstring).

    Everything per pixel lives in the crop ``(x0, y0, x1, y1)``: the bounding box of the grown
    region plus its ring over all frames. ``__init__`` measures the flows and runs both tracing
    sweeps; :meth:`frames` fills the frames in order (fallback fill, re-anchoring, feather).
    """

    def __init__(self, frames: list[np.ndarray], opts: _Options, *, flow_width: int):
        self.clip = frames
        self.opts = opts
        n = len(frames)
        h, w = frames[0].shape[:2]
        self.size = (w, h)
        self.ring = max(4, int(math.ceil(opts.feather)) + 1)
        masks = opts.masks if opts.masks.ndim == 3 else opts.masks[None]
        union = masks.any(axis=0) if len(masks) > 1 else masks[0]
        ys, xs = np.nonzero(_dilate(union, _GROW + self.ring + 1))
        self.crop = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        x0, y0, x1, y1 = self.crop
        # the crop has room for both dilations (or ends where the frame ends); one hole for the
        # whole clip, or one per frame
        self.holes = np.stack([_dilate(m[y0:y1, x0:x1], _GROW) for m in masks])
        self.works = np.stack([_dilate(m, self.ring) for m in self.holes])
        self.grid = np.mgrid[y0:y1, x0:x1].astype(np.float32)[::-1]  # (2, ch, cw): x, y

        # per-channel log brightness of each frame relative to the first: traced colours are
        # rescaled from their frame's light to the current one's (beat pulses, fades)
        self.log_gain = np.zeros((n, 3), np.float32)
        self.fwd: list[np.ndarray] = []  # flow t -> t+1 (flow resolution, crop only)
        self.bwd: list[np.ndarray | None] = [None]  # flow t -> t-1
        if n > 1:
            self._measure_flows(flow_width)
        self.later = self._sweep(+1)
        self.earlier = self._sweep(-1)
        hole_px = sum(int(self._hole(t).sum()) for t in range(n))
        seen = sum(int((self._hole(t) & ((self.later[t][1] > 0) | (self.earlier[t][1] > 0))).sum())
                   for t in range(n))
        self.filled_from_video = seen / max(hole_px, 1)

    def _hole(self, t: int) -> np.ndarray:
        return self.holes[0] if len(self.holes) == 1 else self.holes[t]

    def _work(self, t: int) -> np.ndarray:
        return self.works[0] if len(self.works) == 1 else self.works[t]

    # -------------------------------------------------------------- 1. flow of the surroundings
    def _measure_flows(self, flow_width: int) -> None:
        w, h = self.size
        fw = min(w, flow_width)
        fh = max(1, round(h * fw / w))
        sx, sy = fw / w, fh / h
        x0, y0, x1, y1 = self.crop
        # the crop at flow resolution, with a margin for bilinear sampling
        lx0 = max(0, int(math.floor((x0 + 0.5) * sx - 0.5)) - 2)
        ly0 = max(0, int(math.floor((y0 + 0.5) * sy - 0.5)) - 2)
        lx1 = min(fw, int(math.ceil((x1 + 0.5) * sx - 0.5)) + 3)
        ly1 = min(fh, int(math.ceil((y1 + 0.5) * sy - 0.5)) + 3)
        # the flow is measured in a window around the crop: the region's surroundings carry its
        # motion, and a small region in a large frame costs a small part of the frame's flow
        margin = max(_FLOW_CONTEXT, (lx1 - lx0) // 2, (ly1 - ly0) // 2)
        wx0, wy0 = max(0, lx0 - margin), max(0, ly0 - margin)
        wx1, wy1 = min(fw, lx1 + margin), min(fh, ly1 + margin)
        # where each full-resolution crop pixel falls in the stored flow (cv2.resize's convention)
        self.flow_maps = ((self.grid[0] + 0.5) * sx - 0.5 - lx0, (self.grid[1] + 0.5) * sy - 0.5 - ly0)
        self.flow_scale = np.array([1 / sx, 1 / sy], np.float32)

        def low_hole(t):
            full = np.zeros((h, w), np.float32)
            full[y0:y1, x0:x1] = self._hole(t)
            small = cv2.resize(full, (fw, fh), interpolation=cv2.INTER_AREA)[wy0:wy1, wx0:wx1]
            return _dilate(small > 0.01, 1)

        def prefilled(t, hole):
            # a smooth, texture-less fill: the region's own content must not pull the flow
            small = cv2.resize(self.clip[t], (fw, fh), interpolation=cv2.INTER_AREA)[wy0:wy1, wx0:wx1]
            filled = _push_pull(small.astype(np.float32), ~hole)
            return np.where(hole[..., None], np.clip(filled + 0.5, 0, 255).astype(np.uint8), small)

        prev_hole = low_hole(0)
        prev = prefilled(0, prev_hole)
        for t in range(len(self.clip) - 1):
            hole = prev_hole if len(self.holes) == 1 else low_hole(t + 1)
            cur = prefilled(t + 1, hole)
            unreliable = _dilate(prev_hole | hole, _FLOW_MARGIN)
            for src, dst, store in ((prev, cur, self.fwd), (cur, prev, self.bwd)):
                flow = optical_flow(source=src, target=dst, flow_width=max(16, wx1 - wx0))
                if store is self.fwd:
                    self.log_gain[t + 1] = self.log_gain[t] + _log_gain(prev, cur, flow, unreliable)
                flow = _push_pull(flow, ~unreliable)
                store.append(np.ascontiguousarray(flow[ly0 - wy0:ly1 - wy0, lx0 - wx0:lx1 - wx0]))
            prev, prev_hole = cur, hole

    def _flow_at(self, low: np.ndarray) -> np.ndarray:
        """A stored flow at every full-resolution crop pixel, in full-resolution pixels."""
        f = cv2.remap(low, self.flow_maps[0], self.flow_maps[1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
        return f * self.flow_scale

    # -------------------------------------------------------------- 2. tracing the hidden background
    def _sweep(self, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame: the colour (crop, uint8) of the nearest frame in direction ``step`` that
        shows each working pixel's background, and how many frames away it is (0: none does).

        A pixel whose flow lands inside the next frame's region continues along the traces of
        the four pixels around its landing point, each shifted to the exact landing point, and
        keeps the one that leaves the region soonest. Every answer is checked at its exact
        position in its frame: where it is still inside the region there (sub-pixel shifts add
        up along a trace), it is continued from that frame's own traces, a few hops at most.
        """
        n = len(self.clip)
        w, h = self.size
        x0, y0, x1, y1 = self.crop
        ch, cw = y1 - y0, x1 - x0
        srcs = np.full((n, ch, cw), -1, np.int32)
        disps = np.zeros((n, ch, cw, 2), np.float32)
        out: list = [None] * n
        X, Y = self.grid
        for t in (range(n - 1, -1, -1) if step > 0 else range(n)):
            s = t + step
            src, disp = srcs[t], disps[t]
            work = self._work(t)
            if 0 <= s < n:
                f = self._flow_at(self.fwd[t] if step > 0 else self.bwd[t])
                qx, qy = X + f[..., 0], Y + f[..., 1]
                inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
                ix = np.rint(qx).astype(np.int64) - x0
                iy = np.rint(qy).astype(np.int64) - y0
                in_crop = inside & (ix >= 0) & (ix < cw) & (iy >= 0) & (iy < ch)
                covered = np.zeros((ch, cw), bool)
                covered[in_crop] = self._hole(s)[iy[in_crop], ix[in_crop]]
                visible = work & inside & ~covered
                src[visible] = s
                disp[visible] = f[visible]
                sel = work & covered
                qxs, qys = qx[sel], qy[sel]
                best = np.full(qxs.shape, -1, np.int64)
                bx, by = qxs.copy(), qys.copy()
                fx = np.floor(qxs).astype(np.int64) - x0
                fy = np.floor(qys).astype(np.int64) - y0
                for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                    nx, ny = np.clip(fx + ox, 0, cw - 1), np.clip(fy + oy, 0, ch - 1)
                    k = srcs[s][ny, nx].astype(np.int64)
                    k, px, py = self._verify(k, qxs + disps[s][ny, nx, 0],
                                             qys + disps[s][ny, nx, 1], srcs, disps)
                    better = (k >= 0) & ((best < 0) | (np.abs(k - t) < np.abs(best - t)))
                    best[better], bx[better], by[better] = k[better], px[better], py[better]
                src[sel] = best
                disp[sel, 0] = bx - X[sel]
                disp[sel, 1] = by - Y[sel]
            colour = np.zeros((ch, cw, 3), np.uint8)
            for k in np.unique(src[src >= 0]):
                sel = src == k
                sample = _bilinear(self.clip[k], X[sel] + disp[sel, 0], Y[sel] + disp[sel, 1])
                sample *= np.exp(self.log_gain[t] - self.log_gain[k])
                colour[sel] = np.clip(sample + 0.5, 0, 255).astype(np.uint8)
            out[t] = (colour, np.where(src >= 0, np.abs(src - t), 0).astype(np.int16))
        return out

    def _verify(self, k, px, py, srcs, disps):
        """Traces ending at (px, py) in frames ``k``, checked there and continued while hidden."""
        w, h = self.size
        x0, y0, x1, y1 = self.crop
        ch, cw = y1 - y0, x1 - x0
        per_frame = len(self.holes) > 1
        px, py = px.copy(), py.copy()
        for _ in range(_MAX_HOPS):
            ok = (k >= 0) & (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
            k = np.where(ok, k, -1)
            jx = np.rint(px).astype(np.int64) - x0
            jy = np.rint(py).astype(np.int64) - y0
            hidden = ok & (jx >= 0) & (jx < cw) & (jy >= 0) & (jy < ch)
            hidden[hidden] = self.holes[k[hidden] if per_frame else 0, jy[hidden], jx[hidden]]
            if not hidden.any():
                return k, px, py
            kh, hy, hx = k[hidden], jy[hidden], jx[hidden]
            px[hidden] += disps[kh, hy, hx, 0]
            py[hidden] += disps[kh, hy, hx, 1]
            k[hidden] = srcs[kh, hy, hx]
        k[hidden] = -1
        return k, px, py

    def _traced(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``'s traced background (crop, float32) and where there is one; the two
        directions are blended by their distance in time (the nearer weighs more)."""
        cl, dl = self.later[t]
        ce, de = self.earlier[t]
        dl = dl.astype(np.float32)[..., None]
        de = de.astype(np.float32)[..., None]
        both = (dl > 0) & (de > 0)
        wl = np.where(both, de / np.maximum(dl + de, 1), (dl > 0).astype(np.float32))
        colour = cl.astype(np.float32) * wl + ce.astype(np.float32) * (1 - wl)
        return colour, ((dl > 0) | (de > 0))[..., 0]

    # -------------------------------------------------------------- 3-4. fill, re-anchor, feather
    def frames(self) -> Iterator[np.ndarray]:
        x0, y0, x1, y1 = self.crop
        w, h = self.size
        prev_out = alpha = None
        for t, frame in enumerate(self.clip):
            real = frame[y0:y1, x0:x1].astype(np.float32)
            hole, work = self._hole(t), self._work(t)
            if alpha is None or len(self.holes) > 1:
                alpha = _outer_alpha(hole, self.opts.feather)[..., None]
            ring = work & ~hole
            traced, seen = self._traced(t)
            fill = real.copy()
            if (seen & hole).any():
                anchor = _smooth_offsets(real - traced, seen & ring)
                use = seen & work
                fill[use] = traced[use] + anchor[use]
            carried = np.zeros_like(hole)
            unseen = hole & ~seen
            if prev_out is not None and unseen.any():
                # the previous output (its fill included) carried along the flow to this frame
                f = self._flow_at(self.bwd[t])
                qx, qy = self.grid[0] + f[..., 0], self.grid[1] + f[..., 1]
                inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
                carried = unseen & inside
                sel = carried | (ring & inside)
                moved = np.zeros_like(real)
                moved[sel] = _bilinear(prev_out, qx[sel], qy[sel])
                anchor = _smooth_offsets(real - moved, ring & inside)
                fill[carried] = moved[carried] + anchor[carried]
            fresh = unseen & ~carried
            if fresh.any():
                base = np.clip(fill + 0.5, 0, 255).astype(np.uint8)
                fill = cv2.inpaint(base, fresh.astype(np.uint8), _INPAINT_RADIUS,
                                   self.opts.fill_method).astype(np.float32)
            out = frame.copy()
            out[y0:y1, x0:x1] = np.clip(real + alpha * (fill - real) + 0.5, 0, 255).astype(np.uint8)
            prev_out = out
            yield out


# ------------------------------------------------------------------------------------ generated content
def _load_pipeline(folder: str):
    """The diffusers inpainting pipeline in ``folder`` and its lock (:func:`beatframe.models.diffusion.load_local_pipeline`)."""
    from beatframe.models.diffusion import load_local_pipeline

    return load_local_pipeline(folder, "AutoPipelineForInpainting")


def check_box(box, *, width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` as ``(x0, y0, x1, y1)`` if it is a region of a ``width`` x ``height`` frame; a
    BadInputError naming the problem otherwise (callers check it before any frame is decoded)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise BadInputError(f"box must be four numbers [x0, y0, x1, y1], got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise BadInputError(f"box {list(box)!r} must have x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise BadInputError(f"box {list(box)!r} reaches outside the {width}x{height} frame "
                            f"(need 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height})")
    return x0, y0, x1, y1


class _Generated:
    """Whether a prompt is honoured by a local diffusers model, and the generating itself."""

    def __init__(self):
        self.backend = None
        self.folder_name = None
        self.reason = None
        self.prompt = None
        self.seed = 0
        self.steps = 30

    @classmethod
    def resolve(cls, *, prompt, model, models_dir, seed, steps, mode, still) -> "_Generated":
        self = cls()
        if prompt is None:
            if model is not None:
                raise BadInputError("model= is used only with prompt=")
            return self
        self.prompt = prompt
        self.seed = int(_number(seed, "seed", 0, 2 ** 63 - 1))
        self.steps = int(_number(steps, "steps", 1, 1000))
        if mode == "extend" and not still:
            self.reason = ("generated extensions are made for still images only (a clip would "
                           "freeze them); the frames got the CPU mirror continuation")
            return self
        name = model if model is not None else DEFAULT_INPAINT_MODEL
        folder, where = model_folder(name, models_dir=models_dir, kind="inpainting")
        if folder is None:
            if model is not None:
                raise BadInputError(f"inpainting model {model!r}: {where}")
            fallback = {"replace": "the region was filled from its surroundings (remove)",
                        "background": "the background is the clip's own, blurred",
                        "extend": "the margins continue the edges as a blurred mirror"}[mode]
            self.reason = f"{where}; the prompt was not used: {fallback}"
            return self
        self.backend = _load_pipeline(str(folder))
        self.folder_name = str(name)
        return self

    def info(self, mode: str, *, size, region) -> dict:
        return {"mode": mode, "backend": "diffusers" if self.backend is not None else "cpu",
                "model": self.folder_name, "reason": self.reason, "size": [int(size[0]), int(size[1])],
                "region": region}

    def _generate(self, image: np.ndarray, repaint: np.ndarray) -> np.ndarray:
        """``image`` with the ``repaint`` pixels generated from the prompt (same size, uint8)."""
        import torch
        from PIL import Image

        pipe, lock = self.backend
        h, w = image.shape[:2]
        s = min(1.0, _GEN_MAX_SIDE / max(h, w))
        gw, gh = max(64, round(w * s / 8) * 8), max(64, round(h * s / 8) * 8)
        img = Image.fromarray(cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA))
        msk = Image.fromarray(cv2.resize(repaint.astype(np.uint8) * 255, (gw, gh),
                                         interpolation=cv2.INTER_NEAREST))
        with lock:
            result = pipe(prompt=self.prompt, image=img, mask_image=msk, height=gh, width=gw,
                          num_inference_steps=self.steps, output_type="np",
                          generator=torch.Generator("cpu").manual_seed(self.seed)).images[0]
        result = (np.clip(np.asarray(result, np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
        return cv2.resize(result, (w, h), interpolation=cv2.INTER_CUBIC)

    def prepare(self, opts: _Options, reference: np.ndarray) -> _Options:
        """``replace``/``background`` with a prompt: generate once on ``reference`` (the first
        frame) and use the result as the content of every frame."""
        m = opts.mask_at(0)
        if opts.mode == "replace":
            generated = self._generate(reference, m)
            ys, xs = np.nonzero(m)
            opts.content = _Content(np.ascontiguousarray(
                generated[ys.min():ys.max() + 1, xs.min():xs.max() + 1]), "replacement")
        else:
            keep = m if opts.feather <= 0 else (_centred_alpha(m, opts.feather) >= 0.999)
            opts.content = _Content(self._generate(reference, ~keep), "background")
        return opts

    def extend(self, image: np.ndarray, opts: _Options) -> np.ndarray:
        """A still extended with generated margins, over the CPU continuation they start from."""
        h, w = image.shape[:2]
        base = _extend(image, opts)
        H, W = base.shape[:2]
        ox, oy = (W - w) // 2, (H - h) // 2
        original = np.zeros((H, W), bool)
        original[oy:oy + h, ox:ox + w] = True
        generated = self._generate(base, ~original)
        alpha = 1.0 - _outer_alpha(original, opts.feather)
        return _composite(base, generated.astype(np.float32), alpha, (0, 0, W, H))
