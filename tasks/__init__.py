"""One Prefect task per stage of the render DAG, each a thin wrapper over plain functions.

Tasks are idempotent and cache on small inputs (content hashes, parameters, code revisions);
heavy modules are imported inside task bodies so a fully cached rerun never pays for them.
"""
