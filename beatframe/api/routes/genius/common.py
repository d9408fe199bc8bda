"""What several ``/genius/*`` features share: the 501 of an option not built yet, the 400 of an
option a mode lacks or refuses, the store reference and licensing of a completed task's video, and
the queueing of a post-production task on a task's video (video-to-video, inpainting, lip-sync)
with the licensing of every input (:func:`beatframe.api.routes.assets.image_asset` gives an image
asset's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import Request
from pydantic import BaseModel

from beatframe.api.deps import Principal
from beatframe.api.errors import ApiError
from beatframe.api.routes.generate import find_generation, queue_generation
from beatframe.infra.errors import BadInputError
from beatframe.infra.modes import ModeOptionError, ModeOptions, check_mode, options_of
from beatframe.infra.storage import store_ref
from beatframe.resources import BeatframeObject


def not_built(feature: str, missing: str) -> ApiError:
    return ApiError(501, "not_implemented", f"{feature} is not built yet: {missing}")


def check_mode_options(body: BaseModel, modes: Mapping[str, ModeOptions], *,
                       fields: Mapping[str, str] | None = None) -> None:
    """Refuse a request whose ``body.mode`` lacks an option of the table ``modes`` it needs, or is
    given one it refuses (:func:`beatframe.infra.modes.check_mode`), before anything is queued.

    Parameters
    ----------
    body : pydantic.BaseModel
        The request, with a ``mode`` and a field for each option of ``modes`` (None: not given).
    modes : mapping of str to ModeOptions
        What each mode needs and takes.
    fields : mapping of str to str, optional
        The request's field of an option, where it is not the option's own name.

    Raises
    ------
    ApiError
        400 naming the field (``parameter_missing`` or ``parameter_invalid``).
    """
    names = {option: (fields or {}).get(option, option) for option in options_of(modes)}
    given = {option for option, field in names.items() if getattr(body, field) is not None}
    try:
        check_mode(body.mode, given, modes, names=names)
    except ModeOptionError as exc:
        raise ApiError(400, "parameter_missing" if exc.missing else "parameter_invalid", str(exc),
                       param=exc.option) from None


def generation_video(request: Request, who: Principal, task_id: str, param: str) -> tuple[str, dict]:
    """The store reference of a completed task's video and its licensing (the task's id and its
    manifest's ``licensing``, copied whole); 404 / 409 naming ``param`` otherwise."""
    from beatframe.api.signing import object_key

    generation, render = find_generation(request, who, task_id)
    if render["status"] != "succeeded" or not generation["manifest"]:
        raise ApiError(409, "task_not_completed", f"task {task_id} has no video yet ({render['status']})", param=param)
    video = next(o for o in generation["manifest"]["outputs"] if o["role"] == "video")
    licensing = {"task": task_id, **generation["manifest"].get("licensing", {})}
    return store_ref(object_key(request.app.state.store, video["uri"])), licensing


def check_source_size(request: Request, who: Principal, task_id: str, *, source_param: str, param: str,
                      check: Callable[[int, int], object]) -> None:
    """Run ``check(width, height)`` (a model's own up-front check, raising BadInputError) on the size
    of a completed task's video, from its manifest: a 400 naming ``param`` before anything is queued,
    rather than a task that fails once it runs (404 / 409 naming ``source_param`` as :func:`generation_video`)."""
    generation, render = find_generation(request, who, task_id)
    if render["status"] != "succeeded" or not generation["manifest"]:
        raise ApiError(409, "task_not_completed", f"task {task_id} has no video yet ({render['status']})",
                       param=source_param)
    video = next(o for o in generation["manifest"]["outputs"] if o["role"] == "video")
    width, height = int(video["width"]), int(video["height"])
    try:
        check(width, height)
    except BadInputError as exc:
        raise ApiError(400, "parameter_invalid", f"{param} does not fit the {width}x{height} video of task "
                       f"{task_id}: {exc}", param=param) from None


class PostAccepted(BeatframeObject):
    task_id: str
    status: str
    source_task_id: str
    queue_position: int
    render: str
    webhook_secret: str | None = None


def queue_post(request: Request, who: Principal, *, step: str, source: str, options: dict, body: BaseModel,
               reference_image: tuple[str, dict] | None = None, reference_video: tuple[str, dict] | None = None,
               audio: str | None = None, webhook_url: str | None = None) -> dict:
    """Queue post-production ``step`` on the video of task ``source`` as a task of its own
    (:func:`beatframe.flows.post.post_video`): the 202 answer, :class:`PostAccepted`.

    ``reference_image`` and ``reference_video`` are an input's store reference and licensing (as
    :func:`beatframe.api.routes.assets.image_asset` and :func:`generation_video` give them); the source
    video's licensing and theirs go to the task's record."""
    references = {"video": generation_video(request, who, source, "source_task_id"), "reference_image": reference_image,
                  "reference_video": reference_video}
    flow_params = {**{name: given[0] if given else None for name, given in references.items()}, "step": step,
                   "options": options, "audio": audio,
                   "licenses": {name: given[1] for name, given in references.items() if given}}
    task = queue_generation(request, who, kind="post", task_request={"step": step, **body.model_dump(mode="json")},
                      flow_params=flow_params, webhook_url=webhook_url)
    return {**task, "source_task_id": source}
