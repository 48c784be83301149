"""Shared test set-up: every test starts from the same seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SEED = 0


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed Python, NumPy and (when imported) torch before each test."""
    random.seed(SEED)
    np.random.seed(SEED)
    try:
        import torch
    except ImportError:  # srlab tests do not need torch
        return
    torch.manual_seed(SEED)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests when CUDA is absent."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
