"""Training on several processes with ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc_per_node N -m mgnm_pyg.cli train ...`` starts N copies of the command
with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` set.
:func:`setup` joins the process group from those variables (gloo on the CPU, nccl on
CUDA, one GPU per local rank). Without them (``WORLD_SIZE`` unset or 1) every helper
here is a no-op, so single-process code paths stay as they are.

How a distributed run divides the work, and why it equals a single-process run:

* **Batches.** Every rank builds the same global batches (the sampler is seeded by
  ``(seed, epoch)``) and keeps its slice ``index[rank::world]`` of each (the batch is
  sorted by length, so the slices have similar lengths). ``--batch-size`` stays the
  *global* batch.
* **Negatives.** Every rank draws the epoch's negatives from ``(seed, epoch)`` on its
  own, without communication; the draws agree, so a record's negatives do not depend
  on the number of processes.
* **Gradients.** Eq. 16-17 are sums over rows plus a regulariser ``R`` counted once.
  DDP averages gradients over ranks, so each rank back-propagates
  ``world * (loss_r - R) + R``; the average is then the single-process gradient.
  A batch with fewer records than ranks is run whole by every rank, unscaled.
* **Evaluation.** Each rank scores every ``world``-th group of whole users; the rank
  histograms and the per-user GAUC pair counts are gathered, so every rank computes the
  exact single-process metrics (GAUC is a per-user weighted mean, so counts are
  reduced, never per-rank means).

The results differ from a single-process run only by floating-point summation order.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from mgnm_pyg.errors import MGNMError


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise MGNMError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that prints and writes files."""
    return rank() == 0


def setup(device: torch.device, timeout_minutes: float = 30.0) -> torch.device:
    """Join the torchrun process group if one is launched; return this rank's device.

    On CUDA each process takes GPU ``LOCAL_RANK`` (one process per GPU) and uses nccl;
    on the CPU gloo. Called twice (e.g. a resumed trainer), it keeps the group.
    """
    if env_world_size() <= 1:
        return device
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return device


def teardown(synchronize: bool = True) -> None:
    """Leave the process group (at the end of a run).

    ``synchronize`` first waits for every rank, so that no rank destroys its group (and
    exits) while a peer still talks to it; a rank that ended with an error does not
    wait, since its peers may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    # nccl only moves CUDA tensors; gloo only CPU ones
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(t: Tensor, op: str = "sum") -> Tensor:
    """The elementwise ``sum`` or ``max`` of ``t`` over ranks (a new tensor on ``t``'s device)."""
    if not is_distributed():
        return t.clone()
    out = t.to(_comm_device(), copy=True)
    dist.all_reduce(out, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return out.to(t.device)


def all_gather_cat(t: Tensor) -> Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order (sizes may differ)."""
    if not is_distributed():
        return t
    dev = _comm_device()
    size = torch.tensor([t.shape[0]], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = t.new_zeros((longest, *t.shape[1:]), device=dev)
    padded[: t.shape[0]] = t.to(dev)
    parts = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)]).to(t.device)


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers into every rank's ``module``."""
    if not is_distributed():
        return
    dev = _comm_device()
    for t in list(module.parameters()) + list(module.buffers()):
        data = t.data.to(dev)
        dist.broadcast(data, src)
        t.data.copy_(data)


def shard_groups(groups: list) -> list:
    """This rank's share of a list of work items (every ``world``-th, from ``rank``)."""
    return groups[rank() :: world_size()] if is_distributed() else groups


def batch_slice(index: np.ndarray) -> tuple[np.ndarray, float]:
    """This rank's records of a global batch and the weight of its data terms.

    A batch with fewer records than ranks is run whole by every rank with weight 1
    (DDP's average then counts it once); otherwise each rank takes every ``world``-th
    record with weight ``world`` (the average then sums the slices).
    """
    world = world_size()
    if world == 1 or len(index) < world:
        return index, 1.0
    return index[rank() :: world], float(world)


class DistributedLoss(nn.Module):
    """The training loss as a module ``forward``, so DDP can wrap it and sync gradients.

    ``forward(users, histories, items, labels, kind, data_weight, negatives)`` returns
    :func:`~mgnm_pyg.models.loss.training_loss`'s ``(loss, parts, rows)`` with the
    loss replaced by ``data_weight * (loss - R) + R``, ``R`` the parameter penalty that
    every rank adds once (the model's ``parameter_penalty()``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: Tensor, histories: Tensor, items: Tensor, labels: Tensor,
                kind: str = "bce", data_weight: float = 1.0,
                negatives: Any = None) -> tuple[Tensor, dict, int]:
        from mgnm_pyg.models.loss import training_loss

        loss, parts, rows = training_loss(self.model, kind, users, histories, items, labels,
                                          negatives)
        if data_weight != 1.0:
            penalty = self.model.parameter_penalty()
            loss = data_weight * (loss - penalty) + penalty
        return loss, parts, rows


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The training loss as a module (:class:`DistributedLoss`); DDP-wrapped in a group.

    With MGNM every parameter enters the L2 term, so none is unused; other models may
    leave some unused in a step, which DDP must then look for. Initial weights are equal
    on all ranks (same seed) and DDP broadcasts rank 0's anyway.
    """
    module = DistributedLoss(model)
    if not is_distributed():
        return module
    if not any(p.requires_grad for p in model.parameters()):
        raise MGNMError("this model has no trainable parameters (e.g. pop): train it in one "
                        "process, without torchrun")
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids,
        find_unused_parameters=not getattr(model, "theta2", None))


def reduce_evaluation(ranking, gauc, best=None, pooled=None) -> None:
    """Merge the evaluation accumulators of all ranks into each rank's, in place.

    The ranks scored disjoint sets of whole users, so summing the rank histograms and
    concatenating the per-row GAUC pair counts (and the per-user best ranks) gives the
    single-process state exactly (each accumulator's ``state`` methods,
    ``mgnm_pyg/metrics.py``).
    """
    if not is_distributed():
        return
    ranking.load_state(all_reduce(ranking.state()))
    try:
        counts = gauc.pair_count_state()
    except ValueError:
        raise MGNMError("distributed GAUC needs pair counts, not raw rows") from None
    gauc.load_pair_count_state(all_gather_cat(counts))
    for per_user in (best, pooled):
        if per_user is None:
            continue
        local = per_user.state()
        size = int(all_reduce(torch.tensor([local.numel()]), op="max").item())
        table = torch.zeros(size, dtype=torch.int64)
        table[: local.numel()] = local
        per_user.load_state(all_reduce(table))  # users are disjoint: one rank is non-zero


def loss_part_means(sums: dict[str, Tensor], rows: int) -> dict[str, float]:
    """Per-row means of the loss parts over all ranks (one host read per epoch), from
    each rank's row-weighted ``sums`` of the parts and its ``rows``."""
    if not sums:
        return {}
    values = torch.stack(list(sums.values()))
    both = all_reduce(torch.cat([values, values.new_tensor([rows])])).tolist()
    out = dict(zip(sums, both[:-1], strict=True))
    if "l2" in out and is_distributed():
        # Every rank adds the same parameter penalty to its loss: count it once.
        extra = out["l2"] * (1 - 1 / world_size())
        out["l2"] -= extra
        out["total"] -= extra
    return {name: value / max(both[-1], 1) for name, value in out.items()}


def step_losses(window: list[tuple[Tensor, float]]) -> list[tuple[float, float]]:
    """Each step's global (loss, rows) from the ``window`` of steps since the last
    check, with one host transfer (and, under torchrun, one all-reduce) for the whole
    window; every rank gets the same values, so a NaN on one rank stops them all at the
    same step."""
    losses = torch.stack([v.double() for v, _ in window])
    rows = torch.tensor([n for _, n in window], dtype=torch.float64, device=losses.device)
    both = torch.stack([losses, rows])
    if is_distributed():
        both = all_reduce(both / world_size())
    return [tuple(pair) for pair in both.T.tolist()]
