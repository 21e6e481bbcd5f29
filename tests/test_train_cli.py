"""The train / evaluate / recommend commands end to end on the `tiny` synthetic preset."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from cli_helpers import failed, invoke, ok, ok_stdout

# A small model so that the whole file runs in seconds on a busy CPU.
FAST = ["--data", "synthetic:tiny", "--dim", "8", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "10", "--batch-size", "256", "--eval-batch-size", "256",
        "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    ok(invoke("train", *FAST, "--epochs", "1", "--out", out))
    return out


def test_train_writes_every_file(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"] == "synthetic:tiny" and config["dim"] == 8 and config["epochs"] == 1
    assert config["dataset_fingerprint"]["n_items"] > 0
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["epoch"] == 1 and row["train_loss"] > 0
    parts = row["train_parts"]  # per-row means over the epoch: the terms add up
    assert parts["total"] == pytest.approx(row["train_loss"], rel=1e-6)
    assert parts["bce"] + parts["l1"] + parts["l2"] == pytest.approx(parts["total"], rel=1e-6)
    assert parts["bce_level0"] + parts["bce_level1"] == pytest.approx(parts["bce"], rel=1e-6)
    assert row["timing"]["seconds"] >= row["timing"]["train_seconds"] > 0
    assert set(row["valid"]) >= {"gauc", "ndcg@5", "hit@5", "mrr@5"}
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert test["best_epoch"] == 1
    for protocol in ("sampled", "full"):
        assert set(test[protocol]) >= {"gauc", "ndcg@5", "hit@5", "mrr@5"}
        assert 0.0 <= test[protocol]["gauc"] <= 1.0
    for name in ("best.pt", "last.pt"):
        ck = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert ck["epoch"] == 1
    assert not list(run_dir.rglob(".*.tmp"))


def test_evaluate_reproduces_the_training_metrics(run_dir):
    out = ok(invoke("evaluate", run_dir, "--split", "valid", "--k", "5", "--k", "10",
                    "--device", "cpu"))
    assert "ndcg@10" in out
    saved = json.loads((run_dir / "eval_valid_sampled.json").read_text())
    valid = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["valid"]
    for name, value in valid.items():
        assert saved["metrics"][name] == pytest.approx(value, abs=1e-6)
    out = ok_stdout(invoke("evaluate", run_dir, "--protocol", "full", "--json", "--device",
                           "cpu"))
    full = json.loads(out)
    test = json.loads((run_dir / "test_metrics.json").read_text())["full"]
    assert full["ndcg@5"] == pytest.approx(test["ndcg@5"], abs=1e-6)
    assert (run_dir / "eval_test_full.json").exists()


def test_evaluate_reports_the_ranking_agreement_on_request(run_dir):
    from mgnm_pyg.insight.personalization import ranking_agreement
    from mgnm_pyg.training.saved_run import load_run

    out = json.loads(ok_stdout(invoke("evaluate", run_dir, "--ranking-agreement", "12", "--json",
                               "--device", "cpu")))
    run = load_run(run_dir, device="cpu")
    expected = ranking_agreement(run.model, run.dataset, "test", n_users=12,
                                 max_len=run.config.max_len, seed=run.config.seed)
    assert out["ranking_agreement"] == pytest.approx(expected)
    default = json.loads(ok_stdout(invoke("evaluate", run_dir, "--json", "--device", "cpu")))
    assert default["ranking_agreement"] == pytest.approx(ranking_agreement(
        run.model, run.dataset, "test", n_users=200, max_len=run.config.max_len,
        seed=run.config.seed))
    skipped = ok(invoke("evaluate", run_dir, "--json", "--ranking-agreement", "0"))
    assert "ranking_agreement" not in json.loads(skipped)


def _reference_top(run_dir, user: str, k: int) -> list[str]:
    """Top-k by scoring every item directly with the model, history excluded."""
    from mgnm_pyg.training.saved_run import load_run

    run = load_run(run_dir, device="cpu")
    data = run.dataset
    u = list(map(str, data.user_ids)).index(user)
    seq = torch.as_tensor(data.sequence(u))
    hist = seq[-run.config.max_len:][None]
    items = torch.arange(1, data.n_items + 1)
    with torch.no_grad():
        scores = run.model.predict(torch.tensor([u]), hist, items[None])[0]
    scores[seq - 1] = -torch.inf
    return [str(data.item_ids[int(i) + 1]) for i in torch.argsort(scores, descending=True)[:k]]


def test_recommend_matches_direct_scoring(run_dir):
    r = json.loads(ok(invoke("recommend", run_dir, "--user", "u003", "--k", "5", "--json",
                             "--device", "cpu")))
    items = [x["item"] for x in r["recommendations"]]
    scores = [x["score"] for x in r["recommendations"]]
    assert r["known_user"] and len(items) == 5 and scores == sorted(scores, reverse=True)
    assert not set(items) & set(r["history"])
    assert items == _reference_top(run_dir, "u003", 5)
    text = ok(invoke("recommend", run_dir, "--user", "u003", "--k", "3", "--device", "cpu"))
    assert items[0] in text and "rank" in text


def test_recommend_in_item_chunks_matches_direct_scoring(run_dir, monkeypatch):
    """A catalogue scored over several chunks (history encoded once) gives the same top-k."""
    import mgnm_pyg.inference.recommend as rec

    monkeypatch.setattr(rec, "CANDIDATE_CHUNK", 7)
    r = json.loads(ok(invoke("recommend", run_dir, "--user", "u003", "--k", "5", "--json",
                             "--device", "cpu")))
    assert [x["item"] for x in r["recommendations"]] == _reference_top(run_dir, "u003", 5)


def test_recommend_new_user_with_history(run_dir):
    r = json.loads(ok(invoke("recommend", run_dir, "--user", "newcomer", "--history", "i001",
                             "--history", "i002", "--json", "--device", "cpu")))
    assert not r["known_user"] and r["history"] == ["i001", "i002"]
    assert len(r["recommendations"]) == 10
    assert not {"i001", "i002"} & {x["item"] for x in r["recommendations"]}
    text = ok(invoke("recommend", run_dir, "--user", "newcomer", "--history", "i001"))
    assert "mean trained user embedding" in text


def test_recommend_unknown_ids_are_named(run_dir):
    failed(invoke("recommend", run_dir, "--user", "nobody"), "unknown user 'nobody'",
           "--history")
    failed(invoke("recommend", run_dir, "--user", "u003", "--history", "i001", "--history",
                  "zz9", "--history", "zz8"), "'zz9'", "'zz8'", "unknown item")


def test_load_run_loads_each_dataset_once_through_the_cache(run_dir):
    from mgnm_pyg.errors import CheckpointError
    from mgnm_pyg.training.build import load_data
    from mgnm_pyg.training.saved_run import load_run

    cache: dict = {}
    first = load_run(run_dir, device="cpu", datasets=cache)
    again = load_run(run_dir, device="cpu", datasets=cache)
    assert again.dataset is first.dataset and len(cache) == 1
    fresh = load_run(run_dir, device="cpu")
    assert fresh.dataset is not first.dataset
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name])
    # a cached dataset is still checked against the checkpoint
    other = load_run(run_dir, device="cpu").config.replace(data="synthetic:demo")
    (key,) = cache
    cache[key] = load_data(other)
    with pytest.raises(CheckpointError, match="does not match dataset"):
        load_run(run_dir, device="cpu", datasets=cache)


def test_checkpoint_against_another_dataset_is_refused(run_dir):
    failed(invoke("evaluate", run_dir, "--data", "synthetic:demo", "--device", "cpu"),
           "does not match dataset", "items in training")


def test_broken_checkpoints_give_clean_errors(run_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    best = broken / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    failed(invoke("evaluate", broken), str(best), "not a readable checkpoint")
    torch.save({"weights": torch.ones(2)}, best)
    failed(invoke("recommend", broken, "--user", "u003"), "not an mgnm-pyg checkpoint")
    best.unlink()
    failed(invoke("evaluate", broken), "checkpoint not found")


def test_out_folder_with_a_run_is_not_overwritten(run_dir):
    failed_run = invoke("train", *FAST, "--out", run_dir)
    assert failed_run.exit_code == 2 and "--resume" in failed_run.output


@pytest.mark.parametrize("command", ["train", "evaluate", "recommend"])
def test_help_shows_defaults(command):
    out = ok(invoke(command, "--help"))
    assert "[default:" in out and "--device" in out


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_auto_trains_on_cuda_and_evaluates_on_cpu(tmp_path):
    fast = [a for a in FAST if a not in ("--device", "cpu")]
    out = tmp_path / "gpu"
    assert "on cuda" in ok(invoke("train", *fast, "--epochs", "1", "--out", out))
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in ck["model"].values())
    ok(invoke("evaluate", out, "--device", "cpu"))
    ok(invoke("train", "--resume", out, "--epochs", "2", "--no-progress"))
