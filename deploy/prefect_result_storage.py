"""Create or update the Prefect block that flow and task results are kept in, on MinIO/S3, so
that every worker and API process reads the results any of them wrote.

    python deploy/prefect_result_storage.py [--block remote-file-system/NAME] [--basepath URL]

Why: a deployment run's manifest is the flow's persisted result, which the API reads when the run
completes (``beatframe.api.runner``), and the tasks' cached results are what a retried or repeated
run on another worker finds instead of recomputing. With Prefect's default local result storage
both stay on the machine that ran the flow. This saves a ``remote-file-system`` block (an fsspec
URL; ``s3://`` needs the ``s3fs`` package: ``pip install 'beatframe[s3]'``, as the images of
``deploy/docker`` do) and the
workers and the API are started with ``PREFECT_DEFAULT_RESULT_STORAGE_BLOCK`` naming it.

Environment:

- ``PREFECT_API_URL``: the Prefect server that keeps the block.
- ``PREFECT_DEFAULT_RESULT_STORAGE_BLOCK``: the block's slug when ``--block`` is not given, the
  same value the workers and the API run with (``remote-file-system/<name>``).
- ``BEATFRAME_S3_ENDPOINT``, ``BEATFRAME_S3_ACCESS_KEY``, ``BEATFRAME_S3_SECRET_KEY``,
  ``BEATFRAME_S3_SECURE``, ``BEATFRAME_S3_REGION``, ``BEATFRAME_S3_BUCKET`` (through
  :mod:`beatframe.infra.settings`): the object store; ``--basepath`` defaults to
  ``s3://$BEATFRAME_S3_BUCKET/prefect-results``. Without an access key the block carries no
  credentials and s3fs uses the machine's own (an IAM role, a Kubernetes service account).
  With one, the key is stored in the block document on the Prefect server: give the results a
  key of their own where the Prefect API is shared.

Exit codes: 0 saved, 2 bad input (one line on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from urllib.parse import urlsplit

BLOCK_TYPE = "remote-file-system"
RESULTS_PREFIX = "prefect-results"


class BadInput(Exception):
    pass


def block_name(slug: str | None) -> str:
    """The block's name from its slug ``remote-file-system/<name>``."""
    if not slug:
        raise BadInput("name the block: --block remote-file-system/NAME or PREFECT_DEFAULT_RESULT_STORAGE_BLOCK")
    kind, _, name = slug.partition("/")
    if kind != BLOCK_TYPE or not name or "/" in name:
        raise BadInput(f"result storage block {slug!r} must be {BLOCK_TYPE}/<name>")
    return name


def block_fields(settings, basepath: str | None = None) -> dict:
    """``basepath`` and fsspec ``settings`` of the block for beatframe's object store."""
    from beatframe.infra.storage import parse_endpoint

    basepath = (basepath or f"s3://{settings.s3_bucket}/{RESULTS_PREFIX}").rstrip("/")
    if urlsplit(basepath).scheme != "s3":
        return {"basepath": basepath, "settings": {}}
    options: dict = {}
    if settings.s3_access_key:
        options["key"] = settings.s3_access_key
        options["secret"] = settings.s3_secret_key or ""
    client: dict = {}
    if settings.s3_endpoint:
        try:
            host, secure = parse_endpoint(settings.s3_endpoint, settings.s3_secure)
        except ValueError as exc:
            raise BadInput(f"BEATFRAME_S3_ENDPOINT: {exc}") from None
        client["endpoint_url"] = f"{'https' if secure else 'http'}://{host}"
    if settings.s3_region:
        client["region_name"] = settings.s3_region
    if client:
        options["client_kwargs"] = client
    return {"basepath": basepath, "settings": options}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prefect_result_storage.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", default=os.environ.get("PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"),
                        help="remote-file-system/NAME (default: PREFECT_DEFAULT_RESULT_STORAGE_BLOCK)")
    parser.add_argument("--basepath", help="where results go (default: s3://$BEATFRAME_S3_BUCKET/prefect-results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        name = block_name(args.block)
        from beatframe.infra.settings import Settings

        fields = block_fields(Settings(), args.basepath)
        if fields["basepath"].startswith("s3://") and importlib.util.find_spec("s3fs") is None:
            raise BadInput("s3:// result storage needs the s3fs package here, on every worker and on the API")
        if not os.environ.get("PREFECT_API_URL"):
            raise BadInput("set PREFECT_API_URL to the Prefect server that keeps the block")
    except BadInput as exc:
        print(f"prefect_result_storage: error: {exc}", file=sys.stderr)
        return 2
    from prefect.filesystems import RemoteFileSystem

    RemoteFileSystem(**fields).save(name, overwrite=True)
    print(f"result storage {BLOCK_TYPE}/{name}: {fields['basepath']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
