"""Device slots: diffusion generators run inside a strict Prefect global concurrency limit per host
and device, so the tasks of every flow on a machine (shots of a video, the renders of a catalog,
the API's runner) never ask one GPU for more memory than it has.

The limit is ``gpu:<host>`` with one slot per whole GB of the GPU's memory, and a Wan render
occupies as many slots as its model needs (the catalog's figure, offloaded or resident; at least
one, at most all). On a machine without CUDA a diffusion render takes the single slot of
``cpu:<host>``: one at a time, since each holds its pipeline in RAM. CPU generators need no slot.
The limit is created (or resized) on first use; ``strict=True`` makes a missing or unreachable
limit an error rather than silently unlimited.

No environment variables are read here (Prefect's client reads ``PREFECT_API_URL``).
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from beatframe.models.backend import WAN_GENERATORS

#: How long a slot's lease lasts between renewals (Prefect renews it while the task runs).
LEASE_SECONDS = 300.0


def _device_capacity(device: str) -> tuple[str, int]:
    """``(kind, slots)``: ``("gpu", whole GB of memory)`` for CUDA, else ``("cpu", 1)``."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        index = torch.device(device).index if device.startswith("cuda:") else torch.cuda.current_device()
        return "gpu", max(1, int(torch.cuda.get_device_properties(index).total_memory // 10**9))
    return "cpu", 1


def slot_request(backend: dict) -> tuple[str, int, int] | None:
    """``(limit name, capacity, slots to occupy)`` for a backend, or None when it needs no slot."""
    if backend.get("generator") not in WAN_GENERATORS:
        return None
    kind, capacity = _device_capacity(str(backend.get("device") or "auto"))
    need = backend.get("vram_gb") if kind == "gpu" else None
    occupy = capacity if kind == "cpu" else min(capacity, max(1, math.ceil(need or capacity)))
    return f"{kind}:{socket.gethostname()}", capacity, occupy


@contextmanager
def device_slot(backend: dict) -> Iterator[None]:
    """Hold the backend's device slots while the body runs (nothing for CPU generators)."""
    request = slot_request(backend)
    if request is None:
        yield
        return
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    name, capacity, occupy = request
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, capacity)
    with concurrency(name, occupy=occupy, strict=True, lease_duration=LEASE_SECONDS):
        yield
