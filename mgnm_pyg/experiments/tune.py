"""``mgnm-pyg tune``: an Optuna study over a search space, selected on validation only.

Each trial trains one config of the space (:mod:`.tune_space`) with the ordinary
:class:`~mgnm_pyg.training.trainer.Trainer` in its own run folder
``<out_dir>/<study>/trial-NNNN`` (the trial's ``run_dir`` attribute, relative to the
out-dir), reports every epoch's validation ``select_metric`` to
the pruner, and never touches the test split. The study lives in SQLite
(``<out_dir>/study.db`` by default), so running the same command again resumes it:
``n_trials`` is the total the study should reach, finished trials included, and a trial
cut short (Ctrl-C, a killed process) is queued again with its parameters and continues
its run folder from ``checkpoints/last.pt``.

Optuna is an optional dependency (``pip install "mgnm-pyg[tune]"``), imported only here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.experiments.tune_space import SearchSpace
from mgnm_pyg.files import process_lock

OPTUNA_MISSING = ('mgnm-pyg tune needs Optuna, which is not installed; install it with: '
                  'pip install "mgnm-pyg[tune]"')
PRUNERS = ("median", "none")


def import_optuna() -> Any:
    """The ``optuna`` module, or a :class:`MGNMError` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise MGNMError(OPTUNA_MISSING) from None
    return optuna


@dataclass
class StudySettings:
    """Where a study lives and how far it should go (the options of ``mgnm-pyg tune``)."""

    out_dir: Path
    study_name: str = "mgnm"
    storage: str | None = None  # a path or a database URL; default <out_dir>/study.db
    n_trials: int = 20
    timeout: float | None = None  # seconds after which no new trial starts
    seed: int = 0
    pruner: Any = "median"  # "median", "none" or an optuna pruner
    startup_trials: int = 5  # trials the median pruner lets finish before it prunes
    warmup_epochs: int = 1  # epochs of each trial it never prunes

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.study_name):
            raise MGNMError(f"--study-name {self.study_name!r}: use letters, digits, '_', "
                            f"'-' and '.' only (it names the study's folder in the out-dir)")

    @property
    def storage_url(self) -> str:
        if self.storage and "://" in self.storage:
            return self.storage
        path = Path(self.storage) if self.storage else Path(self.out_dir) / "study.db"
        return f"sqlite:///{path.resolve()}"

    @property
    def study_dir(self) -> Path:
        return Path(self.out_dir) / self.study_name

    def make_pruner(self, optuna: Any) -> Any:
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials,
                                               n_warmup_steps=self.warmup_epochs + 1)
        if self.pruner == "none":
            return optuna.pruners.NopPruner()
        if isinstance(self.pruner, str):
            raise MGNMError(f"unknown pruner {self.pruner!r}; one of {', '.join(PRUNERS)}")
        return self.pruner


def counts(trial: Any) -> bool:
    """Whether a trial counts towards ``n_trials``: it completed, was pruned, or training
    failed (a NaN loss); an interrupted trial does not, it is run again."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and "error" in trial.user_attrs)


def open_storage(settings: StudySettings, create: bool) -> Any:
    """The study database; ``create=False`` refuses a SQLite file that does not exist."""
    optuna = import_optuna()
    url = settings.storage_url
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if not create and not db.is_file():
            raise MGNMError(f"no study database at {db}; run mgnm-pyg tune SPACE.toml first")
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # a bad URL or an unreadable file: sqlalchemy's errors vary
        raise MGNMError(f"cannot open the study storage {url}: {exc}") from None


def open_study(settings: StudySettings, space: SearchSpace | None = None,
               storage: Any = None) -> Any:
    """Create or load the study; ``space=None`` loads an existing one (reports only).

    A study remembers its search space: resuming it with another one is refused.
    """
    optuna = import_optuna()
    if storage is None:
        storage = open_storage(settings, create=space is not None)
    if space is None:
        try:
            return optuna.load_study(study_name=settings.study_name, storage=storage)
        except KeyError:
            names = optuna.get_all_study_names(storage=storage)
            raise MGNMError(f"{settings.storage_url}: no study named {settings.study_name!r} "
                            f"(studies: {', '.join(names) or 'none'})") from None
    url = settings.storage_url
    study = optuna.create_study(study_name=settings.study_name, storage=storage,
                                direction="maximize", load_if_exists=True,
                                pruner=settings.make_pruner(optuna))
    stored, wanted = study.user_attrs.get("space"), space.to_dict()
    if stored is None:
        study.set_user_attr("space", wanted)
        study.set_user_attr("select_metric", space.config({}).select_metric)
    elif stored != wanted:
        changed = sorted(k for part in ("fixed", "search")
                         for k in {*stored[part], *wanted[part]}
                         if stored[part].get(k) != wanted[part].get(k))
        raise MGNMError(f"study {settings.study_name!r} in {url} was created with another "
                        f"search space (differs in: {', '.join(changed)}); use the same file "
                        f"or another --study-name")
    return study


def requeue_interrupted(study: Any, storage: Any) -> list[int]:
    """Mark trials left running by a killed process as interrupted, and queue every
    interrupted trial not yet queued again; returns the numbers of those queued.

    Only one process tunes a study at a time (:func:`run_study` holds a lock), so a
    trial still ``RUNNING`` here belongs to a process that is gone.
    """
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    taken = {t.user_attrs.get("resumes_trial") for t in trials}
    queued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") \
                and t.number not in taken:
            attrs = {"resumes_trial": t.number}
            if "run_dir" in t.user_attrs:
                attrs["run_dir"] = t.user_attrs["run_dir"]
            study.enqueue_trial(t.params, user_attrs=attrs)
            queued.append(t.number)
    return queued


class Objective:
    """Trains one trial's config; its value is the best validation ``select_metric``."""

    def __init__(self, space: SearchSpace, settings: StudySettings,
                 echo: Callable[[str], None], verbose: bool = False) -> None:
        self.space, self.settings = space, settings
        self.echo, self.verbose = echo, verbose
        self.datasets: dict[tuple, Any] = {}

    def _trainer(self, config: Any, run_dir: Path, resuming: bool) -> Any:
        from mgnm_pyg.training.build import load_data
        from mgnm_pyg.training.checkpoint import checkpoint_path
        from mgnm_pyg.training.trainer import Trainer

        echo = self.echo if self.verbose else (lambda _: None)
        if checkpoint_path(run_dir, "last.pt").is_file():
            if not resuming:
                raise MGNMError(f"{run_dir} already holds a run that is not in this study; "
                                f"remove it or use another --out-dir")
            try:
                return Trainer.resume(run_dir, config.to_dict(), progress=False, echo=echo)
            except MGNMError:  # its checkpoint is of another config: train it afresh
                pass
        return Trainer(config, run_dir, dataset=load_data(config, self.datasets),
                       progress=False, echo=echo)

    def __call__(self, trial: Any) -> float:
        import optuna

        from mgnm_pyg.errors import TrainingError, TrainingInterrupted

        # kept relative to the out-dir, so a moved out-dir still resumes
        default = f"{self.settings.study_name}/trial-{trial.number:04d}"
        relative = trial.user_attrs.get("run_dir", default)
        trial.set_user_attr("run_dir", relative)
        run_dir = Path(self.settings.out_dir) / relative
        config = self.space.suggest(trial)
        metric = config.select_metric

        def on_epoch(row: dict[str, Any]) -> None:
            trial.report(row["valid"][metric], row["epoch"])
            trial.set_user_attr("epochs", row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

        trainer = None
        try:
            trainer = self._trainer(config, run_dir, "resumes_trial" in trial.user_attrs)
            for row in trainer.state["history"]:  # epochs done before an interruption
                trial.report(row["valid"][metric], row["epoch"])
            result = trainer.fit(test=False, on_epoch=on_epoch)
        except (KeyboardInterrupt, TrainingInterrupted):
            trial.set_user_attr("interrupted", True)
            saved = f" after {trainer.epoch} finished epoch(s) in {run_dir}" if trainer else ""
            raise TrainingInterrupted(f"trial {trial.number} was interrupted{saved}; it "
                                      f"continues from there when the study resumes") from None
        except TrainingError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs", len(result.history))
        return float(result.best_valid[metric])


def describe_trial(trial: Any, metric: str) -> str:
    """One line for a finished trial: state, value, epochs, parameters and a note."""
    from mgnm_pyg.experiments.tune_report import state_name, trial_note

    value = "" if trial.value is None else f" {metric}={trial.value:.4f}"
    epochs = trial.user_attrs.get("epochs")
    where = f" after {epochs} epoch(s)" if epochs else ""
    params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    extra = f" ({trial_note(trial)})" if trial_note(trial) else ""
    return f"trial {trial.number}: {state_name(trial)}{value}{where}; {params}{extra}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_study(space: SearchSpace, settings: StudySettings,
              echo: Callable[[str], None] = print, verbose: bool = False) -> Any:
    """Run trials until the study has ``settings.n_trials`` counted trials (or the
    timeout passes); returns the study. Raises ``TrainingInterrupted`` on Ctrl-C."""
    optuna = import_optuna()
    from mgnm_pyg.errors import TrainingError

    lock = Path(settings.out_dir) / f".{settings.study_name}.lock"
    with process_lock(lock, f"study {settings.study_name!r} is being tuned"):
        storage = open_storage(settings, create=True)
        study = open_study(settings, space, storage)
        for number in requeue_interrupted(study, storage):
            echo(f"trial {number} was interrupted; it runs again first")
        done = sum(counts(t) for t in study.get_trials(deepcopy=False))
        left = settings.n_trials - done
        if left <= 0:
            echo(f"study {settings.study_name!r} already has {done} trial(s) "
                 f"(--n-trials {settings.n_trials}); nothing to run")
            return study
        echo(f"study {settings.study_name!r}: {done} trial(s) done, running up to {left} "
             f"more; trial folders in {settings.study_dir}")
        # Seeded by the trials so far: a resumed study draws new points, not the first ones.
        study.sampler = optuna.samplers.TPESampler(seed=settings.seed + len(study.trials))
        metric = study.user_attrs["select_metric"]

        def report(study: Any, trial: Any) -> None:
            echo(describe_trial(trial, metric))

        study.optimize(Objective(space, settings, echo, verbose), n_trials=left,
                       timeout=settings.timeout, catch=(TrainingError,), callbacks=[report],
                       gc_after_trial=False, show_progress_bar=False)
    return study
