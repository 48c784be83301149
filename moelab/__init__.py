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
Consolidation, runtime reconfiguration, merging baselines and their comparison
    plan_consolidation, ConsolidationPlan, ConsolidatedMoE, merge_models,
    without_reconfiguration, compare_methods
Errors
    UnsupportedModelError, IncompatibleModelsError, CorruptCheckpointError,
    CheckpointNotFoundError, MissingExtraError

Everything else is importable from its module (``moelab.families``, ``moelab.checkpoint``).

Names load lazily (``lazy_loader``, names listed in ``__init__.pyi``): ``import moelab`` imports
neither torch nor transformers; a name imports its module on first use. The merging baselines
that run mergekit (task arithmetic, TIES, DARE) and the ROUGE metric need the ``merging`` extra:
``pip install 'moe-sr-lab[merging]'``.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
