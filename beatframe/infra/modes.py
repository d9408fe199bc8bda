"""Which of a function's options each of its modes needs, may take or refuses, as one table per
function, and the check of a call against that table.

One table lets every caller refuse a combination before doing any work, in the same words: the
HTTP API answers 400 naming the option before it queues a task, the CLI exits 2 before it
decodes a clip, and the function itself checks the same table (``beatframe.models.v2v.transform``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple

from beatframe.infra.errors import BadInputError


class ModeOptions(NamedTuple):
    """What one mode does with its function's mode options; it refuses those it names in neither
    ``needs`` nor ``either``.

    Attributes
    ----------
    does : str
        What the mode does, as errors end it: "… mode 'x', which <does>".
    needs : tuple of str
        The options it cannot run without.
    either : tuple of str
        The options it may take, at most one of them at a time.
    """

    does: str
    needs: tuple[str, ...] = ()
    either: tuple[str, ...] = ()


class ModeOptionError(BadInputError):
    """An option a mode needs and lacks (``missing``), or one it is given and refuses; ``option``
    names it as the caller does."""

    def __init__(self, message: str, *, option: str, missing: bool) -> None:
        super().__init__(message)
        self.option, self.missing = option, missing


def options_of(modes: Mapping[str, ModeOptions]) -> tuple[str, ...]:
    """Every option the table ``modes`` names, in the order it first names them."""
    return tuple(dict.fromkeys(option for mode in modes.values() for option in (*mode.needs, *mode.either)))


def check_mode(mode: str, given: Collection[str], modes: Mapping[str, ModeOptions], *,
               names: Mapping[str, str] | None = None) -> None:
    """Check the options ``given`` to ``mode`` against the table ``modes``.

    Parameters
    ----------
    mode : str
        A key of ``modes`` (the caller has checked it is one).
    given : collection of str
        The options of ``modes`` the call gives.
    modes : mapping of str to ModeOptions
        Each mode's table entry.
    names : mapping of str to str, optional
        The caller's name of an option, where it is not the table's (a request field, a CLI flag).

    Raises
    ------
    ModeOptionError
        Naming the first option (in :func:`options_of` order) that ``mode`` needs and ``given``
        lacks, that ``given`` holds and ``mode`` refuses, or a second one of its ``either``.
    """
    entry = modes[mode]
    names = names or {}
    taken = None
    for option in options_of(modes):
        name = names.get(option, option)
        if option in entry.needs:
            if option not in given:
                raise ModeOptionError(f"{name} is required by mode {mode!r}, which {entry.does}", option=name,
                                      missing=True)
        elif option in given and option not in entry.either:
            raise ModeOptionError(f"{name} does not apply to mode {mode!r}, which {entry.does}", option=name,
                                  missing=False)
        elif option in given:
            if taken is not None:
                raise ModeOptionError(f"{name} cannot be given with {names.get(taken, taken)} to mode {mode!r},"
                                      f" which {entry.does}", option=name, missing=False)
            taken = option
