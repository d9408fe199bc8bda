"""Which generator renders a render's clips: the user's choice resolved against this machine.

A choice is a name or a JSON object with options:

- ``auto`` (the default): a Wan model when there is a GPU and local weights that fit (chosen by
  :func:`beatframe.models.orchestrator.select_model` for the clip's length, size and prompt), else the CPU
  generator (``procedural``, or ``cover-art`` when the render animates an image);
- ``procedural`` / ``cover-art``: the CPU generators;
- ``wan-t2v`` / ``wan-i2v``: Wan text- or image-to-video (:mod:`beatframe.models.wan`), the catalog's
  default model for the task unless ``model`` names a folder under ``BEATFRAME_MODELS_DIR``.

JSON options (all optional besides ``name``): ``model``, ``prompt`` (steers every shot; the
section's mood and the template are added, :mod:`beatframe.models.prompting`), ``negative_prompt``,
``guidance_scale`` (1-20, default 7.5) and ``steps`` (10-150, default 50) as the reference API
bounds them (:mod:`beatframe.music.generation`), ``max_area`` (pixels a rendered frame may have),
``cache`` (``first-block`` or ``pyramid``), ``offload``, ``device``, and how clips share batched
calls (:mod:`beatframe.models.batching`): ``max_batch`` (1-8) and ``vram_budget_gb``. For example::

    {"name": "wan-t2v", "prompt": "ink in water", "steps": 30, "cache": "first-block"}

:func:`resolve_backend` returns a small plain dict (the *backend*): the flows pass it to the
generate tasks, whose cache keys and manifests record it. Resolving ``auto`` imports torch only
when weights are installed (to ask CUDA for free memory), so a CPU-only render stays light.

No environment variables are read here: callers pass ``models_dir``, the folder of local model
weights (the settings' ``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from beatframe.infra.errors import BadInputError
from beatframe.infra.extras import GEN_INSTALL, gen_available, require_gen
from beatframe.music.limits import DEFAULT_GUIDANCE, DEFAULT_STEPS, GUIDANCE_RANGE, STEPS_RANGE

CPU_GENERATORS = ("procedural", "cover-art")
WAN_GENERATORS = ("wan-t2v", "wan-i2v")
NAMES = ("auto", *CPU_GENERATORS, *WAN_GENERATORS)
_OPTIONS = {"name", "model", "prompt", "negative_prompt", "guidance_scale", "steps", "max_area", "cache",
            "offload", "device", "max_batch", "vram_budget_gb"}
#: options that only pack calls into batches (beatframe.models.batching): they never change the frames
PACKING_OPTIONS = ("max_batch", "vram_budget_gb")
_TYPES = {"model": str, "prompt": str, "negative_prompt": str, "device": str, "offload": bool}


def parse_choice(choice: str | dict | None) -> dict:
    """A generator choice as a dict with ``name`` and the options given (see the module docstring)."""
    if choice is None or choice == "":
        return {"name": "auto"}
    if isinstance(choice, str) and choice.lstrip().startswith("{"):
        try:
            choice = json.loads(choice)
        except ValueError as exc:
            raise BadInputError(f"the generator is not valid JSON: {exc}") from None
    if isinstance(choice, str):
        choice = {"name": choice}
    if not isinstance(choice, dict):
        raise BadInputError(f"a generator is a name or a JSON object, got {type(choice).__name__}")
    unknown = sorted(set(choice) - _OPTIONS)
    if unknown:
        raise BadInputError(f"unknown generator options {unknown}; known: {', '.join(sorted(_OPTIONS))}")
    if choice.get("name") not in NAMES:
        raise BadInputError(f"unknown generator {choice.get('name')!r}; choose one of {', '.join(NAMES)}")
    _check_number(choice, "guidance_scale", GUIDANCE_RANGE, whole=False)
    _check_number(choice, "steps", STEPS_RANGE, whole=True)
    _check_number(choice, "max_area", (16 * 16, 4096 * 4096), whole=True)
    _check_number(choice, "max_batch", (1, 8), whole=True)
    _check_number(choice, "vram_budget_gb", (0.5, 1024), whole=False)
    for key, kind in _TYPES.items():
        if choice.get(key) is not None and not isinstance(choice[key], kind):
            raise BadInputError(f"generator {key} must be {kind.__name__ if kind is not str else 'text'},"
                                f" got {type(choice[key]).__name__}")
    if choice.get("cache") not in (None, "first-block", "pyramid"):
        raise BadInputError(f"generator cache must be first-block or pyramid, got {choice['cache']!r}")
    return dict(choice)


def check_runnable_here(choice: str | dict | None) -> dict:
    """:func:`parse_choice`, for a render that runs in this process: a Wan generator asked for by
    name also needs the generative extra here (one line naming it, before any work starts)."""
    choice = parse_choice(choice)
    if choice["name"] in WAN_GENERATORS:
        require_gen(f"the {choice['name']} generator")
    return choice


def _check_number(choice: dict, key: str, bounds: tuple, *, whole: bool) -> None:
    value = choice.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
        raise BadInputError(f"generator {key} must be a {'whole ' if whole else ''}number, got {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise BadInputError(f"generator {key} must be within {bounds[0]:g}-{bounds[1]:g}, got {value!r}")


def resolution_of(size: tuple[int, int]) -> str:
    """The reference resolution name whose short side covers ``size``'s (4k at most)."""
    from beatframe.models.model_catalog import RESOLUTIONS

    short = min(size)
    for name, (_, height) in RESOLUTIONS.items():
        if height >= short or name == "4k":
            return name
    return "4k"


def resolve_backend(choice: str | dict | None, *, task: str, size: tuple[int, int], seconds: float,
                    models_dir: str | Path | None, prompt: str | None = None) -> dict:
    """The backend of a render (a plain dict, see the module docstring).

    Parameters
    ----------
    choice : str or dict or None
        The user's choice (``None``: ``auto``).
    task : {"t2v", "i2v"}
        ``i2v`` when the render starts from an image (a cover).
    size : tuple of int
        The output frame, ``(width, height)``.
    seconds : float
        How long the longest clip lasts (planning the model's frame count).
    models_dir : path or None
        Where model folders are (the settings' ``models_dir``); None when none is configured.
    prompt : str, optional
        What the picture should show, for the orchestrator's complexity score.

    Raises
    ------
    BadInputError
        An unknown generator or option, a Wan generator for the other task, or (from the loader,
        when the render starts) a missing model folder.
    """
    choice = parse_choice(choice)
    name = choice["name"]
    cpu = "cover-art" if task == "i2v" else "procedural"
    if name in CPU_GENERATORS:
        return {"generator": cpu, "compute": "cpu", "reason": "asked for"}
    if name == "auto":
        return _auto(choice, task=task, size=size, seconds=seconds, prompt=prompt, models_dir=models_dir, cpu=cpu)
    kind = name.split("-", 1)[1]
    if kind != task:
        raise BadInputError(f"{name} does not fit this render: it "
                            + ("starts from an image; give a cover or use wan-t2v" if kind == "i2v"
                               else "draws from a prompt alone; without the cover use wan-t2v, with it wan-i2v"))
    require_gen(f"the {name} generator")
    from beatframe.models.wan_loader import DEFAULT_MODELS

    return _wan_backend(choice, name=name, folder=choice.get("model") or DEFAULT_MODELS[kind], offload=None,
                        max_area=None, reason="asked for")


def _auto(choice: dict, *, task: str, size, seconds: float, prompt: str | None, models_dir, cpu: str) -> dict:
    from beatframe.models import orchestrator
    from beatframe.models.model_catalog import get_model

    installed = [m for m in orchestrator.installed_models(models_dir) if get_model(m).folder is not None
                 and task in get_model(m).tasks]
    if not installed:
        return {"generator": cpu, "compute": "cpu",
                "reason": f"no Wan weights for {task} under BEATFRAME_MODELS_DIR ({models_dir or 'not set'})"}
    if not gen_available():
        return {"generator": cpu, "compute": "cpu",
                "reason": f"Wan weights are installed but the generative extra is not ({GEN_INSTALL})"}
    pick = orchestrator.select_model(prompt=choice.get("prompt") or prompt or "abstract music visual",
                                     duration_seconds=max(seconds, 0.1), resolution=resolution_of(size), task=task,
                                     available=installed)
    if pick.generator in CPU_GENERATORS:
        return {"generator": cpu, "compute": "cpu", "reason": pick.reason}
    spec = get_model(pick.recommended_model)
    width, height = pick.render_size
    return _wan_backend(choice, name=pick.generator, folder=spec.folder, offload=pick.offload,
                        max_area=width * height, reason=pick.reason)


def _wan_backend(choice: dict, *, name: str, folder: str, offload: bool | None, max_area: int | None,
                 reason: str) -> dict:
    from beatframe.models.model_catalog import CATALOG
    from beatframe.models.wan_loader import DEFAULT_MAX_AREA

    spec = next((s for s in CATALOG if s.folder == folder), None)
    return {
        "generator": name, "model": folder, "catalog_id": spec.id if spec else None,
        "license": spec.license if spec else None,
        "native_fps": spec.fps if spec else 16, "max_native_frames": spec.max_frames if spec else 81,
        "vram_gb": spec.vram_gb if spec else None,
        "prompt": choice.get("prompt"), "negative_prompt": choice.get("negative_prompt"),
        "guidance_scale": float(choice.get("guidance_scale", DEFAULT_GUIDANCE)),
        "steps": int(choice.get("steps", DEFAULT_STEPS)),
        "max_area": int(choice.get("max_area") or max_area or DEFAULT_MAX_AREA),
        "cache": choice.get("cache"), "offload": bool(choice.get("offload", offload or False)),
        "device": choice.get("device", "auto"), "compute": _compute(choice.get("device", "auto")), "reason": reason,
        **{key: choice[key] for key in PACKING_OPTIONS if choice.get(key) is not None},
    }


def frames_fields(backend: dict) -> dict:
    """The backend without what cannot change its frames (the reason it was chosen, batch
    packing): what cache keys record."""
    return {k: v for k, v in backend.items() if k != "reason" and k not in PACKING_OPTIONS}


def _compute(device: str) -> str:
    """Where a Wan backend computes, as the cost log prices it: ``cuda`` or ``cpu``."""
    if device == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def weights_revision(backend: dict, *, models_dir: str | Path | None) -> str | None:
    """A fingerprint of the backend's model folder under ``models_dir`` (``None`` for CPU
    generators): the configs' contents and every weight file's name and size, so replaced weights
    invalidate cached clips without reading gigabytes."""
    if backend.get("generator") not in WAN_GENERATORS:
        return None
    from beatframe.models.wan_loader import resolve_model_folder

    folder = resolve_model_folder(model=backend["model"], models_dir=models_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes() if path.suffix == ".json" else str(path.stat().st_size).encode())
    return digest.hexdigest()[:16]


#: The draft of a Wan render: the fewest steps the reference API allows, on a quarter of 480p.
DRAFT_STEPS, DRAFT_MAX_AREA = STEPS_RANGE[0], 240 * 416


def draft_backend(backend: dict) -> dict | None:
    """A fast, low-step, low-resolution variant of a diffusion backend, rendered first so a preview
    shows within seconds while the final render runs; None for the CPU generators (their own
    clip is the preview: they finish about as fast)."""
    if backend.get("generator") not in WAN_GENERATORS:
        return None
    return {**backend, "steps": min(backend["steps"], DRAFT_STEPS),
            "max_area": min(backend["max_area"], DRAFT_MAX_AREA), "reason": "the draft of the render"}
