"""The trainer's fused Adam takes the same steps as the for-loop Adam it replaces."""

from __future__ import annotations

import torch

from mgnm_pyg.models import MGNM
from mgnm_pyg.training.step import make_optimizer


def test_fused_adam_follows_the_for_loop_adam():
    torch.manual_seed(0)
    models = [MGNM(4, 9, dim=5, n_interests=2, n_layers=1) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optims = [make_optimizer(models[0].parameters(), 1e-2),
              torch.optim.Adam(models[1].parameters(), lr=1e-2, foreach=False)]
    users, histories = torch.tensor([0, 3]), torch.tensor([[1, 2, 3], [4, 5, 0]])
    items, labels = torch.tensor([[6, 7], [8, 9]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    for _ in range(5):
        for model, optim in zip(models, optims, strict=True):
            optim.zero_grad()
            model.loss(users, histories, items, labels)[0].backward()
            optim.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
