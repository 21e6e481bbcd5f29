"""`--routing-init random` (the authors' drawn routing logits) at inference: every command
that scores a trained run answers the same way each time, and leaves the caller's
generator alone."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import TINY_ONE_EPOCH as FAST
from cli_helpers import invoke, ok


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from mgnm_pyg.training.saved_run import load_run

    out = tmp_path_factory.mktemp("runs") / "random-routing"
    ok(invoke("train", *FAST, "--routing-init", "random", "--out", out))
    return load_run(out, device="cpu")


def test_the_model_really_draws(run):
    """Without the seeding the same history scores differently on each call, so the
    tests below would fail if the commands did not seed."""
    users, histories = torch.tensor([3, 4]), torch.tensor([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    with torch.no_grad():
        a = run.model.encode(users, histories).interests
        b = run.model.encode(users, histories).interests
    assert not torch.allclose(a, b)


def test_recommend_is_repeatable_and_leaves_the_generator(run):
    from mgnm_pyg.inference.recommend import recommend

    user = str(run.dataset.user_ids[5])
    state = torch.get_rng_state()
    first = recommend(run, user, k=10)
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(1000)  # the caller's draws do not move the answer
    second = recommend(run, user, k=10)
    assert first.items == second.items and first.scores == second.scores


def test_ranking_agreement_is_repeatable(run):
    from mgnm_pyg.insight.personalization import ranking_agreement

    values = []
    for _ in range(2):
        torch.rand(17)
        values.append(ranking_agreement(run.model, run.dataset, "test", n_users=20,
                                        max_len=run.config.max_len, seed=0))
    assert values[0] == values[1]


def test_recommend_all_is_repeatable(run, tmp_path):
    import polars as pl

    from mgnm_pyg.inference.recommend_all import recommend_all

    frames = []
    for name in ("a", "b"):
        torch.rand(5)
        recommend_all(run, tmp_path / f"{name}.parquet", k=5, batch_size=32)
        frames.append(pl.read_parquet(tmp_path / f"{name}.parquet"))
    assert frames[0].equals(frames[1])
