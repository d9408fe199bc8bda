"""Stage 4: stitch the loop-native Canvas: the clip remuxed with its index first, plus a poster.

A Canvas is one loop-native shot, so stitching joins without re-encoding. Outputs are staged
under ``$BEATFRAME_DATA_DIR/cache/renders/<render key>/`` and only published to the user's folder
after they pass the checks.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

import beatframe.infra.encode
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.infra.encode import extract_poster, remux_faststart
from beatframe.infra.settings import get_settings
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient


def _stitch_key(context, parameters) -> str:
    # The clip's path is its own cache key, so it names its content.
    return cache_key("stitch", clip=Path(parameters["clip"]["path"]).name, render=parameters["render_key"],
                     code=source_revision(beatframe.infra.encode.__file__))


@task(name="stitch-canvas", cache_key_fn=_stitch_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient)
def stitch_canvas(clip: dict, render_key: str) -> dict:
    """Paths of the staged ``canvas.mp4`` and its poster ``canvas.jpg``."""
    staging = get_settings().cache_dir / "renders" / render_key
    video, poster = staging / "canvas.mp4", staging / "canvas.jpg"
    remux_faststart(Path(clip["path"]), video)
    extract_poster(video, poster, at_seconds=0.0)
    return {"video": str(video), "poster": str(poster)}


def _video_stitch_key(context, parameters) -> str:
    import beatframe.music.video

    return cache_key("stitch-video", clips=[Path(c).name for c in parameters["clips"]],
                     audio=parameters["audio_sha256"], render=parameters["render_key"],
                     code=source_revision(beatframe.music.video.__file__))


@task(name="stitch-video", cache_key_fn=_video_stitch_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def stitch_video(clips: list[str], audio: str, audio_sha256: str, render_key: str) -> dict:
    """Join the shot clips without re-encoding, mux the audio as AAC, extract a poster."""
    from beatframe.music.video import join_with_audio

    staging = get_settings().cache_dir / "renders" / render_key
    video, poster = staging / "video.mp4", staging / "video.jpg"
    join_with_audio([Path(c) for c in clips], Path(audio), video)
    extract_poster(video, poster, at_seconds=0.0)
    return {"video": str(video), "poster": str(poster)}
