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
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
