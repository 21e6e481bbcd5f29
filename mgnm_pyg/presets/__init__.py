"""Packaged presets: TOML files of settings, read by ``mgnm-pyg train --preset NAME``.

- ``paper``: the paper's model and protocol (SPEC; the defaults of every option).
- ``authors``: MGNM as the authors' TensorFlow code computes it (SPEC, "The authors'
  code, as it computes"): per-position capsule maps, random routing logits, their BiLSTM,
  ``q_k = o_k``, the raw user-free adjacency, levels from level 0 with a bias, half the
  L2, ``theta1 = 1e-5``, 42 records a batch, 50 epochs without early stopping (selection
  on validation GAUC; their code selects on test).
- ``tuned``: the project's recommended MGNM; each departure from the paper is a named
  option, and README.md gives its measured effect.
"""

from importlib import resources
from typing import Any

__all__ = ["load_preset", "preset_names"]


def preset_names() -> tuple[str, ...]:
    """The packaged presets (``mgnm_pyg/presets/*.toml``), sorted."""
    folder = resources.files("mgnm_pyg.presets")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def load_preset(name: str) -> dict[str, Any]:
    """The settings of packaged preset ``name``; an unknown name is a :class:`ConfigError`."""
    from mgnm_pyg.training.config import ConfigError
    from mgnm_pyg.training.settings import load_toml

    if name not in preset_names():
        raise ConfigError(f"--preset: unknown preset {name!r}; choose one of "
                                 f"{', '.join(preset_names())}")
    with resources.as_file(resources.files("mgnm_pyg.presets") / f"{name}.toml") as path:
        return load_toml(path)
