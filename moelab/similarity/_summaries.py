"""Reading the tables: sums over pairs, one pair as a matrix, per-layer and per-pair statistics,
and how two metrics correlate.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from labcore.registry import Registry
from moelab.similarity._layout import (
    CROSS_SLOT_COLUMNS,
    SAME_SLOT_COLUMNS,
    SUM_PAIR,
    as_distance,
    check_table,
    select_rows,
)

__all__ = [
    "CorrelationMethod",
    "layer_summary",
    "metric_correlation",
    "pair_summary",
    "similarity_matrix",
    "sum_over_pairs",
]

CorrelationMethod = Literal["spearman", "kendall", "pearson"]
"""Coefficients :func:`metric_correlation` computes."""


def sum_over_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's score for more than two models: each slot's value summed over all pairs.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table from :func:`expert_similarity`.

    Returns
    -------
    pandas.DataFrame
        Same columns; one row per layer, expert and metric, with ``pair = "sum"``, ``model_a``
        and ``model_b`` set to ``"all"``, and ``value`` the sum over pairs (NaN if any pair's
        value is NaN).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns.

    Examples
    --------
    >>> from moelab import expert_similarity
    >>> table = expert_similarity({"base": base, "math": a, "code": b}, progress=False)
    >>> sum_over_pairs(table).nsmallest(3, "value")[["layer", "expert", "value"]].round(4)
       layer  expert   value
    4      1       0  0.1145
    1      0       1  0.1147
    0      0       0  0.1153
    """
    check_table(table, SAME_SLOT_COLUMNS, "sum_over_pairs")
    keys = ["layer", "label", "expert", "metric", "direction"]
    summed = (
        table[table["pair"] != SUM_PAIR]
        .groupby(keys, sort=False, as_index=False)["value"]
        .sum(min_count=1, skipna=False)
    )
    summed["model_a"] = summed["model_b"] = "all"
    summed["pair"] = SUM_PAIR
    return summed[list(SAME_SLOT_COLUMNS)].reset_index(drop=True)


def similarity_matrix(
    table: pd.DataFrame, metric: str, pair: str | None = None, layer: int | None = None
) -> pd.DataFrame:
    """One metric of one pair as a matrix.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table (:func:`expert_similarity` or :func:`sum_over_pairs`) or a cross-slot
        table (:func:`cross_slot_similarity`).
    metric : str
        A metric present in the table.
    pair : str, optional
        A pair present in the table; may be omitted when the table holds one pair.
    layer : int, optional
        For a cross-slot table, the layer to show (may be omitted when it holds one layer);
        ignored for a same-slot table.

    Returns
    -------
    pandas.DataFrame
        Same-slot: layers (index, by ``label``) x experts (columns). Cross-slot: ``expert_a``
        (index) x ``expert_b`` (columns) of that layer.

    Raises
    ------
    ValueError
        If the table has neither layout, or ``metric``, ``pair`` or ``layer`` is not in it.
    """
    cross = isinstance(table, pd.DataFrame) and "expert_a" in table.columns
    check_table(table, CROSS_SLOT_COLUMNS if cross else SAME_SLOT_COLUMNS, "similarity_matrix")
    chosen = select_rows(table, "metric", metric, "similarity_matrix")
    pair = _single(chosen, "pair", pair)
    chosen = select_rows(chosen, "pair", pair, "similarity_matrix")
    if not cross:
        grid = chosen.pivot(index=["layer", "label"], columns="expert", values="value")
        grid.index = grid.index.get_level_values("label")
        return grid
    layer = _single(chosen, "layer", layer)
    chosen = select_rows(chosen, "layer", layer, "similarity_matrix")
    return chosen.pivot(index="expert_a", columns="expert_b", values="value")


def _single(table: pd.DataFrame, column: str, value: Any) -> Any:
    if value is not None:
        return value
    known = list(dict.fromkeys(table[column]))
    if len(known) != 1:
        raise ValueError(f"the table holds several values of {column} {known}; pass {column}=...")
    return known[0]


def layer_summary(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Per-layer statistics of a same-slot table: which layers stay shared across fine-tunes.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`expert_similarity` or :func:`sum_over_pairs`.
    metric : str, optional
        Keep one metric only.

    Returns
    -------
    pandas.DataFrame
        One row per layer, pair and metric; columns ``layer``, ``label``, ``pair``, ``metric``,
        ``direction``, ``mean``, ``min``, ``max`` and ``distance_mean`` (the mean of
        :meth:`SimilarityMetric.as_distance`, so layers of every metric sort the same way:
        lower = more shared).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns or ``metric`` is not in it.
    """
    keys = ["layer", "label", "pair", "metric", "direction"]
    summary = _slot_statistics(table, metric, keys, "layer_summary")
    return summary.sort_values(["metric", "pair", "layer"], kind="stable").reset_index(drop=True)


def pair_summary(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Statistics over all slots of a same-slot table, per pair: how far each fine-tune moved.

    Parameters
    ----------
    table, metric
        As :func:`layer_summary`.

    Returns
    -------
    pandas.DataFrame
        One row per pair and metric, in table order; columns ``pair``, ``model_a``,
        ``model_b``, ``metric``, ``direction``, ``mean``, ``min``, ``max``, ``distance_mean``
        (as in :func:`layer_summary`).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns or ``metric`` is not in it.
    """
    keys = ["pair", "model_a", "model_b", "metric", "direction"]
    return _slot_statistics(table, metric, keys, "pair_summary")


def _slot_statistics(
    table: pd.DataFrame, metric: str | None, keys: list[str], caller: str
) -> pd.DataFrame:
    """Mean, min, max and mean distance of a same-slot table's values, grouped by ``keys``."""
    check_table(table, SAME_SLOT_COLUMNS, caller)
    if metric is not None:
        table = select_rows(table, "metric", metric, caller)
    table = table.assign(distance=as_distance(table))
    return table.groupby(keys, sort=False, as_index=False).agg(
        mean=("value", "mean"),
        min=("value", "min"),
        max=("value", "max"),
        distance_mean=("distance", "mean"),
    )


# Correlation method -> the scipy.stats function that computes it.
_CORRELATIONS: Registry[str] = Registry("correlation method", plural="methods", sort=False)
_CORRELATIONS.add("spearman", "spearmanr")
_CORRELATIONS.add("kendall", "kendalltau")
_CORRELATIONS.add("pearson", "pearsonr")


def metric_correlation(
    table: pd.DataFrame, x: str = "l2", y: str = "cka", *, method: CorrelationMethod = "spearman"
) -> pd.DataFrame:
    """How two metrics agree over slots, per pair (does weight distance predict output distance?).

    Both metrics are first oriented as distances (:meth:`SimilarityMetric.as_distance`: a
    similarity ``s`` becomes ``1 - s``), so a positive coefficient means agreement.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table holding both metrics.
    x, y : str
        The two metrics.
    method : {"spearman", "kendall", "pearson"}, default "spearman"
        The ``scipy.stats`` coefficient (``spearmanr``, ``kendalltau``, ``pearsonr``).

    Returns
    -------
    pandas.DataFrame
        One row per pair; columns ``pair``, ``x``, ``y``, ``method``, ``n`` (slots with both
        values), ``coefficient``, ``pvalue``.

    Raises
    ------
    ValueError
        If the method is unknown, a metric is not in the table, or a pair has fewer than three
        slots with both values.
    """
    import scipy.stats

    coefficient = getattr(scipy.stats, _CORRELATIONS.get(method))
    check_table(table, SAME_SLOT_COLUMNS, "metric_correlation")
    for name in (x, y):
        select_rows(table, "metric", name, "metric_correlation")
    oriented = table.assign(distance=as_distance(table))
    wide = oriented.pivot_table(
        index=["pair", "layer", "expert"], columns="metric", values="distance", dropna=False
    )
    rows = []
    for pair in dict.fromkeys(table["pair"]):
        both = wide.loc[pair, [x, y]].dropna()
        if len(both) < 3:
            raise ValueError(
                f"pair {pair!r} has {len(both)} slots with both {x} and {y}; need at least 3"
            )
        result = coefficient(both[x], both[y])
        rows.append(
            {
                "pair": pair,
                "x": x,
                "y": y,
                "method": method,
                "n": len(both),
                "coefficient": float(result.statistic),
                "pvalue": float(result.pvalue),
            }
        )
    return pd.DataFrame(rows, columns=["pair", "x", "y", "method", "n", "coefficient", "pvalue"])
