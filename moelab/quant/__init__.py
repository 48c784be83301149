"""Quantizing experts and choosing their precision: backends, byte accounting, Pareto fronts.

Backends (``_backends``: a registry; see :func:`available_backends`)
    ``"rtn"`` (round to nearest, built in), ``"hqq"`` (half-quadratic, the ``quant`` extra);
    :func:`quantize_matrix` -> :class:`QuantizedMatrix` (``bits``-bit codes, a scale and zero
    per group, exact bytes); the 4-bit ones decode on the routed path
    (:func:`moelab.experts.quantize_experts`).
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
from moelab.quant._pareto import pareto_front

__all__ = [
    "SUPPORTED_BITS",
    "QuantBackend",
    "QuantizedMatrix",
    "available_backends",
    "get_backend",
    "pareto_front",
    "quantize_matrix",
]
