"""Checkpoints: round trip, and a clear CheckpointError for every kind of bad file."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mgnm_pyg.errors import CheckpointError
from mgnm_pyg.training.checkpoint import (
    check_dataset,
    dataset_fingerprint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)


def _dataset(name="toy", users=("u1", "u2"), items=("", "a", "b", "c")):
    return SimpleNamespace(name=name, n_users=len(users), n_items=len(items) - 1,
                           user_ids=np.array(users), item_ids=np.array(items))


def _saved(tmp_path, **kw):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model=model, config={"seed": 1}, dataset=dataset_fingerprint(
        _dataset()), epoch=3, optimizer=opt, state={"history": [{"epoch": 1}]}, **kw)
    return path, model, opt


def test_round_trip_restores_weights_optimizer_and_state(tmp_path):
    path, model, opt = _saved(tmp_path)
    ck = load_checkpoint(path)
    fresh = torch.nn.Linear(3, 2)
    load_model_state(fresh, ck, path)
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    opt2 = torch.optim.Adam(fresh.parameters(), lr=0.1)
    opt2.load_state_dict(ck["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0][
        "exp_avg"])
    assert ck["epoch"] == 3 and ck["state"] == {"history": [{"epoch": 1}]}
    # Plain types only: loading with weights_only=True is what load_checkpoint does.
    torch.load(path, weights_only=True)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found") as err:
        load_checkpoint(tmp_path / "none.pt")
    assert str(tmp_path / "none.pt") in str(err.value)


def test_truncated_file(tmp_path):
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(CheckpointError, match="not an mgnm-pyg checkpoint"):
        load_checkpoint(path)
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointError, match="not an mgnm-pyg checkpoint"):
        load_checkpoint(path)


def test_pickled_custom_object_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "mgnm-pyg-checkpoint", "obj": SimpleNamespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_future_version(tmp_path):
    path, _, _ = _saved(tmp_path)
    ck = torch.load(path, weights_only=True)
    ck["version"] = 99
    torch.save(ck, path)
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        load_checkpoint(path)


def test_missing_keys(tmp_path):
    path, _, _ = _saved(tmp_path)
    ck = torch.load(path, weights_only=True)
    del ck["model"]
    torch.save(ck, path)
    with pytest.raises(CheckpointError, match="lacks model"):
        load_checkpoint(path)


def test_weights_of_another_shape(tmp_path):
    path, _, _ = _saved(tmp_path)
    with pytest.raises(CheckpointError, match="weights do not fit the model"):
        load_model_state(torch.nn.Linear(5, 2), load_checkpoint(path), path)


def test_dataset_mismatch_is_refused_with_the_reason(tmp_path):
    path, _, _ = _saved(tmp_path)
    ck = load_checkpoint(path)
    check_dataset(ck, _dataset(), path)  # same data: accepted
    with pytest.raises(CheckpointError, match="3 items in training, 4 here"):
        check_dataset(ck, _dataset(name="other", items=("", "a", "b", "c", "d")), path)
    with pytest.raises(CheckpointError, match="the item id maps differ"):
        check_dataset(ck, _dataset(items=("", "a", "b", "z")), path)
    with pytest.raises(CheckpointError, match="the user id maps differ"):
        check_dataset(ck, _dataset(users=("u2", "u1")), path)
