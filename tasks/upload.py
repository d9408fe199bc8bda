"""Stage 6: upload the checked outputs to object storage under deterministic keys.

The store client is created inside the task from settings (never a task parameter, so it is
never part of a cache key or a pickled result). Uploads are idempotent: an object with the same
sha256 under the same key is not written again, so a retry never duplicates anything.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import task

from beatframe.infra.storage import get_store
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient


@task(name="upload", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient)
def upload_outputs(files: dict[str, str], prefix: str) -> dict[str, dict]:
    """Upload ``{object name: local path}`` under ``prefix/``; returns the stored records by name."""
    store = get_store()
    content_types = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".json": "application/json"}
    stored = {}
    for name, path in files.items():
        suffix = name[name.rfind("."):]
        record = store.put_file(f"{prefix}/{name}", path, content_type=content_types.get(suffix, "application/octet-stream"))
        stored[name] = asdict(record)
    return stored
