"""moelab: a lab for serving several fine-tuned mixture-of-experts models cheaply.

Loading models
    load_moe, MoEModel, LazyCheckpoint
Family adapters (how each architecture stores its experts)
    ExpertSlot, MoEFamily, available_families, get_family, detect_family, check_compatible
The offline zoo (tiny trained models, the embedded default)
    ensure_zoo, load_zoo, Zoo
Expert similarity (figures in ``moelab.viz``)
    expert_similarity, cross_slot_similarity, sum_over_pairs, match_experts, available_metrics,
    Calibration, capture_calibration, gaussian_calibration
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
from moelab.zoo import Zoo, ensure_zoo, load_zoo
from moelab.similarity import (
    Calibration,
    available_metrics,
    capture_calibration,
    cross_slot_similarity,
    expert_similarity,
    gaussian_calibration,
    match_experts,
    sum_over_pairs,
)

__all__ = [
    "Zoo",
    "ensure_zoo",
    "load_zoo",
    "Calibration",
    "available_metrics",
    "capture_calibration",
    "cross_slot_similarity",
    "expert_similarity",
    "gaussian_calibration",
    "match_experts",
    "sum_over_pairs",
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

# Consolidation, runtime reconfiguration, merging baselines and their comparison.
from moelab.compare import compare_methods
from moelab.consolidate import ConsolidationPlan, plan_consolidation
from moelab.merging import merge_models, without_reconfiguration
from moelab.reconfigure import ConsolidatedMoE

__all__ += [
    "ConsolidatedMoE",
    "ConsolidationPlan",
    "compare_methods",
    "merge_models",
    "plan_consolidation",
    "without_reconfiguration",
]
