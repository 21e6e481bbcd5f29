"""Empty and tiny splits: prepare warns, train and evaluate refuse, NaN is never a best."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from cli_helpers import failed, invoke, ok

from mgnm_pyg.data.split_checks import EmptySplitError, split_warnings
from mgnm_pyg.training.stopping import improves

# Four users of three items each: two records per user, all of them train (per-user 7:1:2).
FOUR_USERS = "1 10 11 12\n2 13 14 15\n3 16 21 17\n4 18 19 20\n"


@pytest.fixture
def no_eval_data(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(FOUR_USERS)
    out = invoke("prepare", "sequences", path, "--name", "x", "--data-dir", tmp_path / "ds")
    return tmp_path, out


def test_prepare_warns_about_empty_splits(no_eval_data):
    _, result = no_eval_data
    out = ok(result)
    assert "split (per-user): train 8, valid 0, test 0" in out
    assert "Warning: the valid split is empty" in out
    assert "Warning: the test split is empty" in out
    assert "Warning: the train split" not in out


def test_split_warnings_name_tiny_splits():
    warnings = split_warnings({"train": 100, "valid": 4, "test": 19})
    assert len(warnings) == 2
    assert warnings[0].startswith("the valid split has only 4 record(s)")
    assert warnings[1].startswith("the test split has only 19 record(s)")
    assert split_warnings({"train": 100, "valid": 20, "test": 40}) == []


def test_train_refuses_an_empty_validation_split(no_eval_data):
    tmp_path, result = no_eval_data
    ok(result)
    r = invoke("train", "--data", tmp_path / "ds" / "x", "--epochs", "1", "--no-progress",
               "--device", "cpu", "--out", tmp_path / "run")
    out = failed(r, "the valid split of dataset 'x' is empty", "select the best epoch")
    assert "nan" not in out and "*best" not in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("value", "best", "expected"), [
    (0.1, None, True), (0.2, 0.1, True), (0.1, 0.1, False), (0.05, 0.1, False),
    (math.nan, None, False), (math.nan, 0.1, False), (0.1, math.nan, True),
])
def test_improves_never_takes_nan(value, best, expected):
    assert improves(value, best) is expected


def test_all_nan_validation_saves_no_best_and_says_so(tmp_path, monkeypatch, one_thread):
    from mgnm_pyg.errors import TrainingError
    from mgnm_pyg.training import trainer as trainer_module
    from mgnm_pyg.training.config import TrainConfig
    from mgnm_pyg.training.trainer import Trainer

    names = ("gauc", "ndcg@5", "hit@5", "mrr@5")
    monkeypatch.setattr(trainer_module, "evaluate",
                        lambda *a, **k: dict.fromkeys(names, math.nan))
    config = TrainConfig(data="synthetic:tiny", dim=4, n_interests=2, n_layers=0, max_len=5,
                         epochs=2, patience=5, device="cpu")
    lines: list[str] = []
    trainer = Trainer(config, tmp_path / "run", progress=False, echo=lines.append)
    with pytest.raises(TrainingError, match="no epoch had a finite validation ndcg@5"):
        trainer.fit()
    assert not any("*best" in line for line in lines)
    assert not trainer.best_path.exists()
    assert trainer.state["bad_epochs"] == 2


def test_evaluate_refuses_an_empty_split():
    from mgnm_pyg.data.dataset import Records
    from mgnm_pyg.data.synthetic import synthetic_dataset
    from mgnm_pyg.inference.evaluate import evaluate_run
    from mgnm_pyg.training.config import TrainConfig
    from mgnm_pyg.training.saved_run import LoadedRun

    data = synthetic_dataset("tiny")
    empty = Records(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
    data = dataclasses.replace(data, records={**data.records, "valid": empty})
    run = LoadedRun(None, TrainConfig(), None, data, "cpu", None, 1)
    with pytest.raises(EmptySplitError, match=r"the valid split of dataset .* is empty"):
        evaluate_run(run, "valid")
