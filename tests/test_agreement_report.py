"""The ranking agreement at the end of train and evaluate, and its plain-words warning."""

from __future__ import annotations

import json

import pytest
from cli_helpers import invoke, ok, ok_stdout

from mgnm_pyg.inference.agreement import describe
from mgnm_pyg.insight.personalization import ranking_agreement

FAST = ["--data", "synthetic:tiny", "--dim", "4", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "5", "--device", "cpu", "--no-progress", "--no-eval-full", "--epochs", "1"]
SAME = "this model gives nearly every user the same ranking, like popularity"


def test_describe_warns_only_above_the_threshold():
    assert SAME in describe(0.96, 200, "test", "mgnm")[1]
    assert len(describe(0.95, 200, "test", "mgnm")) == 1
    assert len(describe(0.30, 200, "test", "sasrec")) == 1
    assert len(describe(1.0, 200, "test", "pop")) == 1  # popularity by construction
    assert "not measured" in describe(None, 1, "test", "mgnm")[0]


@pytest.mark.parametrize("model", ["mgnm", "pop"])
def test_train_ends_with_the_ranking_agreement(tmp_path, model):
    from mgnm_pyg.training.saved_run import load_run

    out = ok(invoke("train", *FAST, "--model", model, "--ranking-agreement", "30",
                    "--out", tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "personalization.json").read_text())
    run = load_run(tmp_path / "run", device="cpu")
    expected = ranking_agreement(run.model, run.dataset, "test", n_users=30,
                                 max_len=run.config.max_len, seed=run.config.seed)
    assert saved["ranking_agreement"] == pytest.approx(expected)
    assert saved["users"] == 30 and saved["split"] == "test"
    assert f"ranking agreement of 30 test users: {expected:.3f}" in out
    assert (SAME in out) == (expected > 0.95 and model != "pop")
    if model == "pop":
        assert expected == pytest.approx(1.0)
    r = invoke("evaluate", tmp_path / "run", "--ranking-agreement", "30", "--json")
    assert json.loads(ok_stdout(r))["ranking_agreement"] == pytest.approx(expected)
    assert (SAME in r.stderr) == (expected > 0.95 and model != "pop")


def test_train_can_skip_it(tmp_path):
    out = ok(invoke("train", *FAST, "--model", "pop", "--ranking-agreement", "0",
                    "--out", tmp_path / "run"))
    assert "ranking agreement" not in out
    assert not (tmp_path / "run" / "personalization.json").exists()
