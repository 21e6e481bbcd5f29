"""GPU speed-ups of the training step: bf16 autocast (``--amp``), ``torch.compile``
(``--compile``) and overlapped host-to-device copies.

All three are optional and leave the model's definition alone:

* ``--amp`` runs the training forward pass under ``torch.autocast(dtype=bfloat16)``;
  bf16 keeps fp32's exponent range, so no loss scaling is needed. Validation and test
  scores stay fp32: bf16's 8-bit mantissa would tie many of the 1000 candidates of a
  record and so move rank metrics by more than training noise.
* ``--compile`` replaces the model's ``encode`` (the graph and capsule layers, where the
  time goes) by ``torch.compile(encode)``. Compilation happens at the first calls; if
  it fails (no C compiler, an unsupported op) the run warns once and goes on eagerly.
* :func:`to_device` copies a CPU batch tensor through pinned memory with
  ``non_blocking=True`` on CUDA, so the copy overlaps the previous step's kernels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """``t`` on ``device``; from pinned memory and asynchronous when ``device`` is CUDA.

    The caching host allocator keeps the pinned buffer alive until the copy is done, so
    the source may be dropped right away.
    """
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class EagerFallback:
    """Calls ``compiled``; on its first failure warns once and calls ``eager`` from then on.

    A genuine error of the model is raised again by the eager call, so nothing is hidden.
    """

    def __init__(self, eager: Callable, compiled: Callable,
                 warn: Callable[[str], None]) -> None:
        self.eager, self.compiled, self.warn = eager, compiled, warn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # compilation errors surface at call time
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.warn(f"warning: torch.compile failed ({type(exc).__name__}: "
                          f"{reason[:200]}); training goes on without --compile")
                self.compiled = None
        return self.eager(*args, **kwargs)


def compile_encode(model: nn.Module, warn: Callable[[str], None] = print) -> bool:
    """Replace ``model.encode`` by its ``torch.compile`` (with an eager fallback).

    Shapes vary from batch to batch (length buckets), so ``dynamic=True`` compiles one
    graph for all widths instead of one per width. The parameters and ``state_dict``
    are unchanged (checkpoints are the same as without compile). Returns False (after a
    warning) where ``torch.compile`` itself is unavailable.
    """
    eager = model.encode
    try:
        compiled = torch.compile(eager, dynamic=True)
    except Exception as exc:  # e.g. an unsupported Python version
        warn(f"warning: torch.compile is unavailable ({type(exc).__name__}: {exc}); "
             f"training goes on without --compile")
        return False
    model.encode = EagerFallback(eager, compiled, warn)
    return True
