"""Local diffusers pipelines shared by the post-production models (inpainting, video-to-video):
loaded once per process from a folder (``local_files_only``: nothing is downloaded), float16 on
CUDA and float32 on the CPU, each with a lock so one denoising call runs at a time.

No environment variables are read here (callers resolve ``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path, PurePosixPath

from beatframe.infra.errors import BadInputError
from beatframe.infra.extras import require_gen


def model_parts(name: str, *, kind: str) -> tuple[str, ...]:
    """The parts of a model's folder name under BEATFRAME_MODELS_DIR; a BadInputError when it is
    not a plain relative name (absolute, empty, or leaving the directory with ``..``)."""
    text = str(name).strip() if isinstance(name, str) else ""
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or PurePosixPath(text).is_absolute() or Path(text).is_absolute() or ".." in parts:
        raise BadInputError(f"{kind} model {name!r} must be a folder name under "
                            "BEATFRAME_MODELS_DIR (no absolute paths, no '..')")
    return parts


def model_folder(name: str, *, models_dir: str | Path | None,
                 kind: str) -> tuple[Path | None, str | None]:
    """The diffusers model folder ``name`` under ``models_dir``, or None and why there is none.

    ``name`` must be a relative folder name (no absolute path, no ``..``): a BadInputError says so.
    The reason names the folder relative to BEATFRAME_MODELS_DIR, never the server's path.
    """
    parts = model_parts(name, kind=kind)
    if models_dir is None:
        return None, "BEATFRAME_MODELS_DIR is not set"
    folder = Path(models_dir).joinpath(*parts)
    if (folder / "model_index.json").is_file():
        return folder, None
    return None, (f"no {kind} model in BEATFRAME_MODELS_DIR/{'/'.join(parts)} "
                  "(model_index.json missing)")


@functools.lru_cache(maxsize=4)
def load_local_pipeline(folder: str, auto_class: str):
    """``(pipeline, lock)`` of the diffusers ``auto_class`` (e.g. ``AutoPipelineForInpainting``) in
    ``folder``; kept for the life of the process, since loading takes far longer than a call."""
    require_gen(f"the diffusers model in {Path(folder).name}")
    import diffusers
    import torch

    cuda = torch.cuda.is_available()
    pipe = getattr(diffusers, auto_class).from_pretrained(
        folder, local_files_only=True, dtype=torch.float16 if cuda else torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.to("cuda" if cuda else "cpu")
    return pipe, threading.Lock()
