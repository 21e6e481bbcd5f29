"""Packaged presets: TOML files of settings, read by ``mgnm-pyg train --preset NAME``.

- ``paper``: the paper's model and protocol (SPEC; the defaults of every option).
- ``tuned``: the project's recommended MGNM; each departure from the paper is a named
  option, and README.md gives its measured effect.
"""
