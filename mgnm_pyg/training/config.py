"""Run configuration: every setting of SPEC's defaults table, one field each.

The fields of :class:`TrainConfig` are the single source of truth: the command line
options (``cli/options.py``) and the TOML keys are generated from them, so a setting
is named the same way everywhere (``--n-interests`` on the command line,
``n_interests`` or ``n-interests`` in a TOML file, ``n_interests`` in ``config.json``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.models import MODELS
from mgnm_pyg.models.loss import LOSSES
from mgnm_pyg.models.mgnm import ADJACENCY_NORMALIZATIONS, LEVEL_INPUTS, LEVEL_LOSSES
from mgnm_pyg.nn.capsule import (
    BILSTM_LAYOUTS,
    BILSTM_MODES,
    CAPSULE_MAPS,
    CAPSULE_OUTPUTS,
    INTEREST_ACTIVATIONS,
    ROUTING_INITS,
)
from mgnm_pyg.nn.extractors import CAPSULE_ONLY, EXTRACTORS
from mgnm_pyg.nn.level_norm import LEVEL_NORMS
from mgnm_pyg.training.schedule import LR_SCHEDULES


class ConfigError(MGNMError):
    """A configuration file or value that is not valid."""


def _opt(default: Any, help: str, group: str, choices: tuple[str, ...] | None = None,
         minimum: float | None = None, maximum: float | None = None,
         above: float | None = None, below: float | None = None) -> Any:
    """A field with its option metadata. Numeric bounds: ``minimum <= value <= maximum``,
    ``above < value < below`` (strict), each optional; floats must also be finite."""
    meta = {"help": help, "group": group, "choices": choices, "minimum": minimum,
            "maximum": maximum, "above": above, "below": below}
    return field(default=default, metadata=meta)


SELECT_METRICS = ("gauc", "ndcg@5", "hit@5", "mrr@5")
SEED_MAX = 2**32 - 1  # numpy and torch both take seeds in [0, 2**32)


@dataclass
class TrainConfig:
    """Every setting of one training run (defaults: SPEC section 8 and paper section 4.1).

    Settings the paper leaves open (epochs, patience, evaluation batch size) are chosen
    so that the default ``demo`` run finishes in minutes on two CPU cores (about 12 s
    a demo epoch, README).
    """

    # data
    data: str = _opt("synthetic:demo", "Dataset: NAME, PATH to a prepared folder, or "
                     "synthetic[:PRESET].", "data")
    data_seed: int = _opt(0, "Seed of the dataset preparation (synthetic data, persisted "
                          "evaluation negatives); kept fixed across training seeds.", "data",
                          minimum=0, maximum=SEED_MAX)
    max_len: int = _opt(100, "Most recent history items kept per record.", "data", minimum=1)
    # which model, and the settings only the baselines read
    model: str = _opt("mgnm", "Model: mgnm or a baseline. A model reads only the settings "
                      "its constructor names: sasrec dim, max_len, n_blocks, n_heads, "
                      "dropout; gru4rec dim; comirec-dr dim, n_interests, routing_iters, "
                      "interest_activation, capsule_maps, max_len.",
                      "models",
                      choices=tuple(MODELS))
    n_blocks: int = _opt(2, "Self-attention blocks (sasrec).", "models", minimum=1)
    n_heads: int = _opt(1, "Attention heads (sasrec).", "models", minimum=1)
    dropout: float = _opt(0.5, "Dropout rate (sasrec).", "models", minimum=0.0, below=1.0)
    # model (the constructor arguments of MGNM)
    dim: int = _opt(16, "Embedding size d.", "model", minimum=1)
    n_interests: int = _opt(4, "Number of interests K.", "model", minimum=1)
    n_layers: int = _opt(3, "Graph layers L (levels 0..L).", "model", minimum=0)
    routing_iters: int = _opt(3, "Capsule routing iterations tau.", "model", minimum=1)
    theta1: float = _opt(1e-6, "Weight of the L1 norm of the adjacency (0 = w/o L1Norm; "
                         "the authors' code: 1e-5).", "model", minimum=0.0)
    theta2: float = _opt(1e-5, "Weight of the L2 norm of the parameters (the authors' "
                         "code: 1e-5, see --l2-halved).", "model", minimum=0.0)
    conv: str = _opt("dense", "Graph convolution implementation.", "model",
                     choices=("dense", "mp"))
    use_graph: bool = _opt(True, "Use the user-aware graph (off = w/o UGCN, level 0 only).",
                           "model")
    use_bilstm: bool = _opt(True, "Use the BiLSTM inside the capsule routing (Eq. 10).",
                            "model")
    level_pooling: str = _opt("max", "Pooling of level scores at inference (sum = w/o "
                              "MaxPool).", "model", choices=("max", "sum"))
    extractor: str = _opt("capsule", "Interest extractor (Table 3 ablations).", "model",
                          choices=tuple(EXTRACTORS))
    share_layer_weight: bool = _opt(True, "One graph weight W shared by all layers.", "model")
    share_capsule_weights: bool = _opt(True, "Capsule weights shared across levels.", "model")
    interest_activation: str = _opt("relu", "Interests: q_k = ReLU(o_k W'_k) (relu, Eq. 11), "
                                    "o_k W'_k (none), or q_k = o_k without W'_k (identity, "
                                    "the authors' code; capsule extractor only).", "model",
                                    choices=INTEREST_ACTIVATIONS)
    bilstm_mode: str = _opt("interests", "Where the BiLSTM of Eq. 10 acts: interests (its "
                            "output also feeds the final capsules; SPEC) or routing (routing "
                            "logits only; the authors' code).", "model",
                            choices=BILSTM_MODES)
    # model: the authors' code where it departs from the paper (SPEC; presets/authors.toml)
    capsule_maps: str = _opt("auto", "Capsule maps W_k: shared by all positions (SPEC) or "
                             "per-position, counted back from the most recent item (the "
                             "authors' code: per-position, N(0,1)); auto is shared for mgnm "
                             "and per-position for comirec-dr (ComiRec's code).", "model",
                             choices=("auto", *CAPSULE_MAPS))
    routing_init: str = _opt("zero", "Initial routing logits: zero (SPEC) or random, a "
                             "truncated normal of std 1 drawn from the run's seeded torch "
                             "generator (the authors' code: random).", "model",
                             choices=ROUTING_INITS)
    bilstm_layout: str = _opt("per-capsule", "BiLSTM of Eq. 10: one d-wide sequence per "
                              "capsule (SPEC) or joint, one K*d-wide sequence per history "
                              "with no output bias and forget bias 1 (the authors' code: "
                              "joint).", "model", choices=BILSTM_LAYOUTS)
    adjacency_user: bool = _opt(True, "User term x_u in the adjacency of Eq. 1 (the authors' "
                                "code: off, A_ij = sigmoid(x_i . x_j)).", "model")
    adjacency_normalization: str = _opt("symmetric", "Propagation matrix: symmetric, "
                                        "P = I + D^-1/2 A D^-1/2 (Eq. 3), or none, the raw A "
                                        "(the authors' code: none).", "model",
                                        choices=ADJACENCY_NORMALIZATIONS)
    level_input: str = _opt("previous", "Graph level l+1 computed from level l (previous, "
                            "Eq. 2) or from level 0 (input; the authors' code: input).",
                            "model", choices=LEVEL_INPUTS)
    graph_bias: bool = _opt(False, "A bias b inside the LeakyReLU of each graph layer (the "
                            "authors' code: on).", "model")
    l2_halved: bool = _opt(False, "L2 term theta2 * sum p^2 / 2 (TF's l2_loss; the authors' "
                           "code: on) instead of theta2 * sum p^2 (Eq. 17).", "model")
    # model: departures from the paper that help MGNM learn (each 'none'/1 is the paper)
    score_scale: float = _opt(1.0, "Factor on every level score y(l) (departs from the paper "
                              "when not 1: squashed capsules keep logits near 0).", "model",
                              minimum=0.0)
    learn_score_scale: bool = _opt(False, "Learn the score factor, starting at --score-scale "
                                   "(departs from the paper).", "model")
    item_init_scale: float = _opt(1.0, "Factor on the Glorot-uniform item table at "
                                  "initialisation (departs from the paper when not 1).",
                                  "model", minimum=0.0)
    adjacency_scale: float = _opt(1.0, "Factor on Eq. 1's adjacency logits, A = sigmoid(s * "
                                  "sum x_i x_j x_u) (departs from the paper when not 1: "
                                  "small embeddings keep A near 0.5).", "model", minimum=0.0)
    level_norm: str = _opt("none", "Normalise graph levels 1..L per sequence before the "
                           "capsules: center, rescale (to level 0's mean norm), or both "
                           "(departs from the paper when not none).", "model",
                           choices=LEVEL_NORMS)
    capsule_output: str = _opt("squash", "Final capsule output: squash (Eq. 8, norm below 1) "
                               "or mean, the coupling-weighted mean of the capsule inputs, "
                               "not squashed (departs from the paper).", "model",
                               choices=CAPSULE_OUTPUTS)
    level_loss: str = _opt("per-level", "MGNM's loss on each level's score, summed (Eq. 16), "
                           "or on the pooled score that ranks at inference (pooled; departs "
                           "from the paper).", "model", choices=LEVEL_LOSSES)
    # optimisation
    loss: str = _opt("bce", "Training loss: BCE with sampled negatives (Eq. 16), the "
                     "softmax cross-entropy over all items (per level for MGNM), or a "
                     "sampled softmax over --shared-negatives negatives per batch (both "
                     "depart from the paper).", "optim", choices=LOSSES)
    shared_negatives: int = _opt(1000, "Negatives drawn per batch and shared by its records "
                                 "(sampled-softmax loss only; departs from the paper).",
                                 "optim", minimum=1)
    negative_sampling: str = _opt("uniform", "Distribution of the shared negatives: uniform "
                                  "over items, or popularity (training-target counts, +1; "
                                  "sampled-softmax loss only, departs from the paper).",
                                  "optim", choices=("uniform", "popularity"))
    logq_correction: bool = _opt(False, "Subtract log q(item) from the sampled-softmax "
                                 "logits (for popularity sampling; sampled-softmax loss "
                                 "only, departs from the paper).", "optim")
    lr: float = _opt(1e-3, "Adam learning rate.", "optim", above=0.0)
    lr_schedule: str = _opt("constant", "Learning-rate schedule after the warm-up: constant, "
                            "or cosine decay to 0 at --epochs (departs from the paper).",
                            "optim", choices=LR_SCHEDULES)
    lr_warmup_epochs: float = _opt(0.0, "Epochs of linear learning-rate warm-up from 0 "
                                   "(fractions allowed; departs from the paper when > 0).",
                                   "optim", minimum=0.0)
    batch_size: int = _opt(256, "Positives (records) per training batch (the authors' "
                           "code: 42, i.e. 256 rows of 1 positive and 5 negatives).", "optim",
                           minimum=1)
    negatives: int = _opt(5, "Training negatives per positive, redrawn every epoch.", "optim",
                          minimum=1)
    epochs: int = _opt(10, "Maximum number of epochs (the default keeps the demo data to a "
                       "few minutes on a CPU; real datasets may need more, e.g. 30; the "
                       "authors' code: 50).",
                       "optim", minimum=1)
    patience: int = _opt(3, "Stop after this many epochs without validation improvement "
                         "(the authors' code stops never: --patience equal to --epochs).",
                         "optim", minimum=1)
    select_metric: str = _opt("ndcg@5", "Validation metric for early stopping and the best "
                              "checkpoint (the authors' code: gauc, on the test split; "
                              "here always validation).", "optim", choices=SELECT_METRICS)
    # runtime
    device: str = _opt("auto", "Device (auto picks cuda when available).", "runtime",
                       choices=("auto", "cpu", "cuda"))
    seed: int = _opt(0, "Seed of model initialisation, negatives and batch order.", "runtime",
                    minimum=0, maximum=SEED_MAX)
    eval_batch_size: int = _opt(512, "Records per evaluation batch.", "runtime", minimum=1)
    eval_full: bool = _opt(True, "Also evaluate the test split by full ranking at the end.",
                           "runtime")
    eval_per_user: bool = _opt(False, "Also report the test split by the per-user metric of "
                               "the authors' code (each user's rows pooled, HIT/NDCG/MRR from "
                               "the user's best positive; keys per_user_pooled_*), beside the "
                               "per-record metrics.", "runtime")
    amp: bool = _opt(False, "bf16 autocast of the training forward pass, for GPUs (allowed "
                     "on the CPU, where it is usually slower); evaluation stays fp32.",
                     "runtime")
    compile: bool = _opt(False, "torch.compile the model's encoder (for GPUs; the first "
                         "batches compile, which takes a minute or more; falls back to "
                         "eager with a warning if compilation fails).", "runtime")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name), where="")
        if self.model == "sasrec" and self.dim % self.n_heads:
            raise ConfigError(
                f"model sasrec needs dim ({self.dim}) to be a multiple of n_heads "
                f"({self.n_heads}); change --dim or --n-heads (dim, n_heads in a config file)")
        if self.model == "mgnm" and self.extractor != "capsule":
            changed = [name for name, default in CAPSULE_ONLY.items()
                       if getattr(self, name) not in (default, "auto")]
            changed += ["interest_activation"] * (self.interest_activation == "identity")
            if changed:
                options = ", ".join(f"{option_flag(n)} {getattr(self, n)}" for n in changed)
                back = ", ".join(f"{option_flag(n)} {FIELDS[n].default}" for n in changed)
                raise ConfigError(f"{options}: only the capsule extractor has this; "
                                  f"--extractor is {self.extractor} (where a preset or "
                                  f"config file set it, pass {back})")

    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``MGNM(n_users, n_items, **kwargs)``."""
        return {name: getattr(self, name) for name in (*MODEL_KEYS, "max_len")}

    def build_model(self, n_users: int, n_items: int):
        """``self.model`` for the dataset sizes; it takes the settings its constructor names."""
        from mgnm_pyg.models import build_model

        return build_model(self.model, n_users, n_items, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
MODEL_KEYS: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.metadata["group"] == "model")


def field_type(name: str) -> type:
    """The Python type of a setting (``int``, ``float``, ``bool`` or ``str``)."""
    return {"int": int, "float": float, "bool": bool, "str": str}[str(FIELDS[name].type)]


def option_flag(name: str) -> str:
    """The command-line option of setting ``name``: ``n_interests`` -> ``--n-interests``."""
    return "--" + name.replace("_", "-")


def _bounds(meta: dict[str, Any]) -> list[tuple[str, float, Any]]:
    ops = (("minimum", ">=", lambda v, b: v >= b), ("above", ">", lambda v, b: v > b),
           ("maximum", "<=", lambda v, b: v <= b), ("below", "<", lambda v, b: v < b))
    return [(op, meta[key], test) for key, op, test in ops if meta.get(key) is not None]


def _range_text(meta: dict[str, Any]) -> str:
    return " and ".join(f"{op} {bound}" for op, bound, _ in _bounds(meta))


def check_value(name: str, value: Any, where: str, label: str | None = None) -> Any:
    """Return ``value`` checked (and an int widened to float) for setting ``name``.

    Raises :class:`ConfigError` naming ``where`` (a file, ``command line``, or empty),
    the setting as the user wrote it (``label``: ``--n-interests`` on the command line,
    the key as spelled in a TOML file; default ``key 'n_interests'``), the expected
    type, choices or range, and the value found.
    """
    prefix = f"{where}: " if where else ""
    if name not in FIELDS:
        known = ", ".join(sorted(FIELDS))
        raise ConfigError(f"{prefix}unknown key {name!r}; known keys: {known}")
    what = label if label is not None else f"key {name!r}"
    kind = field_type(name)
    meta = FIELDS[name].metadata
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(
            f"{prefix}{what} expects {kind.__name__}, got {type(value).__name__} {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(
            f"{prefix}{what} must be one of {', '.join(meta['choices'])}; got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{prefix}{what} must be a finite number; got {value!r}")
    if any(not test(value, bound) for _, bound, test in _bounds(meta)):
        raise ConfigError(f"{prefix}{what} must be {_range_text(meta)}; got {value!r}")
    return value


def config_from_dict(values: dict[str, Any], where: str) -> TrainConfig:
    """A config read back from ``config.json`` or a checkpoint; keys are checked."""
    checked = {name: check_value(name, value, where) for name, value in values.items()}
    return TrainConfig(**checked)
