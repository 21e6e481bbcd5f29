"""Numeric option ranges: checked in TrainConfig, named as the user wrote them, and no
input of `mgnm-pyg train` ends in a traceback or an exit code other than 0, 1 or 2."""

from __future__ import annotations

import math
import tempfile

import pytest
from cli_helpers import failed, invoke
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mgnm_pyg.cli import main

from mgnm_pyg.training.config import FIELDS, ConfigError, TrainConfig, field_type

NUMERIC = [n for n in FIELDS if field_type(n) in (int, float)]
# Small values, the bounds around them, and text that is not a number.
VALUE = st.one_of(
    st.integers(-3, 9).map(str),
    st.sampled_from(["0.0", "0.5", "0.999", "1.0", "1.5", "-0.1", "1e-3", "nan", "inf",
                     "-inf", "abc", "", "2**3", "4294967296"]),
)
BASE = ["train", "--data", "synthetic:tiny", "--device", "cpu", "--no-progress",
        "--dim", "4", "--n-layers", "1", "--max-len", "5"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--dropout", "1.5", "--dropout must be >= 0.0 and < 1.0; got 1.5"),
    ("--dropout", "1.0", "--dropout must be >= 0.0 and < 1.0; got 1.0"),
    ("--lr", "0", "--lr must be > 0.0; got 0.0"),
    ("--lr", "nan", "--lr must be a finite number; got nan"),
    ("--theta1", "inf", "--theta1 must be a finite number; got inf"),
    ("--seed", "-1", "--seed must be >= 0 and <= 4294967295; got -1"),
    ("--n-interests", "0", "--n-interests must be >= 1; got 0"),
])
def test_out_of_range_options_are_usage_errors_naming_the_option(option, value, message):
    r = invoke(*BASE, "--model", "sasrec", option, value)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_sasrec_heads_must_divide_dim():
    failed(invoke(*BASE, "--model", "sasrec", "--n-heads", "3"),
           "model sasrec needs dim (4) to be a multiple of n_heads (3)")


def test_toml_errors_name_the_key_as_written(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("n-interests = 0\n")
    failed(invoke("train", "--config", f), f"{f}: key 'n-interests' must be >= 1; got 0")
    f.write_text("dropout = 1.0\n")
    failed(invoke("train", "--config", f), "key 'dropout' must be >= 0.0 and < 1.0")
    f.write_text("n-interest = 2\n")
    failed(invoke("train", "--config", f), "unknown key 'n-interest'")


def test_bounds_hold_in_code_too():
    with pytest.raises(ConfigError, match=r"key 'lr' must be > 0\.0; got -1\.0"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig(theta2=math.nan)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NUMERIC), VALUE, min_size=1, max_size=3),
       st.sampled_from(["mgnm", "sasrec", "pop"]))
@example({"dropout": "1.5"}, "sasrec")  # the report
@example({"lr": "nan"}, "mgnm")
@example({"n_heads": "3"}, "sasrec")
def test_no_option_value_gives_a_traceback(values, model):
    from mgnm_pyg.training.trainer import Trainer

    args = [*BASE, "--model", model]
    for name, value in values.items():
        args += ["--" + name.replace("_", "-"), value]
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        mp.setattr(Trainer, "fit", lambda self: None)  # stop once the run is set up
        mp.chdir(tmp)
        r = CliRunner().invoke(main, args)
    assert r.exit_code in (0, 1, 2), (args, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, r.exception)
    assert "Traceback" not in r.output


PREPARE_NUMERIC = ("--max-len", "--k-core", "--eval-negatives", "--seed", "--rating-threshold")
SEQUENCES = "".join(f"{u} " + " ".join(str(10 + (u * 7 + j) % 15) for j in range(6)) + "\n"
                    for u in range(1, 13))


@pytest.mark.slow
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(PREPARE_NUMERIC), VALUE, min_size=1, max_size=3))
@example({"--seed": "-1"})
@example({"--rating-threshold": "nan"})
def test_no_prepare_option_value_gives_a_traceback(tmp_path, values):
    path = tmp_path / "s.txt"
    path.write_text(SEQUENCES)
    args = ["prepare", "sequences", path, "--data-dir", tmp_path / "ds", "--force"]
    for flag, value in values.items():
        args += [flag, value]
    r = invoke(*args)
    assert r.exit_code in (0, 1, 2), (args, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, r.exception)
    assert "Traceback" not in r.output
