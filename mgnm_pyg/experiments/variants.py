"""What the paper's Tables 2 and 3 and Figures 3, 4 and 7 train: their rows as variants.

Each :class:`Variant` is a set of settings changed from the defaults
(:class:`~mgnm_pyg.training.config.TrainConfig`); :mod:`mgnm_pyg.experiments.reproduce` trains and
reuses the runs, :mod:`mgnm_pyg.experiments.report` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.training.config import TrainConfig

REFERENCE = "mgnm"


@dataclass(frozen=True)
class Variant:
    """One row of a table (or point of a figure): settings changed from the defaults.

    ``home`` is the table whose folder holds the runs (another table's, where shared).
    """

    name: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    home: str = ""


REFERENCE_VARIANT = Variant(REFERENCE, "MGNM", {}, "table2")
_SUM_POOLED = Variant("wo-maxpool", "w/o MaxPool", {"level_pooling": "sum"}, "table3")

TABLES: dict[str, list[Variant]] = {
    "table2": [
        REFERENCE_VARIANT,
        Variant("pop", "Pop", {"model": "pop"}),
        Variant("gru4rec", "GRU4Rec", {"model": "gru4rec"}),
        Variant("sasrec", "SASRec", {"model": "sasrec"}),
        Variant("comirec-dr", "ComiRec-DR", {"model": "comirec-dr"}),
    ],
    "table3": [
        REFERENCE_VARIANT,
        Variant("wo-ugcn", "w/o UGCN", {"use_graph": False}),
        Variant("wo-l1norm", "w/o L1Norm", {"theta1": 0.0}),
        Variant("wo-bilstm", "w/o BiLSTM", {"use_bilstm": False}),
        _SUM_POOLED,
        Variant("scn-selfatt", "SCN -> SelfAtt", {"extractor": "self_attention"}),
        Variant("scn-transformer", "SCN -> Transformer", {"extractor": "transformer"}),
        Variant("scn-bilstm", "SCN -> BiLSTM", {"extractor": "bilstm"}),
        Variant("scn-sum", "SCN -> sum", {"extractor": "sum"}),
    ],
}

# Figure 3: L = 0..4 at K = 4; Figure 4: K = 1..8 at L = 3 (the paper's ranges).
FIGURE_LAYERS = (0, 1, 2, 3, 4)
FIGURE_INTERESTS = (1, 2, 3, 4, 5, 6, 7, 8)
QUICK_FIGURE_LAYERS = (1, 3)
QUICK_FIGURE_INTERESTS = (2, 4)

# --quick: small enough for a test on synthetic:tiny (2 seeds, 1 epoch, d=8).
QUICK_SEEDS, QUICK_EPOCHS = 2, 1
QUICK_SETTINGS = {"dim": 8, "batch_size": 128}


def figure_variants(layers: tuple[int, ...], interests: tuple[int, ...]
                    ) -> tuple[list[Variant], list[Variant]]:
    """(runs drawn against L and K, runs compared under max- and sum-pooling)."""
    default = TrainConfig()
    grid = [REFERENCE_VARIANT]
    grid += [Variant(f"L{n}", f"L={n}", {"n_layers": n}, "figures")
             for n in layers if n != default.n_layers]
    grid += [Variant(f"K{k}", f"K={k}", {"n_interests": k}, "figures")
             for k in interests if k != default.n_interests]
    return grid, [REFERENCE_VARIANT, _SUM_POOLED]


def pick_rows(variants: list[Variant], rows: list[str] | None, what: str) -> list[Variant]:
    """The ``variants`` named in ``rows`` (all of them for ``None``), in their order.

    Lets the rows of a table (or the settings of the figures) be trained by separate
    processes, one per core or GPU; a later command without ``rows`` reuses every
    finished run and reports the whole of it.
    """
    if rows is None:
        return variants
    known = list(dict.fromkeys(v.name for v in variants))
    unknown = [r for r in rows if r not in known]
    if unknown or not rows:
        raise MGNMError(f"{what} has no row {', '.join(map(repr, unknown)) or '(empty)'}; "
                        f"its rows are: {', '.join(known)}")
    return [v for v in variants if v.name in rows]


def select_rows(table: str, rows: list[str] | None) -> list[Variant]:
    """:func:`pick_rows` of Table 2 or 3."""
    if table not in TABLES:
        raise MGNMError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    return pick_rows(TABLES[table], rows, table)
