"""Run progress as the Prefect UI shows it: a progress artifact advanced stage by stage.

Stages have weights. Tasks report through :func:`beatframe.infra.progress.report`, either a stage's
own fraction (``"generate"``) or a part's (``"generate: shot 3"``, one of ``parts`` equal parts);
parts are summed into the stage's fraction, which is re-reported to local listeners such as the
CLI's progress bar. The artifact is only ever written from the flow's own thread (Prefect's
client must not be driven from task worker threads while the flow waits on them): reports from
other threads are kept and written by :meth:`StageProgress.flush`, which the flow calls while it
waits. Updates are in steps of at least 5 %, so a fast cached run makes few API calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from beatframe.infra import progress


class StageProgress:
    def __init__(self, weights: dict[str, float], *, key: str) -> None:
        self._weights = weights
        self._total = float(sum(weights.values()))
        self._done = 0.0
        self._written = 0.0
        self._pending: tuple[float, str] | None = None
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._artifact_id = create_progress_artifact(progress=0.0, key=key,
                                                     description="Render progress by stage")

    def _update(self, percent: float, stage: str) -> None:
        with self._lock:
            self._pending = (percent, stage)
        if threading.get_ident() == self._owner:
            self.flush()

    def flush(self) -> None:
        """Write the latest progress to the artifact (call from the flow's thread)."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is None or (pending[0] < 100.0 and pending[0] - self._written < 5.0):
                return
            self._written = pending[0]
        update_progress_artifact(artifact_id=self._artifact_id, progress=round(pending[0], 1),
                                 description=f"stage: {pending[1]}")

    @contextmanager
    def stage(self, name: str, *, parts: int = 1) -> Iterator[None]:
        weight = self._weights[name]
        base = self._done
        part_fractions: dict[str, float] = {}
        lock = threading.Lock()

        def within(stage: str, fraction: float) -> None:
            head, _, part = stage.partition(":")
            if head != name:
                return
            if part:
                with lock:
                    part_fractions[part.strip()] = fraction
                    fraction = min(1.0, sum(part_fractions.values()) / max(1, parts))
                progress.report(name, fraction)  # the stage's own fraction, for local listeners
                return
            self._update(100.0 * (base + weight * fraction) / self._total, name)

        progress.report(name, 0.0)
        with progress.reporting(within):
            yield
        self._done += weight
        progress.report(name, 1.0)
        self._update(100.0 * self._done / self._total, name)
