"""Quantizing experts and choosing their precision: backends, byte accounting, Pareto fronts.

Backends (``_backends``: a registry; see :func:`available_backends`)
    ``"rtn"`` (round to nearest, built in), ``"hqq"`` (half-quadratic, the ``quant`` extra),
    both affine; ``"bnb-nf4"`` and ``"bnb-fp4"`` (bitsandbytes' 4-bit codebooks, the paper's;
    the ``quant`` extra); :func:`quantize_matrix` -> :class:`QuantizedMatrix` (``bits``-bit
    codes, a scale (and zero) per group, exact bytes); affine 4-bit ones decode on the routed
    path (:func:`moelab.experts.quantize_experts`), every backend serves quality sweeps.
Choosing experts (``_selection``: a registry; see :func:`available_selections`)
    :func:`expert_scores` (routing share and output sensitivity per slot, on calibration
    tokens), :func:`select_experts` (``random``, ``frequency``, ``sensitivity``, ``layer``,
    ``combined``), :func:`fake_quantize` (the quantized values in place, for quality at any
    bit width).
Plans (``_plans``)
    :func:`plan_precision` -> :class:`PrecisionPlan`: bits and GPU/CPU per slot under a GPU
    budget (non-expert layers, quantized experts, then full-precision ones while room lasts;
    cache rows for the CPU experts), bytes counted exactly (:func:`expert_bytes`).
Speed (``_cost``)
    :func:`measure_decode_cost` -> :class:`DecodeCost`: a decode step's primitives timed on the
    machine (non-expert time, one expert's matmuls per precision, host-to-device bandwidth),
    and a plan's predicted tokens/s from them and the routing shares;
    :func:`expected_copy_traffic`: the copies per token a copy plan's routing predicts.
Sweeps (``_sweep``)
    :func:`sweep_precision`: perplexity per (policy, seed, bits, number quantized), one CSV
    row each, resumable; a file of another model is refused.
Fronts (``_pareto``)
    :func:`pareto_front`: the non-dominated rows of a sweep table.
"""

from __future__ import annotations

from moelab.quant._backends import (
    SUPPORTED_BITS,
    QuantBackend,
    QuantizedMatrix,
    available_backends,
    get_backend,
    quantize_matrix,
)
from moelab.quant._cost import DecodeCost, expected_copy_traffic, measure_decode_cost
from moelab.quant._pareto import pareto_front
from moelab.quant._plans import PrecisionPlan, expert_bytes, plan_precision
from moelab.quant._selection import (
    SelectionPolicy,
    available_selections,
    expert_scores,
    fake_quantize,
    get_selection,
    select_experts,
)
from moelab.quant._sweep import sweep_precision

__all__ = [
    "SUPPORTED_BITS",
    "DecodeCost",
    "QuantBackend",
    "PrecisionPlan",
    "QuantizedMatrix",
    "SelectionPolicy",
    "available_backends",
    "available_selections",
    "expected_copy_traffic",
    "expert_bytes",
    "expert_scores",
    "fake_quantize",
    "get_backend",
    "get_selection",
    "measure_decode_cost",
    "pareto_front",
    "plan_precision",
    "quantize_matrix",
    "select_experts",
    "sweep_precision",
]
