"""beatframe: loop-native Spotify Canvases and music videos cut to a song's beat grid.

The package holds the shared plumbing (settings, storage, schemas) and the plain logic that the
Prefect tasks in ``tasks/`` wrap (audio analysis, shot planning, encoding, checks). It reads no
environment variables itself; see :mod:`beatframe.infra.settings`.
"""

__version__ = "0.1.0"
