"""Preview frames while a render runs: a small draft as soon as the clip is generated, the
full-quality poster once it is stitched, uploaded to ``<prefix>/draft.jpg`` and ``<prefix>/full.jpg``.

The HTTP API asks for them (the flows' ``previews`` parameter) and announces each one on the
render's live stream; the CLI does not, so local renders skip this stage entirely.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from beatframe.infra.encode import extract_poster
from beatframe.infra.storage import get_store
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

#: The draft's width in pixels: enough to see the look, a few kilobytes to send.
DRAFT_WIDTH = 180


@task(name="preview", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient)
def publish_preview(source: str, prefix: str, *, quality: str) -> str:
    """Upload a preview; ``source`` is a video (``draft``: its first frame, scaled down) or the
    poster JPEG (``full``). Returns the object key."""
    key = f"{prefix}/{quality}.jpg"
    if quality == "full":
        get_store().put_file(key, source, content_type="image/jpeg")
        return key
    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / "draft.jpg"
        extract_poster(Path(source), draft, width=DRAFT_WIDTH, quality=8)
        get_store().put_file(key, draft, content_type="image/jpeg")
    return key
