"""Built-in style templates, one TOML file each; loaded by :mod:`beatframe.music.templates`."""
