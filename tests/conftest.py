"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Real Amazon files live beside the checkout (../shared/datasets); a user's machine
# usually lacks them, so tests that need them skip. MGNM_SHARED_DATASETS overrides.
SHARED_DATASETS = Path(
    os.environ.get(
        "MGNM_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)


@pytest.fixture
def shared_datasets() -> Path:
    """Folder of the real datasets; skips the test where it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Prepared datasets written by tests go to a temporary folder, never the repo."""
    monkeypatch.setenv("MGNM_DATA_DIR", str(tmp_path_factory.mktemp("datasets")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def one_thread():
    """One torch thread: tiny ops gain nothing from threads, and on a busy 2-core machine
    two threads oversubscribe the cores (OpenMP barriers stall)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
