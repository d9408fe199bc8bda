"""Building and publishing the render manifest (schema ``beatframe.manifest/1``).

:func:`canvas_manifest` assembles the record of a Canvas render: source, segment, plan, loop,
outputs, checks, cost log, licensing and provenance. :func:`publish` copies the checked outputs
into the user's folder atomically, the manifest last, so a folder with a manifest is complete.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from beatframe import __version__
from beatframe.cachekeys import cache_key
from beatframe.fsutil import atomic_path, write_json_atomic
from beatframe.schemas import (
    Cost, GeneratorInfo, Licensing, LoopInfo, Manifest, OutputRecord, Plan, Provenance, ShotPlan,
    Source, Span, TemplateRef,
)


def canvas_manifest(
    *,
    render_id: str,
    audio_uri: str,
    inputs: dict,
    analysis: dict,
    plan: dict,
    template,
    generator: dict,
    seed: int,
    outputs: dict[str, dict],
    checks: dict,
    cost: Cost,
    cover: dict | None,
    flow_run_id: str | None,
) -> Manifest:
    """The manifest of one Canvas render.

    ``outputs`` maps ``canvas.mp4`` / ``canvas.jpg`` to stored-object records; ``checks`` is the
    check stage's result; ``cover`` (when the Canvas animates artwork) holds the cover's path,
    sha256 and the licence the user declared for it.
    """
    facts = checks["probe"]
    video, poster = outputs["canvas.mp4"], outputs["canvas.jpg"]
    records = [
        OutputRecord(role="canvas", uri=video["uri"], sha256=video["sha256"], bytes=video["bytes"],
                     width=facts["width"], height=facts["height"], fps=round(facts["fps"], 3),
                     duration=round(facts["duration"], 3), codec=facts["codec"],
                     has_audio=facts["audio_streams"] > 0),
        OutputRecord(role="poster", uri=poster["uri"], sha256=poster["sha256"], bytes=poster["bytes"],
                     width=facts["width"], height=facts["height"]),
    ]
    assets = []
    if cover:
        assets.append({"role": "cover", "sha256": cover["sha256"], "license": cover["license"],
                       "source": cover["uri"]})
    return Manifest(
        id=render_id,
        kind="canvas",
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=Source(uri=audio_uri, sha256=inputs["audio"], duration=analysis["audio"]["duration"]),
        segment=Span(start=round(plan["start"], 4), end=round(plan["end"], 4)),
        analysis={"bpm": analysis["bpm"], "meter": analysis["meter"]},
        template=TemplateRef(name=template.name, version=str(template.version)),
        generator=GeneratorInfo(name=generator["name"], model=None, revision=generator["revision"],
                                seed=seed, params={"scene": plan["scene"]}),
        plan=Plan(shots=[ShotPlan(start=round(plan["start"], 4), end=round(plan["end"], 4),
                                  section=plan["section"], scene=plan["scene"], transition_in="cut")]),
        loop=LoopInfo(mode=plan["loop_mode"], bars=plan["bars"], seconds=round(facts["duration"], 3)),
        outputs=records,
        checks={"spec_ok": checks["spec_ok"], "problems": checks["problems"], "flash": checks["flash"],
                "loop": checks["loop"]},
        cost=cost,
        licensing=Licensing(license=template.license, assets=assets, models=[]),
        provenance=Provenance(software=f"beatframe {__version__}", prefect_flow_run_id=flow_run_id,
                              inputs_sha256=cache_key("inputs", **inputs).split("-", 1)[1]),
    )


def publish(out_dir: Path, files: dict[str, str], manifest: Manifest) -> Path:
    """Copy ``{name: staged path}`` into ``out_dir`` atomically, then write ``manifest.json``."""
    out_dir = Path(out_dir)
    for name, path in files.items():
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(path, tmp)
    manifest_path = out_dir / "manifest.json"
    write_json_atomic(manifest_path, manifest.to_json_dict())
    return manifest_path
