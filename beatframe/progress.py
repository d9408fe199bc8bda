"""Progress reporting from plain functions and tasks to whoever is watching.

Tasks call :func:`report` with a stage name and a fraction; the CLI installs a terminal progress
bar with :func:`reporting`, and the Canvas flow mirrors stages into a Prefect progress artifact.
With no reporter installed, reports cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Reporter = Callable[[str, float], None]
_reporters: list[Reporter] = []


def report(stage: str, fraction: float) -> None:
    for reporter in list(_reporters):
        reporter(stage, fraction)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    _reporters.append(reporter)
    try:
        yield
    finally:
        _reporters.remove(reporter)
