"""Pareto fronts: the points (or table rows) that no other one beats on every objective.

The one implementation both labs use. :func:`non_dominated` works on plain sequences of
numbers; :func:`pareto_front` picks the rows of a table (a pandas DataFrame, used only
through ``columns``, ``[column]`` and ``iloc``, so this module imports neither pandas nor
numpy).

A point dominates another if it is at least as good on every objective and strictly better
on one. Points equal on every objective do not dominate each other: all are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["non_dominated", "pareto_front"]


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Positions of the points no other point dominates, every objective minimized.

    Parameters
    ----------
    points : sequence of sequences of float
        One point a row, all of one length; lower is better on every coordinate (negate a
        coordinate to maximize it).

    Returns
    -------
    list of int
        Positions of the non-dominated points, ascending.

    Raises
    ------
    ValueError
        If a coordinate is NaN (it cannot be ranked) or the points differ in length.

    Examples
    --------
    >>> non_dominated([(4.0, -100), (3.9, -80), (4.1, -90), (3.9, -80)])
    [0, 1, 3]
    """
    rows = [tuple(float(v) for v in p) for p in points]
    if len({len(p) for p in rows}) > 1:
        raise ValueError("the points must all have the same number of objectives")
    if any(math.isnan(v) for p in rows for v in p):
        raise ValueError("a point has a NaN objective; drop or fill those points first")
    # A dominating point comes first in lexicographic order, and some point of the front found
    # so far dominates every dominated point (dominance is transitive): one pass suffices.
    front: list[tuple[float, ...]] = []
    kept: list[int] = []
    for i in sorted(range(len(rows)), key=rows.__getitem__):
        if not any(_dominates(f, rows[i]) for f in front):
            front.append(rows[i])
            kept.append(i)
    return sorted(kept)


def _names(columns: str | Sequence[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def pareto_front(
    table: Any, minimize: str | Sequence[str] = (), maximize: str | Sequence[str] = ()
) -> Any:
    """The rows of a table that no other row dominates.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per configuration (e.g. a sweep).
    minimize, maximize : str or sequence of str
        Objective columns, lower or higher is better.

    Returns
    -------
    pandas.DataFrame
        The non-dominated rows, in the table's order, with its index.

    Raises
    ------
    ValueError
        No objective, a column named twice or missing, or a NaN in an objective.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"ppl": [4.0, 3.9, 4.1], "tok_s": [100, 80, 90]})
    >>> pareto_front(t, minimize="ppl", maximize="tok_s").index.tolist()
    [0, 1]
    """
    low, high = _names(minimize), _names(maximize)
    columns = [*low, *high]
    if not columns:
        raise ValueError("pareto_front needs at least one column to minimize or maximize")
    if len(set(columns)) != len(columns):
        raise ValueError(f"a column is both minimized and maximized or named twice: {columns}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"no column {missing} in the table; it has {list(table.columns)}")
    values = [[float(v) for v in table[c].tolist()] for c in low]
    values += [[-float(v) for v in table[c].tolist()] for c in high]
    points = list(zip(*values))
    if any(math.isnan(v) for p in points for v in p):
        raise ValueError(f"NaN in the objectives {columns}: drop or fill those rows first")
    return table.iloc[non_dominated(points)]
