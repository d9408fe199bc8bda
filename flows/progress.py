"""Run progress as the Prefect UI shows it: a progress artifact advanced stage by stage.

Stages have weights; within a stage, fractions reported by tasks through
:func:`beatframe.progress.report` move the artifact too (in steps of at least 5 %, so a fast
cached run makes few API calls), and every report is relayed to local listeners such as the
CLI's progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from beatframe import progress


class StageProgress:
    def __init__(self, weights: dict[str, float], *, key: str) -> None:
        self._weights = weights
        self._total = float(sum(weights.values()))
        self._done = 0.0
        self._last_percent = 0.0
        self._lock = threading.Lock()
        self._artifact_id = create_progress_artifact(progress=0.0, key=key,
                                                     description="Render progress by stage")

    def _update(self, percent: float, stage: str) -> None:
        with self._lock:
            if percent < 100.0 and percent - self._last_percent < 5.0:
                return
            self._last_percent = percent
        update_progress_artifact(artifact_id=self._artifact_id, progress=round(percent, 1),
                                 description=f"stage: {stage}")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        weight = self._weights[name]
        base = self._done

        def within(stage: str, fraction: float) -> None:
            if stage.split(":")[0] == name:
                self._update(100.0 * (base + weight * fraction) / self._total, name)

        progress.report(name, 0.0)
        with progress.reporting(within):
            yield
        self._done += weight
        progress.report(name, 1.0)
        self._update(100.0 * self._done / self._total, name)
