"""The house rules CI enforces: imports point one way, dependencies are declared, and the install
puts nothing generic into site-packages.

``lint-imports`` reads the contracts in ``pyproject.toml``; it walks a package's folder, so it runs
on the package as pip installs it (flows/, tasks/, models/ and templates/ map under ``beatframe``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package installed from this checkout into a folder of its own, as a wheel would be."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(REPO, build / "src", ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info",
                                                                         "__pycache__", ".beatframe", "out"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(build / "src")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return target


def test_only_beatframe_is_installed_at_the_top_level(installed):
    top = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert top == {"beatframe"}
    for name in ("models", "tasks", "flows", "templates"):
        assert (installed / "beatframe" / name / "__init__.py").is_file()
    assert sorted(p.name for p in (installed / "beatframe" / "templates").glob("*.toml"))
    assert sorted((installed / "beatframe" / "infra" / "migrations").glob("*.sql"))
    dist = next(installed.glob("beatframe-*.dist-info"))
    listed = {line.split(",")[0].split("/")[0] for line in (dist / "RECORD").read_text().splitlines()}
    assert listed <= {"beatframe", dist.name, "bin", "..", ""}, listed


def test_import_layers_hold(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([str(BIN / "lint-imports"), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_declared_dependencies_match_the_imports():
    proc = subprocess.run([str(BIN / "deptry"), "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
