"""Batched inference: requests that reach one pipeline at the same time run as one batched call,
as many as fit a memory budget.

What it is for: a music video's shots, a catalog's renders and the API's runner all ask one
loaded diffusion pipeline (one per process, :func:`beatframe.models.wan_loader.shared_pipeline`) for
footage, from several threads. One call can denoise several videos of the same size and length
at once, which keeps a large GPU busy instead of running one small batch after another.
:class:`Batcher` coalesces them: the first request waits a short window for others of the same
*shape* (every argument of the call but the prompt and the seed), then runs up to
``capacity(shape)`` of them together; requests of other shapes wait for the next call. Calls are
serial (a pipeline's scheduler keeps per-call state), so nothing else is lost by waiting.

How many fit, :func:`items_that_fit`: the memory one item of a shape costs is measured on the
first call of that shape (the peak above what was allocated before it, per item), and a later
call takes as many items as fit the budget (the device's free memory, or a set budget, less a
reserve). A call of several items that runs out of memory is split in halves, each retried,
and the measured cost raised, so packing never fails a request that fits alone.

Each item keeps its own seeded noise, so an item's frames do not depend on what it was batched
with beyond floating-point rounding (batched kernels sum in another order: a level of 255 at
most, here and there).

Plain Python and threads; no Prefect, no torch (the caller measures memory); reads no
environment variables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

#: share of the budget left free for what a per-item estimate misses (allocator fragmentation)
RESERVE = 0.1


def items_that_fit(*, budget_bytes: float, per_item_bytes: float | None, limit: int,
                   reserve: float = RESERVE) -> int:
    """How many items of a measured cost a budget holds: at least 1, at most ``limit``.

    Parameters
    ----------
    budget_bytes : float
        Memory the batch may use on top of what is allocated now.
    per_item_bytes : float or None
        The measured peak cost of one item; None while unmeasured (then 1, which measures it).
    limit : int
        The most items a call takes whatever the memory.
    reserve : float
        Share of the budget kept free.

    Returns
    -------
    int
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    if not 0.0 <= reserve < 1.0:
        raise ValueError(f"reserve must be in [0, 1), got {reserve!r}")
    if per_item_bytes is None or per_item_bytes <= 0:
        return 1
    return max(1, min(limit, int(budget_bytes * (1.0 - reserve) // per_item_bytes)))


@dataclass
class _Request:
    shape: Hashable
    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Coalesces concurrent requests of the same shape into batched calls of ``run_batch``.

    Parameters
    ----------
    run_batch : callable
        ``run_batch(shape, items) -> results``, one result per item, in order.
    capacity : callable
        ``capacity(shape) -> int``: the most items of that shape one call may take now.
    is_out_of_memory : callable
        Tells an out-of-memory error (a batch of several is then split in halves).
    on_out_of_memory : callable, optional
        ``on_out_of_memory(shape, items)``: told about a batch that did not fit, before it is
        split (to raise the measured cost).
    window_seconds : float
        How long a call waits for more requests of its shape when its capacity allows more.
    """

    def __init__(self, run_batch: Callable[[Hashable, list], list], *, capacity: Callable[[Hashable], int],
                 is_out_of_memory: Callable[[BaseException], bool],
                 on_out_of_memory: Callable[[Hashable, int], None] | None = None,
                 window_seconds: float = 0.25) -> None:
        if window_seconds < 0:
            raise ValueError(f"window_seconds must not be negative, got {window_seconds!r}")
        self._run_batch = run_batch
        self._capacity = capacity
        self._is_oom = is_out_of_memory
        self._on_oom = on_out_of_memory
        self._window = float(window_seconds)
        self._cv = threading.Condition()
        self._pending: list[_Request] = []
        self._leading = False
        #: sizes of the calls made, in order (for stats and tests)
        self.batch_sizes: list[int] = []

    def submit(self, shape: Hashable, item: Any) -> Any:
        """Run ``item`` in a call with whatever else of its ``shape`` is waiting; its result.

        Raises what the call raised for it.
        """
        request = _Request(shape=shape, item=item)
        with self._cv:
            self._pending.append(request)
            self._cv.notify_all()
        while True:
            with self._cv:
                while not request.done and self._leading:
                    self._cv.wait()
                if request.done:
                    break
                self._leading = True
            try:
                self._lead()
            finally:
                with self._cv:
                    self._leading = False
                    self._cv.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _lead(self) -> None:
        """Take the oldest request's shape, wait for company, run one call of them."""
        with self._cv:
            shape = self._pending[0].shape
            try:
                capacity = max(1, int(self._capacity(shape)))
            except Exception:  # noqa: BLE001 - not knowing the room is no reason to fail the call
                capacity = 1
            if capacity > 1:
                deadline = self._pending[0].arrived + self._window
                while (len(self._same(shape)) < capacity
                       and (left := deadline - time.monotonic()) > 0):
                    self._cv.wait(timeout=left)
            batch = self._same(shape)[:capacity]
            for request in batch:
                self._pending.remove(request)
        self._execute(shape, batch)

    def _same(self, shape: Hashable) -> list[_Request]:
        return [r for r in self._pending if r.shape == shape]

    def _execute(self, shape: Hashable, batch: list[_Request]) -> None:
        try:
            self.batch_sizes.append(len(batch))
            results = self._run_batch(shape, [r.item for r in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} returned {len(results)} results")
        except BaseException as exc:  # noqa: BLE001 - handed to every request of the call
            if len(batch) > 1 and self._is_oom(exc):
                if self._on_oom is not None:
                    self._on_oom(shape, len(batch))
                half = len(batch) // 2
                self._execute(shape, batch[:half])
                self._execute(shape, batch[half:])
                return
            for request in batch:
                request.error, request.done = exc, True
            return
        for request, result in zip(batch, results):
            request.result, request.done = result, True
