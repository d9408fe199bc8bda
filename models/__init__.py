"""Generators and analysis/vision models: plain Python, no Prefect, no HTTP.

Each generator lives in its own module and registers itself in :mod:`beatframe.models.registry`, so adding a
backend means adding one file.
"""
