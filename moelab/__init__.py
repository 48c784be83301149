"""moelab: a lab for serving several fine-tuned mixture-of-experts models cheaply.

Concept -> module -> main names (``ARCHITECTURE.md`` has the layers and where new things go):

Loading models (``loading``, ``checkpoint``)
    load_moe, MoEModel, LazyCheckpoint, convert_to_safetensors (``python -m moelab convert``)
Weight sources, read one piece at a time (``sources``)
    WeightSource, PerturbedSource (a base plus seeded noise), open_source
Family adapters, the only code that knows how an architecture stores its experts (``families``)
    ExpertSlot, MoEFamily, available_families, get_family, detect_family, check_compatible,
    forbid_conversion
The offline zoo of tiny trained models, the embedded default (``zoo``, corpora in ``corpora``)
    ensure_zoo, load_zoo, Zoo
Expert similarity (``similarity``)
    expert_similarity, cross_slot_similarity, sum_over_pairs, match_experts, available_metrics,
    Calibration, capture_calibration, gaussian_calibration
Consolidation under a device budget, with device/host placement (``consolidation``)
    plan_consolidation, ConsolidationPlan, available_placements
Runtime partial reconfiguration, graph-safe (``reconfigure``)
    ConsolidatedMoE
Routing counts (``routing``)
    routing_counts
Decode-time routed experts, dense or 4-bit, on the device or in host memory (``experts``)
    use_routed_experts, quantize_experts, apply_precision_plan, quantize_int4
Expert quantization under a GPU budget (``quant``)
    plan_precision, PrecisionPlan, available_backends, select_experts, sweep_precision,
    measure_decode_cost, pareto_front
Serving request streams (``serving``)
    Request, poisson_arrivals, ConsolidatedEngine, SingleEngine, SwapEngine, serve
Merging baselines (``merging``) and the quality-vs-memory comparison (``compare``, ``quality``)
    merge_models, without_reconfiguration, compare_methods
Evaluation (``evaluate``): perplexity, exact match, ROUGE-1
Figures and explorers (``viz``): heatmaps, profiles, quality vs memory, widgets
Errors (``errors``) and optional dependencies (``extras``)
    UnsupportedModelError, IncompatibleModelsError, CorruptCheckpointError,
    CheckpointNotFoundError, MissingExtraError

Names load lazily (``lazy_loader``, names listed in ``__init__.pyi``): ``import moelab`` imports
neither torch nor transformers; a name imports its module on first use. The merging baselines
that run mergekit (task arithmetic, TIES, DARE) and the ROUGE metric need the ``merging`` extra:
``pip install 'moe-sr-lab[merging]'``.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
