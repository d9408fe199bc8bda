"""Stage 7: the manifest: built, uploaded beside the outputs, published with them to the user's folder."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact

from beatframe.canvas import CanvasRequest
from beatframe.cost import CostLog
from beatframe.manifest import canvas_manifest, publish
from beatframe.templates import load_template
from tasks.upload import upload_outputs


@task(name="manifest")
def finalize_canvas(*, render_id: str, request: CanvasRequest, audio_path: str, inputs: dict, analysis: dict,
                    plan: dict, clip: dict, stored: dict, checks: dict, costs: CostLog, files: dict[str, str],
                    out_dir: str, flow_run_id: str | None) -> dict:
    """Write ``manifest.json`` with the cost log; publish outputs and manifest to ``out_dir``."""
    cover = None
    if request.cover is not None:
        cover = {"uri": Path(request.cover).resolve().as_uri(), "sha256": inputs["cover"],
                 "license": request.cover_license or "unspecified (declared by the user: none)"}
    create_table_artifact(table=costs.table(), key="canvas-cost",
                          description=f"Cost log of {render_id} ({costs.prices.currency})")
    manifest = canvas_manifest(
        render_id=render_id, audio_uri=Path(audio_path).as_uri(), inputs=inputs, analysis=analysis,
        plan=plan, template=load_template(request.template), generator=clip["generator"], seed=request.seed,
        outputs=stored, checks=checks, cost=costs.summary(), cover=cover, flow_run_id=flow_run_id,
    )
    staging = Path(files["canvas.mp4"]).parent / "manifest.json"
    from beatframe.fsutil import write_json_atomic

    write_json_atomic(staging, manifest.to_json_dict())
    upload_outputs.fn({"manifest.json": str(staging)}, stored["canvas.mp4"]["key"].rsplit("/", 1)[0])
    publish(Path(out_dir), files, manifest)
    return manifest.to_json_dict()
