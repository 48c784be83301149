"""Figures and interactive explorers of moelab's result tables; nothing here calls ``.show()``.

Expert similarity (``_similarity``; tables of :mod:`moelab.similarity`)
    similarity_heatmap, layer_profile, similarity_scatter, similarity_clustermap,
    cross_slot_heatmap, and similarity_view (the pure function behind the explorer)
Quality against memory (``_quality``; tables of :func:`moelab.compare.compare_methods`)
    quality_memory_figure, scalability_figure
Consolidation (``_consolidation``; :mod:`moelab.consolidation` plans and their models)
    plan_heatmap, memory_figure
Precision and placement (``_quant``; :mod:`moelab.quant` plans and sweeps)
    precision_heatmap, precision_front_figure
Serving (``_serving``; runs of :mod:`moelab.serving`)
    serving_timeline, qos_figure
Explorers (``_widgets``; ipywidgets around the pure functions above)
    similarity_explorer, budget_explorer, precision_explorer (and precision_view, the pure
    function behind it)

"""

from __future__ import annotations

from moelab.viz._consolidation import memory_figure, plan_heatmap
from moelab.viz._quality import quality_memory_figure, scalability_figure
from moelab.viz._quant import precision_front_figure, precision_heatmap
from moelab.viz._serving import qos_figure, serving_timeline
from moelab.viz._similarity import (
    cross_slot_heatmap,
    layer_profile,
    similarity_clustermap,
    similarity_heatmap,
    similarity_scatter,
    similarity_view,
)
from moelab.viz._widgets import (
    budget_explorer,
    precision_explorer,
    precision_view,
    similarity_explorer,
)

__all__ = [
    "budget_explorer",
    "cross_slot_heatmap",
    "layer_profile",
    "memory_figure",
    "plan_heatmap",
    "precision_explorer",
    "precision_front_figure",
    "precision_heatmap",
    "precision_view",
    "qos_figure",
    "quality_memory_figure",
    "scalability_figure",
    "serving_timeline",
    "similarity_clustermap",
    "similarity_explorer",
    "similarity_heatmap",
    "similarity_scatter",
    "similarity_view",
]
