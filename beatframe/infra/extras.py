"""Optional parts of the install, and the one line that says how to get one.

The core install renders Canvases, videos, packs and catalogs on the CPU and serves the API. The
generative stack (PyTorch, diffusers, transformers: Wan and the diffusers post-production models)
is the ``gen`` extra, ``pip install 'beatframe[gen]'``. Code that needs it calls
:func:`require_gen` before importing any of it, so a missing extra is a
:class:`~beatframe.infra.errors.MissingExtraError` (CLI exit 2, HTTP 400) rather than an
``ImportError`` from deep inside a render.
"""

from __future__ import annotations

import importlib

from beatframe.infra.errors import MissingExtraError

#: What the ``gen`` extra brings that beatframe imports.
GEN_MODULES = ("torch", "diffusers", "transformers")
GEN_INSTALL = "pip install 'beatframe[gen]'"


def missing_gen_modules() -> list[str]:
    """The modules of the ``gen`` extra that cannot be imported here (empty when it is installed).

    Imports them (a second or two the first time): only code that is about to use them asks.
    """
    missing = []
    for name in GEN_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def gen_available() -> bool:
    """Whether the generative stack can be imported."""
    return not missing_gen_modules()


def require_gen(feature: str) -> None:
    """Raise :class:`MissingExtraError` naming ``feature`` and the install command when the
    generative stack is absent."""
    missing = missing_gen_modules()
    if missing:
        raise MissingExtraError(f"{feature} needs the generative extra ({', '.join(missing)} not installed):"
                                f" {GEN_INSTALL}")
