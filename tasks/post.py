"""The post-production stage ("inpaint / lip-sync" in the render DAG): thin tasks around the plain
functions of models/ — video-to-video transforms, inpainting, entity following — each reading a
clip, transforming it and encoding the result.

Cached by the input's content hash, the options and the code's revision; outputs are staged under
``$BEATFRAME_DATA_DIR/cache/post/`` and flash-guarded like every render.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from beatframe import models
from beatframe.infra import progress
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import get_settings
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

_MODELS = str(Path(models.__file__).parent)


def _post_key(context, parameters) -> str:
    return cache_key("post", step=parameters["step"], inputs=parameters["inputs"], options=parameters["options"],
                     code=source_revision(_MODELS, str(Path(__file__))))


def _load_image(path: str | None):
    from beatframe.music.images import load_image

    return load_image(path, what="reference image") if path else None


def _encode(frames, fps: float, key: str) -> dict:
    from beatframe.infra.encode import encode_frames, extract_poster
    from beatframe.music.flash import FlashGuard

    out = get_settings().cache_dir / "post" / f"{key}.mp4"
    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:  # H.264 4:2:0 needs even sides: drop the odd row/column
        frames = [f[: height - height % 2, : width - width % 2] for f in frames]
        height, width = height - height % 2, width - width % 2
    guard = FlashGuard(fps=round(fps))
    count = encode_frames(guard.apply(iter(frames)), out, size=(width, height), fps=round(fps))
    extract_poster(out, out.with_suffix(".jpg"))
    return {"path": str(out), "poster": str(out.with_suffix(".jpg")), "frames": count, "fps": round(fps),
            "width": width, "height": height, "softened_frames": guard.softened,
            "luminance": [[round(float(v), 5) for v in row] for row in guard.luminance]}


@task(name="post", cache_key_fn=_post_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient, task_run_name="post-{step}")
def post_process(step: str, video: str, inputs: dict, options: dict, reference_image: str | None = None,
                 reference_video: str | None = None, audio: str | None = None) -> dict:
    """Run one post-production ``step`` on ``video``: ``v2v`` (options: beatframe.models.v2v.transform's),
    ``inpaint`` (options: beatframe.models.inpaint.inpaint_frames') or ``lipsync`` (options:
    beatframe.models.lipsync.lipsync_frames', the visemes read from ``audio``); returns the encoded clip and
    the step's info.

    ``inputs`` holds the content hashes of ``video`` and the references (the cache key's part).
    """
    from beatframe.infra.encode import decode_frames

    progress.report("post", 0.0)
    frames, fps = decode_frames(Path(video))
    progress.report("post", 0.2)
    if step == "v2v":
        from beatframe.models.v2v import transform

        reference_frames = decode_frames(Path(reference_video))[0] if reference_video else None
        out, info = transform(frames, **options, reference_image=_load_image(reference_image),
                              reference_frames=reference_frames, fps=fps, models_dir=get_settings().models_dir)
        fps = info.get("fps") or fps
    elif step == "inpaint":
        from beatframe.models.inpaint import inpaint_frames

        out, info = inpaint_frames(frames, **options, replacement=_load_image(reference_image),
                                   models_dir=get_settings().models_dir)
    elif step == "lipsync":
        from beatframe.music.analysis.visemes import visemes_json
        from beatframe.models.lipsync import lipsync_frames

        if not audio:
            raise BadInputError("lip-sync needs the audio whose voice the mouth follows")
        options = {k: v for k, v in options.items() if k != "force"}
        out, info = lipsync_frames(frames, fps=fps, visemes=visemes_json(Path(audio)), **options)
    else:
        raise ValueError(f"unknown post-production step {step!r}")
    progress.report("post", 0.8)
    key = _post_key(None, {"step": step, "inputs": inputs, "options": options})
    return {**_encode(list(out), fps, key), "info": info}


#: What each input of a step is to it: the role of the input's entry in a record's licensing.
INPUT_ROLES = {"v2v": {"video": "source", "reference_image": "style_reference", "reference_video": "motion_reference"},
               "inpaint": {"video": "source", "reference_image": "replacement"},
               "lipsync": {"video": "source", "audio": "audio"}}

#: What a render flow's ``post`` steps may do: keep every frame's size and the frame rate, so the
#: shots still join and the output still meets its spec.
RENDER_POST_MODES = {"v2v": ("enhancement", "colorization", "style_transfer"),
                     "inpaint": ("remove", "replace", "blend", "background")}


def check_render_post(steps: object) -> list[dict]:
    """A render flow's ``post`` parameter checked: ``[{"step": "v2v" | "inpaint", "options": {...},
    "reference_image": path?, "license": the image's licence?}]``, each keeping size and frame rate
    (BadInputError naming the step)."""
    if steps is None:
        return []
    if not isinstance(steps, list):
        raise BadInputError(f"post must be a list of steps, got {type(steps).__name__}")
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("step") not in RENDER_POST_MODES \
                or not isinstance(step.get("options"), dict):
            raise BadInputError(f"post step {i} must be {{\"step\": \"v2v\" or \"inpaint\", \"options\": {{...}}}}")
        unknown = set(step) - {"step", "options", "reference_image", "license"}
        if unknown:
            raise BadInputError(f"post step {i} has unknown fields {sorted(unknown)}")
        if step.get("license") is not None and not step.get("reference_image"):
            raise BadInputError(f"post step {i}: license is the licence of its reference_image; give both")
        mode = step["options"].get("mode")
        if mode not in RENDER_POST_MODES[step["step"]]:
            raise BadInputError(f"post step {i}: a render's {step['step']} mode is one of "
                                f"{', '.join(RENDER_POST_MODES[step['step']])} (size and frame rate stay), got {mode!r}")
    return steps


def apply_render_post(clip: dict, steps: list[dict]) -> dict:
    """Run a render's ``post`` steps on one of its clips (each a cached :func:`post_process` run);
    returns the clip with the last step's file and luminance."""
    from beatframe.infra.cachekeys import sha256_file

    for step in steps:
        reference = step.get("reference_image")
        # a clip's file name is its own cache key: it names its content
        inputs = {"video": Path(clip["path"]).name,
                  "reference_image": sha256_file(Path(reference)) if reference else None}
        result = post_process(step["step"], clip["path"], inputs, step["options"], reference)
        clip = {**clip, "path": result["path"], "luminance": result["luminance"],
                "post": [*clip.get("post", []), {"step": step["step"], **result["info"]}]}
    return clip


def render_post_licences(steps: list[dict]) -> list[dict]:
    """The licensing entries of the reference images a render's ``post`` steps use, each with the
    index of its step (``post_step``)."""
    from beatframe.infra.cachekeys import sha256_file
    from beatframe.music.manifest import licence_entry

    return [{**licence_entry(role=INPUT_ROLES[step["step"]]["reference_image"],
                             uri=Path(step["reference_image"]).resolve().as_uri(),
                             sha256=sha256_file(Path(step["reference_image"])), declared=step.get("license")),
             "post_step": i} for i, step in enumerate(steps) if step.get("reference_image")]


def _follow_key(context, parameters) -> str:
    return cache_key("follow", inputs=parameters["inputs"], entities=parameters["entities"],
                     code=source_revision(_MODELS))


@task(name="follow-entities", cache_key_fn=_follow_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def follow_entities(video: str, inputs: dict, entities: list[dict]) -> dict:
    """The reference API's consistency report of ``entities`` (``[{name, entity_type, image}]``) followed
    through ``video``."""
    from beatframe.infra.encode import decode_frames
    from beatframe.models.following import follow_report, register_entity

    frames, _ = decode_frames(Path(video))
    registered = [register_entity(name=e["name"], entity_type=e.get("entity_type", "object"),
                                  reference_image=_load_image(e["image"])) for e in entities]
    return follow_report(frames, entities=registered)


def _cover_key(context, parameters) -> str:
    return cache_key("clean-cover", cover=parameters["cover_sha256"], box=list(parameters["box"]),
                     code=source_revision(_MODELS))


@task(name="clean-cover", cache_key_fn=_cover_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def clean_cover(cover: str, cover_sha256: str, box: list[int]) -> dict:
    """The cover with the ``box`` region (a logo, a line of text: Spotify forbids both on a Canvas)
    removed by inpainting, before it is animated: its path and sha256."""
    import cv2

    from beatframe.infra.cachekeys import sha256_file
    from beatframe.infra.fsutil import atomic_path
    from beatframe.music.images import load_cover
    from beatframe.models.inpaint import inpaint_image

    cleaned, _ = inpaint_image(load_cover(cover), mode="remove", box=box)
    out = get_settings().cache_dir / "covers" / f"{_cover_key(None, {'cover_sha256': cover_sha256, 'box': box})}.png"
    with atomic_path(out) as tmp:
        tmp.write_bytes(cv2.imencode(".png", cv2.cvtColor(cleaned, cv2.COLOR_RGB2BGR))[1].tobytes())
    return {"path": str(out), "sha256": sha256_file(out)}
