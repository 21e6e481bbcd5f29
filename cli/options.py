"""Click options shared by the commands, generated from :class:`TrainConfig`'s fields.

Each setting is declared once (its default, help, choices) in
``mgnm_pyg/training/config.py``; this module turns the fields into options, so the
command line, the TOML keys and ``config.json`` always agree.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from mgnm_pyg.errors import MGNMError

# mgnm_pyg.training.config is imported where it is used: its choices come from the model
# registries, which import torch, and prepare/datasets need neither.

_CLICK_TYPES = {int: int, float: float, str: str}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _checked(name: str) -> Callable:
    """A click callback checking an option's value with ``check_value`` (the ranges live
    in ``TrainConfig``); a bad value is a usage error naming the option."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from mgnm_pyg.training.config import ConfigError, check_value

        if value is None:
            return value
        try:
            if isinstance(value, tuple):  # an option given several times (multiple=True)
                return tuple(check_value(name, v, where="", label=_flag(name)) for v in value)
            return check_value(name, value, where="", label=_flag(name))
        except ConfigError as exc:
            raise click.UsageError(str(exc), ctx=ctx) from None

    return callback


def config_option(name: str, negatable: bool = True, **overrides: Any) -> Callable:
    """The click option of setting ``name`` (``--use-graph/--no-use-graph`` for booleans;
    a plain ``--amp`` flag with ``negatable=False``)."""
    from mgnm_pyg.training.config import FIELDS, field_type

    f = FIELDS[name]
    meta, kind = f.metadata, field_type(name)
    kwargs: dict[str, Any] = {"default": f.default, "show_default": True, "help": meta["help"],
                              "callback": _checked(name)}
    if kind is bool and not negatable:
        decls = [_flag(name), name]
        kwargs.update(is_flag=True, show_default=False)
    elif kind is bool:
        decls = [f"{_flag(name)}/--no-{name.replace('_', '-')}", name]
    else:
        decls = [_flag(name), name]
        kwargs["type"] = click.Choice(meta["choices"]) if meta["choices"] else _CLICK_TYPES[kind]
        if name == "data":
            kwargs["metavar"] = "SPEC"
    kwargs.update(overrides)
    return click.option(*decls, **kwargs)


def config_options(func: Callable) -> Callable:
    """Every setting of :class:`TrainConfig` as an option, in declaration order."""
    from mgnm_pyg.training.config import FIELDS

    for name in reversed(list(FIELDS)):
        func = config_option(name)(func)
    return func


def explicit_options(ctx: click.Context, names: Any = None) -> dict[str, Any]:
    """The options among ``names`` (default: every setting) given on the command line (or
    by environment)."""
    from mgnm_pyg.training.config import FIELDS

    names = FIELDS if names is None else names
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {n: ctx.params[n] for n in names
            if n in ctx.params and ctx.get_parameter_source(n) in given}


run_dir_argument = click.argument(
    "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="RUN_DIR")

data_override_option = click.option(
    "--data", default=None, metavar="SPEC",
    help="Dataset to use (default: the run's own); it must have the run's users and items.")


def _resolve_progress(ctx: click.Context, param: click.Parameter, value: bool | None) -> bool:
    return sys.stderr.isatty() if value is None else value


progress_option = click.option(
    "--progress/--no-progress", default=None, callback=_resolve_progress,
    help="Show progress bars (on stderr). [default: when stderr is a terminal]")


def user_errors(func: Callable) -> Callable:
    """Show :class:`MGNMError` as a clean message (exit code 1) instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MGNMError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper
