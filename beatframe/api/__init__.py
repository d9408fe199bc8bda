"""The Music Visuals HTTP API (FastAPI, under ``/v1``): routes, dependencies and error shape.

Reads everything through :class:`beatframe.infra.settings.Settings` and the database layer
(:mod:`beatframe.infra.db`: ``DATABASE_URL`` or the embedded PostgreSQL) and object storage
(:mod:`beatframe.infra.storage`: ``BEATFRAME_S3_*`` or the local folder).
"""
