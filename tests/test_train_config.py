"""TrainConfig: defaults from SPEC, TOML keys mirror the options, command line wins."""

from __future__ import annotations

import dataclasses
import traceback

import click
import pytest
from click.testing import CliRunner
from mgnm_pyg.cli.options import config_options, explicit_options

from mgnm_pyg.training.config import FIELDS, ConfigError, TrainConfig
from mgnm_pyg.training.settings import build_config, load_toml


def test_defaults_follow_the_spec_table():
    c = TrainConfig()
    assert (c.dim, c.n_interests, c.n_layers, c.max_len, c.routing_iters) == (16, 4, 3, 100, 3)
    assert (c.theta1, c.theta2, c.lr, c.batch_size, c.negatives) == (1e-6, 1e-5, 1e-3, 256, 5)
    assert c.data == "synthetic:demo" and c.select_metric == "ndcg@5" and c.eval_full
    assert set(c.model_kwargs()) == {
        "dim", "n_interests", "n_layers", "routing_iters", "theta1", "theta2", "conv",
        "use_graph", "use_bilstm", "level_pooling", "extractor", "share_layer_weight",
        "share_capsule_weights", "interest_activation",
        "bilstm_mode", "score_scale", "learn_score_scale", "item_init_scale", "level_norm",
        "level_loss", "capsule_maps", "routing_init", "bilstm_layout", "adjacency_user",
        "adjacency_normalization", "level_input", "graph_bias", "l2_halved", "max_len",
        "capsule_output", "adjacency_scale"}
    # the authors' departures (presets/authors.toml) are off by default
    assert (c.capsule_maps, c.routing_init, c.bilstm_layout, c.adjacency_user,
            c.adjacency_normalization, c.level_input, c.graph_bias, c.l2_halved) == (
        "auto", "zero", "per-capsule", True, "symmetric", "previous", False, False)
    # the departures from the paper are off by default
    assert (c.score_scale, c.learn_score_scale, c.item_init_scale, c.level_norm,
            c.level_loss, c.capsule_output, c.adjacency_scale) == (
        1.0, False, 1.0, "none", "per-level", "squash", 1.0)
    assert (c.loss, c.lr_schedule, c.lr_warmup_epochs) == ("bce", "constant", 0.0)


def test_toml_keys_accept_dashes_and_underscores(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('n-interests = 2\nlr = 1\nuse_graph = false\nextractor = "sum"\n')
    values = load_toml(f)
    assert values == {"n_interests": 2, "lr": 1.0, "use_graph": False, "extractor": "sum"}
    assert isinstance(values["lr"], float)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("n_interest = 2\n", "unknown key 'n_interest'"),
        ('dim = "16"\n', "key 'dim' expects int, got str '16'"),
        ("dim = true\n", "key 'dim' expects int, got bool"),
        ('conv = "sparse"\n', "key 'conv' must be one of dense, mp"),
        ("patience = 0\n", "key 'patience' must be >= 1"),
        ("[optim]\nlr = 3\n", "unknown key 'optim'"),
        ("dim = \n", "not valid TOML"),
    ],
)
def test_bad_toml_names_file_and_key(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_toml(f)
    assert str(f) in str(err.value) and needle in str(err.value)


def test_missing_toml_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_toml(tmp_path / "nope.toml")


def _probe_command():
    seen = {}

    @click.command()
    @config_options
    @click.option("--config", "config_file", default=None)
    @click.pass_context
    def probe(ctx, config_file, **_):
        seen["config"] = build_config(explicit_options(ctx), config_file)

    return probe, seen


def test_command_line_wins_over_file_and_file_over_defaults(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("dim = 8\nepochs = 7\nuse_bilstm = false\n")
    probe, seen = _probe_command()
    r = CliRunner().invoke(probe, ["--config", str(f), "--dim", "12", "--use-bilstm"])
    assert r.exit_code == 0, r.output + "".join(traceback.format_exception(*r.exc_info))
    c = seen["config"]
    assert (c.dim, c.epochs, c.use_bilstm) == (12, 7, True)
    # An option given explicitly with its default value still beats the file.
    r = CliRunner().invoke(probe, ["--config", str(f), "--dim", "16"])
    assert r.exit_code == 0
    assert seen["config"].dim == 16 and seen["config"].epochs == 7
    # Untouched settings keep the dataclass defaults.
    untouched = {n for n in FIELDS} - {"dim", "epochs", "use_bilstm"}
    assert all(getattr(c, n) == getattr(TrainConfig(), n) for n in untouched)


def test_every_field_has_an_option_with_default_shown():
    probe, _ = _probe_command()
    r = CliRunner().invoke(probe, ["--help"])
    assert r.exit_code == 0
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in r.output
    assert r.output.count("[default:") >= len(FIELDS)


def test_invalid_value_in_code_is_refused():
    with pytest.raises(ConfigError, match="'batch_size' must be >= 1"):
        TrainConfig(batch_size=0)
