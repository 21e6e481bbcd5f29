"""Running the click commands in tests: CliRunner with the traceback shown on failure."""

from __future__ import annotations

import traceback

from click.testing import CliRunner, Result
from mgnm_pyg.cli import main

#: ``train`` options for a tiny one-epoch run on synthetic data, without the slow extras.
TINY_ONE_EPOCH = ["--data", "synthetic:tiny", "--dim", "4", "--n-interests", "2",
                  "--n-layers", "1", "--max-len", "5", "--device", "cpu", "--no-eval-full",
                  "--epochs", "1", "--ranking-agreement", "0"]


def invoke(*args) -> Result:
    """``mgnm-pyg ARGS...`` in-process."""
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(r: Result) -> str:
    """The output of a command that must succeed; the traceback is shown if it did not."""
    assert r.exit_code == 0, r.output + "".join(traceback.format_exception(*r.exc_info))
    return r.output


def ok_stdout(r: Result) -> str:
    """Like :func:`ok`, but only what went to stdout (warnings go to stderr)."""
    ok(r)
    return r.stdout


def failed(r: Result, *needles: str) -> str:
    """A clean user error: exit code 1, each of ``needles`` in the message, no traceback."""
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    for needle in needles:
        assert needle in r.output, r.output
    return r.output
