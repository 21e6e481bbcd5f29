"""Recommender models: MGNM and the baselines, by the names ``--model`` accepts."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from .base import SequenceEncoding, SequentialRecommender
from .comirec import ComiRecDR
from .gru4rec import GRU4Rec
from .mgnm import MGNM, MGNMEncoding
from .pop import Popularity
from .sasrec import SASRec

__all__ = [
    "MGNM",
    "MODELS",
    "ComiRecDR",
    "GRU4Rec",
    "MGNMEncoding",
    "Popularity",
    "SASRec",
    "SequenceEncoding",
    "SequentialRecommender",
    "build_model",
    "model_arguments",
]

#: ``--model`` name -> class; every class takes ``(n_users, n_items, **settings)``.
MODELS: dict[str, type[nn.Module]] = {
    "mgnm": MGNM,
    "pop": Popularity,
    "gru4rec": GRU4Rec,
    "sasrec": SASRec,
    "comirec-dr": ComiRecDR,
}


def model_arguments(cls: type[nn.Module], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that ``cls``'s constructor takes by name."""
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in settings.items() if k in params and k not in ("n_users", "n_items")}


def build_model(name: str, n_users: int, n_items: int, settings: Mapping[str, Any]) -> nn.Module:
    """Model ``name`` for the dataset sizes, with the ``settings`` its constructor takes."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cls = MODELS[name]
    return cls(n_users, n_items, **model_arguments(cls, settings))
