"""Local diffusers pipelines shared by the post-production models (inpainting, video-to-video):
loaded once per process from a folder (``local_files_only``: nothing is downloaded), float16 on
CUDA and float32 on the CPU, each with a lock so one denoising call runs at a time.

No environment variables are read here (callers resolve ``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from beatframe.infra.extras import require_gen


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
