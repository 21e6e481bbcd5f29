"""Where a run's settings come from, in layers: the defaults, a packaged preset, a TOML
file, the command line (each later layer wins).

Every value is checked by :func:`~mgnm_pyg.training.config.check_value`, so an error
names the file and key, or the option as typed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mgnm_pyg.presets import load_preset
from mgnm_pyg.training.config import FIELDS, ConfigError, TrainConfig, check_value, option_flag

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_toml(path: str | Path, what: str = "configuration") -> dict[str, Any]:
    """The parsed TOML file ``path``; a missing, folder or invalid file is a
    :class:`ConfigError` naming it (``what`` says which kind of file was expected)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what} TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read settings from a TOML file: top-level keys named like the options.

    Dashes and underscores are interchangeable (``n-interests`` = ``n_interests``).
    Unknown keys, tables and wrong types raise :class:`ConfigError` naming the file.
    """
    raw = read_toml(path)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: "
                              f"{', '.join(sorted(FIELDS))}")
        values[name] = check_value(name, value, where=str(path), label=f"key {key!r}")
    return values


def build_config(
    explicit: dict[str, Any], toml_path: str | Path | None = None,
    base: TrainConfig | None = None, preset: str | None = None,
) -> TrainConfig:
    """Layer the settings: ``base`` (or the defaults), then the packaged ``preset``, then
    the TOML file, then ``explicit``.

    ``explicit`` holds only the options given on the command line, so they win.
    """
    values = (base or TrainConfig()).to_dict()
    if preset is not None:
        values.update(load_preset(preset))
    if toml_path is not None:
        values.update(load_toml(toml_path))
    for name, value in explicit.items():
        values[name] = check_value(name, value, where="command line", label=option_flag(name))
    return TrainConfig(**values)
