"""Benchmark: a machine's first Canvas from the CLI, as a new user meets it, against its floor.

Run by hand from the repository root (with nothing else running, the venv installed)::

    .venv/bin/python benchmarks/first_canvas.py [--repeat 2]

Each run uses a fresh data folder (so the local Prefect server starts and migrates a new database)
and a fresh numba cache folder (``NUMBA_CACHE_DIR``, so the analysis's kernels compile as on a new
install, without touching the venv's own cache). It times, as subprocesses:

1. ``beatframe canvas --demo`` the first time: Prefect server start, numba compile, synthesis,
   analysis, render, checks;
2. ``beatframe canvas`` of another track with the server up and the kernels compiled;
3. the first command again: everything from cache.

In the same run it measures the floor the first Canvas cannot beat: ``prefect server start`` on a
fresh home until it answers (beatframe's own start, :func:`beatframe.infra.prefect_local.start_server`),
and the kernels' compile alone (:func:`beatframe.music.analysis.warm_up` in a fresh process with a
cold cache). Before the two overlapped, the first Canvas paid their sum. Times are the best of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str], *, env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def fresh_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BEATFRAME_"))}
    return {**env, "BEATFRAME_DATA_DIR": str(work / "data"), "NUMBA_CACHE_DIR": str(work / "numba")}


def one_run() -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="beatframe-first-"))
    env = fresh_env(work)
    beatframe = str(BIN / "beatframe")
    times = {}
    try:
        times["first Canvas (server start + compile + render)"] = timed(
            [beatframe, "canvas", "--demo", "--out", str(work / "demo")], env=env, cwd=work)
        other = work / "other.wav"
        subprocess.run([sys.executable, "-c", "import sys; from beatframe.music.synth import synthesize_track, write_wav;"
                        " write_wav(sys.argv[1], synthesize_track(bpm=97.0, seed=4, sections=[('verse', 4, 0.5),"
                        " ('chorus', 4, 0.9)]))", str(other)], check=True, env=env, cwd=work)
        times["a new track, server up"] = timed([beatframe, "canvas", str(other), "--out", str(work / "other")],
                                                env=env, cwd=work)
        times["the first command again (cached)"] = timed(
            [beatframe, "canvas", "--demo", "--out", str(work / "demo")], env=env, cwd=work)
    finally:
        subprocess.run([beatframe, "server", "stop"], env=env, cwd=work, capture_output=True, timeout=60)

    floor = Path(tempfile.mkdtemp(prefix="beatframe-floor-"))
    env = fresh_env(floor)
    times["floor: Prefect server start, fresh home"] = timed(
        [sys.executable, "-c", "from beatframe.infra.settings import get_settings;"
         " from beatframe.infra.prefect_local import start_server, stop_server;"
         " s = get_settings(); start_server(s); stop_server(s)"], env=env, cwd=floor)
    times["floor: analysis kernels' compile, cold cache"] = timed(
        [sys.executable, "-c", "from beatframe.music.analysis import warm_up; warm_up()"], env=env, cwd=floor)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.repeat)]
    print(f"{'':<48} {'best s':>8} {'all runs':>20}")
    for name in runs[0]:
        values = [run[name] for run in runs]
        print(f"{name:<48} {min(values):>8.1f} {', '.join(f'{v:.1f}' for v in values):>20}")
    first = min(run["first Canvas (server start + compile + render)"] for run in runs)
    floor = min(run["floor: Prefect server start, fresh home"] for run in runs)
    compile_ = min(run["floor: analysis kernels' compile, cold cache"] for run in runs)
    print(f"\nserver start + compile one after the other: {floor + compile_:.1f} s;"
          f" the first Canvas, render included: {first:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
