"""How similar the experts of several fine-tuned mixture-of-experts models are.

Fine-tunes of one base MoE keep the base's expert slots; the question this package answers is
how far each fine-tune moved each expert, and whether experts kept their positions. Every
function returns a tidy ``pandas.DataFrame`` (one row per layer, expert, model pair and metric);
:mod:`moelab.viz` draws them.

Each concept lives in one private module; every public name is importable from
``moelab.similarity``.

Metrics and their registry (``_metrics``)
    SimilarityMetric, available_metrics, get_metric, register_metric, linear_cka;
    the types MetricName, Direction, DIRECTIONS, MetricInput, METRIC_INPUTS.
    Built in: ``"l2"`` (distance), ``"cosine"``, ``"cka"``, ``"router"`` (similarities).
Calibration tokens, what ``"cka"`` and ``"router"`` feed the experts (``_calibration``)
    Calibration, capture_calibration, gaussian_calibration, DEFAULT_CALIBRATION_TOKENS
Models compared (``_sources``)
    ModelSource (a checkpoint folder, read lazily, or a model in memory)
Tables (``_tables``)
    expert_similarity (same slot, every pair of N >= 2 models), cross_slot_similarity (every
    expert against every expert of a layer)
Table layout, what every reader of a table checks (``_layout``)
    SAME_SLOT_COLUMNS, CROSS_SLOT_COLUMNS, SUM_PAIR, check_table, select_rows, as_distance
Summaries and correlations (``_summaries``)
    sum_over_pairs (the paper's score), similarity_matrix, layer_summary, pair_summary,
    metric_correlation, CorrelationMethod
Matching (``_matching``)
    match_experts (Hungarian matching across slots), permute_experts (shuffle a model's expert
    slots without changing what it computes: the demonstration)

The private modules also share helpers that are not part of this API (``resolve_metrics``,
``as_calibration``, ``open_models``, ``resolve_layers``, ``to_frame``).

Models are given as checkpoint folders (read lazily, one expert at a time, with
:class:`~moelab.checkpoint.LazyCheckpoint`), :class:`~moelab.loading.MoEModel` objects or
transformers models (eager); :func:`~moelab.families.check_compatible` runs first.

Notes
-----
Metric definitions, for experts ``A`` and ``B`` of the same slot (or of any two slots in the
cross-slot table) and calibration states ``X`` of that layer:

* ``l2`` = ``||vec(A) - vec(B)||_2`` where ``vec`` concatenates the flattened expert matrices
  in family order (Mixtral: w1, w2, w3, as the Multi-MoE code does). Distance, 0 if identical.
* ``cosine`` = ``<vec(A), vec(B)> / (||vec(A)|| ||vec(B)||)``. Similarity, 1 if identical.
* ``cka`` = :func:`linear_cka` of ``A(X)`` and ``B(X)`` (``family.expert_forward``, no routing
  weight). Similarity in [0, 1], 1 if the outputs agree up to rotation and scale.
* ``router`` = Pearson correlation, over the tokens of ``X``, of ``p_A(e | x)`` and
  ``p_B(e | x)``: the probability each model's router gives the expert (softmax of the router
  logits over all experts, before top-k). Similarity in [-1, 1]. Correlation rather than the
  cosine of the two probability columns: probabilities are positive, so their cosine is high
  even for unrelated routers, while their correlation is near 0 then and 1 when the two
  routers rank tokens for the expert the same way.

``cka`` and ``router`` are NaN when a side is constant over the calibration tokens.

Examples
--------
>>> available_metrics()
('cka', 'cosine', 'l2', 'router')
>>> models = {"base": "ckpt/base", "chat": "ckpt/chat"}
>>> table = expert_similarity(models, ["l2", "cka"])  # doctest: +SKIP
>>> sum_over_pairs(table).query("metric == 'l2'").nsmallest(3, "value")  # doctest: +SKIP
"""

from __future__ import annotations

from moelab.similarity._calibration import (
    DEFAULT_CALIBRATION_TOKENS,
    Calibration,
    capture_calibration,
    gaussian_calibration,
)
from moelab.similarity._layout import (
    CROSS_SLOT_COLUMNS,
    SAME_SLOT_COLUMNS,
    SUM_PAIR,
    as_distance,
    check_table,
    select_rows,
)
from moelab.similarity._matching import match_experts, permute_experts
from moelab.similarity._metrics import (
    DIRECTIONS,
    METRIC_INPUTS,
    Direction,
    MetricInput,
    MetricName,
    SimilarityMetric,
    available_metrics,
    get_metric,
    linear_cka,
    register_metric,
)
from moelab.similarity._summaries import (
    CorrelationMethod,
    layer_summary,
    metric_correlation,
    pair_summary,
    similarity_matrix,
    sum_over_pairs,
)
from moelab.similarity._tables import cross_slot_similarity, expert_similarity
from moelab.sources import ModelSource

__all__ = [
    "CROSS_SLOT_COLUMNS",
    "DEFAULT_CALIBRATION_TOKENS",
    "DIRECTIONS",
    "METRIC_INPUTS",
    "SAME_SLOT_COLUMNS",
    "SUM_PAIR",
    "Calibration",
    "CorrelationMethod",
    "Direction",
    "MetricInput",
    "MetricName",
    "ModelSource",
    "SimilarityMetric",
    "as_distance",
    "available_metrics",
    "capture_calibration",
    "check_table",
    "cross_slot_similarity",
    "expert_similarity",
    "gaussian_calibration",
    "get_metric",
    "layer_summary",
    "linear_cka",
    "match_experts",
    "metric_correlation",
    "pair_summary",
    "permute_experts",
    "register_metric",
    "select_rows",
    "similarity_matrix",
    "sum_over_pairs",
]
