"""Benchmark: latency of the HTTP API under steady concurrent load on loopback.

Run by hand from the repository root::

    .venv/bin/python benchmarks/api.py [--rate 50] [--seconds 20] [--workers 1]

What it does, all in a temporary data folder:

1. starts a local Prefect server, a ``process`` work pool with the canvas deployment and *no
   worker*, so renders are real Prefect flow runs that wait in the pool (the render itself is
   excluded, as the target says), and the API under uvicorn with
   ``BEATFRAME_RENDER_BACKEND=deployment`` on the embedded PostgreSQL, and with
   ``BEATFRAME_RATE_LIMITS`` raised to 1000/s (burst 1000) for every class: the load is 50 POST/s
   on one key, 100 times the ``generate`` default, which would refuse it, while each request
   still pays for taking its token (one statement on the database; ``--rate-limits off``
   measures without the limiter);
2. uploads one track, then drives an open-loop load (requests start on a fixed schedule at
   ``--rate`` per second whatever the latency, so slow answers cannot hide behind fewer
   requests) of, in turn:

   - ``GET /v1/tracks/{id}``: the baseline, an authenticated one-row read;
   - ``POST /v1/canvases``: each with its own ``Idempotency-Key`` (the target: p99 <= 50 ms);
   - ``GET /v1/renders/{id}`` of the renders just created;

3. prints p50/p90/p99/max per operation and the ratio of each p99 to the baseline's, then
   waits until every created render reached Prefect (has a flow run id) and reports how fast the
   orchestrator took them: POSTs answer at once, Prefect's own flow-run creation is the queue.

Latency is measured client-side, from the scheduled start to the last byte of the answer.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def open_loop(call, *, rate: float, seconds: float, threads: int = 64) -> tuple[list[float], int]:
    """Start ``call(i)`` at ``rate`` per second for ``seconds``; (latencies in ms, failures)."""
    latencies, failures, lock = [], 0, threading.Lock()
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        nonlocal failures
        due = start + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        ok = call(i)
        elapsed = (time.perf_counter() - due) * 1000
        with lock:
            latencies.append(elapsed)
            failures += not ok

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(int(rate * seconds))))
    return latencies, failures


def count_submitted(client) -> int:
    """Renders of the benchmark's project that have a Prefect flow run, paging through /v1/renders."""
    count, after = 0, None
    while True:
        page = client.get("/v1/renders", params={"limit": 100, **({"starting_after": after} if after else {})}).json()
        count += sum(1 for render in page["data"] if render["flow_run_id"])
        if not page["has_more"]:
            return count
        after = page["data"][-1]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per operation (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--rate-limits", default="generate=1000/1000,batch=1000/1000,default=1000/1000",
                        help="BEATFRAME_RATE_LIMITS for the API (default: far above the load; off: no limiter)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="beatframe-bench-api-"))
    os.environ.update({"BEATFRAME_DATA_DIR": str(data), "DO_NOT_TRACK": "1",
                       "PREFECT_LOCAL_STORAGE_PATH": str(data / "results")})
    for name in ("PREFECT_API_URL", "DATABASE_URL"):
        os.environ.pop(name, None)

    import httpx

    from beatframe.infra import db
    from beatframe.infra.prefect_local import ensure_api, stop_server
    from beatframe.infra.settings import get_settings
    from beatframe.music.synth import demo_track, write_wav

    settings = get_settings()
    print("starting Prefect, PostgreSQL and the API ...", flush=True)
    ensure_api(settings)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType

    from beatframe.flows.canvas import render_canvas

    with get_client(sync_client=True) as prefect:
        prefect.create_work_pool(WorkPoolCreate(name="bench-cpu", type="process"))
    render_canvas.to_deployment(entrypoint_type=EntrypointType.MODULE_PATH, name="canvas",
                                work_pool_name="bench-cpu").apply()
    pool = db.get_pool()
    project = db.create_project(pool, "benchmark")
    _, secret = db.create_api_key(pool, project=project, env="test")
    db.close_pool()

    port = free_port()
    env = {**os.environ, "BEATFRAME_RENDER_BACKEND": "deployment",
           "BEATFRAME_RATE_LIMITS": args.rate_limits}
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "beatframe.api.app:create_app", "--factory",
                            "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                            "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30,
                          limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/v1/openapi.json").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or api.poll() is not None:
                    raise SystemExit("the API did not start")
                time.sleep(0.2)
            song = write_wav(data / "song.wav", demo_track())
            with open(song, "rb") as f:
                track = client.post("/v1/tracks", files={"file": ("song.wav", f)}).json()
            while client.get(f"/v1/tracks/{track['id']}/analysis").status_code == 202:
                time.sleep(0.2)  # the upload's analysis runs in the API process: not during the load
            warm_renders = 20
            for i in range(warm_renders):  # warm connections and caches
                client.get(f"/v1/tracks/{track['id']}")
                client.post("/v1/canvases", json={"track": track["id"], "seconds": 4, "seed": 10_000 + i})

            render_ids: list[str] = []

            def get_track(_: int) -> bool:
                return client.get(f"/v1/tracks/{track['id']}").status_code == 200

            def create_canvas(i: int) -> bool:
                response = client.post("/v1/canvases", headers={"Idempotency-Key": str(uuid.uuid4())},
                                       json={"track": track["id"], "seconds": 4, "seed": i})
                if response.status_code == 202:
                    render_ids.append(response.json()["render"]["id"])
                return response.status_code == 202

            def get_render(i: int) -> bool:
                return client.get(f"/v1/renders/{render_ids[i % len(render_ids)]}").status_code == 200

            results = {}
            for name, call in [("GET /v1/tracks/{id} (baseline)", get_track), ("POST /v1/canvases", create_canvas),
                               ("GET /v1/renders/{id}", get_render)]:
                print(f"{name}: {args.rate:g} req/s for {args.seconds:g} s ...", flush=True)
                results[name] = open_loop(call, rate=args.rate, seconds=args.seconds)

            load_end, submitted, created = time.monotonic(), 0, len(render_ids) + warm_renders
            while submitted < created and time.monotonic() - load_end < 300:
                time.sleep(2)  # the submitters hand the backlog to Prefect at its pace
                submitted = count_submitted(client)
            drained = time.monotonic() - load_end
    finally:
        api.terminate()
        api.wait(timeout=30)
        db.stop_embedded_server(settings)
        stop_server(settings)

    baseline_p99 = percentile(results["GET /v1/tracks/{id} (baseline)"][0], 99)
    print(f"\nopen-loop load on loopback, {args.rate:g} req/s, {args.seconds:g} s each, "
          f"{os.cpu_count()} cores, uvicorn workers: {args.workers}")
    print(f"{'operation':34} {'n':>5} {'fail':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/base':>9}")
    for name, (latencies, failures) in results.items():
        p99 = percentile(latencies, 99)
        print(f"{name:34} {len(latencies):5d} {failures:5d} {statistics.median(latencies):8.1f} "
              f"{percentile(latencies, 90):8.1f} {p99:8.1f} {max(latencies):8.1f} {p99 / baseline_p99:9.2f}")
    create_p99 = percentile(results["POST /v1/canvases"][0], 99)
    print(f"\nPOST /v1/canvases p99 {create_p99:.1f} ms (target <= 50 ms): {'OK' if create_p99 <= 50 else 'MISSED'}")
    print(f"renders handed to Prefect (flow run id set): {submitted}/{created}, the last {drained:.0f} s after"
          f" the GET phase ended (Prefect took {submitted / (2 * args.seconds + drained):.1f} flow runs/s overall)")


if __name__ == "__main__":
    main()
