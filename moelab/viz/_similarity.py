"""Figures of expert-similarity tables (:mod:`moelab.similarity`).

Every function takes a table from :mod:`moelab.similarity` and returns a figure
(``plotly.graph_objects.Figure``; the clustermap a seaborn ``ClusterGrid``) without showing it.
Colours follow one rule whatever the metric: darker = more similar (distances use
``Viridis``, similarities the reversed scale), and every colour bar says which way its metric
points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moelab.similarity import (
    SAME_SLOT_COLUMNS,
    as_distance,
    check_table,
    get_metric,
    layer_summary,
    match_experts,
    metric_correlation,
    select_rows,
    similarity_matrix,
)

__all__ = [
    "cross_slot_heatmap",
    "layer_profile",
    "similarity_clustermap",
    "similarity_heatmap",
    "similarity_scatter",
    "similarity_view",
]

_SCALE = "Viridis"


def _direction(table: pd.DataFrame, metric: str) -> str:
    return str(select_rows(table, "metric", metric, "figure")["direction"].iloc[0])


def _axis_title(table: pd.DataFrame, metric: str) -> str:
    direction = _direction(table, metric)
    arrow = "lower" if direction == "distance" else "higher"
    return f"{metric} ({direction}: {arrow} = more similar)"


def _heatmap(grid: pd.DataFrame, direction: str, **kwargs: Any) -> go.Heatmap:
    return go.Heatmap(
        z=grid.to_numpy(dtype=float),
        x=[str(c) for c in grid.columns],
        y=[str(i) for i in grid.index],
        colorscale=_SCALE,
        reversescale=direction == "similarity",
        **kwargs,
    )


def _pairs(table: pd.DataFrame, pairs: Sequence[str] | None) -> list[str]:
    known = list(dict.fromkeys(table["pair"]))
    if pairs is None:
        return known
    pairs = [pairs] if isinstance(pairs, str) else list(pairs)
    unknown = [p for p in pairs if p not in known]
    if unknown or not pairs:
        raise ValueError(f"unknown pairs {unknown or pairs}; the table has {known}")
    return pairs


def similarity_heatmap(
    table: pd.DataFrame, metric: str, pairs: str | Sequence[str] | None = None
) -> go.Figure:
    """Layers x experts heatmap of one metric, one panel per pair, one shared colour scale.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`~moelab.similarity.expert_similarity` or
        :func:`~moelab.similarity.sum_over_pairs`.
    metric : str
        A metric in the table.
    pairs : str or list of str, optional
        Pairs to show (default: all, in table order).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace per pair; ``z[layer][expert]`` is the value.

    Raises
    ------
    ValueError
        If the table is not a same-slot table, or the metric or a pair is not in it.
    """
    check_table(table, SAME_SLOT_COLUMNS, "similarity_heatmap")
    direction = _direction(table, metric)
    chosen = _pairs(table, pairs)
    values = select_rows(table, "metric", metric, "similarity_heatmap")["value"]
    zmin, zmax = float(np.nanmin(values)), float(np.nanmax(values))
    fig = make_subplots(
        rows=1,
        cols=len(chosen),
        subplot_titles=chosen,
        shared_yaxes=True,
        horizontal_spacing=min(0.04, 0.5 / max(len(chosen), 1)),
    )
    for col, pair in enumerate(chosen, start=1):
        grid = similarity_matrix(table, metric, pair)
        fig.add_trace(
            _heatmap(
                grid,
                direction,
                zmin=zmin,
                zmax=zmax,
                showscale=col == 1,
                colorbar={"title": {"text": _axis_title(table, metric), "side": "right"}},
                name=pair,
                hovertemplate="%{y} / expert %{x}<br>"
                + metric
                + " = %{z:.4g}<extra>"
                + pair
                + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="expert", row=1, col=col)
    fig.update_yaxes(title_text="MoE layer", autorange="reversed", row=1, col=1)
    n_layers = table["layer"].nunique()
    fig.update_layout(title=_description(metric), height=max(260, 40 * n_layers + 160))
    return fig


def _description(metric: str) -> str:
    try:
        return get_metric(metric).description
    except ValueError:  # a metric object that was never registered
        return metric


def cross_slot_heatmap(
    cross: pd.DataFrame,
    metric: str,
    pair: str | None = None,
    layer: int | None = None,
    *,
    show_matching: bool = True,
) -> go.Figure:
    """Every expert of ``a`` against every expert of ``b`` in one layer, with the matching.

    Parameters
    ----------
    cross : pandas.DataFrame
        From :func:`~moelab.similarity.cross_slot_similarity`.
    metric : str
        A metric in the table.
    pair : str, optional
        A pair in the table (may be omitted when there is one).
    layer : int, optional
        A layer in the table (may be omitted when there is one).
    show_matching : bool, default True
        Mark the Hungarian assignment (:func:`~moelab.similarity.match_experts`) with white
        squares; a permutation shows as marks off the diagonal.

    Returns
    -------
    plotly.graph_objects.Figure
        A ``Heatmap`` (``z[expert_a][expert_b]``), then the ``Scatter`` of matched cells.

    Raises
    ------
    ValueError
        If the table is not a cross-slot table, or metric, pair or layer is not in it.
    """
    grid = similarity_matrix(cross, metric, pair, layer)
    chosen = select_rows(cross, "metric", metric, "cross_slot_heatmap")
    pair = pair if pair is not None else str(chosen["pair"].iloc[0])
    layer = layer if layer is not None else int(chosen["layer"].iloc[0])
    direction = _direction(cross, metric)
    fig = go.Figure(
        _heatmap(
            grid,
            direction,
            colorbar={"title": {"text": _axis_title(cross, metric), "side": "right"}},
            hovertemplate="a: expert %{y}<br>b: expert %{x}<br>"
            + metric
            + " = %{z:.4g}<extra></extra>",
        )
    )
    if show_matching:
        rows = select_rows(
            select_rows(chosen, "pair", pair, "cross_slot_heatmap"),
            "layer",
            layer,
            "cross_slot_heatmap",
        )
        matched = match_experts(rows)
        fig.add_trace(
            go.Scatter(
                x=[str(e) for e in matched["expert_b"]],
                y=[str(e) for e in matched["expert_a"]],
                mode="markers",
                name="Hungarian matching",
                marker={
                    "symbol": "square-open",
                    "size": 18,
                    "color": "white",
                    "line": {"width": 2},
                },
                hovertemplate="a: expert %{y} -> b: expert %{x}<extra>matched</extra>",
            )
        )
    model_a, model_b = chosen["model_a"].iloc[0], chosen["model_b"].iloc[0]
    fig.update_layout(
        title=f"{metric}, {pair}, {chosen.loc[chosen['layer'] == layer, 'label'].iloc[0]}",
        xaxis_title=f"expert of {model_b}",
        yaxis_title=f"expert of {model_a}",
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category"},
        showlegend=False,
        width=520,
        height=460,
    )
    return fig


def layer_profile(
    table: pd.DataFrame, metric: str, pairs: str | Sequence[str] | None = None
) -> go.Figure:
    """Mean over experts of one metric per layer, one line per pair, with min-max whiskers.

    Layers whose experts barely move across fine-tunes (low distance, high similarity) are the
    ones consolidation can share first.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table.
    metric : str
        A metric in the table.
    pairs : str or list of str, optional
        Pairs to draw (default: all).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` per pair: x = layer label, y = mean.

    Raises
    ------
    ValueError
        If the table is not a same-slot table, or the metric or a pair is not in it.
    """
    summary = layer_summary(table, metric)
    fig = go.Figure()
    for pair in _pairs(table, pairs):
        rows = summary[summary["pair"] == pair].sort_values("layer")
        fig.add_trace(
            go.Scatter(
                x=rows["label"],
                y=rows["mean"],
                mode="lines+markers",
                name=pair,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["max"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["min"],
                    "thickness": 1,
                },
            )
        )
    fig.update_layout(
        title=f"Per-layer mean of {metric} over experts (whiskers: min to max)",
        xaxis_title="MoE layer",
        yaxis_title=_axis_title(table, metric),
        height=380,
    )
    return fig


def similarity_scatter(
    table: pd.DataFrame, x: str = "l2", y: str = "cka", pairs: str | Sequence[str] | None = None
) -> go.Figure:
    """Slots placed by two metrics, both as distances (a similarity ``s`` drawn as ``1 - s``).

    Answers whether experts that moved more in weight space also changed their function more;
    the title gives Spearman's rank correlation per pair
    (:func:`~moelab.similarity.metric_correlation`).

    Parameters
    ----------
    table, x, y
        As :func:`~moelab.similarity.metric_correlation`: a same-slot table and two of its
        metrics.
    pairs : str or list of str, optional
        Pairs to draw (default: all).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` per pair; marker colour = layer.

    Raises
    ------
    ValueError
        If a metric or pair is not in the table.
    """
    check_table(table, SAME_SLOT_COLUMNS, "similarity_scatter")
    chosen_pairs = _pairs(table, pairs)
    subset = table[table["pair"].isin(chosen_pairs)]
    rho = metric_correlation(subset, x, y).set_index("pair")["coefficient"]
    fig = go.Figure()
    label = {m: (m if _direction(table, m) == "distance" else f"1 - {m}") for m in (x, y)}
    for pair in chosen_pairs:
        rows = subset[subset["pair"] == pair]
        rows = rows.assign(distance=as_distance(rows))
        wide = rows.pivot(index=["layer", "label", "expert"], columns="metric", values="distance")
        fig.add_trace(
            go.Scatter(
                x=wide[x],
                y=wide[y],
                mode="markers",
                name=f"{pair} (rho = {rho[pair]:.2f})",
                marker={
                    "color": wide.index.get_level_values("layer"),
                    "colorscale": "Cividis",
                    "size": 8,
                    "line": {"width": 0.5, "color": "black"},
                },
                text=[f"{lab} / expert {e}" for _, lab, e in wide.index],
                hovertemplate="%{text}<br>"
                + label[x]
                + " = %{x:.4g}<br>"
                + label[y]
                + " = %{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Weight vs function: {label[x]} against {label[y]} (Spearman rho per pair)",
        xaxis_title=label[x],
        yaxis_title=label[y],
        height=420,
    )
    return fig


def similarity_clustermap(
    table: pd.DataFrame, metric: str, pairs: str | Sequence[str] | None = None, **kwargs: Any
) -> Any:
    """Seaborn clustermap: slots (rows) by pairs (columns), both hierarchically clustered.

    Slots that every fine-tune moves alike group together, and pairs of models that move the
    same slots group together. With a single pair (or a single slot), that axis is not
    clustered.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table.
    metric : str
        A metric in the table.
    pairs : str or list of str, optional
        Pairs to use (default: all).
    **kwargs
        Passed to ``seaborn.clustermap`` (e.g. ``figsize``, ``method``).

    Returns
    -------
    seaborn.matrix.ClusterGrid
        Its ``.figure`` is the matplotlib figure and ``.data`` the slots x pairs matrix.

    Raises
    ------
    ValueError
        If the table is not a same-slot table, the metric or a pair is not in it, or a value is
        NaN (clustering needs finite values).
    """
    import seaborn as sns

    check_table(table, SAME_SLOT_COLUMNS, "similarity_clustermap")
    direction = _direction(table, metric)
    chosen = _pairs(table, pairs)
    rows = select_rows(table, "metric", metric, "similarity_clustermap")
    rows = rows[rows["pair"].isin(chosen)]
    data = rows.pivot(index=["label", "expert"], columns="pair", values="value")
    data = data.reindex(columns=chosen)
    data.index = [f"{label}/e{expert}" for label, expert in data.index]
    if data.isna().any().any():
        raise ValueError(
            f"{metric} has NaN values (constant expert outputs?); clustering needs finite values"
        )
    options: dict[str, Any] = {
        "cmap": "viridis" if direction == "distance" else "viridis_r",
        "row_cluster": data.shape[0] > 1,
        "col_cluster": data.shape[1] > 1,
        "figsize": (max(4.0, 1.2 * data.shape[1] + 3), max(4.0, 0.18 * data.shape[0] + 2)),
        "cbar_kws": {"label": _axis_title(table, metric)},
        "yticklabels": True,
    }
    options.update(kwargs)
    grid = sns.clustermap(data, **options)
    grid.figure.suptitle(f"{metric}: slots x pairs, clustered", y=1.02)
    return grid


def similarity_view(table: pd.DataFrame, metric: str, pair: str, layer: int) -> go.Figure:
    """The figure behind an interactive explorer: one metric, one pair, one layer.

    A pure function of its arguments, to wrap with ``ipywidgets.interactive_output``.
    For a same-slot table: the layers x experts heatmap with the chosen layer outlined, next to
    a bar chart of that layer's experts. For a cross-slot table: :func:`cross_slot_heatmap` of
    that layer with its Hungarian matching.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`~moelab.similarity.expert_similarity` or
        :func:`~moelab.similarity.cross_slot_similarity`.
    metric : str
        A metric in the table.
    pair : str
        A pair in the table.
    layer : int
        A MoE layer in the table.

    Returns
    -------
    plotly.graph_objects.Figure
        Same-slot: a ``Heatmap`` and a ``Bar`` (``y`` = the layer's values by expert).

    Raises
    ------
    ValueError
        If metric, pair or layer is not in the table.

    Examples
    --------
    >>> import ipywidgets as w                                                  # doctest: +SKIP
    >>> view = lambda **p: display(similarity_view(table, **p))  # doctest: +SKIP
    >>> w.interactive_output(view, {"metric": ..., "pair": ..., "layer": ...})  # doctest: +SKIP
    """
    if isinstance(table, pd.DataFrame) and "expert_a" in table.columns:
        return cross_slot_heatmap(table, metric, pair, layer)
    check_table(table, SAME_SLOT_COLUMNS, "similarity_view")
    direction = _direction(table, metric)
    rows = select_rows(
        select_rows(table, "metric", metric, "similarity_view"), "pair", pair, "similarity_view"
    )
    rows = select_rows(rows, "layer", layer, "similarity_view").sort_values("expert")
    grid = similarity_matrix(table, metric, pair)
    position = list(grid.index).index(rows["label"].iloc[0])
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        subplot_titles=(f"{pair}: all layers", f"{rows['label'].iloc[0]}"),
    )
    fig.add_trace(
        _heatmap(
            grid,
            direction,
            colorbar={"title": {"text": _axis_title(table, metric), "side": "right"}, "x": 0.56},
            name=pair,
        ),
        row=1,
        col=1,
    )
    fig.add_shape(
        type="rect",
        x0=-0.5,
        x1=grid.shape[1] - 0.5,
        y0=position - 0.5,
        y1=position + 0.5,
        line={"color": "red", "width": 2},
        xref="x",
        yref="y",
    )
    fig.add_trace(
        go.Bar(
            x=[str(e) for e in rows["expert"]],
            y=rows["value"],
            name=metric,
            marker_color="steelblue",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="expert", type="category", row=1, col=1)
    fig.update_xaxes(title_text="expert", type="category", row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category", row=1, col=1)
    fig.update_yaxes(title_text=metric, row=1, col=2)
    fig.update_layout(title=_axis_title(table, metric), showlegend=False, height=420)
    return fig
