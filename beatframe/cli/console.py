"""What every CLI command shares: one-line messages, the check of an output folder, the progress bar
and Prefect in the foreground."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from beatframe.infra.errors import BadInputError


def say(text: str) -> None:
    print(text, file=sys.stderr)


def one_line(text: str) -> str:
    """A message as one printable line: file names may hold newlines or control characters."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def out_folder(out: Path) -> Path:
    """``out``, the folder a command writes into; refused when something else is already there."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} exists and is not a folder")
    return out


def quiet_prefect_console(verbose: bool) -> None:
    """Keep Prefect's run logs out of the terminal (they still reach the server and its UI)."""
    if verbose:
        return
    import prefect.main  # noqa: F401  (sets up Prefect's logging, which is otherwise lazy)
    from prefect.logging.handlers import PrefectConsoleHandler

    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.CRITICAL + 1)


@contextmanager
def progress_bar(title: str) -> Iterator[None]:
    """A terminal progress bar fed by :mod:`beatframe.infra.progress`; nothing when not a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from beatframe.infra import progress

    bar = Progress(TextColumn("{task.description:<24}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=False)
    tasks: dict[str, int] = {}

    def on_report(stage: str, fraction: float) -> None:
        if ":" in stage:  # a part of a stage ("generate: shot 3"); its stage reports the sum
            return
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=1.0)
        bar.update(tasks[stage], completed=fraction)

    with bar, progress.reporting(on_report):
        say(title)
        yield


def _compile_analysis() -> None:
    """A machine's first render would pay the server's start and numba's compile of the analysis
    one after the other; this runs the compile while the server starts in its own process. (librosa
    is imported here, not at the top: a cached rerun, server already up, never needs it.)"""
    from beatframe.music.analysis import warm_up

    warm_up()


@contextmanager
def foreground_prefect(verbose: bool) -> Iterator[None]:
    """Prefect for a flow run in this process: a shared server, quiet console, no heartbeats.

    Heartbeats let a server notice that a worker running a flow has died; in the foreground the
    user sees that directly, and Prefect waits up to a second for the heartbeat thread at the end
    of every run, a third of a cached rerun.
    """
    from beatframe.infra.prefect_local import ensure_api
    from beatframe.infra.settings import get_settings

    ensure_api(get_settings(), announce=say, meanwhile=_compile_analysis)
    quiet_prefect_console(verbose)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
