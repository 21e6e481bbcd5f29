"""The search-space file of `mgnm-pyg tune`: parsing and its errors (no Optuna needed)."""

from __future__ import annotations

import sys

import pytest
from cli_helpers import failed, invoke

from mgnm_pyg.experiments.tune_space import load_space
from mgnm_pyg.training.config import ConfigError

GOOD = """
data = "synthetic:tiny"
max-len = 10
epochs = 2

[search]
lr = {type = "float", low = 1e-4, high = 1e-2, log = true}
n-interests = {type = "int", low = 2, high = 8, step = 2}
theta1 = {type = "float", low = 0, high = 1}
loss = {type = "categorical", choices = ["bce", "softmax"]}
use_graph = {type = "categorical", choices = [true, false]}
"""


def write(tmp_path, text: str, name: str = "space.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


class RecordingTrial:
    """Stands in for an Optuna trial: records each suggestion, returns the low end."""

    def __init__(self):
        self.calls = []

    def suggest_float(self, name, low, high, log=False, step=None):
        self.calls.append(("float", name, low, high, log, step))
        return low

    def suggest_int(self, name, low, high, log=False, step=1):
        self.calls.append(("int", name, low, high, log, step))
        return low

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, choices))
        return choices[-1]


def test_a_good_space_gives_fixed_settings_and_params(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert space.fixed == {"data": "synthetic:tiny", "max_len": 10, "epochs": 2}
    assert [p.name for p in space.params] == ["lr", "n_interests", "theta1", "loss",
                                              "use_graph"]
    theta1 = space.params[2]
    assert theta1.low == 0.0 and isinstance(theta1.low, float)  # an int bound widened
    trial = RecordingTrial()
    config = space.suggest(trial)
    assert trial.calls == [("float", "lr", 1e-4, 1e-2, True, None),
                           ("int", "n_interests", 2, 8, False, 2),
                           ("float", "theta1", 0.0, 1.0, False, None),
                           ("categorical", "loss", ["bce", "softmax"]),
                           ("categorical", "use_graph", [True, False])]
    assert (config.lr, config.n_interests, config.loss, config.use_graph) == (
        1e-4, 2, "softmax", False)
    assert (config.data, config.max_len, config.epochs) == ("synthetic:tiny", 10, 2)
    assert config.dim == 16  # not in the file: the default
    assert space.to_dict()["search"]["loss"]["choices"] == ["bce", "softmax"]


def test_a_preset_is_the_base_of_every_trial(tmp_path):
    from mgnm_pyg.presets import load_preset

    tuned = load_preset("tuned")
    space = load_space(write(tmp_path, 'preset = "tuned"\nepochs = 2\n[search]\n'
                                       'lr = {type = "float", low = 1e-4, high = 1e-2}\n'))
    config = space.suggest(RecordingTrial())
    assert (config.loss, config.score_scale, config.capsule_output, config.n_layers) == (
        tuned["loss"], tuned["score_scale"], tuned["capsule_output"], tuned["n_layers"])
    assert config.epochs == 2 != tuned["epochs"]  # a fixed key wins over the preset
    assert config.lr == 1e-4 != tuned["lr"]       # and so does a searched one
    fixed = space.to_dict()["fixed"]  # what a resumed study compares
    assert fixed["score_scale"] == tuned["score_scale"] and fixed["epochs"] == 2
    assert "lr" not in fixed
    plain = load_space(write(tmp_path, 'epochs = 2\n[search]\n'
                                       'lr = {type = "float", low = 1e-4, high = 1e-2}\n'))
    assert plain.suggest(RecordingTrial()).loss == "bce"  # without it: the defaults


SEARCH = "epochs = 2\n[search]\n"
BAD = {
    "unknown preset": ('preset = "fast"\n' + SEARCH + 'lr = {type = "float", low = 0.1, '
                       'high = 0.2}', ["key 'preset'", "tuned", "'fast'"]),
    "preset not a name": ('preset = 3\n' + SEARCH + 'lr = {type = "float", low = 0.1, '
                          'high = 0.2}', ["key 'preset'", "got 3"]),
    "unknown setting": (SEARCH + 'foo = {type = "int", low = 1, high = 2}',
                        ["[search] foo", "unknown setting"]),
    "unknown type": (SEARCH + 'lr = {type = "uniform", low = 0.1, high = 0.2}',
                     ["[search] lr", "'type' must be one of float, int, categorical",
                      "'uniform'"]),
    "no type": (SEARCH + "lr = {low = 0.1, high = 0.2}", ["[search] lr", "'type'"]),
    "unknown spec key": (SEARCH + 'lr = {type = "float", low = 0.1, high = 0.2, logg = true}',
                         ["[search] lr", "unknown key(s) logg"]),
    "missing bound": (SEARCH + 'lr = {type = "float", low = 0.1}', ["[search] lr", "high"]),
    "float range of an int": (SEARCH + 'n_interests = {type = "float", low = 1, high = 4}',
                              ["[search] n_interests", "takes int values", "'int'"]),
    "range of a string": (SEARCH + 'loss = {type = "int", low = 1, high = 4}',
                          ["[search] loss", "must be categorical"]),
    "bound below the minimum": (SEARCH + 'n_interests = {type = "int", low = 0, high = 4}',
                                ["[search] n_interests", "must be >= 1", "0"]),
    "choice not allowed": (SEARCH + 'loss = {type = "categorical", choices = ["bce", "hinge"]}',
                           ["[search] loss", "must be one of bce, softmax", "'hinge'"]),
    "choice of the wrong type": (SEARCH + 'dim = {type = "categorical", choices = [8, "x"]}',
                                 ["[search] dim", "expects int"]),
    "empty choices": (SEARCH + 'loss = {type = "categorical", choices = []}',
                      ["[search] loss", "non-empty list"]),
    "low not below high": (SEARCH + 'lr = {type = "float", low = 0.1, high = 0.1}',
                           ["[search] lr", "'low' must be below 'high'"]),
    # theta2 may be 0 (lr may not), so this reaches the log-scale check itself
    "log from zero": (SEARCH + 'theta2 = {type = "float", low = 0, high = 0.1, log = true}',
                      ["[search] theta2", "needs 'low' > 0"]),
    "step with log": (SEARCH + 'dim = {type = "int", low = 8, high = 64, step = 8, log = true}',
                      ["[search] dim", "exclude each other"]),
    "not a table": (SEARCH + "lr = 0.1", ["[search] lr", "expects a table"]),
    "fixed and searched": ('lr = 0.1\n[search]\nlr = {type = "float", low = 0.1, high = 0.2}',
                           ["[search] lr", "both a fixed setting and searched"]),
    "unknown fixed key": ('foo = 1\n[search]\nlr = {type = "float", low = 0.1, high = 0.2}',
                          ["unknown key 'foo'"]),
    "fixed value of the wrong type": ('epochs = "ten"\n[search]\n'
                                      'lr = {type = "float", low = 0.1, high = 0.2}',
                                      ["key 'epochs' expects int", "'ten'"]),
    "searched objective": (SEARCH + 'select_metric = {type = "categorical", choices = '
                           '["gauc", "hit@5"]}', ["[search] select_metric", "cannot be searched"]),
    "no search table": ("epochs = 2\n", ["no [search] table"]),
    "empty search table": (SEARCH, ["no [search] table"]),
    "another table": (SEARCH + 'lr = {type = "float", low = 0.1, high = 0.2}\n[tune]\nx = 1',
                      ["unknown table [tune]"]),
    "not TOML": ("epochs = = 2", ["not valid TOML"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_space_names_the_file_and_the_key(tmp_path, case):
    text, needles = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_space(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for needle in needles:
        assert needle in message, message


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="search-space file not found"):
        load_space(tmp_path / "nope.toml")


def test_the_command_reports_a_bad_space_without_a_traceback(tmp_path):
    path = write(tmp_path, SEARCH + 'n_interests = {type = "int", low = 0, high = 4}')
    failed(invoke("tune", path, "--out-dir", tmp_path / "out"), str(path),
           "[search] n_interests", "must be >= 1")
    assert not (tmp_path / "out").exists()  # nothing was created
    usage = invoke("tune", "--out-dir", tmp_path / "out")
    assert usage.exit_code == 2 and "SPACE.toml" in usage.output


def test_without_optuna_the_command_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    out = failed(invoke("tune", write(tmp_path, GOOD), "--out-dir", tmp_path / "out"),
                 'pip install "mgnm-pyg[tune]"')
    assert len(out.strip().splitlines()) == 1, out
    failed(invoke("tune", "--report-only", "--out-dir", tmp_path / "out"),
           'pip install "mgnm-pyg[tune]"')


def test_the_shipped_example_space_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tune_space_mgnm.toml"
    space = load_space(path)
    assert {p.name for p in space.params} == {"lr", "n_interests", "batch_size",
                                              "interest_activation", "bilstm_mode", "loss",
                                              "score_scale", "lr_schedule", "level_norm"}
    assert space.fixed["select_metric"] == "hit@5"
    tuned = load_space(path.with_name("tune_space_tuned.toml"))
    config = tuned.config({})
    assert (config.loss, config.capsule_output, config.epochs) == ("sampled-softmax", "mean", 15)
    assert {p.name for p in tuned.params} >= {"n_interests", "learn_score_scale"}
