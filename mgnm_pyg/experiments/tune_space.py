"""The search space of ``mgnm-pyg tune``, read from a TOML file (no Optuna needed).

Top-level keys are fixed settings of every trial (any :class:`TrainConfig` key, as in
``mgnm-pyg train --config``); the ``[search]`` table names the searched settings::

    epochs = 8
    [search]
    lr = {type = "float", low = 1e-4, high = 1e-2, log = true}
    n_interests = {type = "int", low = 2, high = 8}
    loss = {type = "categorical", choices = ["bce", "softmax"]}

A top-level ``preset = "tuned"`` (any packaged preset) starts every trial from that
preset, as ``train --preset`` does: the fixed keys and the searched ones override it.

Every key, bound and choice goes through the config's own checks
(:func:`~mgnm_pyg.training.config.check_value`), so an error names the file, the key
and what is wrong before any trial trains.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mgnm_pyg.presets import load_preset, preset_names
from mgnm_pyg.training.config import (
    FIELDS,
    ConfigError,
    TrainConfig,
    check_value,
    field_type,
)
from mgnm_pyg.training.settings import read_toml

KINDS = ("float", "int", "categorical")
# the keys each kind of parameter may have (besides ``type``), and the required ones
SPEC_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
             "categorical": {"choices"}}
REQUIRED = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}


@dataclass(frozen=True)
class Param:
    """One searched setting: a float or int range, or a list of choices."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """This setting's value for an Optuna ``trial``."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log,
                                       step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, log=self.log,
                                     step=self.step or 1)
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name}: one of {', '.join(map(repr, self.choices))}"
        extra = " (log)" if self.log else f" step {self.step}" if self.step else ""
        return f"{self.name}: {self.kind} in [{self.low}, {self.high}]{extra}"


@dataclass(frozen=True)
class SearchSpace:
    """Fixed settings plus searched parameters; :meth:`config` makes a trial's config."""

    fixed: dict[str, Any]
    params: tuple[Param, ...]
    source: str = ""
    #: the settings of the file's ``preset`` (empty without one), under ``fixed``
    base: dict[str, Any] = field(default_factory=dict)

    def config(self, values: dict[str, Any]) -> TrainConfig:
        """The :class:`TrainConfig` of one trial (``values``: its searched settings)."""
        return TrainConfig(**{**TrainConfig().to_dict(), **self.base, **self.fixed,
                              **values})

    def suggest(self, trial: Any) -> TrainConfig:
        return self.config({p.name: p.suggest(trial) for p in self.params})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, stored with the study so a resumed study checks its space."""
        searched = {p.name for p in self.params}
        # the preset's values count as fixed ones, so a resumed study notices a preset
        # whose values changed
        fixed = {**{k: v for k, v in self.base.items() if k not in searched}, **self.fixed}
        return {"fixed": dict(sorted(fixed.items())),
                "search": {p.name: {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in asdict(p).items() if k != "name"}
                           for p in self.params}}


def _number(where: str, key: str, value: Any, kind: str) -> float | int:
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{where}: {key!r} must be a finite {kind}; got {value!r}")
    return float(value) if kind == "float" else value


def parse_param(name: str, spec: Any, where: str) -> Param:
    """One ``[search]`` entry, checked; ``where`` is ``FILE: [search] KEY`` for errors."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expects a table such as {{type = \"float\", low = ..., "
                          f"high = ...}}; got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}: 'type' must be one of {', '.join(KINDS)}; got {kind!r}")
    unknown = sorted(set(spec) - SPEC_KEYS[kind] - {"type"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for type {kind!r} "
                          f"(allowed: {', '.join(sorted(SPEC_KEYS[kind]))})")
    missing = [k for k in REQUIRED[kind] if k not in spec]
    if missing:
        raise ConfigError(f"{where}: type {kind!r} needs {', '.join(missing)}")
    setting = field_type(name)
    if kind == "categorical":
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list; got {choices!r}")
        checked = tuple(check_value(name, c, where) for c in choices)
        if len(set(checked)) != len(checked):
            raise ConfigError(f"{where}: 'choices' has duplicates: {choices!r}")
        return Param(name, kind, choices=checked)
    if setting.__name__ != kind:
        allowed = "categorical" if setting in (bool, str) else f"{setting.__name__!r}"
        raise ConfigError(f"{where}: setting {name!r} takes {setting.__name__} values, so "
                          f"its type must be {allowed}, not {kind!r}")
    low = check_value(name, _number(where, "low", spec["low"], kind), where)
    high = check_value(name, _number(where, "high", spec["high"], kind), where)
    if not low < high:
        raise ConfigError(f"{where}: 'low' must be below 'high'; got {low!r} and {high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: 'log' must be true or false; got {log!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(where, "step", step, kind)
        if step <= 0:
            raise ConfigError(f"{where}: 'step' must be positive; got {step!r}")
        if log:
            raise ConfigError(f"{where}: 'step' and 'log = true' exclude each other")
    if log and low <= 0:
        raise ConfigError(f"{where}: 'log = true' needs 'low' > 0; got {low!r}")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def parse_space(raw: dict[str, Any], where: str) -> SearchSpace:
    """A search space from a TOML document already read (``where`` names it in errors)."""
    fixed: dict[str, Any] = {}
    search, base = None, {}
    for key, value in raw.items():
        if key == "search":
            search = value
            continue
        if key == "preset":
            base = _preset(value, where)
            continue
        if isinstance(value, dict):
            raise ConfigError(f"{where}: unknown table [{key}]; the only table is [search], "
                              f"the fixed settings are top-level keys")
        name = key.replace("-", "_")
        fixed[name] = check_value(name, value, where)
    if not isinstance(search, dict) or not search:
        raise ConfigError(f"{where}: no [search] table with at least one setting to tune, "
                          f"e.g. lr = {{type = \"float\", low = 1e-4, high = 1e-2, log = true}}")
    params = []
    for key, spec in search.items():
        name = key.replace("-", "_")
        here = f"{where}: [search] {key}"
        if name not in FIELDS:
            raise ConfigError(f"{here}: unknown setting; known settings: "
                              f"{', '.join(sorted(FIELDS))}")
        if name == "select_metric":
            raise ConfigError(f"{here}: the objective's metric cannot be searched (trials "
                              f"would not be comparable); set select_metric as a fixed key")
        if name in fixed:
            raise ConfigError(f"{here}: is both a fixed setting and searched; keep one")
        params.append(parse_param(name, spec, here))
    return SearchSpace(fixed, tuple(params), where, base)


def _preset(name: Any, where: str) -> dict[str, Any]:
    if not isinstance(name, str) or name not in preset_names():
        raise ConfigError(f"{where}: key 'preset' expects the name of a packaged preset, "
                          f"one of {', '.join(preset_names())}; got {name!r}")
    return load_preset(name)


def load_space(path: str | Path) -> SearchSpace:
    """Read and check the search-space file ``path``."""
    raw = read_toml(path, "search-space")
    return parse_space(raw, str(path))
