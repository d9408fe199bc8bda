"""One pydantic ``Settings`` for the whole application, read from the environment.

Environment variables (see DESIGN.md):

- ``BEATFRAME_DATA_DIR`` (default ``./.beatframe``): local objects, caches, the local Prefect
  server's home.
- ``BEATFRAME_S3_ENDPOINT``, ``BEATFRAME_S3_ACCESS_KEY``, ``BEATFRAME_S3_SECRET_KEY``,
  ``BEATFRAME_S3_BUCKET``, ``BEATFRAME_S3_SECURE``, ``BEATFRAME_S3_REGION``: MinIO/S3 object
  storage; without an endpoint, objects go to ``$BEATFRAME_DATA_DIR/objects``.
- ``BEATFRAME_MODELS_DIR``: local model weights (no hub downloads at run time).
- ``BEATFRAME_PRICES``: a JSON file with the price table for the cost log (see
  :mod:`beatframe.cost`); the built-in table is used without it.
- ``DATABASE_URL``: an external PostgreSQL.
- ``PREFECT_API_URL``: a real Prefect server (read by Prefect itself; beatframe only checks it
  to decide whether to start its local one).
- ``BEATFRAME_RENDER_BACKEND`` (``inprocess`` | ``deployment``, default ``inprocess``): where the
  HTTP API runs renders: its own bounded runner (``BEATFRAME_RENDER_WORKERS`` at once, default 2),
  or Prefect work pools through the deployments of ``prefect.yaml`` (needs ``PREFECT_API_URL``).
- ``BEATFRAME_FETCH_ALLOWED_NETWORKS``: comma-separated CIDRs that track URLs may reach although
  they are private (e.g. a label's on-premises file server); empty by default, so loopback,
  private and link-local addresses are refused. ``BEATFRAME_FETCH_MAX_BYTES`` (default 200 MB)
  and ``BEATFRAME_FETCH_TIMEOUT`` (seconds for the whole download, default 60) bound a fetch.
- ``BEATFRAME_API_URL`` and ``BEATFRAME_API_KEY``: a remote beatframe API for the CLI's remote
  mode and the Python SDK (:mod:`beatframe.client`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEATFRAME_", extra="ignore")

    data_dir: Path = Field(default=Path(".beatframe"))
    models_dir: Path | None = None
    prices: Path | None = None

    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "beatframe"
    s3_secure: bool = True
    s3_region: str | None = None

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    prefect_api_url: str | None = Field(default=None, validation_alias="PREFECT_API_URL")

    render_backend: Literal["inprocess", "deployment"] = "inprocess"
    render_workers: int = Field(default=2, ge=1, le=64)

    fetch_allowed_networks: str = ""
    fetch_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    fetch_timeout: float = Field(default=60.0, gt=0)

    api_url: str | None = None
    api_key: str | None = None

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
