"""Variants: N Canvases or videos of one track from one analysis, in parallel, each with its own
output folder and manifest (different seeds, and optionally different templates).

    from beatframe.flows.variants import render_variants
    summary = render_variants(audio="song.wav", kind="canvas", count=4, templates=["neon-pulse", "mono-grid"])
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.fsutil import write_json_atomic
from beatframe.music.render_requests import variant_requests
from beatframe.flows.fanout import analyze_first, failure_reason, outcomes, render_one
from beatframe.tasks.analyze import check_hints
from beatframe.tasks.inputs import fetch_inputs


@flow(name="render_variants", task_runner=ThreadPoolTaskRunner(max_workers=2))
def render_variants(audio: str, out_dir: str | None = None, kind: str = "canvas", count: int = 4,
                    templates: list[str] | None = None, seed: int = 0, size: str | None = None,
                    analysis_hints: dict | None = None) -> dict:
    """Render ``count`` variants: seeds ``seed, seed+1, …``, templates taken in turn from ``templates``
    (default ``["neon-pulse"]``), all on one analysis (with the corrections ``analysis_hints``, if
    given). Bad input fails the run before anything is written
    (:func:`beatframe.music.render_requests.variant_requests`, the corrections, then the track's analysis)."""
    hints = check_hints(analysis_hints)
    local_audio, _ = fetch_inputs(audio)
    requests = variant_requests(audio=local_audio, kind=kind, count=count, seed=seed, size=size,
                                templates=["neon-pulse"] if templates is None else templates)
    analyze_first(local_audio, hints)
    out = Path(out_dir) if out_dir else Path("out") / f"{Path(audio).stem}-variants"
    plans = []
    for i, request in enumerate(requests):
        label = f"v{i + 1}-{request.template}-s{request.seed}"
        params = {"audio": audio, "out_dir": str(out / label), "template": request.template, "seed": request.seed}
        if size:
            params["size"] = size
        if hints:
            params["analysis_hints"] = hints
        plans.append((label, params))
    futures = [render_one.submit(kind, label, params) for label, params in plans]
    variants = []
    for (label, params), outcome in zip(plans, outcomes(futures)):
        if isinstance(outcome, BaseException):
            variants.append({"label": label, "status": "failed", "reason": failure_reason(outcome)})
        else:
            variants.append({"label": label, "status": "succeeded", "id": outcome["id"], "folder": params["out_dir"],
                             "template": params["template"], "seed": params["seed"],
                             "cost": outcome["cost"]["total"]})
    summary = {"audio": audio, "kind": kind, "variants": variants,
               "failed": sum(v["status"] == "failed" for v in variants)}
    write_json_atomic(out / "variants.json", summary)
    return summary
