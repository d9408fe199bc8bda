"""The ``beatframe`` command line: :mod:`.main` parses and dispatches, :mod:`.post` holds the
post-production commands, :mod:`.deploy` the ``beatframe deploy`` command, :mod:`.console` what
they share (one-line errors, the progress bar, Prefect in the foreground)."""

from beatframe.cli.main import main

__all__ = ["main"]
