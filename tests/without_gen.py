"""Run beatframe as a core install would, with the generative stack hidden.

``python tests/without_gen.py cli ARGS…`` runs the ``beatframe`` command; ``python
tests/without_gen.py import-all`` imports every module of the package. An import hook makes every
module of the ``gen`` extra (and what only it brings) fail to import, as if it were not installed,
so tests/test_core_install.py proves the core install needs none of it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import pkgutil
import sys

HIDDEN = ("torch", "diffusers", "transformers", "accelerate", "ftfy", "PIL", "xformers", "safetensors")


class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def import_all() -> int:
    import beatframe

    names = [m.name for m in pkgutil.walk_packages(beatframe.__path__, "beatframe.")]
    for package in ("beatframe.models", "beatframe.tasks", "beatframe.flows"):
        module = importlib.import_module(package)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
    for name in sorted(set(names)):
        if not name.endswith("__main__"):
            importlib.import_module(name)
    print(f"imported {len(set(names))} modules")
    return 0


if __name__ == "__main__":
    sys.meta_path.insert(0, _Hide())
    if sys.argv[1] == "import-all":
        code = import_all()
    else:
        from beatframe.cli import main

        code = main(sys.argv[2:])
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in HIDDEN)
    if loaded:
        print(f"hidden modules were loaded: {loaded}", file=sys.stderr)
        code = code or 3
    sys.exit(code)
