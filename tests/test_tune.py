"""`mgnm-pyg tune` on `synthetic:tiny`: trials, pruning, resuming a study, the report."""

from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna")

from cli_helpers import failed, invoke, ok  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from mgnm_pyg.errors import TrainingError, TrainingInterrupted  # noqa: E402
from mgnm_pyg.experiments.tune import StudySettings, open_study, run_study  # noqa: E402
from mgnm_pyg.experiments.tune_report import write_report  # noqa: E402
from mgnm_pyg.experiments.tune_space import load_space  # noqa: E402
from mgnm_pyg.training.trainer import Trainer  # noqa: E402

SPACE = """
data = "synthetic:tiny"
dim = 8
n_layers = 1
routing_iters = 1
use_bilstm = false
max_len = 10
batch_size = 256
eval_batch_size = 256
device = "cpu"
epochs = 2
patience = 2

[search]
lr = {type = "float", low = 1e-3, high = 3e-2, log = true}
n_interests = {type = "int", low = 2, high = 3}
"""


@pytest.fixture(autouse=True)
def _quiet(one_thread):
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def settings(out, **kw) -> StudySettings:
    return StudySettings(out_dir=out, **{"pruner": "none", **kw})


def trials(out, name: str = "mgnm"):
    return open_study(settings(out, study_name=name)).get_trials()


@pytest.fixture(scope="module")
def full_study(tmp_path_factory):
    """Three trials without interruption; the reference for the resume tests."""
    out = tmp_path_factory.mktemp("tune") / "full"
    space_path = out.parent / "space.toml"
    space_path.write_text(SPACE)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_study(load_space(space_path), settings(out, n_trials=3), echo=lambda _: None)
    return out


def test_a_study_runs_its_trials_on_validation_only(full_study):
    assert (full_study / "study.db").is_file()
    done = trials(full_study)
    assert [t.number for t in done] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in done)
    for t in done:
        run = full_study / "mgnm" / f"trial-{t.number:04d}"
        assert t.user_attrs["run_dir"] == f"mgnm/trial-{t.number:04d}"  # under the out-dir
        config = json.loads((run / "config.json").read_text())
        assert config["lr"] == t.params["lr"] and config["n_interests"] == t.params["n_interests"]
        assert config["epochs"] == 2 and config["data"] == "synthetic:tiny"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert t.value == max(r["valid"]["ndcg@5"] for r in rows)  # the config's select_metric
        assert t.intermediate_values == {r["epoch"]: r["valid"]["ndcg@5"] for r in rows}
        assert not (run / "test_metrics.json").exists()  # the test split is never scored
    assert len({t.params["lr"] for t in done}) == 3


def test_the_report_names_the_best_trial_and_importances(full_study):
    text = ok(invoke("tune", "--report-only", "--out-dir", full_study))
    path = full_study / "mgnm" / "report.md"
    report = json.loads((full_study / "mgnm" / "report.json").read_text())
    best = max(trials(full_study), key=lambda t: t.value)
    assert f"best trial {best.number}: validation ndcg@5={best.value:.4f}" in text
    assert report["best"]["number"] == best.number and report["best"]["value"] == best.value
    assert report["best"]["run_dir"] == str(full_study / "mgnm" / f"trial-{best.number:04d}")
    assert set(report["importance"]) == {"lr", "n_interests"}
    assert sum(report["importance"].values()) == pytest.approx(1.0)
    text = path.read_text()
    assert f"## Best trial: {best.number}" in text and text.count("| complete |") == 3
    assert not list(full_study.rglob(".*.tmp"))


def test_an_interrupted_study_resumes_up_to_n_trials(full_study, space_file, tmp_path):
    out = tmp_path / "out"
    run_study(load_space(space_file), settings(out, n_trials=2), echo=lambda _: None)
    first = {t.number: t.datetime_complete for t in trials(out)}
    assert len(first) == 2
    text = ok(invoke("tune", space_file, "--out-dir", out, "--n-trials", 3, "--pruner", "none"))
    assert "2 trial(s) done, running up to 1 more" in text
    assert "best trial" in text and "parameter importance: lr" in text
    resumed = trials(out)
    assert [t.number for t in resumed] == [0, 1, 2]  # 3 in all, not 2 + 3
    assert {t.number: t.datetime_complete for t in resumed[:2]} == first  # not rerun
    assert resumed[2].params != resumed[0].params and resumed[2].params != resumed[1].params
    text = ok(invoke("tune", space_file, "--out-dir", out, "--n-trials", 3))
    assert "already has 3 trial(s)" in text and len(trials(out)) == 3
    assert (out / "mgnm" / "report.md").is_file()


def test_an_interrupted_trial_continues_its_run_folder(full_study, space_file, tmp_path,
                                                       monkeypatch):
    out = tmp_path / "out"
    original = Trainer.train_epoch

    def stop_in_trial_1_epoch_2(self, epoch):
        if self.run_dir.name == "trial-0001" and epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", stop_in_trial_1_epoch_2)
    with pytest.raises(TrainingInterrupted, match="trial 1 was interrupted"):
        run_study(load_space(space_file), settings(out, n_trials=2), echo=lambda _: None)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    cut = trials(out)[1]
    assert cut.state == TrialState.FAIL and cut.user_attrs["interrupted"]
    lines = []
    run_study(load_space(space_file), settings(out, n_trials=2), echo=lines.append)
    assert "trial 1 was interrupted; it runs again first" in lines
    done = trials(out)
    assert len(done) == 3 and done[2].state == TrialState.COMPLETE
    assert done[2].user_attrs["resumes_trial"] == 1
    assert "trial 2: complete" in lines[-1] and "(continues trial 1)" in lines[-1]
    rows = write_report(open_study(settings(out)), out)[0]["trials"]
    assert [r["state"] for r in rows] == ["complete", "interrupted", "complete"]
    assert rows[2]["note"] == "continues trial 1"
    assert done[2].user_attrs["run_dir"] == "mgnm/trial-0001"
    assert not (out / "mgnm" / "trial-0002").exists()
    # epoch 1 came from the checkpoint, epoch 2 was trained: the same as without a break
    reference = trials(full_study)[1]
    assert done[2].params == reference.params
    assert done[2].value == pytest.approx(reference.value, abs=1e-6)
    assert done[2].intermediate_values == pytest.approx(reference.intermediate_values)


def test_a_trial_left_running_by_a_killed_process_is_run_again(space_file, tmp_path):
    out = tmp_path / "out"
    space = load_space(space_file)
    study = open_study(settings(out), space)
    study.ask()  # a trial that a killed process left RUNNING
    run_study(space, settings(out, n_trials=1), echo=lambda _: None)
    done = trials(out)
    assert [t.state for t in done] == [TrialState.FAIL, TrialState.COMPLETE]
    assert done[0].user_attrs["interrupted"] and done[1].user_attrs["resumes_trial"] == 0
    report, _ = write_report(open_study(settings(out)), out)
    assert report["importance"] is None and "at least 2 completed" in report["importance_note"]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_poor_trials_are_pruned_after_an_epoch(space_file, tmp_path):
    out = tmp_path / "out"
    run_study(load_space(space_file), settings(out, n_trials=2, pruner=AlwaysPrune()),
              echo=lambda _: None)
    done = trials(out)
    assert [t.state for t in done] == [TrialState.PRUNED] * 2  # and they count
    for t in done:
        rows = (out / "mgnm" / f"trial-{t.number:04d}" / "metrics.jsonl").read_text()
        assert len(rows.splitlines()) == 1 and list(t.intermediate_values) == [1]


def test_a_failed_trial_counts_and_the_study_goes_on(space_file, tmp_path, monkeypatch):
    original = Trainer.train_epoch

    def nan_in_trial_0(self, epoch):
        if self.run_dir.name == "trial-0000":
            raise TrainingError("the training loss is nan at epoch 1")
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", nan_in_trial_0)
    out = tmp_path / "out"
    text = ok(invoke("tune", space_file, "--out-dir", out, "--n-trials", 2, "--timeout", 600))
    assert "trial 0: fail" in text and "loss is nan" in text and "Traceback" not in text
    assert [t.state for t in trials(out)] == [TrialState.FAIL, TrialState.COMPLETE]


def test_no_trial_starts_after_the_timeout(space_file, tmp_path):
    out = tmp_path / "out"
    text = ok(invoke("tune", space_file, "--out-dir", out, "--n-trials", 5,
                     "--timeout", 0.001))
    assert len(trials(out)) == 1 and "best trial 0" in text


def test_resuming_with_another_space_or_a_missing_study_is_refused(space_file, tmp_path):
    out = tmp_path / "out"
    failed(invoke("tune", "--report-only", "--out-dir", out), "no study database")
    open_study(settings(out), load_space(space_file))
    other = tmp_path / "other.toml"
    other.write_text(SPACE.replace("high = 3}", "high = 4}"))
    failed(invoke("tune", other, "--out-dir", out), "another search space", "n_interests")
    failed(invoke("tune", "--report-only", "--out-dir", out, "--study-name", "x"),
           "no study named 'x'", "mgnm")
    failed(invoke("tune", space_file, "--out-dir", out, "--study-name", "../x"),
           "--study-name '../x'")


def test_fit_without_test_reports_each_epoch(space_file, tmp_path):
    config = load_space(space_file).config({"epochs": 2})
    rows = []
    result = Trainer(config, tmp_path / "run", progress=False, echo=lambda _: None).fit(
        test=False, on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2] and result.test_metrics == {}
    assert result.best_valid == max((r["valid"] for r in rows), key=lambda v: v["ndcg@5"])
    assert not (tmp_path / "run" / "test_metrics.json").exists()
