"""The catalog flow: a folder or CSV of tracks, each rendered as a Canvas, a video or both.

    read catalog -> render each track (bounded fan-out; each track runs the render_canvas and/or
    render_video flow as a subflow, or with distribute as a flow run of its deployment on the work
    pool) -> summary (catalog.json and a per-track cost table artifact)

A failing track fails alone, with its reason, while the others complete. Every stage of every
subflow is cached, so running the same catalog again recomputes nothing that finished.

    from beatframe.flows.catalog import render_catalog
    summary = render_catalog(source="tracks/", out_dir="out/catalog", kind="both")
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.music.catalog import check_templates, read_catalog
from beatframe.infra.errors import BadInputError
from beatframe.infra.fsutil import write_json_atomic
from beatframe.flows.canvas import render_canvas
from beatframe.flows.video import render_video
from beatframe.tasks.distribute import render_on_pool

KINDS = ("canvas", "video", "both")
#: Tracks rendered at once; each render already keeps both cores busy.
TRACK_WORKERS = 2


@task(name="render-track", cache_policy=NO_CACHE, task_run_name="render-track-{entry[folder]}")
def render_track(entry: dict, out_dir: str, kind: str, template: str, distribute: bool = False) -> dict:
    """Render one catalog entry (here, or on the work pool with ``distribute``); returns its
    outputs' manifests' essentials."""
    folder = Path(out_dir) / entry["folder"]
    style = entry.get("template") or template
    renders = {}
    for name, render, deployment in (("canvas", render_canvas, "render_canvas/canvas"),
                                     ("video", render_video, "render_video/video")):
        if kind not in (name, "both"):
            continue
        params = {"audio": entry["audio"], "template": style,
                  "out_dir": str(folder / name if kind == "both" else folder)}
        # on the pool: a flow run any worker takes, retried on a live worker if its own dies
        renders[name] = render_on_pool(deployment, params) if distribute else render(**params)
    return {name: {"id": m["id"], "cost": m["cost"]["total"], "currency": m["cost"]["currency"],
                   "outputs": [o["uri"] for o in m["outputs"]]} for name, m in renders.items()}


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, BadInputError) else f"{type(exc).__name__}: {exc}"


@flow(name="render_catalog", task_runner=ThreadPoolTaskRunner(max_workers=TRACK_WORKERS))
def render_catalog(source: str, out_dir: str | None = None, kind: str = "canvas",
                   template: str = "neon-pulse", distribute: bool = False) -> dict:
    """Render every track of ``source`` into ``out_dir/<track>/``; returns the catalog summary.

    ``distribute``: each track's renders run as flow runs of their deployments on the work pool
    (every worker shares the catalog; see :mod:`beatframe.tasks.distribute`) instead of in this flow run.
    Paths in ``source`` and ``out_dir`` must then be the same on every worker.
    """
    if kind not in KINDS:
        raise BadInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    entries = read_catalog(source)
    check_templates(entries, default=template)
    out = Path(out_dir) if out_dir else Path("out") / Path(source).stem
    futures = [render_track.submit(entry.to_dict(), str(out), kind, template, distribute) for entry in entries]
    wait(futures)
    tracks = []
    for entry, future in zip(entries, futures):
        record = {"folder": entry.folder, "audio": entry.audio, **entry.metadata}
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            record.update(status="failed", reason=_reason(outcome), cost=0.0)
        else:
            record.update(status="succeeded", renders=outcome,
                          cost=round(sum(r["cost"] for r in outcome.values()), 8))
        tracks.append(record)
    failed = [t for t in tracks if t["status"] == "failed"]
    summary = {"source": str(source), "kind": kind, "tracks": tracks, "succeeded": len(tracks) - len(failed),
               "failed": len(failed), "cost_total": round(sum(t["cost"] for t in tracks), 8)}
    write_json_atomic(out / "catalog.json", summary)
    rows = [{"track": t["folder"], "status": t["status"], "cost": t["cost"], "reason": t.get("reason", "")}
            for t in tracks]
    rows.append({"track": "total", "status": f"{summary['succeeded']} ok, {summary['failed']} failed",
                 "cost": summary["cost_total"], "reason": ""})
    create_table_artifact(table=rows, key="catalog-cost", description=f"Catalog {source}: cost per track")
    return summary
