"""Markdown and JSON reports of :mod:`mgnm_pyg.experiments.reproduce`: ours beside the
paper's numbers.

Our cells are the mean ± sample standard deviation (``ddof=1``) over seeds; the paper
reports "mean and std over 5 runs" without saying which std. Each row is compared with
MGNM by a two-sided paired t-test over seeds (:func:`mgnm_pyg.experiments.stats.paired_t_test`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mgnm_pyg.experiments.stats import mean_std, paired_t_test

METRIC_LABELS = {"gauc": "GAUC", "ndcg@5": "NDCG@5", "hit@5": "HIT@5", "mrr@5": "MRR@5"}
PROTOCOLS = {
    "sampled": "Sampled protocol (the paper's: each test record against its persisted "
               "sampled negatives, 1000 when prepared as in the paper)",
    "full": "Full ranking (every item but the user's history; no paper numbers)",
}
_T2 = ("gauc", "ndcg@5", "hit@5", "mrr@5")


def _row(*values: float) -> dict[str, float]:
    return dict(zip(_T2, values, strict=True))


# Paper, Table 2 (GAUC, NDCG@5, HIT@5, MRR@5). SURGE and TGSRec are not implemented here.
PAPER_TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "toys": {
        "gru4rec": _row(0.6624, 0.0840, 0.1278, 0.0697),
        "comirec-dr": _row(0.6681, 0.1131, 0.1597, 0.0978),
        "SURGE": _row(0.7863, 0.0930, 0.1353, 0.0791),
        "TGSRec": _row(0.7915, 0.1410, 0.2027, 0.1164),
        "mgnm": _row(0.8078, 0.1611, 0.2231, 0.1408),
    },
    "musical-instruments": {
        "gru4rec": _row(0.6498, 0.0619, 0.1049, 0.0478),
        "comirec-dr": _row(0.6647, 0.1091, 0.1541, 0.0943),
        "SURGE": _row(0.6902, 0.1056, 0.1494, 0.0913),
        "TGSRec": _row(0.7759, 0.0946, 0.1653, 0.0729),
        "mgnm": _row(0.7480, 0.1057, 0.1658, 0.1021),
    },
}
# Paper, Table 3: ablations on Toys (GAUC, NDCG@5 only).
PAPER_TABLE3: dict[str, dict[str, dict[str, float]]] = {"toys": {
    "mgnm": {"gauc": 0.8078, "ndcg@5": 0.1611},
    "wo-ugcn": {"gauc": 0.7499, "ndcg@5": 0.0929},
    "wo-l1norm": {"gauc": 0.7757, "ndcg@5": 0.1306},
    "wo-bilstm": {"gauc": 0.6743, "ndcg@5": 0.1205},
    "wo-maxpool": {"gauc": 0.8491, "ndcg@5": 0.0980},
    "scn-selfatt": {"gauc": 0.6724, "ndcg@5": 0.0791},
}}
PAPER = {"table2": PAPER_TABLE2, "table3": PAPER_TABLE3}
TITLES = {"table2": "Table 2: MGNM against the baselines",
          "table3": "Table 3: MGNM against its ablations"}


def paper_dataset(data: str) -> str:
    """The paper's dataset whose numbers sit beside ours: Musical Instruments or Toys."""
    name = data.lower()
    return "musical-instruments" if ("musical" in name or "instrument" in name) else "toys"


def _cell(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _p_cell(p: float, diff: float) -> str:
    if math.isnan(p):
        return "—"
    return f"{p:.2g} ({diff:+.4f})"


def summarize(results: dict[str, Any], reference: str = "mgnm",
              metrics: Sequence[str] = _T2) -> dict[str, Any]:
    """Per protocol, variant and metric: values by seed, mean, std, and the t-test (when the
    reference is among ``results``)."""
    ref_runs = results[reference]["runs"] if reference in results else None
    out: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        if not all(protocol in r["test"] for v in results.values() for r in v["runs"]):
            continue
        table: dict[str, Any] = {}
        for name, variant in results.items():
            cells = {}
            for metric in metrics:
                values = [float(r["test"][protocol][metric]) for r in variant["runs"]]
                mean, std = mean_std(values)
                cell = {"values": values, "mean": mean, "std": std}
                if name != reference and ref_runs is not None:
                    ref = [float(r["test"][protocol][metric]) for r in ref_runs]
                    test = paired_t_test(ref, values)
                    cell.update(t=test.t, p=test.p, mean_difference=test.mean_difference)
                cells[metric] = cell
            table[name] = cells
        out[protocol] = table
    return out


def _timing_line(seconds: float, counts: dict[str, int], epoch_seconds: float) -> str:
    longer = counts.get("reused_longer", 0)
    skipped, continued = counts.get("skipped", 0), counts.get("continued", 0)
    return (f"Time: {seconds:.1f} s for this command ({sum(counts.values())} runs: "
            f"{counts['trained']} trained, {counts['resumed']} resumed, "
            f"{f'{continued} continued (stopped early before), ' if continued else ''}"
            f"{counts['reused'] + longer} reused"
            f"{f' ({longer} of them ran longer than this stopping rule allows)' if longer else ''}"
            f"{f', {skipped} skipped (another process was training them)' if skipped else ''}"
            f"); the runs' epochs took {epoch_seconds:.1f} s in all (training + validation, "
            f"metrics.jsonl).")


def _stopping(plan: Any) -> str:
    """How the runs were stopped: the rule the reader needs to compare runs."""
    ref = plan.reference()
    return (f"at most {ref.epochs} epochs, early stopping after {ref.patience} without "
            f"a better validation {ref.select_metric}")


def table_markdown(table: str, plan: Any, results: dict[str, Any], summary: dict[str, Any],
                   seconds: float, counts: dict[str, int]) -> str:
    """Ours (mean ± std) beside the paper, then the p-values, per protocol."""
    from mgnm_pyg.experiments.variants import TABLES

    dataset = paper_dataset(plan.data)
    paper = PAPER[table].get(dataset, {})
    implemented = {v.name for v in TABLES[table]}
    labels = [METRIC_LABELS[m] for m in _T2]
    seeds = plan.seeds
    runs = [r for v in results.values() for r in v["runs"]]
    ran = sorted({r["epochs"] for r in runs})
    best = sorted({int(r["test"].get("best_epoch", 0)) for r in runs})
    lines = [f"## {TITLES[table]} (data `{plan.data}`)", "",
             f"{len(seeds)} seeds ({', '.join(map(str, seeds))}) per row"
             f"{' (--quick)' if plan.quick else ''}; {_stopping(plan)}; epochs run "
             f"{ran[0]}-{ran[-1]}, best {best[0]}-{best[-1]}; mean ± "
             f"sample std over seeds. Paper: {TITLES[table].split(':')[0]}, {dataset}, "
             f"sampled protocol.", ""]
    for protocol, rows in summary.items():
        with_paper = protocol == "sampled"
        head = [f"{m} | paper" if with_paper else m for m in labels]
        lines += [f"### {PROTOCOLS[protocol]}", "", "| method | " + " | ".join(head) + " |",
                  "|---" * (1 + len(labels) * (2 if with_paper else 1)) + "|"]
        for name, cells in rows.items():
            row = [results[name]["label"]]
            for metric in _T2:
                ours = f"{_cell(cells[metric]['mean'])} ± {_cell(cells[metric]['std'])}"
                row.append(ours)
                if with_paper:
                    row.append(_cell(paper.get(name, {}).get(metric)))
            lines.append("| " + " | ".join(row) + " |")
        if with_paper:
            for name, values in paper.items():
                if name not in implemented:  # a row left out by --rows is not listed
                    lines.append(f"| {name} (paper only, not implemented) | "
                                 + " | ".join(f"— | {_cell(values.get(m))}" for m in _T2) + " |")
        lines.append("")
        if "mgnm" not in rows:
            lines += ["No MGNM runs in this report (--rows), so no t-tests.", ""]
            continue
        lines += ["Paired t-test of MGNM against each row, paired by seed: two-sided p "
                  "(MGNM's mean minus the row's).", "",
                  "| method | " + " | ".join(labels) + " |", "|---" * (1 + len(labels)) + "|"]
        for name, cells in rows.items():
            if "p" in cells[_T2[0]]:
                lines.append(f"| {results[name]['label']} | " + " | ".join(
                    _p_cell(cells[m]["p"], cells[m]["mean_difference"]) for m in _T2) + " |")
        lines.append("")
    epoch_total = sum(r["epoch_seconds"] for v in results.values() for r in v["runs"])
    lines += [_timing_line(seconds, counts, epoch_total), ""]
    return "\n".join(lines)


def table_report(table: str, plan: Any, results: dict[str, Any], seconds: float,
                 counts: dict[str, int], unfinished: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    """JSON-able report of one table; ``markdown`` holds the text. ``unfinished`` (row
    label -> how many runs are done) lists rows left out because runs are missing."""
    summary = summarize(results)
    markdown = table_markdown(table, plan, results, summary, seconds, counts)
    if unfinished:
        markdown += ("\nLeft out, not finished yet: "
                     + "; ".join(f"{label} ({done})" for label, done in unfinished.items())
                     + ".\n")
    return {"table": table, "data": plan.data, "seeds": plan.seeds, "quick": plan.quick,
            "seconds": seconds, "counts": counts, "paper_dataset": paper_dataset(plan.data),
            "results": results, "summary": summary, "unfinished": unfinished or {},
            "markdown": markdown}


def _grouped(rows: list[dict], key: str, fixed: str, fixed_value: int, ref_value: int,
             reference: dict[int, float]) -> list[str]:
    """Table rows: per value of ``key`` (at ``fixed`` = ``fixed_value``), the metric's
    mean ± std, the number of runs, the range of their best epochs (an early best epoch is
    a run that stopped where it started, see RESULTS.md), and the paired t-test (by seed)
    of the ``reference`` runs (seed -> value; the point ``key`` = ``ref_value``) against
    the point's runs."""
    groups: dict[int, list[dict]] = {}
    for r in rows:
        if r[fixed] == fixed_value:
            groups.setdefault(r[key], []).append(r)
    out = []
    for value in sorted(groups):
        runs = groups[value]
        mean, std = mean_std([r["value"] for r in runs])
        best = sorted(r["best_epoch"] for r in runs)
        paired = [r for r in runs if r["seed"] in reference]
        test = paired_t_test([reference[r["seed"]] for r in paired],
                             [r["value"] for r in paired])
        out.append(f"| {value} | {_cell(mean)} ± {_cell(std)} | {len(runs)} | "
                   f"{best[0]}-{best[-1]} | "
                   f"{'—' if value == ref_value else _p_cell(test.p, test.mean_difference)} |")
    return out or ["| (no finished runs) | | | | |"]


def figure_report(plan: Any, metric: str, protocol: str, rows: list[dict],
                  pooling: dict[str, dict[str, Any]], seconds: float,
                  counts: dict[str, int], epoch_total: float,
                  unfinished: dict[str, str] | None = None) -> dict[str, Any]:
    """The values behind Figures 3, 4 and 7, as markdown tables and JSON. ``pooling``:
    run -> its ``max`` and ``sum`` values and its training ``setting`` (Figure 7's mean
    rows group a setting's seeds); ``unfinished`` (setting label -> how many runs are
    done) names the settings left out."""
    ref = plan.reference()
    reference = {r["seed"]: r["value"] for r in rows
                 if (r["n_layers"], r["n_interests"]) == (ref.n_layers, ref.n_interests)}
    head = [f"| {{}} | mean ± std | runs | best epochs | p against L={ref.n_layers}, "
            f"K={ref.n_interests} |", "|---|---|---|---|---|"]
    lines = [f"## Figures 3, 4 and 7 (data `{plan.data}`, test {metric}, {protocol} protocol)",
             "", f"{len(plan.seeds)} seeds per point; {_stopping(plan)}. p: two-sided "
             f"paired t-test by seed (the reference's mean minus the point's).", "",
             f"Figure 3: against L (K={ref.n_interests})", "",
             head[0].format("L"), head[1],
             *_grouped(rows, "n_layers", "n_interests", ref.n_interests, ref.n_layers,
                      reference), "",
             f"Figure 4: against K (L={ref.n_layers})", "", head[0].format("K"), head[1],
             *_grouped(rows, "n_interests", "n_layers", ref.n_layers, ref.n_interests,
                      reference), "",
             "Figure 7: each run evaluated with max- and with sum-pooling of its levels", "",
             "| run | max | sum |", "|---|---|---|"]
    lines += [f"| {run} | {_cell(v['max'])} | {_cell(v['sum'])} |" for run, v in pooling.items()]
    trained: dict[str, list[dict[str, Any]]] = {}  # the runs of one training setting
    for v in pooling.values():
        trained.setdefault(v["setting"], []).append(v)
    for name, values in trained.items():
        test = paired_t_test([v["max"] for v in values], [v["sum"] for v in values])
        lines.append(f"| mean of {name} ({len(values)} runs; p max vs sum "
                     f"{_p_cell(test.p, test.mean_difference)}) | "
                     f"{_cell(float(np.mean([v['max'] for v in values])))} | "
                     f"{_cell(float(np.mean([v['sum'] for v in values])))} |")
    if unfinished:
        lines += ["", "Left out, not finished yet: " + "; ".join(
            f"{label} ({done})" for label, done in unfinished.items()) + "."]
    lines += ["", _timing_line(seconds, counts, epoch_total), ""]
    return {"data": plan.data, "metric": metric, "protocol": protocol, "rows": rows,
            "pooling": pooling, "seconds": seconds, "counts": counts,
            "unfinished": unfinished or {}, "markdown": "\n".join(lines)}

