"""The ``mgnm-pyg`` command line: a click group whose subcommands live in their own modules.

Subcommands are imported only when used, so ``mgnm-pyg --help`` stays fast and a
command's heavy imports (torch, polars) are paid only by that command.
"""

from __future__ import annotations

import importlib

import click

from mgnm_pyg import __version__

# command name -> (module inside mgnm_pyg.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "train", "Train MGNM, validate every epoch, report test metrics."),
    "evaluate": ("evaluate", "evaluate", "Evaluate a run's best checkpoint."),
    "recommend": ("recommend", "recommend", "Top-K items for a user from a trained run."),
    "prepare": ("prepare", "prepare", "Turn a raw interaction log into a prepared dataset."),
    "datasets": ("datasets", "datasets", "List prepared datasets with their statistics."),
    "visualize": ("visualize", "visualize", "Draw what a run learned: adjacency, interests, runs."),
    "bench": ("bench", "bench", "Time training (the paper's Table 4) and evaluation."),
    "reproduce": ("reproduce", "reproduce", "Train the paper's Tables 2, 3 and Figures 3, 4, 7."),
    "tune": ("tune", "tune", "Search training settings with Optuna on the validation split."),
}


class LazyGroup(click.Group):
    """A group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so listing commands imports nothing heavy.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mgnm-pyg")
def main() -> None:
    """MGNM (Tian et al., SIGIR 2022) on PyTorch Geometric.

    Run `mgnm-pyg train` with no arguments to train on the synthetic demo data.
    """
