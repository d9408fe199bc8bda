"""Plumbing: settings, errors, files, object storage, the database, encoding, cost logs, URL fetches,
progress reporting and the local Prefect server.

Nothing here knows about music: :mod:`beatframe.music` and everything above it build on these
modules, never the other way round (CI checks it with import-linter, see ``pyproject.toml``).
"""
