"""Errors that name a problem with the user's input.

``BadInputError`` is raised by plain functions when the input itself is wrong (empty or corrupt
audio, an image that is too small, an absurd size). The CLI turns it into exit code 2 with one
line on stderr; the HTTP API into a 4xx JSON error. Anything else is a bug or an environment
failure and exits 1.
"""


class BadInputError(ValueError):
    """The user's input cannot be used; the message says why, in one line."""


class MissingExtraError(BadInputError):
    """The request needs an optional part of the install (the generative stack) that is absent."""


class SpecError(RuntimeError):
    """A rendered output does not meet its delivery spec (Canvas or video)."""


def is_transient(exc: BaseException) -> bool:
    """Worth a retry: I/O and network trouble, not bad input, spec failures or bugs."""
    if isinstance(exc, (BadInputError, SpecError)):
        return False
    return isinstance(exc, (OSError, TimeoutError, ConnectionError))
