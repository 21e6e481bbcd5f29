"""``adjacency_scale`` (departs from the paper): Eq. 1's logits times a factor, in both
convolution forms, against a reference written here."""

from __future__ import annotations

import pytest
import torch

from mgnm_pyg.models import MGNM
from mgnm_pyg.training.config import TrainConfig

N_USERS, N_ITEMS = 5, 40
USERS = torch.tensor([0, 2, 4])
HISTORIES = torch.tensor([[4, 9, 2, 0], [7, 0, 0, 0], [1, 2, 3, 5]])


def _mgnm(**kw) -> MGNM:
    torch.manual_seed(0)
    return MGNM(N_USERS, N_ITEMS, dim=8, n_interests=2, n_layers=2, **kw).double()


def _reference_adjacency(model: MGNM, scale: float, user_term: bool) -> torch.Tensor:
    """A_ij = sigmoid(scale * sum_k x_i[k] x_j[k] x_u[k]) at valid pairs, 0 elsewhere."""
    x = model.item_embedding.weight[HISTORIES]
    u = model.user_embedding.weight[USERS] if user_term else torch.ones_like(x[:, 0])
    out = torch.zeros(HISTORIES.shape[0], HISTORIES.shape[1], HISTORIES.shape[1],
                      dtype=torch.float64)
    for b in range(HISTORIES.shape[0]):
        for i in range(HISTORIES.shape[1]):
            for j in range(HISTORIES.shape[1]):
                if HISTORIES[b, i] and HISTORIES[b, j]:
                    out[b, i, j] = torch.sigmoid(scale * (x[b, i] * x[b, j] * u[b]).sum())
    return out


@pytest.mark.parametrize("conv", ["dense", "mp"])
@pytest.mark.parametrize("user_term", [True, False])
def test_the_scaled_adjacency_equals_the_reference(conv, user_term):
    model = _mgnm(conv=conv, adjacency_scale=7.5, adjacency_user=user_term)
    with torch.no_grad():
        adjacency = model.encode(USERS, HISTORIES).adjacency
        reference = _reference_adjacency(model, 7.5, user_term)
    assert torch.allclose(adjacency, reference, atol=1e-12)
    assert not torch.allclose(reference, _reference_adjacency(model, 1.0, user_term))


def test_the_scale_changes_the_scores_and_reaches_the_config():
    plain, scaled = _mgnm(), _mgnm(adjacency_scale=20.0)
    scaled.load_state_dict(plain.state_dict())  # same weights: only the factor differs
    items = torch.arange(1, 10)
    with torch.no_grad():
        a = plain.score(plain.encode(USERS, HISTORIES).interests, items)
        b = scaled.score(scaled.encode(USERS, HISTORIES).interests, items)
    assert torch.allclose(a[:, 0], b[:, 0])  # level 0 does not see the graph
    assert not torch.allclose(a[:, 1:], b[:, 1:])
    model = TrainConfig(adjacency_scale=3.0).build_model(N_USERS, N_ITEMS)
    assert model.adjacency_scale == 3.0
