"""Progress reporting from plain functions and tasks to whoever is watching.

Tasks call :func:`report` with a stage name and a fraction; the CLI installs a terminal progress
bar with :func:`reporting`, and the Canvas flow mirrors stages into a Prefect progress artifact.
With no reporter installed, reports cost nothing.

Reporters are context-local (a :class:`contextvars.ContextVar`): Prefect copies the context into
the threads that run a flow's tasks, so reports reach the reporters of *their own* render, also
when one process renders several at once (the API's runner, catalog fan-out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[str, float], None]
_reporters: ContextVar[tuple[Reporter, ...]] = ContextVar("beatframe_reporters", default=())


def report(stage: str, fraction: float) -> None:
    for reporter in _reporters.get():
        reporter(stage, fraction)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    token = _reporters.set((*_reporters.get(), reporter))
    try:
        yield
    finally:
        _reporters.reset(token)
