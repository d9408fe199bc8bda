"""One pydantic ``Settings`` for the whole application, read from the environment.

Environment variables (the README's Configuration table lists them too):

- ``BEATFRAME_DATA_DIR`` (default ``./.beatframe``): local objects, caches, the local Prefect
  server's home.
- ``BEATFRAME_S3_ENDPOINT``, ``BEATFRAME_S3_ACCESS_KEY``, ``BEATFRAME_S3_SECRET_KEY``,
  ``BEATFRAME_S3_BUCKET``, ``BEATFRAME_S3_SECURE``, ``BEATFRAME_S3_REGION``: MinIO/S3 object
  storage; without an endpoint, objects go to ``$BEATFRAME_DATA_DIR/objects``.
- ``BEATFRAME_MODELS_DIR``: local model weights (no hub downloads at run time).
- ``BEATFRAME_PRICES``: a JSON file with the price table for the cost log (see
  :mod:`beatframe.infra.cost`); the built-in table is used without it.
- ``DATABASE_URL``: an external PostgreSQL.
- ``PREFECT_API_URL``: a real Prefect server (read by Prefect itself; beatframe checks it to
  decide whether to start its local one, and ``beatframe deploy`` needs it).
- ``BEATFRAME_PREFECT_SERVER=temporary``: with no ``PREFECT_API_URL``, let Prefect start a
  temporary server per process instead of the shared local one (see
  :mod:`beatframe.infra.prefect_local`).
- ``BEATFRAME_PROJECT_DIR``: the checkout Prefect workers run the deployments from, baked into
  them by ``beatframe deploy`` (default: the folder of ``prefect.yaml``).
- ``BEATFRAME_SECRET_KEY``: signs the local store's download links; without it a random key is
  created once in ``$BEATFRAME_DATA_DIR/secret.key`` (see :mod:`beatframe.api.signing`).
- ``BEATFRAME_DEBUG=1``: the CLI prints the traceback of an unexpected error.
- ``BEATFRAME_RENDER_BACKEND`` (``inprocess`` | ``deployment``, default ``inprocess``): where the
  HTTP API runs renders: its own bounded runner (``BEATFRAME_RENDER_WORKERS`` at once, default 2),
  or Prefect work pools through the deployments of ``prefect.yaml`` (needs ``PREFECT_API_URL``).
- ``BEATFRAME_FETCH_ALLOWED_NETWORKS``: comma-separated CIDRs that track URLs may reach although
  they are private (e.g. a label's on-premises file server); empty by default, so loopback,
  private and link-local addresses are refused. ``BEATFRAME_FETCH_MAX_BYTES`` (default 200 MB)
  and ``BEATFRAME_FETCH_TIMEOUT`` (seconds for the whole download, default 60) bound a fetch.
- ``BEATFRAME_WEBHOOK_RETRY_BASE`` (30 s), ``_RETRY_CAP`` (1 h), ``_RETRY_FOR`` (24 h) and
  ``_TIMEOUT`` (10 s): webhook retries double from the base up to the cap, for a day; each
  attempt may take the timeout (see :mod:`beatframe.api.webhooks`).
- ``BEATFRAME_API_URL`` and ``BEATFRAME_API_KEY``: a remote beatframe API for the CLI's remote
  mode and the Python SDK (:mod:`beatframe.client`).
- ``BEATFRAME_METRICS_TOKEN``: when set, ``GET /metrics`` wants ``Authorization: Bearer <token>``
  (unset: open, as Prometheus scrapes by default). ``BEATFRAME_SLA_LEVEL`` (``best_effort`` |
  ``standard`` | ``premium`` | ``critical``, default ``standard``) and ``BEATFRAME_SLA_WINDOW``
  (seconds, default 900): what ``GET /v1/sla/status`` measures against, and over how long (see
  :mod:`beatframe.api.metrics`).
- ``BEATFRAME_RATE_LIMITS``: requests per API key and endpoint class, e.g.
  ``generate=0.5/5,batch=0.1/2,default=10/50`` (the defaults: per second / at once), a class
  ``=off``, or ``off`` (see :mod:`beatframe.api.ratelimit`); checked at start.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
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
    # compared case-insensitively with "temporary"; any other value means the shared local server
    prefect_server: str = ""
    project_dir: Path | None = None
    secret_key: str | None = None
    debug: bool = False

    render_backend: Literal["inprocess", "deployment"] = "inprocess"
    render_workers: int = Field(default=2, ge=1, le=64)

    fetch_allowed_networks: str = ""
    fetch_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    fetch_timeout: float = Field(default=60.0, gt=0)

    api_url: str | None = None
    api_key: str | None = None

    metrics_token: str | None = None
    sla_level: Literal["best_effort", "standard", "premium", "critical"] = "standard"
    sla_window: float = Field(default=900.0, ge=10, le=86400)

    webhook_retry_base: float = Field(default=30.0, gt=0)
    webhook_retry_cap: float = Field(default=3600.0, gt=0)
    webhook_retry_for: float = Field(default=86400.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)

    # empty: the defaults of beatframe.api.ratelimit, which checks the value when the app is made
    rate_limits: str = ""

    @field_validator("project_dir", "debug", mode="before")
    @classmethod
    def _empty_is_unset(cls, value, info: ValidationInfo):
        # `BEATFRAME_DEBUG= beatframe …` unsets a variable for one command: the default, rather
        # than an invalid boolean or the current folder
        return cls.model_fields[info.field_name].default if value == "" else value

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
