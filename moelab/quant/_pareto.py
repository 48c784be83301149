"""Pareto fronts of sweep tables: the configurations no other one beats on every objective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["pareto_front"]


def pareto_front(
    table: pd.DataFrame, minimize: str | Sequence[str] = (), maximize: str | Sequence[str] = ()
) -> pd.DataFrame:
    """The rows of a table that no other row dominates.

    A row dominates another if it is at least as good on every objective and strictly better
    on one. Rows equal on every objective do not dominate each other: all are kept.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per configuration (e.g. a sweep).
    minimize, maximize : str or sequence of str
        Objective columns, lower or higher is better (e.g. perplexity and GPU bytes; tokens/s).

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
    >>> t = pd.DataFrame({"ppl": [4.0, 3.9, 4.1], "tok_s": [100, 80, 90]})
    >>> pareto_front(t, minimize=["ppl"], maximize=["tok_s"]).index.tolist()
    [0, 1]
    """
    minimize = [minimize] if isinstance(minimize, str) else list(minimize)
    maximize = [maximize] if isinstance(maximize, str) else list(maximize)
    columns = [*minimize, *maximize]
    if not columns:
        raise ValueError("pareto_front needs at least one column to minimize or maximize")
    if len(set(columns)) != len(columns):
        raise ValueError(f"a column is both minimized and maximized or named twice: {columns}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"no column {missing} in the table; it has {list(table.columns)}")
    # Lower is better on every column once the maximized ones change sign.
    values = np.column_stack(
        [table[c].to_numpy(float) for c in minimize] + [-table[c].to_numpy(float) for c in maximize]
    )
    if np.isnan(values).any():
        raise ValueError(f"NaN in the objectives {columns}: drop or fill those rows first")
    no_worse = (values[:, None, :] <= values[None, :, :]).all(-1)  # [i, j]: i no worse than j
    better = (values[:, None, :] < values[None, :, :]).any(-1)
    dominated = (no_worse & better).any(axis=0)
    return table[~dominated]
