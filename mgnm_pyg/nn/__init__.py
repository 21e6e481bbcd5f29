"""Neural-network building blocks of MGNM: adjacency, graph convolutions, capsules (with
their BiLSTM), readout."""

from .adjacency import (
    fully_connected_edge_index,
    normalize_adjacency,
    user_aware_adjacency,
    user_aware_edge_weight,
    user_aware_gcn_norm,
)
from .bilstm import MaskedBiLSTM
from .capsule import SequentialCapsuleNetwork, squash
from .conv import DenseUserAwareGraphConv, UserAwareGraphConv
from .extractors import EXTRACTORS, build_extractor
from .readout import target_attention

__all__ = [
    "EXTRACTORS",
    "DenseUserAwareGraphConv",
    "MaskedBiLSTM",
    "SequentialCapsuleNetwork",
    "UserAwareGraphConv",
    "build_extractor",
    "fully_connected_edge_index",
    "normalize_adjacency",
    "squash",
    "target_attention",
    "user_aware_adjacency",
    "user_aware_edge_weight",
    "user_aware_gcn_norm",
]
