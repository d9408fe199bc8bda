"""Post-production flows on a clip: a video-to-video transform or an inpainting pass
(``post_video``), and entity following (``follow_video``); the render DAG's "inpaint / lip-sync"
stage as standalone runs, for clips rendered here or brought in.

    fetch + hash inputs -> post-process (v2v or inpaint) -> check -> upload -> record

``post_video`` writes ``DIR/<step>.mp4`` and ``DIR/post.json`` (schema ``beatframe.post/1``, kind
``post``: the source, the options, what the step did, the outputs, the checks, the cost log and the
licensing of every input);
``follow_video`` writes ``DIR/follow.json``, the reference API's consistency-tracker report.

    from beatframe.flows.post import post_video
    post_video(video="clip.mp4", step="v2v", options={"mode": "interpolation"}, out_dir="out/clip-60fps")
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prefect import flow, runtime

from beatframe.infra.cost import CostLog, PriceTable
from beatframe.infra.fsutil import atomic_path, write_json_atomic
from beatframe.infra.settings import get_settings
from beatframe.flows.progress import StageProgress
from beatframe.music.manifest import licence_entry
from beatframe.tasks.check import check_generation_output
from beatframe.tasks.inputs import fetch_inputs, hash_files, local_input
from beatframe.tasks.post import INPUT_ROLES, follow_entities, post_process
from beatframe.tasks.preview import publish_preview
from beatframe.tasks.upload import upload_outputs

STAGE_WEIGHTS = {"hash": 2, "post": 85, "check": 8, "upload": 5}
POST_STEPS = ("v2v", "inpaint", "lipsync")
#: A Canvas is silent, 9:16 and 3-8 s long; Spotify forbids singing faces on one.
CANVAS_MAX_SECONDS = 8.05


@flow(name="post_video", log_prints=True, persist_result=True)
def post_video(video: str, step: str, options: dict, out_dir: str | None = None, reference_image: str | None = None,
               reference_video: str | None = None, previews: str | None = None, audio: str | None = None,
               licenses: dict[str, dict | str] | None = None) -> dict:
    """Run post-production ``step`` (``v2v``, ``inpaint`` or ``lipsync``) on ``video`` into ``out_dir``
    (default ``out/<video>-<step>``); returns the ``post.json`` record. Inputs are paths or
    ``store:<key>``; ``previews`` as :func:`beatframe.flows.canvas.render_canvas`'s.

    ``licenses`` holds an input's licence record by the input's parameter name (``video``,
    ``reference_image``, ...): an API asset's licence, attribution, rights holder and id, a
    rendered clip's whole licensing, or what the CLI's ``--…-license`` options declare (a licence
    name or a JSON record); the record's ``licensing`` lists every input with it (an input
    without one as undeclared).

    ``lipsync`` animates a mouth in ``options["face_region"]`` following the voice of ``audio``;
    it refuses a Canvas (a silent 9:16 clip of at most 8 s, or one whose manifest says so), which
    Spotify forbids to show singing faces, unless ``options["force"]`` is true."""
    from beatframe.infra.errors import BadInputError

    if step not in POST_STEPS:
        raise BadInputError(f"step must be one of {', '.join(POST_STEPS)}, got {step!r}")
    if not isinstance(options, dict):
        raise BadInputError(f"options must be an object, got {type(options).__name__}")
    if licenses is not None and not isinstance(licenses, dict):
        raise BadInputError(f"licenses must be an object, got {type(licenses).__name__}")
    costs = CostLog(PriceTable.load(get_settings().prices))
    progress = StageProgress(STAGE_WEIGHTS, key="post-progress")
    with progress.stage("hash"), costs.stage("hash"):
        video, reference = fetch_inputs(video, reference_image)
        reference_video, audio = local_input(reference_video), local_input(audio)
        given = {"video": video, "reference_image": reference, "reference_video": reference_video, "audio": audio}
        inputs = hash_files({k: v for k, v in given.items() if v}, "input file")
    if step == "lipsync" and not options.get("force"):
        _refuse_canvas(Path(video))
    with progress.stage("post"), costs.stage("post"):
        result = post_process(step, video, inputs, options, reference, reference_video, audio)
        if previews:
            publish_preview(result["path"], previews, quality="draft")
            publish_preview(result["poster"], previews, quality="full")
    with progress.stage("check"), costs.stage("check"):
        checks = check_generation_output(result["path"], (result["width"], result["height"]), result["fps"],
                                         result["frames"] / result["fps"])
    name = f"{step}.mp4"
    with progress.stage("upload"), costs.stage("upload"):
        stored = upload_outputs({name: result["path"], "thumbnail.jpg": result["poster"]},
                                f"post/{Path(result['path']).stem}")
    output = {"role": "video", **stored[name], **{k: result[k] for k in ("width", "height", "fps", "frames")},
              "duration": round(result["frames"] / result["fps"], 3)}
    thumbnail = {"role": "thumbnail", **stored["thumbnail.jpg"], "width": result["width"], "height": result["height"]}
    record = {"schema": "beatframe.post/1", "kind": "post", "step": step,
              "source": {"uri": Path(video).resolve().as_uri(), "sha256": inputs["video"]},
              "options": options, "info": result["info"], "outputs": [output, thumbnail],
              "checks": {k: v for k, v in checks.items() if k != "probe"}, "cost": costs.summary().model_dump(),
              "licensing": {"assets": [
                  licence_entry(role=INPUT_ROLES[step].get(name, name), uri=Path(path).resolve().as_uri(),
                                sha256=inputs[name], declared=(licenses or {}).get(name))
                  for name, path in given.items() if path]},
              "prefect_flow_run_id": str(runtime.flow_run.id or "") or None}
    out = Path(out_dir) if out_dir else Path("out") / f"{Path(video).stem}-{step}"
    with atomic_path(out / name) as tmp:
        shutil.copyfile(result["path"], tmp)
    write_json_atomic(out / "post.json", json.loads(json.dumps(record, default=str)))
    return record


def _refuse_canvas(video: Path) -> None:
    from beatframe.music.check import probe
    from beatframe.infra.errors import BadInputError

    manifest = video.parent / "manifest.json"
    try:
        kind = json.loads(manifest.read_text()).get("kind") if manifest.is_file() else None
        facts = probe(video)
    except Exception:  # noqa: BLE001 - not a readable video: the post step names that problem itself
        return
    canvas_like = (facts.width * 16 == facts.height * 9 and facts.duration <= CANVAS_MAX_SECONDS
                   and not facts.audio_streams)
    if kind == "canvas" or canvas_like:
        raise BadInputError(f"{video.name} is a Canvas, and Spotify forbids singing faces on a Canvas; lip-sync"
                            " it anyway with force (beatframe lipsync --force)")


@flow(name="follow_video", log_prints=True, persist_result=True)
def follow_video(video: str, entities: list[dict], out_dir: str | None = None) -> dict:
    """Follow ``entities`` (``[{"name", "image", "entity_type"}]``, images as paths or ``store:<key>``)
    through ``video``; writes ``DIR/follow.json`` and returns the report."""
    from beatframe.infra.errors import BadInputError

    if not isinstance(entities, list) or not entities:
        raise BadInputError("give at least one entity to follow: [{\"name\", \"image\"}]")
    video = local_input(video)
    images = {str(i): local_input(e.get("image")) for i, e in enumerate(entities) if isinstance(e, dict)}
    if len(images) != len(entities) or not all(images.values()):
        raise BadInputError("every entity needs a name and a reference image")
    inputs = hash_files({"video": video, **images}, "input file")
    report = follow_entities(video, inputs, [{**e, "image": images[str(i)]} for i, e in enumerate(entities)])
    out = Path(out_dir) if out_dir else Path("out") / f"{Path(video).stem}-follow"
    write_json_atomic(out / "follow.json", report)
    return report
