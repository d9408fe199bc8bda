"""Loading Wan text-to-video and image-to-video pipelines (diffusers) from local folders only.

Weights live in folders under the models directory its callers pass (the settings'
``BEATFRAME_MODELS_DIR``; nothing here reads the environment), each laid out as
``DiffusionPipeline.save_pretrained`` writes it (``model_index.json`` plus one sub-folder per
component), for example::

    $BEATFRAME_MODELS_DIR/Wan2.1-T2V-1.3B-Diffusers/
        model_index.json  transformer/  vae/  text_encoder/  tokenizer/  scheduler/

Nothing is ever downloaded: folders are checked for completeness before loading (a missing or
half-copied folder is a :class:`~beatframe.infra.errors.BadInputError` naming the folder and what is
missing) and loaded with ``local_files_only=True``.

Runtime choices (:class:`WanOptions`): bfloat16 on CUDA (the VAE and CLIP image encoder stay in
float32, as Wan's authors run them) and float32 on the CPU; optional model CPU offload (needs
``accelerate`` and a CUDA device) and VAE tiling; PyTorch SDPA attention unless xformers is
importable on CUDA; an optional step cache from ``diffusers.hooks`` (First Block Cache or
Pyramid Attention Broadcast) and optional regional ``torch.compile`` of the transformer blocks.

Loaded pipelines are shared per process (:func:`shared_pipeline`): video shots render in
parallel threads, and one pipeline holds its scheduler's state, so each carries a lock that a
caller holds for the whole denoising call. :func:`oom_step_down` turns a CUDA out-of-memory error
into the next, cheaper :class:`WanOptions`.

Plain Python: no Prefect, no HTTP. Environment: ``BEATFRAME_MODELS_DIR`` only.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from beatframe.infra.errors import BadInputError
from beatframe.infra.extras import require_gen
from beatframe.models.diffusion import model_parts
from beatframe.models.model_catalog import DEFAULT_WAN_FOLDERS

Kind = Literal["t2v", "i2v"]

#: the diffusers pipeline class a model folder must declare, per kind
PIPELINE_CLASSES = {"t2v": "WanPipeline", "i2v": "WanImageToVideoPipeline"}
#: the folder under BEATFRAME_MODELS_DIR used when a generator names no model
DEFAULT_MODELS = DEFAULT_WAN_FOLDERS
CACHES = ("first-block", "pyramid")
ATTENTION = ("auto", "sdpa", "xformers")

#: Wan 2.1's 480p frame (480x832): the default pixel budget of a rendered frame
DEFAULT_MAX_AREA = 480 * 832
#: the most videos one denoising call generates together
MAX_BATCH = 8
#: :func:`oom_step_down` never goes below this many pixels a frame
MIN_AREA = 128 * 128

_REQUIRED = ("text_encoder", "tokenizer", "vae", "scheduler")
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer.model")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


# ------------------------------------------------------------------------------ model folders
def resolve_model_folder(*, model: str, models_dir: Path | str | None) -> Path:
    """The folder of ``model`` under the models directory.

    Parameters
    ----------
    model : str
        A relative path under the models directory (``Wan2.1-T2V-1.3B-Diffusers`` or
        ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``); never absolute and never leaving the directory.
    models_dir : path or None
        The models directory (the settings' ``models_dir``); None when none is configured.

    Returns
    -------
    pathlib.Path
        The folder (not yet checked, see :func:`check_model_folder`).

    Raises
    ------
    BadInputError
        When no models directory is configured or ``model`` is not a plain relative path.
    """
    if models_dir is None:
        raise BadInputError("BEATFRAME_MODELS_DIR is not set; Wan generators load weights only "
                            "from local folders under it")
    return Path(models_dir).joinpath(*model_parts(model, kind="Wan"))


def _weights_problems(folder: Path, component: str) -> list[str]:
    """What is missing for a torch module component (config plus whole weights)."""
    sub = folder / component
    problems = []
    if not (sub / "config.json").is_file():
        problems.append(f"{component}/config.json")
    indexes = sorted(p for p in sub.glob("*.index.json") if p.is_file())
    if indexes:
        for index in indexes:
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                problems.append(f"{component}/{index.name} (unreadable shard index)")
                continue
            problems += [f"{component}/{s}" for s in sorted(shards) if not (sub / s).is_file()]
    elif not any(p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES) for p in sub.iterdir()):
        problems.append(f"{component}/ weights (*.safetensors or *.bin)")
    return problems


def check_model_folder(*, folder: Path | str, kind: Kind) -> dict[str, Any]:
    """Check that ``folder`` holds a complete Wan pipeline of ``kind``; returns its model index.

    Parameters
    ----------
    folder : path
        A folder written by ``DiffusionPipeline.save_pretrained`` (or a Hub snapshot copied
        there): ``model_index.json`` and one sub-folder per component.
    kind : {"t2v", "i2v"}
        ``t2v`` wants a ``WanPipeline``, ``i2v`` a ``WanImageToVideoPipeline`` (or Wan2.2
        TI2V's ``WanPipeline`` with ``expand_timesteps``, which does both).

    Returns
    -------
    dict
        The parsed ``model_index.json``.

    Raises
    ------
    BadInputError
        Naming the folder and everything missing: the folder itself, ``model_index.json``, a
        component's folder, config, tokenizer files or weight shards.
    """
    if kind not in PIPELINE_CLASSES:
        raise ValueError(f"kind must be one of {', '.join(PIPELINE_CLASSES)}, got {kind!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"Wan model folder {folder} does not exist (copy the weights there; "
                            "nothing is downloaded at run time)")
    index_path = folder / "model_index.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise BadInputError(f"Wan model folder {folder} is incomplete: model_index.json is "
                            "missing (not a diffusers pipeline folder)") from None
    except (OSError, ValueError) as e:
        raise BadInputError(f"Wan model folder {folder}: model_index.json is unreadable ({e})") from None
    if not isinstance(index, dict):
        raise BadInputError(f"Wan model folder {folder}: model_index.json is not a JSON object")
    want = PIPELINE_CLASSES[kind]
    found = index.get("_class_name")
    # Wan2.2 TI2V-5B is one WanPipeline folder (expand_timesteps) that also runs image-to-video
    ti2v = found == "WanPipeline" and index.get("expand_timesteps") is True
    if found != want and not (kind == "i2v" and ti2v):
        raise BadInputError(f"Wan model folder {folder} holds a {found!r}, not the {want} that "
                            f"wan-{kind} needs")

    def declared(name: str) -> bool:
        entry = index.get(name)
        return isinstance(entry, list) and len(entry) == 2 and entry[0] is not None

    problems = [f"{name} (not declared in model_index.json)" for name in _REQUIRED
                if not declared(name)]
    if not declared("transformer") and not declared("transformer_2"):
        problems.append("transformer (not declared in model_index.json)")
    for name in sorted(k for k in index if not k.startswith("_") and declared(k)):
        sub = folder / name
        if not sub.is_dir():
            problems.append(f"{name}/")
        elif name == "scheduler":
            if not (sub / "scheduler_config.json").is_file():
                problems.append("scheduler/scheduler_config.json")
        elif name == "tokenizer":
            if not (sub / "tokenizer_config.json").is_file():
                problems.append("tokenizer/tokenizer_config.json")
            if not any((sub / f).is_file() for f in _TOKENIZER_FILES):
                problems.append(f"tokenizer/ vocabulary ({' or '.join(_TOKENIZER_FILES)})")
        elif name == "image_processor":
            if not (sub / "preprocessor_config.json").is_file():
                problems.append("image_processor/preprocessor_config.json")
        else:
            problems += _weights_problems(folder, name)
    if problems:
        raise BadInputError(f"Wan model folder {folder} is incomplete: missing "
                            f"{', '.join(problems)}")
    return index


# ---------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class WanOptions:
    """How a Wan pipeline runs (none of these choose the model or the prompt).

    Attributes
    ----------
    device : str
        ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    offload : bool
        Model CPU offload (each component moves to the GPU only while it runs); CUDA only.
    vae_tiling : bool
        Decode (and encode) video in overlapping tiles: far less memory, output nearly equal.
    attention : {"auto", "sdpa", "xformers"}
        ``auto``: xformers when it is importable on CUDA, PyTorch SDPA otherwise.
    cache : {"first-block", "pyramid"} or None
        A diffusers step cache: First Block Cache (skips the remaining transformer blocks when
        the first block's residual barely changed since the last step) or Pyramid Attention
        Broadcast (reuses self-attention outputs over middle timesteps). Either trades a little
        fidelity for speed.
    cache_threshold : float
        First Block Cache's relative-change threshold (higher: more reuse).
    compile : bool
        ``torch.compile`` the transformer's repeated blocks (regional compilation): slow first
        call, faster later ones.
    max_area : int
        Pixel budget of a generated frame; the frame keeps the output's aspect ratio.
    max_batch : int or None
        The most videos one denoising call generates together (:mod:`beatframe.models.batching`): None
        packs as many as fit the memory budget on CUDA (up to :data:`MAX_BATCH`) and one at a
        time on the CPU, where a batch saves little.
    vram_budget_gb : float or None
        GPU memory (GB) the pipeline may hold in all, weights included, when packing a batch;
        None: what the device has free.
    """

    device: str = "auto"
    offload: bool = False
    vae_tiling: bool = False
    attention: str = "auto"
    cache: str | None = None
    cache_threshold: float = 0.05
    compile: bool = False
    max_area: int = DEFAULT_MAX_AREA
    max_batch: int | None = None
    vram_budget_gb: float | None = None

    def __post_init__(self) -> None:
        dev = str(self.device)
        if dev not in ("auto", "cpu", "cuda") and not (dev.startswith("cuda:") and dev[5:].isdigit()):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION)}, got {self.attention!r}")
        if self.cache is not None and self.cache not in CACHES:
            raise ValueError(f"cache must be one of {', '.join(CACHES)} or None, got {self.cache!r}")
        if not 0.0 < float(self.cache_threshold) < 1.0:
            raise ValueError(f"cache_threshold must be in (0, 1), got {self.cache_threshold!r}")
        if int(self.max_area) < 16 * 16:
            raise ValueError(f"max_area must be at least 256 pixels, got {self.max_area!r}")
        if self.offload and dev == "cpu":
            raise ValueError("offload moves components between the CPU and a CUDA device; it "
                             "cannot be used with device='cpu'")
        if self.max_batch is not None and not 1 <= int(self.max_batch) <= MAX_BATCH:
            raise ValueError(f"max_batch must be within 1-{MAX_BATCH} or None, got {self.max_batch!r}")
        if self.vram_budget_gb is not None and not float(self.vram_budget_gb) > 0:
            raise ValueError(f"vram_budget_gb must be positive or None, got {self.vram_budget_gb!r}")


def resolve_device(*, options: WanOptions):
    """The torch device and dtype ``options`` run on (bfloat16 on CUDA, float32 on the CPU)."""
    import torch

    dev = options.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {options.device!r} asked for, but torch sees no CUDA device")
    if options.offload and dev == "cpu":
        raise ValueError("offload needs a CUDA device, and torch sees none")
    device = torch.device(dev)
    return device, (torch.bfloat16 if device.type == "cuda" else torch.float32)


def _xformers_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("xformers") is not None


# ------------------------------------------------------------------------------- the pipeline
class BlockWorkCounter:
    """Measures how much transformer-block work a step cache skipped.

    Every ``nn.Linear`` inside a transformer's blocks runs once per call of that transformer
    unless a cache reuses its block's (or its attention's) output, so the reuse rate is
    ``1 - linear calls / sum(transformer calls x its linears)``. diffusers' caches expose no
    counters of their own; this counts with plain forward pre-hooks.

    Parameters
    ----------
    transformers : list of torch.nn.Module
        The pipeline's transformers (Wan 2.2 A14B has two experts).
    """

    def __init__(self, transformers) -> None:
        import torch

        self._linears: list[int] = []
        self._calls: list[int] = []
        self.linear_calls = 0
        # the hooks live as long as the pipeline: it is counted for as long as it exists
        for k, transformer in enumerate(transformers):
            linears = [m for m in transformer.blocks.modules() if isinstance(m, torch.nn.Linear)]
            self._linears.append(len(linears))
            self._calls.append(0)
            transformer.register_forward_pre_hook(self._on_call(k))
            for m in linears:
                m.register_forward_pre_hook(self._on_linear)

    def _on_call(self, k: int):
        def hook(module, args) -> None:
            self._calls[k] += 1
        return hook

    def _on_linear(self, module, args) -> None:
        self.linear_calls += 1

    def reset(self) -> None:
        self._calls = [0] * len(self._calls)
        self.linear_calls = 0

    def reuse_rate(self) -> float | None:
        """Fraction of block work skipped since the last :meth:`reset` (None before any call)."""
        expected = sum(c * n for c, n in zip(self._calls, self._linears))
        if expected == 0:
            return None
        return max(0.0, 1.0 - self.linear_calls / expected)


@dataclass
class LoadedPipeline:
    """A loaded Wan pipeline and what it runs on.

    Attributes
    ----------
    pipe : diffusers.DiffusionPipeline
        ``WanPipeline`` or ``WanImageToVideoPipeline``.
    folder : pathlib.Path
        Where it was loaded from.
    kind : {"t2v", "i2v"}
    options : WanOptions
    device : torch.device
        Where it computes (the offload device when offloading).
    dtype : torch.dtype
        The transformer's dtype.
    attention : str
        The attention backend in use (``sdpa`` or ``xformers``).
    counter : BlockWorkCounter or None
        Present when a step cache is on (and the blocks are not compiled).
    lock : threading.Lock
        Held for a whole denoising call: a pipeline's scheduler keeps per-call state.
    """

    pipe: Any
    folder: Path
    kind: str
    options: WanOptions
    device: Any
    dtype: Any
    attention: str
    counter: BlockWorkCounter | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: coalesces concurrent calls into batches (:mod:`beatframe.models.batching`; made by :mod:`beatframe.models.wan`)
    batcher: Any = None
    #: per call shape: the measured peak GPU memory of one video, and the most a call of that
    #: shape may take after one ran out of memory
    item_bytes: dict = dataclasses.field(default_factory=dict)
    shape_limits: dict = dataclasses.field(default_factory=dict)

    @property
    def size_multiple(self) -> int:
        """Frame sides must be multiples of this (VAE downscale x transformer patch)."""
        transformer = self.pipe.transformer if self.pipe.transformer is not None \
            else self.pipe.transformer_2
        return int(self.pipe.vae_scale_factor_spatial) * int(transformer.config.patch_size[1])

    @property
    def frames_multiple(self) -> int:
        """Frame counts must be ``k * frames_multiple + 1`` (the VAE's temporal downscale)."""
        return int(self.pipe.vae_scale_factor_temporal)


def _apply_cache(pipe, transformer, options: WanOptions) -> None:
    from diffusers.hooks import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig

    if options.cache == "first-block":
        config = FirstBlockCacheConfig(threshold=float(options.cache_threshold))
    else:
        # reuse self-attention every other step over the middle of the schedule, where the
        # picture changes slowest (the PAB paper's ranges for video DiTs)
        config = PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=lambda: pipe.current_timestep)
    transformer.enable_cache(config)


def load_pipeline(*, folder: Path | str, kind: Kind, options: WanOptions) -> LoadedPipeline:
    """Load a Wan pipeline from a local folder, configured by ``options``.

    Parameters
    ----------
    folder : path
        A complete pipeline folder (checked with :func:`check_model_folder` first).
    kind : {"t2v", "i2v"}
    options : WanOptions

    Returns
    -------
    LoadedPipeline

    Raises
    ------
    BadInputError
        When the folder is missing, incomplete or of the other kind.
    ValueError
        When ``options`` ask for something this machine lacks (CUDA, xformers).
    """
    require_gen(f"Wan {kind}")
    folder = Path(folder)
    check_model_folder(folder=folder, kind=kind)
    device, dtype = resolve_device(options=options)
    import torch
    from diffusers import WanImageToVideoPipeline, WanPipeline

    attention = options.attention
    if attention == "auto":
        attention = "xformers" if device.type == "cuda" and _xformers_importable() else "sdpa"
    if attention == "xformers" and (device.type != "cuda" or not _xformers_importable()):
        raise ValueError("attention='xformers' needs a CUDA device and the xformers package")
    cls = WanPipeline if kind == "t2v" else WanImageToVideoPipeline
    dtypes = {"default": dtype, "vae": torch.float32, "image_encoder": torch.float32}
    pipe = cls.from_pretrained(folder, local_files_only=True, dtype=dtypes)
    pipe.set_progress_bar_config(disable=True)
    if options.vae_tiling:
        pipe.vae.enable_tiling()
    transformers = [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]
    for transformer in transformers:
        # diffusers dispatches attention through torch SDPA ("native") unless told otherwise
        if attention == "xformers":
            transformer.set_attention_backend("xformers")
        if options.cache is not None:
            _apply_cache(pipe, transformer, options)
        if options.compile:
            transformer.compile_repeated_blocks()
    counter = None
    if options.cache is not None and not options.compile:
        # Python counting hooks inside compiled blocks would break their graphs
        counter = BlockWorkCounter(transformers)
    if options.offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return LoadedPipeline(pipe=pipe, folder=folder, kind=kind, options=options, device=device,
                          dtype=dtype, attention=attention, counter=counter)


_SHARED: dict[tuple, LoadedPipeline] = {}
_SHARED_LOCK = threading.Lock()


def _shared_key(folder: Path, kind: str, options: WanOptions) -> tuple:
    # max_area only sizes the frames a caller asks for, max_batch and vram_budget_gb only how
    # calls are packed (each call's own, beatframe.models.wan): the loaded weights are the same
    runtime = dataclasses.replace(options, max_area=DEFAULT_MAX_AREA, max_batch=None, vram_budget_gb=None)
    return (str(folder.resolve()), kind, runtime)


def shared_pipeline(*, folder: Path | str, kind: Kind, options: WanOptions) -> LoadedPipeline:
    """:func:`load_pipeline`, loaded once per process for the same folder, kind and options."""
    folder = Path(folder)
    key = _shared_key(folder, kind, options)
    with _SHARED_LOCK:
        loaded = _SHARED.get(key)
        if loaded is None:
            loaded = _SHARED[key] = load_pipeline(folder=folder, kind=kind, options=options)
        return loaded


def release_pipeline(*, loaded: LoadedPipeline) -> None:
    """Forget a shared pipeline and hand its GPU memory back (after an out-of-memory error)."""
    with _SHARED_LOCK:
        for key in [k for k, v in _SHARED.items() if v is loaded]:
            del _SHARED[key]
    with loaded.lock:  # not while a render is using it
        loaded.pipe = None
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ out of memory
def is_out_of_memory(*, error: BaseException) -> bool:
    """True for a CUDA out-of-memory error (``torch.OutOfMemoryError`` or the older
    ``RuntimeError('CUDA out of memory ...')`` some kernels still raise)."""
    try:
        import torch
    except ImportError:  # without torch nothing ran out of GPU memory
        return False

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def oom_step_down(*, error: BaseException, options: WanOptions,
                  min_area: int = MIN_AREA) -> WanOptions | None:
    """The next, cheaper options to retry with after an out-of-memory error.

    First model CPU offload with VAE tiling (same frames, less memory), then half the pixels
    a frame (each side divided by sqrt 2) until ``min_area``.

    Parameters
    ----------
    error : BaseException
        The error the render raised; must be an out-of-memory error (:func:`is_out_of_memory`).
    options : WanOptions
        The options that ran out of memory.
    min_area : int
        The fewest pixels a frame may be stepped down to.

    Returns
    -------
    WanOptions or None
        The options to retry with, or None when nothing cheaper is left.

    Raises
    ------
    ValueError
        When ``error`` is not an out-of-memory error (retrying smaller would not help).
    """
    if not is_out_of_memory(error=error):
        raise ValueError(f"not an out-of-memory error: {type(error).__name__}: {error}")
    if not options.offload and options.device != "cpu":
        return dataclasses.replace(options, offload=True, vae_tiling=True)
    if not options.vae_tiling:
        return dataclasses.replace(options, vae_tiling=True)
    half = int(options.max_area) // 2
    if half < int(min_area):
        return None
    return dataclasses.replace(options, max_area=half)


def render_size(*, size: tuple[int, int], max_area: int, multiple: int) -> tuple[int, int]:
    """The generated frame size for an output of ``size``: the output's aspect ratio within
    ``max_area`` pixels, sides multiples of ``multiple`` (at least one multiple each).

    Parameters
    ----------
    size : tuple of int
        Output ``(width, height)``.
    max_area : int
        Pixel budget.
    multiple : int
        Side granularity (16 for Wan: VAE 8 x patch 2).

    Returns
    -------
    tuple of int
        ``(width, height)``.
    """
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0 or multiple <= 0 or max_area <= 0:
        raise ValueError(f"render_size needs positive values, got size={size!r}, "
                         f"max_area={max_area!r}, multiple={multiple!r}")
    scale = math.sqrt(max_area / (w * h))
    rw = max(multiple, int(w * scale) // multiple * multiple)
    rh = max(multiple, int(h * scale) // multiple * multiple)
    return rw, rh
