"""The report of a study: best trial, a table of trials, each parameter's importance.

Written atomically as ``report.md`` and ``report.json`` in the study's folder
(``<out_dir>/<study>/``), after every ``mgnm-pyg tune`` and by ``--report-only``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgnm_pyg.files import atomic_write_json, atomic_write_text

MIN_IMPORTANCE_TRIALS = 2


def _seconds(trial: Any) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)


def importances(study: Any, seed: int = 0) -> tuple[dict[str, float] | None, str]:
    """Each parameter's importance (fANOVA over completed trials) and a note; ``None``
    with the reason when there are too few completed trials to estimate it."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None, (f"needs at least {MIN_IMPORTANCE_TRIALS} completed trials; the study "
                      f"has {len(complete)}")
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:
        return None, f"could not be estimated ({exc})"
    return ({k: float(v) for k, v in values.items()},
            f"fANOVA over {len(complete)} completed trials (shares summing to 1)")


def state_name(trial: Any) -> str:
    """complete, pruned, fail (training failed), interrupted, running or waiting."""
    if trial.state.name == "FAIL" and trial.user_attrs.get("interrupted"):
        return "interrupted"
    return trial.state.name.lower()


def trial_note(trial: Any) -> str:
    """What the table says beside a trial: the trial it continues, or its error."""
    parts = []
    if "resumes_trial" in trial.user_attrs:
        parts.append(f"continues trial {trial.user_attrs['resumes_trial']}")
    if "error" in trial.user_attrs:
        parts.append(str(trial.user_attrs["error"]))
    return "; ".join(parts)


def build_report(study: Any, out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """The report as a JSON-able dict; run folders are given under ``out_dir``."""
    from optuna.trial import TrialState

    def run_dir(trial: Any) -> str | None:
        relative = trial.user_attrs.get("run_dir")
        return None if relative is None else str(Path(out_dir) / relative)

    metric = study.user_attrs.get("select_metric", "value")
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append({"number": t.number, "state": state_name(t), "value": t.value,
                       "params": t.params, "epochs": t.user_attrs.get("epochs"),
                       "best_epoch": t.user_attrs.get("best_epoch"),
                       "seconds": _seconds(t), "run_dir": run_dir(t),
                       "error": t.user_attrs.get("error"),
                       "resumes_trial": t.user_attrs.get("resumes_trial"), "note": trial_note(t)})
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = None
    if complete:
        b = study.best_trial
        best = {"number": b.number, "value": b.value, "params": b.params,
                "best_epoch": b.user_attrs.get("best_epoch"),
                "run_dir": run_dir(b)}
    values, why = importances(study, seed)
    states: dict[str, int] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
    return {"study": study.study_name, "select_metric": metric, "split": "valid",
            "direction": "maximize", "states": states, "best": best, "trials": trials,
            "importance": values, "importance_note": why,
            "space": study.user_attrs.get("space")}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as markdown."""
    metric = report["select_metric"]
    lines = [f"# Study `{report['study']}`", "",
             f"Objective: the best validation `{metric}` of each trial (sampled protocol; "
             f"the test split is never used). Trials: "
             + ", ".join(f"{n} {s}" for s, n in sorted(report["states"].items())) + ".", ""]
    best = report["best"]
    if best is None:
        lines += ["No trial has completed yet.", ""]
    else:
        lines += [f"## Best trial: {best['number']}", "",
                  f"- validation {metric}: {best['value']:.4f} (epoch {best['best_epoch']})",
                  f"- run folder: `{best['run_dir']}`"]
        lines += [f"- `{k}` = {_cell(v)}" for k, v in best["params"].items()] + [""]
    names = sorted({k for t in report["trials"] for k in t["params"]})
    head = ["trial", "state", metric, "epochs", "seconds", *names, "note"]
    lines += ["## Trials", "", "| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    for t in report["trials"]:
        row = [t["number"], t["state"], t["value"], t["epochs"], t["seconds"],
               *(t["params"].get(n) for n in names), t["note"].replace("|", "/")]
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    lines += ["", "## Parameter importance", ""]
    if report["importance"] is None:
        lines.append(f"Not available: {report['importance_note']}.")
    else:
        lines += [f"{report['importance_note']}.", "", "| parameter | importance |",
                  "|---|---|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in report["importance"].items()]
    return "\n".join(lines) + "\n"


def write_report(study: Any, out_dir: str | Path, seed: int = 0
                 ) -> tuple[dict[str, Any], Path]:
    """Build the report and write ``report.json`` and ``report.md`` in the study's folder
    ``<out_dir>/<study>/``; returns the report and the markdown's path."""
    folder = Path(out_dir) / study.study_name
    report = build_report(study, out_dir, seed)
    atomic_write_json(folder / "report.json", report)
    atomic_write_text(folder / "report.md", render_markdown(report))
    return report, folder / "report.md"
