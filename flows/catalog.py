"""The catalog flow: a folder or CSV of tracks, each rendered as a Canvas, a video or both.

    read catalog -> render each track (bounded fan-out; each track runs the render_canvas and/or
    render_video flow as a subflow) -> summary (catalog.json and a per-track cost table artifact)

A failing track fails alone, with its reason, while the others complete. Every stage of every
subflow is cached, so running the same catalog again recomputes nothing that finished.

    from flows.catalog import render_catalog
    summary = render_catalog(source="tracks/", out_dir="out/catalog", kind="both")
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.catalog import read_catalog
from beatframe.errors import BadInputError
from beatframe.fsutil import write_json_atomic
from flows.canvas import render_canvas
from flows.video import render_video

KINDS = ("canvas", "video", "both")
#: Tracks rendered at once; each render already keeps both cores busy.
TRACK_WORKERS = 2


@task(name="render-track", cache_policy=NO_CACHE, task_run_name="render-track-{entry[folder]}")
def render_track(entry: dict, out_dir: str, kind: str, template: str) -> dict:
    """Render one catalog entry; returns its outputs' manifests' essentials."""
    folder = Path(out_dir) / entry["folder"]
    style = entry.get("template") or template
    renders = {}
    if kind in ("canvas", "both"):
        renders["canvas"] = render_canvas(audio=entry["audio"], template=style,
                                          out_dir=str(folder / "canvas" if kind == "both" else folder))
    if kind in ("video", "both"):
        renders["video"] = render_video(audio=entry["audio"], template=style,
                                        out_dir=str(folder / "video" if kind == "both" else folder))
    return {name: {"id": m["id"], "cost": m["cost"]["total"], "currency": m["cost"]["currency"],
                   "outputs": [o["uri"] for o in m["outputs"]]} for name, m in renders.items()}


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, BadInputError) else f"{type(exc).__name__}: {exc}"


@flow(name="render_catalog", task_runner=ThreadPoolTaskRunner(max_workers=TRACK_WORKERS))
def render_catalog(source: str, out_dir: str | None = None, kind: str = "canvas",
                   template: str = "neon-pulse") -> dict:
    """Render every track of ``source`` into ``out_dir/<track>/``; returns the catalog summary."""
    if kind not in KINDS:
        raise BadInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    entries = read_catalog(source)
    out = Path(out_dir) if out_dir else Path("out") / Path(source).stem
    futures = [render_track.submit(entry.to_dict(), str(out), kind, template) for entry in entries]
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
