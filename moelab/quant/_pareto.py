"""Pareto fronts of sweep tables: the configurations no other one beats on every objective.

:func:`pareto_front` is :func:`labcore.pareto.pareto_front`, the one implementation both labs
share (srlab's word-length front calls it too).
"""

from __future__ import annotations

from labcore.pareto import pareto_front

__all__ = ["pareto_front"]
