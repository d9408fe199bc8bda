"""The music domain: audio analysis, Canvas and video planning on the beat grid, editing (loop
assembly, transitions, scene edits, the flash guard), spec checks, templates and the manifest.

Plain functions and data, no Prefect and no HTTP: the tasks in :mod:`beatframe.tasks` wrap them.
Builds only on :mod:`beatframe.infra`.
"""
