# Public names of moelab, loaded lazily by ``lazy.attach_stub`` in __init__.py; type checkers read
# this file. Only relative imports: each line names a module and what moelab takes from it.
__all__ = [
    "Calibration",
    "CheckpointNotFoundError",
    "ConsolidatedMoE",
    "ConsolidationPlan",
    "CorruptCheckpointError",
    "ExpertSlot",
    "IncompatibleModelsError",
    "LazyCheckpoint",
    "MissingExtraError",
    "MoEFamily",
    "MoEModel",
    "PerturbedSource",
    "UnsupportedModelError",
    "Zoo",
    "available_families",
    "available_metrics",
    "capture_calibration",
    "check_compatible",
    "checkpoint",
    "compare",
    "compare_methods",
    "consolidation",
    "corpora",
    "cross_slot_similarity",
    "detect_family",
    "ensure_zoo",
    "errors",
    "evaluate",
    "expert_similarity",
    "experts",
    "families",
    "gaussian_calibration",
    "get_family",
    "load_moe",
    "load_zoo",
    "loading",
    "match_experts",
    "merge_models",
    "merging",
    "plan_consolidation",
    "quant",
    "reconfigure",
    "routing",
    "routing_counts",
    "serving",
    "similarity",
    "sources",
    "sum_over_pairs",
    "without_reconfiguration",
    "zoo",
]

from . import (
    checkpoint,
    compare,
    consolidation,
    corpora,
    errors,
    evaluate,
    experts,
    families,
    loading,
    merging,
    quant,
    reconfigure,
    routing,
    serving,
    similarity,
    sources,
    zoo,
)
from .checkpoint import LazyCheckpoint
from .compare import compare_methods
from .consolidation import ConsolidationPlan, plan_consolidation
from .errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    IncompatibleModelsError,
    MissingExtraError,
    UnsupportedModelError,
)
from .families import (
    ExpertSlot,
    MoEFamily,
    available_families,
    check_compatible,
    detect_family,
    get_family,
)
from .loading import MoEModel, load_moe
from .merging import merge_models, without_reconfiguration
from .reconfigure import ConsolidatedMoE
from .routing import routing_counts
from .similarity import (
    Calibration,
    available_metrics,
    capture_calibration,
    cross_slot_similarity,
    expert_similarity,
    gaussian_calibration,
    match_experts,
    sum_over_pairs,
)
from .sources import PerturbedSource
from .zoo import Zoo, ensure_zoo, load_zoo
