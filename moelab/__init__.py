"""moelab: a lab for serving several fine-tuned mixture-of-experts models cheaply.

Loading models
    load_moe, MoEModel, LazyCheckpoint
Family adapters (how each architecture stores its experts)
    ExpertSlot, MoEFamily, available_families, get_family, detect_family, check_compatible
Errors
    UnsupportedModelError, IncompatibleModelsError, CorruptCheckpointError,
    CheckpointNotFoundError

Everything else is importable from its module (``moelab.families``, ``moelab.checkpoint``).
"""

from __future__ import annotations

from moelab.checkpoint import LazyCheckpoint
from moelab.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    IncompatibleModelsError,
    UnsupportedModelError,
)
from moelab.families import (
    ExpertSlot,
    MoEFamily,
    available_families,
    check_compatible,
    detect_family,
    get_family,
)
from moelab.loading import MoEModel, load_moe

__all__ = [
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "ExpertSlot",
    "IncompatibleModelsError",
    "LazyCheckpoint",
    "MoEFamily",
    "MoEModel",
    "UnsupportedModelError",
    "available_families",
    "check_compatible",
    "detect_family",
    "get_family",
    "load_moe",
]
